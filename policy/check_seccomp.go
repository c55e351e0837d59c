package policy

import corev1 "k8s.io/api/core/v1"

// seccomp: the runtime's seccomp profile blocks the system calls an agent has no business making.
//
// Restricted fields:
//
//	spec.securityContext.seccompProfile.type
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type
//
// Allowed values: RuntimeDefault, Localhost; a container may leave it unset when the pod sets an allowed one.
// Unconfined (or any other type) is never allowed, at either level. As Pod Security restricted v1.25+
// (seccompProfile_restricted), which also skips Windows pods (here: linuxOnly). Both allowed types pass
// whatever the policy's securityContext.seccompProfile says: that field only chooses what mutation fills in
// (RuntimeDefault at pod level, where neither the pod nor every container sets one).
//
// Where an unset profile is reported: when the pod leaves it unset and no judged container sets one, once at
// spec.securityContext.seccompProfile (setting it there fixes every container, and it is what mutation does);
// when some containers set one, at each other container's securityContext.seccompProfile. A disallowed type
// is reported at its own .type field; containers that inherit it from the pod are not reported again.
var checkSeccomp = check{id: "seccomp", linuxOnly: true, run: func(_ *Policy, pod *podView, r *report) {
	var podProfile *corev1.SeccompProfile
	if sc := pod.spec.SecurityContext; sc != nil {
		podProfile = sc.SeccompProfile
	}
	if podProfile != nil && !allowedSeccomp(podProfile.Type) {
		r.add("seccomp", pod.specPath.Child("securityContext", "seccompProfile", "type"), seccompTypeString(podProfile.Type),
			seccompAllowed, seccompWhy)
	}
	unset, set := 0, 0
	for _, ca := range pod.containers {
		sc := ca.c.SecurityContext
		if sc == nil || sc.SeccompProfile == nil {
			unset++
			continue
		}
		set++
		if t := sc.SeccompProfile.Type; !allowedSeccomp(t) {
			r.add("seccomp", pod.path(ca).Child("securityContext", "seccompProfile", "type"), seccompTypeString(t),
				seccompAllowed, seccompWhy)
		}
	}
	if podProfile != nil || unset == 0 {
		return
	}
	if set == 0 {
		r.add("seccomp", pod.specPath.Child("securityContext", "seccompProfile"), "unset",
			"type RuntimeDefault or Localhost, at pod level or on every container", seccompUnsetWhy)
		return
	}
	for _, ca := range pod.containers {
		if sc := ca.c.SecurityContext; sc == nil || sc.SeccompProfile == nil {
			r.add("seccomp", pod.path(ca).Child("securityContext", "seccompProfile"), "unset",
				"type RuntimeDefault or Localhost here, or at pod level", seccompUnsetWhy)
		}
	}
}}

const (
	seccompAllowed  = "RuntimeDefault, Localhost"
	seccompWhy      = "agent containers must run under a seccomp profile: Unconfined allows every system call"
	seccompUnsetWhy = "agent containers must run under a seccomp profile: write seccompProfile: {type: RuntimeDefault} in the pod's securityContext"
)

func allowedSeccomp(t corev1.SeccompProfileType) bool {
	return t == corev1.SeccompProfileTypeRuntimeDefault || t == corev1.SeccompProfileTypeLocalhost
}

func seccompTypeString(t corev1.SeccompProfileType) string {
	if t == "" {
		return `""`
	}
	return string(t)
}
