package policy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
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
	if p.hardenRuntime(pod, dry) {
		if dry {
			return true
		}
		changed = true
	}
	for _, ca := range pod.containers {
		if p.hardenContainer(ca, pod.windows, perContainerNonRoot, dry) {
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
func (p *Policy) hardenContainer(ca containerAt, windows, nonRootHere, dry bool) bool {
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
		if p.fillResources(&c.Resources, dry) {
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
	return p.fillResources(r, false)
}

// fillResources is hardenResources; with dry set it changes nothing and reports whether it would.
func (p *Policy) fillResources(r *corev1.ResourceRequirements, dry bool) bool {
	d := p.Spec.Resources.Defaults
	changed := false
	for _, rn := range sortedResourceNames(d.Limits) {
		if _, ok := r.Limits[rn]; ok {
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
	for _, rn := range sortedResourceNames(d.Requests) {
		if _, ok := r.Requests[rn]; ok {
			continue
		}
		if dry {
			return true
		}
		req := d.Requests[rn].DeepCopy()
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
