package policy

import "strconv"

// runAsUser: user 0 is root whatever runAsNonRoot says.
//
// Restricted fields:
//
//	spec.securityContext.runAsUser
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsUser
//
// Allowed values: non-zero, unset; when the policy's securityContext.runAsNonRoot is true (the default).
var checkRunAsUser = check{id: "runAsUser", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
	if !*p.Spec.SecurityContext.RunAsNonRoot {
		return
	}
	const why = "agent containers must not run as root (user 0): choose a non-zero UID"
	if sc := pod.spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		r.add("runAsUser", pod.specPath.Child("securityContext", "runAsUser"), "0", "non-zero, unset", why)
	}
	for _, ca := range pod.containers {
		if sc := ca.c.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			r.add("runAsUser", pod.path(ca).Child("securityContext", "runAsUser"), strconv.Itoa(0), "non-zero, unset", why)
		}
	}
}}
