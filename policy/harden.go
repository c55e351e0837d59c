package policy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// harden fills what the policy forces and the pod leaves unset, in place. Rules:
//   - an explicit value is never changed, even a forbidden one: the checks deny it with a message, so users
//     stay in control and a second pass changes nothing;
//   - a field is not added where the API server would then refuse the object (allowPrivilegeEscalation: false
//     beside privileged: true or an added CAP_SYS_ADMIN, apiRefusesNoEscalation; Linux-only fields on a pod that
//     may run on Windows), because that error would hide agentgate's own explanation of why the pod is denied;
//   - a container's fields that an exemption relaxes are left alone, and pod-level runAsNonRoot: true is not
//     set where an exempt container relies on running as root (its judged neighbours get it one by one).
func (p *Policy) harden(pod *podView) bool { return p.hardenPod(pod, false) }

// hardenPod is harden; with dry set it changes nothing and reports whether harden would change anything
// (Set.needsHardening: the same conditions, so the two cannot disagree).
func (p *Policy) hardenPod(pod *podView, dry bool) bool {
	// A Windows pod gets the platform-neutral fields only (automount, runAsNonRoot, resources), whatever
	// spec.windows says. Under windows: deny it is denied anyway, so Mutate sends it back unpatched; filling
	// those fields here keeps Judge's report to the one real problem (spec.os.name) instead of adding
	// complaints about fields that mutation fills for every other pod.
	changed := false
	s := pod.spec
	if !pod.mayMountToken && s.AutomountServiceAccountToken == nil {
		if dry {
			return true
		}
		s.AutomountServiceAccountToken = ptrTo(false)
		changed = true
	}
	sc := p.Spec.SecurityContext
	// A container exempt from runAsNonRoot may need root: pod-level true would stop it from starting, so the
	// judged containers get true one by one instead (hardenContainer).
	perContainerNonRoot := *sc.RunAsNonRoot && pod.relaxing && slices.ContainsFunc(pod.containers, needsRoot)
	if *sc.RunAsNonRoot && !perContainerNonRoot && (s.SecurityContext == nil || s.SecurityContext.RunAsNonRoot == nil) {
		if dry {
			return true
		}
		podSC(s).RunAsNonRoot = ptrTo(true)
		changed = true
	}
	// A Localhost profile needs a file name the policy cannot know: only RuntimeDefault is filled in. It is
	// filled even when every container sets its own profile: a container added later (an ephemeral debug
	// container, which mutation never sees) then inherits it.
	if !pod.windows && sc.SeccompProfile == corev1.SeccompProfileTypeRuntimeDefault &&
		(s.SecurityContext == nil || s.SecurityContext.SeccompProfile == nil) {
		if dry {
			return true
		}
		podSC(s).SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
		changed = true
	}
	// A pod bound to a node by name skips the scheduler and every OS constraint the windows check reads:
	// spec.os.name: linux makes the kubelet of any other OS refuse it (it is immutable). Only there: the
	// conformance index fixes the default policy's patches for every other pod (README "Decisions"). Not where
	// the API server would then refuse the pod (windowsOptions set somewhere): the windows check denies it.
	if !pod.windows && boundWithoutOS(s) && !setsWindowsOptions(pod) {
		if dry {
			return true
		}
		s.OS = &corev1.PodOS{Name: corev1.Linux}
		changed = true
	}
	if p.hardenRuntime(pod, dry) {
		if dry {
			return true
		}
		changed = true
	}
	var shares corev1.ResourceList
	defaults := p.Spec.Resources.Defaults
	if !dry { // whether a request is filled does not depend on its value
		shares = p.requestShares(pod)
		if pod.defaults != nil {
			defaults = *pod.defaults
		}
	}
	for _, ca := range pod.containers {
		if p.hardenContainer(ca, pod.windows, perContainerNonRoot, defaults, s.Resources, shares, dry) {
			if dry {
				return true
			}
			changed = true
		}
	}
	return changed
}

