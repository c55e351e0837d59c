package policy

// privileged: a privileged container has every device and capability of the node.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.privileged
//
// Allowed values: false, unset. Not configurable.
var checkPrivileged = check{id: "privileged", run: func(_ *Policy, pod *podView, r *report) {
	for _, ca := range pod.containers {
		if sc := ca.c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
			r.add("privileged", pod.path(ca).Child("securityContext", "privileged"), "true", "false, unset",
				"privileged containers have full access to the node")
		}
	}
}}
