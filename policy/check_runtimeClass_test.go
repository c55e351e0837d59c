package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckRuntimeClass(t *testing.T) {
	const listed = "runtime: {runtimeClassNames: [gvisor, kata], defaultRuntimeClassName: gvisor}"
	const listOnly = "runtime: {runtimeClassNames: [gvisor, kata]}"
	const defaultOnly = "runtime: {defaultRuntimeClassName: gvisor}"
	set := func(name string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.RuntimeClassName = &name }
	}
	runCheckCases(t, checkRuntimeClass, []checkCase{
		{name: "no runtime policy: unset passes"},
		{name: "no runtime policy: any name passes", tweak: set("runc")},
		{name: "listed", policy: listed, tweak: set("kata")},
		{name: "default", policy: listed, tweak: set("gvisor")},
		{
			name: "runc where gvisor was meant", policy: listed, tweak: set("runc"),
			want: []string{`spec.runtimeClassName | "runc" | "gvisor", "kata"`},
			msgs: []string{`[runtimeClass] this RuntimeClass is not one the policy allows for agent pods (found "runc"; allowed: "gvisor", "kata")`},
		},
		// Names compare exactly, as the API server looks RuntimeClasses up: no case folding, no trimming.
		{name: "other case", policy: listed, tweak: set("gVisor"), want: []string{`spec.runtimeClassName | "gVisor" | "gvisor", "kata"`}},
		{name: "trailing space", policy: listed, tweak: set("gvisor "), want: []string{`spec.runtimeClassName | "gvisor " | "gvisor", "kata"`}},
		{name: "prefix of a listed name", policy: listed, tweak: set("gvisor-debug"), want: []string{`spec.runtimeClassName | "gvisor-debug" | "gvisor", "kata"`}},
		{name: "empty string", policy: listed, tweak: set(""), want: []string{`spec.runtimeClassName | "" | "gvisor", "kata"`}},
		{
			name: "unset with a list (mutation bypassed, or no default to fill)", policy: listOnly,
			want: []string{`spec.runtimeClassName | unset | "gvisor", "kata"`},
			msgs: []string{`[runtimeClass] agent pods run in a sandboxed runtime the policy names; without a RuntimeClass the node's default runtime runs the pod (found unset; allowed: "gvisor", "kata")`},
		},
		{name: "default only: any name passes", policy: defaultOnly, tweak: set("kata")},
		{name: "default only: unset is denied", policy: defaultOnly, want: []string{`spec.runtimeClassName | unset | any RuntimeClass (unset is filled with "gvisor")`}},
		// Windows pods are judged too: a policy that lets them in still bounds their runtime.
		{
			name: "windows pod, unlisted", policy: listed + "\nwindows: skipLinuxChecks",
			tweak: func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows}; set("runhcs-wcow-process")(p) },
			want:  []string{`spec.runtimeClassName | "runhcs-wcow-process" | "gvisor", "kata"`},
		},
	})
}
