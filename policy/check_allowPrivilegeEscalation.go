package policy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// allowPrivilegeEscalation: setuid binaries and file capabilities must not raise a task's privileges.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.allowPrivilegeEscalation
//
// Allowed values: false (set by mutation where unset), when the policy's securityContext.allowPrivilegeEscalation
// is false (the default). As in Pod Security "restricted", unset is not enough: the runtime's default is true.
// Where the API server would refuse false (apiRefusesNoEscalation: privileged: true, or an added CAP_SYS_ADMIN
// spelled so), hardening leaves the field alone and unset is not reported: the privileged check denies
// privileged: true, and the capabilities check denies CAP_SYS_ADMIN whatever the policy allows (as a capability
// not allowed, or as the non-canonical spelling of SYS_ADMIN, which may be written beside false).
var checkAllowPrivilegeEscalation = check{id: "allowPrivilegeEscalation", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
	if *p.Spec.SecurityContext.AllowPrivilegeEscalation {
		return
	}
	for _, ca := range pod.containers {
		var v *bool
		if ca.c.SecurityContext != nil {
			v = ca.c.SecurityContext.AllowPrivilegeEscalation
		}
		if v != nil && !*v {
			continue
		}
		if v == nil && apiRefusesNoEscalation(ca.c) {
			continue // the privileged or capabilities check denies what makes false invalid
		}
		r.add("allowPrivilegeEscalation", pod.path(ca).Child("securityContext", "allowPrivilegeEscalation"), boolString(v), "false",
			"privilege escalation must be disabled: write allowPrivilegeEscalation: false")
	}
}}

// apiRefusesNoEscalation: the API server refuses allowPrivilegeEscalation: false beside privileged: true, or
// beside capabilities.add "CAP_SYS_ADMIN", spelled exactly so (its validation compares that string; "SYS_ADMIN"
// passes). The one statement of that rule: hardening does not fill false there, and the check above knows why.
func apiRefusesNoEscalation(c *corev1.Container) bool {
	if privileged(c) {
		return true
	}
	sc := c.SecurityContext
	return sc != nil && sc.Capabilities != nil && slices.Contains(sc.Capabilities.Add, "CAP_SYS_ADMIN")
}

func privileged(c *corev1.Container) bool {
	sc := c.SecurityContext
	return sc != nil && sc.Privileged != nil && *sc.Privileged
}
