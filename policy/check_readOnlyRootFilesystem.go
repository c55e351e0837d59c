package policy

// readOnlyRootFilesystem: a task that writes to its image is a task that can plant something for the next one.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.readOnlyRootFilesystem
//
// Allowed values: true (set by mutation where unset), when the policy's securityContext.readOnlyRootFilesystem
// is true (the default).
var checkReadOnlyRootFilesystem = check{id: "readOnlyRootFilesystem", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
	if !*p.Spec.SecurityContext.ReadOnlyRootFilesystem {
		return
	}
	for _, ca := range pod.containers {
		var v *bool
		if ca.c.SecurityContext != nil {
			v = ca.c.SecurityContext.ReadOnlyRootFilesystem
		}
		if v == nil || !*v {
			r.add("readOnlyRootFilesystem", pod.path(ca).Child("securityContext", "readOnlyRootFilesystem"), boolString(v), "true",
				"the root filesystem must be read-only; mount an emptyDir volume where the agent must write")
		}
	}
}}
