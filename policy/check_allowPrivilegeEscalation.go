package policy

import corev1 "k8s.io/api/core/v1"

// allowPrivilegeEscalation: setuid binaries and file capabilities must not raise a task's privileges.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.allowPrivilegeEscalation
//
// Allowed values: false (set by mutation where unset), when the policy's securityContext.allowPrivilegeEscalation
// is false (the default). As in Pod Security "restricted", unset is not enough: the runtime's default is true.
// Unset is not reported where the API server would refuse false (privileged: true, or an added CAP_SYS_ADMIN or
// SYS_ADMIN) and another check already denies that: hardening leaves the field alone there, and the advice to
// write false could not be followed until the privileged setting goes.
var checkAllowPrivilegeEscalation = check{id: "allowPrivilegeEscalation", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
	if *p.Spec.SecurityContext.AllowPrivilegeEscalation {
		return
	}
	for _, ca := range pod.containers {
		var v *bool
		if ca.c.SecurityContext != nil {
			v = ca.c.SecurityContext.AllowPrivilegeEscalation
		}
		if v == nil && escalationDeniedElsewhere(p, ca.c) {
			continue
		}
		if v == nil || *v {
			r.add("allowPrivilegeEscalation", pod.path(ca).Child("securityContext", "allowPrivilegeEscalation"), boolString(v), "false",
				"privilege escalation must be disabled: write allowPrivilegeEscalation: false")
		}
	}
}}

// escalationDeniedElsewhere: the container sets what makes allowPrivilegeEscalation: false invalid, and the
// privileged or capabilities check denies that setting.
func escalationDeniedElsewhere(p *Policy, c *corev1.Container) bool {
	sc := c.SecurityContext
	if sc == nil {
		return false
	}
	if sc.Privileged != nil && *sc.Privileged {
		return true
	}
	if sc.Capabilities != nil {
		for _, a := range sc.Capabilities.Add {
			if a == "CAP_SYS_ADMIN" || (a == "SYS_ADMIN" && !p.allowedCaps["SYS_ADMIN"]) {
				return true
			}
		}
	}
	return false
}