func podSC(s *corev1.PodSpec) *corev1.PodSecurityContext {
	if s.SecurityContext == nil {
		s.SecurityContext = &corev1.PodSecurityContext{}
	}
	return s.SecurityContext
}

// needsRoot: an exemption relaxes runAsNonRoot for the container and it does not say runAsNonRoot itself.
func needsRoot(ca containerAt) bool {
	return ca.relaxes("runAsNonRoot") && (ca.c.SecurityContext == nil || ca.c.SecurityContext.RunAsNonRoot == nil)
}

// hardenContainer fills one container's fields, except those of the checks an exemption relaxes for it.
// nonRootHere: runAsNonRoot is forced per container rather than at pod level (a neighbour is exempt from it).
// podLevel and shares: see fillResources.
func (p *Policy) hardenContainer(ca containerAt, windows, nonRootHere bool, d ResourceDefaults, podLevel *corev1.ResourceRequirements, shares corev1.ResourceList, dry bool) bool {
	c := ca.c
	changed := false
	sc := p.Spec.SecurityContext
	csc := func() *corev1.SecurityContext {
		if c.SecurityContext == nil {
			c.SecurityContext = &corev1.SecurityContext{}
		}
		return c.SecurityContext
	}
	if nonRootHere && !ca.relaxes("runAsNonRoot") && (c.SecurityContext == nil || c.SecurityContext.RunAsNonRoot == nil) {
		if dry {
			return true
		}
		csc().RunAsNonRoot = ptrTo(true)
		changed = true
	}
	if !windows {
		if *sc.ReadOnlyRootFilesystem && !ca.relaxes("readOnlyRootFilesystem") && (c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil) {
			if dry {
				return true
			}
			csc().ReadOnlyRootFilesystem = ptrTo(true)
			changed = true
		}
		if !*sc.AllowPrivilegeEscalation && !ca.relaxes("allowPrivilegeEscalation") &&
			(c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil) && !apiRefusesNoEscalation(c) {
			if dry {
				return true
			}
			csc().AllowPrivilegeEscalation = ptrTo(false)
			changed = true
		}
		if !dropsAll(c) {
			if dry {
				return true
			}
			caps := csc().Capabilities
			if caps == nil {
				caps = &corev1.Capabilities{}
				c.SecurityContext.Capabilities = caps
			}
			caps.Drop = append(caps.Drop, "ALL")
			changed = true
		}
	}
	if ca.field != "ephemeralContainers" && !ca.relaxes("resources") { // the API forbids resources on ephemeral containers
		if p.fillResources(d, &c.Resources, podLevel, shares, dry) {
			changed = true
		}
	}
	return changed
}

// dropsAll wants "ALL" exactly, as Pod Security restricted does: a drop list with only "all" gets "ALL"
// appended by hardening rather than passing agentgate and failing restricted.
func dropsAll(c *corev1.Container) bool {
	if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
		return false
	}
	return slices.Contains(c.SecurityContext.Capabilities.Drop, "ALL")
}

// hardenResources fills default requests and limits per resource where unset, without ever producing
// request > limit (an invalid object): a request above the default limit raises that limit to the request
// (the max check still bounds it), and a default request above an explicit limit is lowered to the limit.
func (p *Policy) hardenResources(r *corev1.ResourceRequirements) bool {
	return p.fillResources(p.Spec.Resources.Defaults, r, nil, nil, false)
}

