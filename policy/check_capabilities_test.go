package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckCapabilities(t *testing.T) {
	caps := func(c *corev1.Container, drop []corev1.Capability, add ...corev1.Capability) {
		sc(c).Capabilities = &corev1.Capabilities{Drop: drop, Add: add}
	}
	all := []corev1.Capability{"ALL"}
	first := func(p *corev1.Pod) *corev1.Container { return &p.Spec.Containers[0] }
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "add NET_BIND_SERVICE", tweak: func(p *corev1.Pod) { caps(first(p), all, "NET_BIND_SERVICE") }},
		{name: "ALL among others", tweak: func(p *corev1.Pod) { caps(first(p), []corev1.Capability{"NET_RAW", "ALL"}) }},
		{
			name:  "no securityContext",
			tweak: func(p *corev1.Pod) { first(p).SecurityContext = nil },
			want:  []string{"spec.containers[0].securityContext.capabilities.drop | unset | a list containing ALL"},
			msgs:  []string{"[capabilities] every capability must be dropped; add back only what the policy allows (found unset; allowed: a list containing ALL)"},
		},
		{
			name:  "drop without ALL",
			tweak: func(p *corev1.Pod) { caps(first(p), []corev1.Capability{"NET_RAW", "SYS_ADMIN"}) },
			want:  []string{"spec.containers[0].securityContext.capabilities.drop | [NET_RAW, SYS_ADMIN] | a list containing ALL"},
		},
		{
			// Pod Security compares "ALL" exactly; hardening appends "ALL" to such a list.
			name:  "drop all in lower case",
			tweak: func(p *corev1.Pod) { caps(first(p), []corev1.Capability{"all"}) },
			want:  []string{"spec.containers[0].securityContext.capabilities.drop | [all] | a list containing ALL"},
		},
		{
			name:  "add a forbidden capability",
			tweak: func(p *corev1.Pod) { caps(first(p), all, "NET_BIND_SERVICE", "SYS_ADMIN", "NET_RAW") },
			want: []string{
				"spec.containers[0].securityContext.capabilities.add[1] | SYS_ADMIN | [NET_BIND_SERVICE]",
				"spec.containers[0].securityContext.capabilities.add[2] | NET_RAW | [NET_BIND_SERVICE]",
			},
			msgs: []string{
				"[capabilities] capability SYS_ADMIN is not allowed for agent pods (found SYS_ADMIN; allowed: [NET_BIND_SERVICE])",
				"[capabilities] capability NET_RAW is not allowed for agent pods (found NET_RAW; allowed: [NET_BIND_SERVICE])",
			},
		},
		{
			name:  "add ALL",
			tweak: func(p *corev1.Pod) { caps(first(p), all, "ALL") },
			want:  []string{"spec.containers[0].securityContext.capabilities.add[0] | ALL | [NET_BIND_SERVICE]"},
		},
		{
			name:  "an allowed capability spelled as the runtime accepts but Pod Security does not",
			tweak: func(p *corev1.Pod) { caps(first(p), all, "CAP_NET_BIND_SERVICE", "net_bind_service") },
			want: []string{
				"spec.containers[0].securityContext.capabilities.add[0] | CAP_NET_BIND_SERVICE | [NET_BIND_SERVICE]",
				"spec.containers[0].securityContext.capabilities.add[1] | net_bind_service | [NET_BIND_SERVICE]",
			},
			msgs: []string{
				"[capabilities] write capability CAP_NET_BIND_SERVICE as NET_BIND_SERVICE, the spelling Pod Security accepts (found CAP_NET_BIND_SERVICE; allowed: [NET_BIND_SERVICE])",
				"[capabilities] write capability net_bind_service as NET_BIND_SERVICE, the spelling Pod Security accepts (found net_bind_service; allowed: [NET_BIND_SERVICE])",
			},
		},
		{
			name:  "missing drop and forbidden add together",
			tweak: func(p *corev1.Pod) { caps(first(p), nil, "SYS_PTRACE") },
			want: []string{
				"spec.containers[0].securityContext.capabilities.drop | unset | a list containing ALL",
				"spec.containers[0].securityContext.capabilities.add[0] | SYS_PTRACE | [NET_BIND_SERVICE]",
			},
		},
		{
			name: "a policy that allows none", policy: "securityContext: {allowedCapabilities: []}",
			tweak: func(p *corev1.Pod) { caps(first(p), all, "NET_BIND_SERVICE") },
			want:  []string{"spec.containers[0].securityContext.capabilities.add[0] | NET_BIND_SERVICE | none"},
		},
		{
			name: "a policy that allows more, written loosely", policy: "securityContext: {allowedCapabilities: [cap_sys_time, NET_BIND_SERVICE]}",
			tweak: func(p *corev1.Pod) { caps(first(p), all, "SYS_TIME", "NET_BIND_SERVICE", "CHOWN") },
			want:  []string{"spec.containers[0].securityContext.capabilities.add[2] | CHOWN | [cap_sys_time, NET_BIND_SERVICE]"},
		},
	}
	cases = append(cases, kindCases("no drop, added SYS_ADMIN", "", func(c *corev1.Container) { caps(c, nil, "SYS_ADMIN") },
		func(path string) []string {
			return []string{
				path + ".securityContext.capabilities.drop | unset | a list containing ALL",
				path + ".securityContext.capabilities.add[0] | SYS_ADMIN | [NET_BIND_SERVICE]",
			}
		})...)
	runCheckCases(t, checkCapabilities, cases)
}
