package policy

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func configMap(namespace string, labels map[string]string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "agentgate-policy-agents", Namespace: namespace, Labels: labels}, Data: data}
}

var policyLabel = map[string]string{ConfigMapLabel: ConfigMapLabelValue}

func TestIsPolicyConfigMap(t *testing.T) {
	for _, c := range []struct {
		name      string
		cm        *corev1.ConfigMap
		namespace string
		want      bool
	}{
		{"labelled", configMap("agentgate-system", policyLabel, nil), "agentgate-system", true},
		{"labelled, namespace unknown", configMap("team-a", policyLabel, nil), "", true},
		{"labelled in another namespace", configMap("team-a", policyLabel, nil), "agentgate-system", false},
		{"label True", configMap("agentgate-system", map[string]string{ConfigMapLabel: "True"}, nil), "agentgate-system", false},
		{"label empty", configMap("agentgate-system", map[string]string{ConfigMapLabel: ""}, nil), "", false},
		{"no labels", configMap("agentgate-system", nil, nil), "", false},
		{"nil", nil, "", false},
	} {
		if got := IsPolicyConfigMap(c.cm, c.namespace); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseConfigMap(t *testing.T) {
	for _, c := range []struct {
		name   string
		cm     *corev1.ConfigMap
		fields []string
	}{
		{"valid", configMap("ns", policyLabel, map[string]string{ConfigMapDataKey: weakenBase}), nil},
		{"no key", configMap("ns", policyLabel, map[string]string{"policy.yml": weakenBase}), []string{"data[policy.yaml]"}},
		{"binaryData", &corev1.ConfigMap{BinaryData: map[string][]byte{ConfigMapDataKey: []byte(weakenBase)}}, []string{"binaryData[policy.yaml]"}},
		{"not YAML", configMap("ns", policyLabel, map[string]string{ConfigMapDataKey: "spec: ["}), []string{"data[policy.yaml]"}},
		{"field errors, all of them", configMap("ns", policyLabel, map[string]string{ConfigMapDataKey: edit(t, weakenBase, "mode: enforce=>mode: sometimes", "windows: deny=>windows: maybe")}),
			[]string{"data[policy.yaml].spec.mode", "data[policy.yaml].spec.windows"}},
		{"unknown field", configMap("ns", policyLabel, map[string]string{ConfigMapDataKey: edit(t, weakenBase, "  windows: deny=>  windows: deny\n  bogus: 1")}),
			[]string{"data[policy.yaml].spec.bogus"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, errs := ParseConfigMap(c.cm)
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			if !slices.Equal(fields, c.fields) {
				t.Errorf("fields %q, want %q (%v)", fields, c.fields, errs)
			}
			if (p != nil) != (len(c.fields) == 0) {
				t.Errorf("policy %v with errors %v", p, errs)
			}
		})
	}
}

// What an edit of the ConfigMap itself (its label, its key, its document as a whole) switches off.
func TestConfigMapWeakenings(t *testing.T) {
	const ns = "agentgate-system"
	valid := map[string]string{ConfigMapDataKey: weakenBase}
	audit := map[string]string{ConfigMapDataKey: edit(t, weakenBase, "mode: enforce=>mode: audit")}
	broken := map[string]string{ConfigMapDataKey: "spec: {mode: audit"}
	for _, c := range []struct {
		name     string
		old, cur *corev1.ConfigMap
		rules    []string
		fields   []string
	}{
		{"delete", configMap(ns, policyLabel, valid), nil, []string{RuleDelete}, []string{""}},
		{"delete of a broken policy", configMap(ns, policyLabel, broken), nil, []string{RuleDelete}, []string{""}},
		{"label removed", configMap(ns, policyLabel, valid), configMap(ns, nil, valid), []string{RuleLabel}, []string{"metadata.labels[agentgate.io/policy]"}},
		{"label set to True", configMap(ns, policyLabel, valid), configMap(ns, map[string]string{ConfigMapLabel: "True"}, valid),
			[]string{RuleLabel}, []string{"metadata.labels[agentgate.io/policy]"}},
		{"label removed and mode downgraded", configMap(ns, policyLabel, valid), configMap(ns, nil, audit),
			[]string{RuleLabel, "mode"}, []string{"metadata.labels[agentgate.io/policy]", "data[policy.yaml].spec.mode"}},
		{"key renamed", configMap(ns, policyLabel, valid), configMap(ns, policyLabel, map[string]string{"policy.yml": weakenBase}),
			[]string{RuleDocument}, []string{"data[policy.yaml]"}},
		{"key moved to binaryData", configMap(ns, policyLabel, valid), &corev1.ConfigMap{ObjectMeta: configMap(ns, policyLabel, nil).ObjectMeta,
			BinaryData: map[string][]byte{ConfigMapDataKey: []byte(weakenBase)}}, []string{RuleDocument}, []string{"binaryData[policy.yaml]"}},
		{"made unparseable", configMap(ns, policyLabel, valid), configMap(ns, policyLabel, broken), []string{RuleDocument}, []string{"data[policy.yaml]"}},
		{"mode downgraded in an otherwise invalid document", configMap(ns, policyLabel, valid),
			configMap(ns, policyLabel, map[string]string{ConfigMapDataKey: edit(t, weakenBase, "mode: enforce=>mode: audit", "windows: deny=>windows: maybe")}),
			[]string{RuleDocument}, []string{"data[policy.yaml].spec.windows"}},
		{"a broken policy made valid", configMap(ns, policyLabel, broken), configMap(ns, policyLabel, audit), []string{RuleDocument}, []string{"data[policy.yaml]"}},
		{"a weakening inside the document", configMap(ns, policyLabel, valid),
			configMap(ns, policyLabel, map[string]string{ConfigMapDataKey: edit(t, weakenBase, "namespaces: [kube-system]=>namespaces: [kube-system, team-a]")}),
			[]string{"exempt"}, []string{"data[policy.yaml].spec.exempt.namespaces[1]"}},
		{"a tightening inside the document", configMap(ns, policyLabel, audit), configMap(ns, policyLabel, valid), nil, nil},
		{"other data changed", configMap(ns, policyLabel, valid), configMap(ns, policyLabel, map[string]string{ConfigMapDataKey: weakenBase, "notes": "x"}), nil, nil},
		{"a broken policy edited, still broken", configMap(ns, policyLabel, broken), configMap(ns, policyLabel, map[string]string{ConfigMapDataKey: "spec: ["}), nil, nil},
		{"not a policy before", configMap(ns, nil, valid), configMap(ns, policyLabel, audit), nil, nil},
		{"labelled outside the policy namespace", configMap("team-a", policyLabel, valid), nil, nil, nil},
		{"label added", configMap(ns, map[string]string{ConfigMapLabel: "false"}, valid), configMap(ns, policyLabel, valid), nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ConfigMapWeakenings(c.old, c.cur, ns)
			var rules, fields []string
			for _, w := range got {
				rules = append(rules, w.Rule)
				fields = append(fields, w.Field)
				if w.Detail == "" || w.Old == "" || w.New == "" {
					t.Errorf("incomplete: %+v", w)
				}
				t.Log(w)
			}
			if !slices.Equal(rules, c.rules) || !slices.Equal(fields, c.fields) {
				t.Errorf("rules %q at %q, want %q at %q", rules, fields, c.rules, c.fields)
			}
		})
	}
}
