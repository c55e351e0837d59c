package policy

// hostUsers: without a user namespace, root in a container is root on the node; with one (spec.hostUsers:
// false), it is an unprivileged user there, so an escape from the container lands with no rights.
//
// Restricted fields:
//
//	spec.hostUsers
//
// Allowed values: false (set by mutation where unset) when the policy's runtime.hostUsers is false; anything
// when it is unset. A pod that the API server refuses with hostUsers: false (host namespaces, volumeDevices) is
// not filled, and its violation names the field in the way.
var checkHostUsers = check{id: "hostUsers", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
	if !p.Spec.Runtime.forcesUserNamespace() {
		return
	}
	v := pod.spec.HostUsers
	path := pod.specPath.Child("hostUsers")
	switch {
	case v != nil && *v:
		r.add("hostUsers", path, "true", "false",
			"agent pods run in a user namespace, so that root in the container is nobody on the node; remove hostUsers or set it to false")
	case v == nil:
		why := "agent pods run in a user namespace, so that root in the container is nobody on the node; set hostUsers: false (mutation fills it where unset)"
		if f := userNamespaceConflict(pod); f != "" {
			why = "agent pods run in a user namespace, and the API server refuses hostUsers: false beside " + f + ": remove " + f
		}
		r.add("hostUsers", path, "unset", "false", why)
	}
}}
