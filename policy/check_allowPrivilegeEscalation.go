package policy

// allowPrivilegeEscalation: setuid binaries and file capabilities must not raise a task's privileges.
//
// Restricted fields:
//   spec.{initContainers,containers,ephemeralContainers}[*].securityContext.allowPrivilegeEscalation
// Allowed values: false (set by mutation where unset), when the policy's securityContext.allowPrivilegeEscalation
// is false (the default). As in Pod Security "restricted", unset is not enough: the runtime's default is true.
var checkAllowPrivilegeEscalation = check{id: "allowPrivilegeEscalation", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
	if *p.Spec.SecurityContext.AllowPrivilegeEscalation {
		return
	}
	for _, ca := range pod.containers {
		var v *bool
		if ca.c.SecurityContext != nil {
			v = ca.c.SecurityContext.AllowPrivilegeEscalation
		}
		if v == nil || *v {
			r.add("allowPrivilegeEscalation", pod.path(ca).Child("securityContext", "allowPrivilegeEscalation"), boolString(v), "false",
				"privilege escalation must be disabled: write allowPrivilegeEscalation: false")
		}
	}
}}
