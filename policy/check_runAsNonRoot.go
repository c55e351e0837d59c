package policy

// runAsNonRoot: agents must not run as root, so that the kubelet refuses an image whose user is root.
//
// Restricted fields:
//
//	spec.securityContext.runAsNonRoot
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsNonRoot
//
// Allowed values: true at pod level (set by mutation where unset) with no container setting false, or true on
// every container; when the policy's securityContext.runAsNonRoot is true (the default).
var checkRunAsNonRoot = check{id: "runAsNonRoot", run: func(p *Policy, pod *podView, r *report) {
	if !*p.Spec.SecurityContext.RunAsNonRoot {
		return
	}
	const why = "agent containers must not run as root: write runAsNonRoot: true and run the image as a non-zero user"
	var podLevel *bool
	if sc := pod.spec.SecurityContext; sc != nil {
		podLevel = sc.RunAsNonRoot
	}
	if podLevel != nil && !*podLevel {
		r.add("runAsNonRoot", pod.specPath.Child("securityContext", "runAsNonRoot"), "false", "true", why)
	}
	podTrue := podLevel != nil && *podLevel
	for _, ca := range pod.containers {
		var v *bool
		if ca.c.SecurityContext != nil {
			v = ca.c.SecurityContext.RunAsNonRoot
		}
		switch {
		case v != nil && !*v:
			r.add("runAsNonRoot", pod.path(ca).Child("securityContext", "runAsNonRoot"), "false", "true, unset when the pod sets true", why)
		case v == nil && !podTrue && (podLevel == nil):
			r.add("runAsNonRoot", pod.path(ca).Child("securityContext", "runAsNonRoot"), "unset", "true, unset when the pod sets true", why)
		}
	}
}}
