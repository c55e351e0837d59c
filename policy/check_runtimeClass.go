package policy

// runtimeClass: the RuntimeClass picks the container runtime, and with it the isolation between the agent and
// the node: gVisor or Kata where the admin chose them, not runc because a pod asked for it.
//
// Restricted fields:
//
//	spec.runtimeClassName
//
// Allowed values: anything, unset included, when the policy's runtime.runtimeClassNames and
// runtime.defaultRuntimeClassName are both empty. Otherwise a name listed in runtime.runtimeClassNames (any
// name when that list is empty), never unset: mutation fills runtime.defaultRuntimeClassName where it is
// unset, and without a name the node's default runtime (usually runc) runs the pod. Windows pods are judged
// too (an admin may list a Windows RuntimeClass) but never filled.
var checkRuntimeClass = check{id: "runtimeClass", run: func(p *Policy, pod *podView, r *report) {
	rt := &p.Spec.Runtime
	if !rt.forcesRuntimeClass() {
		return
	}
	s := pod.spec
	path := pod.specPath.Child("runtimeClassName")
	switch {
	case s.RuntimeClassName == nil:
		r.add("runtimeClass", path, "unset", rt.allowedRuntimeClasses(),
			"agent pods run in a sandboxed runtime the policy names; without a RuntimeClass the node's default runtime runs the pod")
	case !rt.allowsRuntimeClass(*s.RuntimeClassName):
		r.add("runtimeClass", path, runtimeClassNameOf(s), rt.allowedRuntimeClasses(),
			"this RuntimeClass is not one the policy allows for agent pods")
	}
}}
