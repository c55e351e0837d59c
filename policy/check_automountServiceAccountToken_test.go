package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckAutomountToken(t *testing.T) {
	const why = "agent pods must not carry a service-account token; write automountServiceAccountToken: false and mount a projected token only where a task truly needs one (and a policy allows it)"
	runCheckCases(t, checkAutomountToken, []checkCase{
		{name: "valid"},
		{
			name:  "unset",
			tweak: func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = nil },
			want:  []string{"spec.automountServiceAccountToken | unset | false"},
			msgs:  []string{"[automountServiceAccountToken] " + why + " (found unset; allowed: false)"},
		},
		{
			name:  "true",
			tweak: func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptrTo(true) },
			want:  []string{"spec.automountServiceAccountToken | true | false"},
		},
		{
			name: "true under a policy that automounts", policy: "serviceAccountToken: {automount: true}",
			tweak: func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptrTo(true) },
		},
	})
}
