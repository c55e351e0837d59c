package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckHostNamespaces(t *testing.T) {
	runCheckCases(t, checkHostNamespaces, []checkCase{
		{name: "valid"},
		{name: "false is fine", tweak: func(p *corev1.Pod) { p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = false, false, false }},
		{
			name:  "hostNetwork",
			tweak: func(p *corev1.Pod) { p.Spec.HostNetwork = true },
			want:  []string{"spec.hostNetwork | true | false, unset"},
			msgs:  []string{"[hostNamespaces] hostNetwork shares the node's namespace with the agent (found true; allowed: false, unset)"},
		},
		{name: "hostPID", tweak: func(p *corev1.Pod) { p.Spec.HostPID = true }, want: []string{"spec.hostPID | true | false, unset"}},
		{name: "hostIPC", tweak: func(p *corev1.Pod) { p.Spec.HostIPC = true }, want: []string{"spec.hostIPC | true | false, unset"}},
		{
			name:  "all three at once",
			tweak: func(p *corev1.Pod) { p.Spec.HostIPC, p.Spec.HostPID, p.Spec.HostNetwork = true, true, true },
			want:  []string{"spec.hostNetwork | true | false, unset", "spec.hostPID | true | false, unset", "spec.hostIPC | true | false, unset"},
		},
	})
}
