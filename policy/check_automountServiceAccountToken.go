package policy

// automountServiceAccountToken: an agent runs remote tasks; a mounted token hands those tasks the pod's
// Kubernetes identity.
//
// Restricted fields:
//
//	spec.automountServiceAccountToken
//
// Allowed values: false (set by mutation where unset), when the policy's serviceAccountToken.automount is false
// and the requester (the user who sends the pod to the API server) is not in
// serviceAccountToken.allowServiceAccounts. The pod's own serviceAccountName allows nothing: whoever writes the
// pod chooses it.
var checkAutomountToken = check{id: "automountServiceAccountToken", run: func(p *Policy, pod *podView, r *report) {
	if pod.mayMountToken {
		return
	}
	if a := pod.spec.AutomountServiceAccountToken; a == nil || *a {
		r.add("automountServiceAccountToken", pod.specPath.Child("automountServiceAccountToken"), boolString(a), "false",
			"agent pods must not carry a service-account token; write automountServiceAccountToken: false and mount a projected token only where a task truly needs one (and a policy allows it)")
	}
}}
