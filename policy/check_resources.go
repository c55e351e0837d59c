package policy

import (
	corev1 "k8s.io/api/core/v1"
)

// resources: a runaway task must not starve the node or its neighbours.
//
// Restricted fields:
//
//	spec.{initContainers,containers}[*].resources.limits[R] and .requests[R]
//
// Allowed values: for every resource R with a default limit in the policy (cpu and memory by default), the
// limit is set (mutation fills defaults); for every R in the policy's resources.max, neither the request nor
// the limit exceeds max. Ephemeral containers may not set resources (the API forbids it) and are not judged.
var checkResources = check{id: "resources", run: func(p *Policy, pod *podView, r *report) {
	res := p.Spec.Resources
	for _, ca := range pod.containers {
		if ca.field == "ephemeralContainers" {
			continue
		}
		if resourcesWithinPolicy(p, &ca.c.Resources) {
			continue // the happy path: no sorting, no path
		}
		rp := pod.path(ca).Child("resources")
		for _, rn := range sortedResourceNames(res.Defaults.Limits) {
			if _, ok := ca.c.Resources.Limits[rn]; !ok {
				r.add("resources", rp.Child("limits").Key(string(rn)), "unset", limitAllowed(p, rn),
					"agent containers must declare a "+string(rn)+" limit")
			}
		}
		for _, rn := range sortedResourceNames(res.Max) {
			max := p.maxResources[rn]
			for _, kind := range []struct {
				name string
				list corev1.ResourceList
			}{{"requests", ca.c.Resources.Requests}, {"limits", ca.c.Resources.Limits}} {
				if q, ok := kind.list[rn]; ok && q.Cmp(max) > 0 {
					r.add("resources", rp.Child(kind.name).Key(string(rn)), q.String(), "at most "+max.String(),
						string(rn)+" "+kind.name+" exceed the policy's ceiling")
				}
			}
		}
	}
}}

// resourcesWithinPolicy is the check without its report, in map order: it allocates nothing.
func resourcesWithinPolicy(p *Policy, r *corev1.ResourceRequirements) bool {
	for rn := range p.Spec.Resources.Defaults.Limits {
		if _, ok := r.Limits[rn]; !ok {
			return false
		}
	}
	for rn, max := range p.maxResources {
		if q, ok := r.Requests[rn]; ok && q.Cmp(max) > 0 {
			return false
		}
		if q, ok := r.Limits[rn]; ok && q.Cmp(max) > 0 {
			return false
		}
	}
	return true
}

func limitAllowed(p *Policy, rn corev1.ResourceName) string {
	if m, ok := p.maxResources[rn]; ok {
		return "a limit of at most " + m.String()
	}
	return "any limit"
}
