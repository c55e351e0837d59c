package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckPriorityClass(t *testing.T) {
	class := func(name string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.PriorityClassName = name }
	}
	cases := []checkCase{
		{name: "unset"},
		{name: "a class of the cluster's own", tweak: class("batch-low")},
		{
			name: "system-node-critical", tweak: class("system-node-critical"),
			want: []string{`spec.priorityClassName | "system-node-critical" | unset or any class not starting with "system-"`},
			msgs: []string{`[priorityClass] the system priority classes preempt every other pod and are evicted last: they belong to the node's own agents (found "system-node-critical"; allowed: unset or any class not starting with "system-")`},
		},
		{
			name: "system-cluster-critical", tweak: class("system-cluster-critical"),
			want: []string{`spec.priorityClassName | "system-cluster-critical" | unset or any class not starting with "system-"`},
		},
		{
			// The API server reserves the prefix: whatever a later release adds under it is the system's too.
			name: "any system- class", tweak: class("system-future-critical"),
			want: []string{`spec.priorityClassName | "system-future-critical" | unset or any class not starting with "system-"`},
		},
		{name: "listed", policy: "scheduling: {priorityClassNames: [agents-low, agents-high]}", tweak: class("agents-high")},
		{name: "unset under a list", policy: "scheduling: {priorityClassNames: [agents-low]}"},
		{
			name: "not listed", policy: "scheduling: {priorityClassNames: [agents-low, agents-high]}", tweak: class("batch-low"),
			want: []string{`spec.priorityClassName | "batch-low" | unset or one of "agents-low", "agents-high"`},
			msgs: []string{`[priorityClass] agent pods may use only the priority classes the policy lists (spec.scheduling.priorityClassNames) (found "batch-low"; allowed: unset or one of "agents-low", "agents-high")`},
		},
		{
			name: "not listed, close spelling", policy: "scheduling: {priorityClassNames: [agents-low]}", tweak: class("agents-low-"),
			want: []string{`spec.priorityClassName | "agents-low-" | unset or one of "agents-low"`},
		},
		// An admin may hand a system class to agents, by name only.
		{name: "a system class listed", policy: "scheduling: {priorityClassNames: [system-cluster-critical]}", tweak: class("system-cluster-critical")},
	}
	runCheckCases(t, checkPriorityClass, cases)
}

func TestParseScheduling(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []string
	}{
		{"scheduling: {priorityClassNames: [a, a]}", []string{`spec.scheduling.priorityClassNames[1]: Duplicate value: "a"`}},
		{"scheduling: {priorityClassNames: [High_Priority]}", []string{`spec.scheduling.priorityClassNames[0]: Invalid value: "High_Priority": a PriorityClass name: `}},
		{"scheduling: {priorityClassNames: [\"\"]}", []string{`spec.scheduling.priorityClassNames[0]: Invalid value: "": a PriorityClass name: `}},
		{"scheduling: {priorityClass: [a]}", []string{`spec.scheduling.priorityClass: Forbidden: unknown field`}},
		{"scheduling: {systemPriorityNamespaces: [agentgate-system, Kube_System, agentgate-system]}", []string{
			`spec.scheduling.systemPriorityNamespaces[1]: Invalid value: "Kube_System": a namespace name: `,
			`spec.scheduling.systemPriorityNamespaces[2]: Duplicate value: "agentgate-system"`,
		}},
	} {
		_, errs := Parse([]byte(policyHead + "spec:\n  " + tc.spec + "\n"))
		got := errorStrings(errs)
		if len(got) != len(tc.want) {
			t.Errorf("%s: errors %q, want %q", tc.spec, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%s: error %q, want prefix %q", tc.spec, got[i], tc.want[i])
			}
		}
	}
}

// TestSystemPriorityNamespaces: the system classes are allowed only in the namespaces the policy names (the
// default names none), whatever the pod's own metadata says, and with a list of classes too.
func TestSystemPriorityNamespaces(t *testing.T) {
	for _, tc := range []struct {
		policy, namespace, class string
		allowed                  bool
	}{
		{"", "agentgate-system", "system-cluster-critical", false},
		{"scheduling: {systemPriorityNamespaces: [agentgate-system]}", "agentgate-system", "system-cluster-critical", true},
		{"", "agents", "system-cluster-critical", false},
		{"", "agents", "system-node-critical", false},
		{"scheduling: {priorityClassNames: [agents-low], systemPriorityNamespaces: [infra]}", "infra", "system-node-critical", true},
		{"scheduling: {priorityClassNames: [agents-low], systemPriorityNamespaces: [infra]}", "infra", "batch-high", false},
		{"scheduling: {priorityClassNames: [agents-low], systemPriorityNamespaces: [infra]}", "agents", "system-node-critical", false},
	} {
		pod := validPod()
		pod.Namespace = "agentgate-system" // not what counts: the namespace the request is judged in does
		pod.Spec.PriorityClassName = tc.class
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		res := NewSet(testPolicy(t, tc.policy)).evaluate(w, Namespace{Name: tc.namespace}, Requester{})
		if res.Allowed() != tc.allowed {
			t.Errorf("%q in %s under %q: allowed %v, want %v (%q)", tc.class, tc.namespace, tc.policy, res.Allowed(), tc.allowed, violationKeys(res.Violations))
		}
	}
}
