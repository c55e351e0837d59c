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

func TestAllowedServiceAccountsMayCarryAToken(t *testing.T) {
	p := testPolicy(t, "serviceAccountToken: {automount: false, allowServiceAccounts: [ops/api-client]}")
	set := NewSet(p)
	for _, tc := range []struct {
		ns, sa string
		want   int
	}{
		{"ops", "api-client", 0},
		{"ops", "other", 1},
		{"agents", "api-client", 1},
	} {
		pod := validPod()
		pod.Spec.AutomountServiceAccountToken = ptrTo(true)
		pod.Spec.ServiceAccountName = tc.sa
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		res := set.Evaluate(w, Namespace{Name: tc.ns})
		got := 0
		for _, v := range res.Violations {
			if v.Check == "automountServiceAccountToken" {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("%s/%s: %d automount violations, want %d: %+v", tc.ns, tc.sa, got, tc.want, res.Violations)
		}
		// Hardening leaves the listed account's token alone and forces the others off.
		pod.Spec.AutomountServiceAccountToken = nil
		set.Harden(w, Namespace{Name: tc.ns})
		if forced := pod.Spec.AutomountServiceAccountToken != nil; forced != (tc.want == 1) {
			t.Errorf("%s/%s: hardening set automount=%v", tc.ns, tc.sa, pod.Spec.AutomountServiceAccountToken)
		}
	}
}
