package policy

// hostNamespaces: sharing the node's network, process or IPC namespace lets an agent see and reach the node.
//
// Restricted fields:
//
//	spec.hostNetwork, spec.hostPID, spec.hostIPC
//
// Allowed values: false, unset. Not configurable.
var checkHostNamespaces = check{id: "hostNamespaces", run: func(_ *Policy, pod *podView, r *report) {
	s := pod.spec
	for _, f := range []struct {
		name string
		set  bool
	}{{"hostNetwork", s.HostNetwork}, {"hostPID", s.HostPID}, {"hostIPC", s.HostIPC}} {
		if f.set {
			r.add("hostNamespaces", pod.specPath.Child(f.name), "true", "false, unset",
				f.name+" shares the node's namespace with the agent")
		}
	}
}}