// fillResources is hardenResources for one container of a pod whose pod-level resources are podLevel (nil:
// none), never producing an object the API server refuses:
//   - a resource with a pod-level limit gets no container default at all: the pod-level limit bounds every
//     container (the check requires no container limit then), a container limit can never exceed it, and the
//     API server defaults the pod-level request from it;
//   - a resource with a pod-level request and no pod-level limit gets default limits, and requests of at most
//     shares[rn], so that the containers' requests cannot add up above the pod-level one.
//
// With dry set it changes nothing and reports whether it would change anything.
func (p *Policy) fillResources(d ResourceDefaults, r, podLevel *corev1.ResourceRequirements, shares corev1.ResourceList, dry bool) bool {
	changed := false
	for _, rn := range p.resources.requiredLimits {
		if _, ok := r.Limits[rn]; ok || podLimitSets(podLevel, rn) {
			continue
		}
		if dry {
			return true
		}
		lim := d.Limits[rn].DeepCopy()
		if req, ok := r.Requests[rn]; ok && req.Cmp(lim) > 0 {
			lim = req.DeepCopy()
		}
		if r.Limits == nil {
			r.Limits = corev1.ResourceList{}
		}
		r.Limits[rn] = lim
		changed = true
	}
	for _, rn := range p.resources.filledRequests {
		if _, ok := r.Requests[rn]; ok || podLimitSets(podLevel, rn) {
			continue
		}
		def, hasDefault := d.Requests[rn]
		if !hasDefault && !podRequestSets(podLevel, rn) {
			continue // a limit without a default request: the API server defaults the request from the limit
		}
		if dry {
			return true
		}
		req := def.DeepCopy()
		if share, ok := shares[rn]; ok && (!hasDefault || share.Cmp(req) < 0) {
			req = share.DeepCopy()
		}
		if lim, ok := r.Limits[rn]; ok && req.Cmp(lim) > 0 {
			req = lim.DeepCopy()
		}
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[rn] = req
		changed = true
	}
	return changed
}

func podLimitSets(podLevel *corev1.ResourceRequirements, rn corev1.ResourceName) bool {
	if podLevel == nil {
		return false
	}
	_, ok := podLevel.Limits[rn]
	return ok
}

func podRequestSets(podLevel *corev1.ResourceRequirements, rn corev1.ResourceName) bool {
	if podLevel == nil {
		return false
	}
	_, ok := podLevel.Requests[rn]
	return ok
}

// requestShares is, for every resource hardening fills that has a pod-level request but no pod-level limit,
// the most each container that hardening fills may request: what the pod-level request leaves after
// the containers that set their own (or whose request the API server defaults from their limit), split
// evenly, never below zero. Their sum is then at most the pod-level request, whatever the init and sidecar
// arrangement, since Kubernetes' effective request never exceeds the plain sum of all containers.
func (p *Policy) requestShares(pod *podView) corev1.ResourceList {
	podLevel := pod.spec.Resources
	if podLevel == nil || len(podLevel.Requests) == 0 {
		return nil
	}
	filled := map[*corev1.Container]bool{}
	for _, ca := range pod.containers {
		if ca.field != "ephemeralContainers" && !ca.relaxes("resources") {
			filled[ca.c] = true
		}
	}
	var shares corev1.ResourceList
	for _, rn := range p.resources.filledRequests {
		budget, ok := podLevel.Requests[rn]
		if !ok || podLimitSets(podLevel, rn) {
			continue
		}
		budget = budget.DeepCopy()
		n := 0
		for _, list := range [2][]corev1.Container{pod.spec.InitContainers, pod.spec.Containers} {
			for i := range list {
				c := &list[i]
				if q, ok := c.Resources.Requests[rn]; ok {
					budget.Sub(q)
				} else if filled[c] {
					n++
				} else if q, ok := c.Resources.Limits[rn]; ok {
					budget.Sub(q)
				}
			}
		}
		if n == 0 {
			continue
		}
		if shares == nil {
			shares = corev1.ResourceList{}
		}
		shares[rn] = splitQuantity(budget, n, rn == corev1.ResourceCPU)
	}
	return shares
}

// splitQuantity is q/n rounded down (to the millicore for milli, else to the unit), and zero when q is not
// positive.
func splitQuantity(q resource.Quantity, n int, milli bool) resource.Quantity {
	if q.Sign() <= 0 {
		return *resource.NewQuantity(0, q.Format)
	}
	scale := resource.Scale(0)
	if milli {
		scale = resource.Milli
	}
	v := q.ScaledValue(scale) // rounds up: step back when it did
	if resource.NewScaledQuantity(v, scale).Cmp(q) > 0 {
		v--
	}
	share := resource.NewScaledQuantity(v/int64(n), scale)
	share.Format = q.Format
	return *share
}
