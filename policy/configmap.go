package policy

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The ConfigMap contract (DESIGN.md, "Policy"): a policy in a cluster is a ConfigMap in agentgate's namespace,
// labelled ConfigMapLabel=ConfigMapLabelValue, whose key ConfigMapDataKey holds one AgentPolicy document as text.
// The watcher, /validate-policy, the guard and the CLI's --policy all read ConfigMaps through this file, so
// that what one of them takes for a policy, and the policy it reads, the others take too.
const (
	ConfigMapLabel      = "agentgate.io/policy"
	ConfigMapLabelValue = "true"
	ConfigMapDataKey    = "policy.yaml"
)

// ConfigMapSelector is the label selector of policy ConfigMaps (the watcher's, the webhook configurations').
const ConfigMapSelector = ConfigMapLabel + "=" + ConfigMapLabelValue

// ConfigMapDocumentPath is where a policy document's own field paths start inside its ConfigMap.
var ConfigMapDocumentPath = field.NewPath("data").Key(ConfigMapDataKey)

// IsPolicyConfigMap says whether a ConfigMap is a policy: labelled ConfigMapLabel=ConfigMapLabelValue (any
// other value, "True" included, is not), and in policyNamespace. A labelled ConfigMap elsewhere is not read
// by the server, so it is no policy; policyNamespace "" means the namespace is not known (no cluster, a
// manifest given to the CLI) and any namespace will do.
func IsPolicyConfigMap(cm *corev1.ConfigMap, policyNamespace string) bool {
	if cm == nil || cm.Labels[ConfigMapLabel] != ConfigMapLabelValue {
		return false
	}
	return policyNamespace == "" || cm.Namespace == policyNamespace
}

// ConfigMapDocument returns the policy document of a ConfigMap, or why it has none, with field paths from
// the ConfigMap's root.
func ConfigMapDocument(cm *corev1.ConfigMap) ([]byte, field.ErrorList) {
	doc, ok := cm.Data[ConfigMapDataKey]
	if !ok {
		if _, bin := cm.BinaryData[ConfigMapDataKey]; bin {
			return nil, field.ErrorList{field.Invalid(field.NewPath("binaryData").Key(ConfigMapDataKey), "(binary)", "the policy document must be text under data, not binaryData")}
		}
		return nil, field.ErrorList{field.Required(ConfigMapDocumentPath, fmt.Sprintf("a ConfigMap labelled %s=%s holds its AgentPolicy document under data[%s]", ConfigMapLabel, ConfigMapLabelValue, ConfigMapDataKey))}
	}
	return []byte(doc), nil
}

// ParseConfigMap parses the policy a ConfigMap holds, exactly as the server puts it in force. Every field
// error is rooted at the ConfigMap (data[policy.yaml].spec.mode), so that kubectl points into the object the
// user edits. Whether the ConfigMap is a policy at all (IsPolicyConfigMap) is the caller's question.
func ParseConfigMap(cm *corev1.ConfigMap) (*Policy, field.ErrorList) {
	doc, errs := ConfigMapDocument(cm)
	if len(errs) > 0 {
		return nil, errs
	}
	p, errs := Parse(doc)
	if len(errs) > 0 {
		return nil, RootAtConfigMap(errs)
	}
	return p, nil
}

// documentRoot is how Parse's errors about the document as a whole spell their path.
var documentRoot = field.NewPath("").String()

// RootAtConfigMap re-roots a policy document's field errors at data[policy.yaml].
func RootAtConfigMap(errs field.ErrorList) field.ErrorList {
	out := make(field.ErrorList, len(errs))
	for i, e := range errs {
		c := *e
		if c.Field == "" || c.Field == "<nil>" || c.Field == documentRoot {
			c.Field = ConfigMapDocumentPath.String()
		} else {
			c.Field = ConfigMapDocumentPath.String() + "." + c.Field
		}
		out[i] = &c
	}
	return out
}

// ConfigMapWeakenings lists what an UPDATE (cur non-nil) or DELETE (cur nil) of a policy ConfigMap switches
// off, all at once; nil when old was no policy (nothing to switch off) or nothing weakens. Besides
// Weakenings between the two parsed policies:
//   - deleting the ConfigMap, or removing its label (or setting it to anything but "true"), takes the policy
//     out of force;
//   - a new version that does not parse (the key removed, moved to binaryData, a field error) is no policy
//     on any replica that starts from it: the running ones keep the last good version, a new one has none.
//     Each field error is reported, so that the refusal also says what to fix;
//   - a new version that parses after an old one that did not cannot be measured against the version in
//     force (the last good one, which the request does not show): it is reported, and so left to an admin.
//
// Label and key changes are judged first, then the documents, so that removing the label and changing the
// mode in one edit reports both.
func ConfigMapWeakenings(old, cur *corev1.ConfigMap, policyNamespace string) []Weakening {
	if !IsPolicyConfigMap(old, policyNamespace) {
		return nil
	}
	ref := strconv.Quote(old.Namespace + "/" + old.Name)
	if cur == nil {
		return []Weakening{{Rule: RuleDelete, Old: "policy ConfigMap " + ref, New: "deleted",
			Detail: "deleting policy ConfigMap " + ref + " takes its policy out of force"}}
	}
	var out []Weakening
	if !IsPolicyConfigMap(cur, policyNamespace) {
		newLabel := "(removed)"
		if v, ok := cur.Labels[ConfigMapLabel]; ok {
			newLabel = strconv.Quote(v)
		}
		verb := "removing the label"
		if newLabel != "(removed)" {
			verb = "setting the label to " + newLabel
		}
		out = append(out, Weakening{Rule: RuleLabel, Field: field.NewPath("metadata", "labels").Key(ConfigMapLabel).String(),
			Old: strconv.Quote(ConfigMapLabelValue), New: newLabel,
			Detail: verb + " takes the policy of ConfigMap " + ref + " out of force"})
	}
	oldP, oldErrs := ParseConfigMap(old)
	newP, newErrs := ParseConfigMap(cur)
	switch {
	case len(oldErrs) == 0 && len(newErrs) > 0:
		for _, e := range newErrs {
			out = append(out, Weakening{Rule: RuleDocument, Field: e.Field, Old: "a valid policy", New: e.ErrorBody(),
				Detail: "the new version does not parse (" + e.ErrorBody() + "): a replica that starts from it runs without this policy"})
		}
	case len(oldErrs) > 0 && len(newErrs) == 0:
		out = append(out, Weakening{Rule: RuleDocument, Field: ConfigMapDocumentPath.String(), Old: "a document that does not parse", New: "a valid policy",
			Detail: "the old version does not parse, so what this change weakens against the last good version in force cannot be measured"})
	case len(oldErrs) == 0 && len(newErrs) == 0:
		for _, w := range Weakenings(oldP, newP) {
			w.Field = ConfigMapDocumentPath.String() + "." + w.Field
			out = append(out, w)
		}
	}
	return out
}
