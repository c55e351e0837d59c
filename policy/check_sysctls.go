package policy

import "strings"

// sysctls: most sysctls are not namespaced, or not isolated from other pods: setting them tunes the node.
//
// Restricted fields:
//
//	spec.securityContext.sysctls[*].name
//
// Allowed values: the safe set of Pod Security baseline/restricted v1.37 (sysctls):
// kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_local_reserved_ports,
// net.ipv4.ip_unprivileged_port_start, net.ipv4.ping_group_range, net.ipv4.tcp_fin_timeout,
// net.ipv4.tcp_keepalive_intvl, net.ipv4.tcp_keepalive_probes, net.ipv4.tcp_keepalive_time,
// net.ipv4.tcp_notsent_lowat, net.ipv4.tcp_rmem, net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_syncookies,
// net.ipv4.tcp_wmem. Names are compared exactly (as Pod Security does; "/" separators are not normalised).
// Not configurable. Each offending entry is reported at spec.securityContext.sysctls[i].
var checkSysctls = check{id: "sysctls", linuxOnly: true, run: func(_ *Policy, pod *podView, r *report) {
	sc := pod.spec.SecurityContext
	if sc == nil {
		return
	}
	for i, s := range sc.Sysctls {
		if !safeSysctls[s.Name] {
			r.add("sysctls", pod.specPath.Child("securityContext", "sysctls").Index(i), quote(s.Name), safeSysctlsString,
				"sysctl "+quote(s.Name)+" is not in the safe set: it could affect the node or other pods")
		}
	}
}}

var safeSysctlList = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ping_group_range",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_notsent_lowat",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_slow_start_after_idle",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.tcp_wmem",
}

var (
	safeSysctls       = setOf(safeSysctlList)
	safeSysctlsString = strings.Join(safeSysctlList, ", ")
)

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}
