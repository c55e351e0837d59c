package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckSysctls(t *testing.T) {
	const allowed = "kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_local_reserved_ports, " +
		"net.ipv4.ip_unprivileged_port_start, net.ipv4.ping_group_range, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl, " +
		"net.ipv4.tcp_keepalive_probes, net.ipv4.tcp_keepalive_time, net.ipv4.tcp_notsent_lowat, net.ipv4.tcp_rmem, " +
		"net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_syncookies, net.ipv4.tcp_wmem"
	sysctls := func(names ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			for _, n := range names {
				p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
			}
		}
	}
	runCheckCases(t, checkSysctls, []checkCase{
		{name: "valid"},
		{name: "no pod securityContext", tweak: func(p *corev1.Pod) { p.Spec.SecurityContext = nil }},
		{name: "the whole v1.37 safe set", tweak: sysctls(safeSysctlList...)},
		{name: "added in v1.37", tweak: sysctls("net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat")},
		{
			name:  "one unsafe among safe ones",
			tweak: sysctls("net.ipv4.tcp_syncookies", "kernel.msgmax", "net.ipv4.ip_local_port_range"),
			want:  []string{`spec.securityContext.sysctls[1] | "kernel.msgmax" | ` + allowed},
			msgs:  []string{`[sysctls] sysctl "kernel.msgmax" is not in the safe set: it could affect the node or other pods (found "kernel.msgmax"; allowed: ` + allowed + `)`},
		},
		{
			// Compared exactly, as Pod Security does.
			name:  "slash-separated name",
			tweak: sysctls("net/ipv4/tcp_syncookies", "vm.swappiness"),
			want: []string{
				`spec.securityContext.sysctls[0] | "net/ipv4/tcp_syncookies" | ` + allowed,
				`spec.securityContext.sysctls[1] | "vm.swappiness" | ` + allowed,
			},
		},
	})
	if len(safeSysctlList) != 14 || len(safeSysctls) != 14 {
		t.Errorf("the v1.37 safe set has 14 names, got %d", len(safeSysctls))
	}
}
