package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"agentgate.io/agentgate/policy"
)

// ReadPolicies reads and parses policy files, each holding one or more AgentPolicy documents, or ConfigMaps
// holding one under the key policy.yaml (how policies are kept in a cluster). Every problem of every file is
// returned, each naming the file, line and document; the policies are usable only when there is none. Two
// policies may not share a name.
func ReadPolicies(files []string) ([]*policy.Policy, []error) {
	var (
		policies []*policy.Policy
		errs     []error
		from     = map[string]string{}
	)
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fail("policy %s: %w", name, err)
			continue
		}
		docs, sections, err := split(data, false)
		if err != nil {
			fail("policy %s: %w", name, err)
			continue
		}
		for _, d := range docs {
			if d.Err != nil {
				line := d.ErrLine
				if line == 0 {
					line = d.ContentLine
				}
				fail("policy %s:%d: %w", name, line, d.Err)
				continue
			}
			loc := fmt.Sprintf("%s:%d", name, d.ContentLine)
			if sections > 1 {
				loc += fmt.Sprintf(": document %d", d.Index)
			}
			body, prefix, err := policyDocument(d.JSON)
			if err != nil {
				fail("policy %s: %w", loc, err)
				continue
			}
			p, perrs := policy.Parse(body)
			for _, e := range perrs {
				fail("policy %s: %s%s", loc, prefix, fieldErrorString(e))
			}
			if len(perrs) > 0 {
				continue
			}
			if prev, dup := from[p.Name]; dup {
				fail("policy %s: metadata.name: policy %q is already given by %s; names must be unique", loc, p.Name, prev)
				continue
			}
			from[p.Name] = loc
			policies = append(policies, p)
		}
		if len(docs) == 0 {
			fail("policy %s: empty: no policy document in it", name)
		}
	}
	return policies, errs
}

// policyDocument accepts an AgentPolicy document, or a v1 ConfigMap holding one under policy.yaml. It returns
// the policy document and the prefix to give its field errors. Anything else is returned as it is, for
// policy.Parse to say what is wrong with it.
//
// webhook.PolicyDocument does a narrower job: it is given an object already decoded (strictly) as a policy
// ConfigMap, also refuses a policy kept under binaryData, and returns field errors rooted at the ConfigMap
// (webhook.PrefixErrors re-roots Parse's). Here a file may hold either kind, so the kind is looked at first,
// and only the fields needed to tell are read.
func policyDocument(doc []byte) ([]byte, string, error) {
	var h struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Data       map[string]string `json:"data"`
	}
	if err := json.Unmarshal(doc, &h); err != nil {
		return doc, "", nil // Parse reports it with the field
	}
	if h.APIVersion != "v1" || h.Kind != "ConfigMap" {
		return doc, "", nil
	}
	body, ok := h.Data["policy.yaml"]
	if !ok {
		return nil, "", errors.New(`data: a policy ConfigMap holds its policy under the key "policy.yaml"`)
	}
	return []byte(body), "data[policy.yaml]: ", nil
}

// fieldErrorString prints a field error without an empty path in front.
func fieldErrorString(e *field.Error) string {
	if e.Field == "" || e.Field == "<nil>" {
		if e.Detail != "" {
			return e.Detail
		}
		return e.ErrorBody()
	}
	return e.Error()
}
