package manifest

import (
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
			p, perrs := readPolicyDocument(d.JSON)
			for _, e := range perrs {
				fail("policy %s: %s", loc, fieldErrorString(e))
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

// readPolicyDocument parses one document of a policy file: an AgentPolicy, or a v1 ConfigMap read by the
// cluster's contract (policy.ParseConfigMap: the document under data[policy.yaml], errors rooted there). A
// ConfigMap given explicitly is taken as a policy whatever its label says: the label decides what a cluster
// watches, and naming the file is the same decision. Anything else goes to policy.Parse, which says what is
// wrong with it.
func readPolicyDocument(doc []byte) (*policy.Policy, field.ErrorList) {
	var tm metav1.TypeMeta
	if json.Unmarshal(doc, &tm) != nil || tm.APIVersion != "v1" || tm.Kind != "ConfigMap" {
		return policy.Parse(doc)
	}
	// Strict, unlike /validate-policy: a file is written by a person, and a misspelt field there is a typo,
	// not a field of a newer API server (README "Cluster upgrades").
	var cm corev1.ConfigMap
	if err := policy.UnmarshalStrict(doc, &cm); err != nil {
		return nil, field.ErrorList{field.Invalid(nil, "", "not a valid v1 ConfigMap: "+err.Error())}
	}
	return policy.ParseConfigMap(&cm)
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
