package policy

// windows: the sandbox relies on Linux-only fields (seccomp, capabilities, readOnlyRootFilesystem), which mean
// nothing on Windows nodes.
//
// Restricted fields:
//
//	spec.os.name
//
// Allowed values: unset, linux; windows only when the policy says windows: skipLinuxChecks.
var checkWindows = check{id: "windows", run: func(p *Policy, pod *podView, r *report) {
	if pod.windows && p.Spec.Windows == WindowsDeny {
		r.add("windows", pod.specPath.Child("os", "name"), "windows", "linux, unset (or a policy with windows: skipLinuxChecks)",
			"the agent sandbox relies on Linux-only security fields")
	}
}}
