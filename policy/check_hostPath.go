package policy

// hostPath: a hostPath volume mounts the node's filesystem into the agent.
//
// Restricted fields:
//
//	spec.volumes[*].hostPath
//
// Allowed values: unset. Not configurable: use emptyDir, configMap, secret or a PersistentVolumeClaim.
var checkHostPath = check{id: "hostPath", run: func(_ *Policy, pod *podView, r *report) {
	for i, v := range pod.spec.Volumes {
		if v.HostPath != nil {
			r.add("hostPath", pod.specPath.Child("volumes").Index(i).Child("hostPath"), "path "+quote(v.HostPath.Path),
				"unset (emptyDir, configMap, secret, persistentVolumeClaim)", "hostPath volumes expose the node's filesystem")
		}
	}
}}
