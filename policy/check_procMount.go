package policy

import corev1 "k8s.io/api/core/v1"

// procMount: the default /proc masks hide the kernel's and the node's sensitive files from the container.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.procMount
//
// Allowed values: Default, unset. Not configurable. As Pod Security restricted v1.35+ (procMount_restricted):
// unconditional, also for pods in a user namespace (hostUsers: false), which baseline would let through.
var checkProcMount = check{id: "procMount", linuxOnly: true, run: func(_ *Policy, pod *podView, r *report) {
	for _, ca := range pod.containers {
		if sc := ca.c.SecurityContext; sc != nil && sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			r.add("procMount", pod.path(ca).Child("securityContext", "procMount"), string(*sc.ProcMount), "Default, unset",
				"an unmasked /proc exposes kernel and node information: remove procMount or write procMount: Default")
		}
	}
}}
