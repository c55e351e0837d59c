package policy

import corev1 "k8s.io/api/core/v1"

// windowsHostProcess: a Windows HostProcess container runs directly on the node, as a node process.
//
// Restricted fields:
//
//	spec.securityContext.windowsOptions.hostProcess
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.windowsOptions.hostProcess
//
// Allowed values: false, unset. Not configurable. Judged on every pod, Windows or not (as Pod Security baseline):
// the field is what matters, whatever spec.os says.
var checkWindowsHostProcess = check{id: "windowsHostProcess", run: func(_ *Policy, pod *podView, r *report) {
	const why = "HostProcess containers run on the node itself, outside any sandbox"
	if sc := pod.spec.SecurityContext; sc != nil && hostProcess(sc.WindowsOptions) {
		r.add("windowsHostProcess", pod.specPath.Child("securityContext", "windowsOptions", "hostProcess"), "true", "false, unset", why)
	}
	for _, ca := range pod.containers {
		if sc := ca.c.SecurityContext; sc != nil && hostProcess(sc.WindowsOptions) {
			r.add("windowsHostProcess", pod.path(ca).Child("securityContext", "windowsOptions", "hostProcess"), "true", "false, unset", why)
		}
	}
}}

func hostProcess(o *corev1.WindowsSecurityContextOptions) bool {
	return o != nil && o.HostProcess != nil && *o.HostProcess
}
