package policy

import "strconv"

// hostPorts: a host port binds the node's network interface and bypasses network policy.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].ports[*].hostPort
//
// Allowed values: 0, unset. Not configurable (stricter than Pod Security baseline, which allows a list).
var checkHostPorts = check{id: "hostPorts", run: func(_ *Policy, pod *podView, r *report) {
	for _, ca := range pod.containers {
		for j, p := range ca.c.Ports {
			if p.HostPort != 0 {
				r.add("hostPorts", pod.path(ca).Child("ports").Index(j).Child("hostPort"), strconv.Itoa(int(p.HostPort)),
					"0, unset", "host ports bind the node's network interface")
			}
		}
	}
}}
