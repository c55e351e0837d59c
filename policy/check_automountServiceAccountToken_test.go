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

// TestAllowedServiceAccountsMayCarryAToken: allowServiceAccounts is keyed on the requester, never on the pod's
// own serviceAccountName (which its author chooses).
func TestAllowedServiceAccountsMayCarryAToken(t *testing.T) {
	p := testPolicy(t, "serviceAccountToken: {automount: false, allowServiceAccounts: [ops/api-client]}")
	set := NewSet(p)
	for _, tc := range []struct {
		name string
		sa   string
		by   string
		want int
	}{
		{"the listed account creates the pod", "worker", "system:serviceaccount:ops:api-client", 0},
		{"a pod naming the listed account, created by someone else", "api-client", "system:serviceaccount:ops:other", 1},
		{"a pod naming the listed account, created by a user", "api-client", "alice", 1},
		{"a pod naming the listed account, requester unknown (offline)", "api-client", "", 1},
		{"the same name in another namespace", "worker", "system:serviceaccount:agents:api-client", 1},
	} {
		pod := validPod()
		pod.Namespace = "ops"
		pod.Spec.AutomountServiceAccountToken = ptrTo(true)
		pod.Spec.ServiceAccountName = tc.sa
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		rq := Requester{Username: tc.by}
		res := set.evaluate(w, Namespace{Name: "ops"}, rq)
		got := 0
		for _, v := range res.Violations {
			if v.Check == "automountServiceAccountToken" {
				got++
				if v.Field != "spec.automountServiceAccountToken" {
					t.Errorf("%s: field %s", tc.name, v.Field)
				}
			}
		}
		if got != tc.want {
			t.Errorf("%s: %d automount violations, want %d: %+v", tc.name, got, tc.want, res.Violations)
		}
		// Hardening leaves the allowed requester's token alone and forces the others off.
		pod.Spec.AutomountServiceAccountToken = nil
		set.Harden(w, Namespace{Name: "ops"}, rq)
		if forced := pod.Spec.AutomountServiceAccountToken != nil; forced != (tc.want == 1) {
			t.Errorf("%s: hardening set automount=%v", tc.name, pod.Spec.AutomountServiceAccountToken)
		}
	}
}
