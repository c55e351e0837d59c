package policy

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// resources: a runaway task must not starve the node or its neighbours, through any field that asks the node
// for something.
//
// Restricted fields:
//
//	spec.resources.requests[R], spec.resources.limits[R]                  (pod-level)
//	spec.{initContainers,containers,ephemeralContainers}[*].resources.requests[R] and .limits[R]
//	the pod's effective requests and limits (Kubernetes' formula, below)
//	spec.resourceClaims[*]                                                (dynamic resource allocation)
//
// Allowed values:
//   - R is one of the policy's allowed resources (spec.resources.allowed; unset: cpu, memory and
//     ephemeral-storage). nvidia.com/gpu, hugepages-* or any other name is denied unless listed.
//   - Every request and limit of a container is at most spec.resources.max[R]; so is the pod-level limit
//     of R when a container has no limit of R of its own (it may use the whole pod-level limit).
//   - For every R with a default limit, every init and regular container has a limit (mutation fills it),
//     unless the pod-level limit of R is set: that limit then bounds every container.
//   - The pod's effective request and limit of R are at most spec.resources.maxPerPod[R]. Effective is what
//     the scheduler and kubelet count (k8s.io/component-helpers/resource PodRequests and PodLimits, without
//     the RuntimeClass overhead): the pod-level value where set, otherwise the larger of the regular
//     containers plus the restartable (sidecar) init containers, and the largest init container plus the
//     sidecars started before it. Every container counts here, exempt ones too: the node does not exempt them.
//   - spec.resourceClaims is empty unless spec.resources.allowResourceClaims: a claimed device is a resource
//     the policy cannot count.
//
// Ephemeral containers may not set resources (the API forbids it, and pods/resize cannot add them): they
// need no limit, but whatever they carry is judged all the same.
var checkResources = check{id: "resources", run: func(p *Policy, pod *podView, r *report) {
	if judgeResources(p, pod, nil) {
		return // the happy path: no sorting, no path, no allocation
	}
	judgeResources(p, pod, r)
}}

// resourceRules is spec.resources compiled for evaluation.
type resourceRules struct {
	max            map[corev1.ResourceName]resource.Quantity
	perPod         []perPodCeiling       // sorted by name
	requiredLimits []corev1.ResourceName // the names of defaults.limits, sorted
	// filledRequests: the names of defaults.requests and defaults.limits, sorted. Hardening fills a request of
	// the first kind from its default, and of the second only to keep it within a pod-level request (left
	// unset, the API server would default it from the filled limit).
	filledRequests []corev1.ResourceName
	allowed        map[corev1.ResourceName]bool
	// entries are the allowed names with their max, cpu and memory first (what nearly every container sets),
	// so that a container's list is judged with a lookup per name it holds.
	entries     []allowedEntry
	allowedText string // the allowed names, sorted, for messages
	allowClaims bool
}

type allowedEntry struct {
	name   corev1.ResourceName
	max    resource.Quantity
	hasMax bool
}

type perPodCeiling struct {
	name corev1.ResourceName
	q    resource.Quantity
	// fit is how many containers at max fit under the ceiling (at most maxFit; -1 without a max): a pod with
	// no more init and regular containers, every one within max, cannot exceed it.
	fit int
	// entry is the index of the name in entries (below 64: a bit of the names the containers use), or -1.
	entry int
}

const maxFit = 64

// judgeResources is the whole check. With r set it reports every violation in a fixed order. With r nil it
// reports nothing, allocates nothing and stops at the first violation, with shortcuts on the way: a
// container's lists are judged by a lookup per allowed name, and a per-pod total is skipped when its
// containers, all within max, cannot add up above it, or when none of them uses the resource. One function for both, and TestResourcesFastPathAgrees
// holds the fast verdict to the full report's over random pods.
func judgeResources(p *Policy, pod *podView, r *report) bool {
	rules := &p.resources
	spec := pod.spec
	ok := true
	var podLimits corev1.ResourceList
	if spec.Resources != nil {
		podLimits = spec.Resources.Limits
		var at *field.Path
		if r != nil {
			at = pod.specPath.Child("resources")
		}
		if !rules.judgePodLevel(spec, at, r) {
			if r == nil {
				return false
			}
			ok = false
		}
	}
	judgedCounted := 0 // judged init and regular containers: those the pod's total counts
	var used uint64    // in the fast pass, a bit per entry a judged container requests or limits
	for _, ca := range pod.containers {
		res := &ca.c.Resources
		var at *field.Path
		if r != nil {
			at = pod.path(ca).Child("resources")
		}
		if ca.field != "ephemeralContainers" {
			judgedCounted++
			for _, rn := range rules.requiredLimits {
				if _, set := res.Limits[rn]; set {
					continue
				}
				if _, set := podLimits[rn]; set {
					continue // the pod-level limit bounds this container
				}
				if r == nil {
					return false
				}
				ok = false
				r.add("resources", at.Child("limits").Key(string(rn)), "unset", rules.limitAllowed(rn),
					"agent containers must declare a "+string(rn)+" limit, or the pod a pod-level one (spec.resources.limits)")
			}
		}
		if !rules.judgeRequirements(res, at, r, &used) {
			if r == nil {
				return false
			}
			ok = false
		}
	}
	// With no violation so far in the fast pass, every container the policy judges is within max.
	withinMaxAll := r == nil && judgedCounted == len(spec.InitContainers)+len(spec.Containers)
	for _, ceiling := range rules.perPod {
		if withinMaxAll && !podLevelSets(spec.Resources, ceiling.name) &&
			(ceiling.fit >= judgedCounted || ceiling.entry >= 0 && used&(1<<ceiling.entry) == 0) {
			continue // judgedCounted containers within max cannot exceed it, or none of them uses the resource
		}
		for _, limits := range [2]bool{false, true} {
			q, podLevel := effectivePodQuantity(spec, ceiling.name, limits)
			if q.Cmp(ceiling.q) <= 0 {
				continue
			}
			if podLevel && limits && rules.aboveMax(ceiling.name, q) && containerWithoutLimit(spec, ceiling.name) {
				continue // already reported at this very path, against max
			}
			if r == nil {
				return false
			}
			ok = false
			kind, what := "requests", "request"
			if limits {
				kind, what = "limits", "limit"
			}
			why := "the pod's " + string(ceiling.name) + " " + kind + " add up above the policy's per-pod ceiling " +
				"(regular and sidecar containers summed, an init container alone when larger)"
			if podLevel {
				why = "the pod-level " + string(ceiling.name) + " " + what + " exceeds the policy's per-pod ceiling"
			}
			r.add("resources", pod.specPath.Child("resources", kind).Key(string(ceiling.name)), q.String(),
				"at most "+ceiling.q.String()+" per pod", why)
		}
	}
	if !rules.allowClaims {
		for i := range spec.ResourceClaims {
			if r == nil {
				return false
			}
			ok = false
			r.add("resources", pod.specPath.Child("resourceClaims").Index(i), quote(spec.ResourceClaims[i].Name),
				"none (spec.resources.allowResourceClaims is false)",
				"a claimed device (dynamic resource allocation) is a resource the policy cannot count")
		}
	}
	return ok
}

// judgeRequirements judges the requests and limits of one container, or of the pod level (at is its
// resources path; nil when r is).
func (rules *resourceRules) judgeRequirements(res *corev1.ResourceRequirements, at *field.Path, r *report, used *uint64) bool {
	ok := true
	for _, kind := range [2]string{"requests", "limits"} {
		list := res.Requests
		if kind == "limits" {
			list = res.Limits
		}
		if r == nil {
			// A lookup per allowed name until the list's names are all found: a name left over is not allowed.
			found := 0
			for i := 0; i < len(rules.entries) && found < len(list); i++ {
				e := &rules.entries[i]
				if q, ok := list[e.name]; ok {
					found++
					if i < 64 {
						*used |= 1 << i
					}
					if e.hasMax && q.Cmp(e.max) > 0 {
						return false
					}
				}
			}
			if found < len(list) {
				return false
			}
			continue
		}
		for _, rn := range sortedResourceNames(list) {
			q := list[rn]
			switch {
			case !rules.allowed[rn]:
				ok = false
				r.add("resources", at.Child(kind).Key(string(rn)), q.String(), "unset; the policy allows "+rules.allowedText,
					string(rn)+" is not a resource this policy lets agent pods use (spec.resources.allowed)")
			case rules.aboveMax(rn, q):
				ok = false
				m := rules.max[rn]
				r.add("resources", at.Child(kind).Key(string(rn)), q.String(), "at most "+m.String(),
					string(rn)+" "+kind+" exceed the policy's ceiling")
			}
		}
	}
	return ok
}

// judgePodLevel judges spec.resources (at is its path; nil when r is): only allowed names; and a pod-level
// limit at most max where a container has no limit of its own, since that container may use all of it. Where
// every container has its own, the pod-level limit only caps their sum, which maxPerPod bounds (the API server
// itself defaults a pod-level limit to that sum beside a pod-level request).
func (rules *resourceRules) judgePodLevel(spec *corev1.PodSpec, at *field.Path, r *report) bool {
	ok := true
	for _, kind := range [2]string{"requests", "limits"} {
		list := spec.Resources.Requests
		if kind == "limits" {
			list = spec.Resources.Limits
		}
		for _, rn := range sortedResourceNames(list) {
			q := list[rn]
			switch {
			case !rules.allowed[rn]:
				if r == nil {
					return false
				}
				ok = false
				r.add("resources", at.Child(kind).Key(string(rn)), q.String(), "unset; the policy allows "+rules.allowedText,
					string(rn)+" is not a resource this policy lets agent pods use (spec.resources.allowed)")
			case kind == "limits" && rules.aboveMax(rn, q) && containerWithoutLimit(spec, rn):
				if r == nil {
					return false
				}
				ok = false
				m := rules.max[rn]
				r.add("resources", at.Child(kind).Key(string(rn)), q.String(), "at most "+m.String()+", or a "+string(rn)+" limit on every container",
					"a container without a "+string(rn)+" limit of its own may use the whole pod-level limit, above the policy's per-container ceiling")
			}
		}
	}
	return ok
}

// containerWithoutLimit: an init or regular container has no limit of rn of its own.
func containerWithoutLimit(spec *corev1.PodSpec, rn corev1.ResourceName) bool {
	for _, list := range [2][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			if _, ok := list[i].Resources.Limits[rn]; !ok {
				return true
			}
		}
	}
	return false
}

func (rules *resourceRules) aboveMax(rn corev1.ResourceName, q resource.Quantity) bool {
	m, ok := rules.max[rn]
	return ok && q.Cmp(m) > 0
}

func (rules *resourceRules) limitAllowed(rn corev1.ResourceName) string {
	if m, ok := rules.max[rn]; ok {
		return "a limit of at most " + m.String()
	}
	return "any limit"
}

// effectivePodQuantity is the pod's request (or limit) of rn as Kubernetes counts it
// (k8s.io/component-helpers/resource PodRequests/PodLimits without overhead; a test holds the two together),
// and whether it is the pod-level value. A container that does not set rn counts as zero. It allocates
// nothing for quantities that fit in an int64.
func effectivePodQuantity(spec *corev1.PodSpec, rn corev1.ResourceName, limits bool) (resource.Quantity, bool) {
	pick := func(r *corev1.ResourceRequirements) corev1.ResourceList {
		if limits {
			return r.Limits
		}
		return r.Requests
	}
	if spec.Resources != nil && podLevelResource(rn) {
		if q, ok := pick(spec.Resources)[rn]; ok {
			return q, true
		}
	}
	var regular, sidecars, initPeak resource.Quantity
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		q := pick(&c.Resources)[rn].DeepCopy() // Add works in place: never into the pod's own value
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars.Add(q)
			q = sidecars.DeepCopy() // while it starts, every sidecar before it runs too
		} else {
			q.Add(sidecars)
		}
		if q.Cmp(initPeak) > 0 {
			initPeak = q
		}
	}
	for i := range spec.Containers {
		regular.Add(pick(&spec.Containers[i].Resources)[rn])
	}
	regular.Add(sidecars)
	if initPeak.Cmp(regular) > 0 {
		return initPeak, false
	}
	return regular, false
}

func podLevelSets(podLevel *corev1.ResourceRequirements, rn corev1.ResourceName) bool {
	if podLevel == nil {
		return false
	}
	_, req := podLevel.Requests[rn]
	_, lim := podLevel.Limits[rn]
	return req || lim
}

// podLevelResource: the names Kubernetes takes from spec.resources (k8s.io/component-helpers/resource
// IsSupportedPodLevelResource); the API server refuses the others there.
func podLevelResource(rn corev1.ResourceName) bool {
	return rn == corev1.ResourceCPU || rn == corev1.ResourceMemory || strings.HasPrefix(string(rn), corev1.ResourceHugePagesPrefix)
}

// compileResources validates spec.resources and compiles it. Every error names its field.
func compileResources(s *Resources, fp *field.Path) (resourceRules, field.ErrorList) {
	var errs field.ErrorList
	rules := resourceRules{max: map[corev1.ResourceName]resource.Quantity{}, allowClaims: s.AllowResourceClaims}

	// named: every resource the section gives a value, with its path, in a fixed order.
	type namedAt struct {
		name corev1.ResourceName
		path *field.Path
	}
	var named []namedAt
	reported := map[string]bool{} // paths with an error already: one error per field
	ceiling := func(list corev1.ResourceList, at *field.Path) {
		for _, rn := range sortedResourceNames(list) {
			q, p := list[rn], at.Key(string(rn))
			named = append(named, namedAt{rn, p})
			if err := validResourceName(rn); err != "" {
				errs = append(errs, field.Invalid(p, string(rn), err))
				reported[p.String()] = true
			}
			if q.Sign() <= 0 {
				errs = append(errs, field.Invalid(p, q.String(), "must be greater than zero"))
			}
		}
	}
	ceiling(s.Max, fp.Child("max"))
	for _, rn := range sortedResourceNames(s.Max) {
		rules.max[rn] = s.Max[rn]
	}
	ceiling(s.MaxPerPod, fp.Child("maxPerPod"))
	for _, rn := range sortedResourceNames(s.MaxPerPod) {
		c := perPodCeiling{name: rn, q: s.MaxPerPod[rn], fit: -1}
		if m, ok := s.Max[rn]; ok && m.Sign() > 0 {
			var sum resource.Quantity
			for c.fit = 0; c.fit < maxFit; c.fit++ {
				sum.Add(m)
				if sum.Cmp(c.q) > 0 {
					break
				}
			}
		}
		rules.perPod = append(rules.perPod, c)
	}

	dp := fp.Child("defaults")
	for _, kind := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", s.Defaults.Requests}, {"limits", s.Defaults.Limits}} {
		ceiling(kind.list, dp.Child(kind.name))
		for _, rn := range sortedResourceNames(kind.list) {
			q, p := kind.list[rn], dp.Child(kind.name).Key(string(rn))
			switch {
			case rn == corev1.ResourceCPU || rn == corev1.ResourceMemory || rn == corev1.ResourceEphemeralStorage, reported[p.String()]:
			default:
				// Extended resources and hugepages need request == limit and are never overcommitted: a default
				// would hand every agent pod one.
				errs = append(errs, field.NotSupported(p, rn, []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}))
				reported[p.String()] = true
			}
			if m, ok := s.Max[rn]; ok && q.Cmp(m) > 0 {
				errs = append(errs, field.Invalid(p, q.String(), fmt.Sprintf("exceeds spec.resources.max.%s (%s): every defaulted pod would be denied", rn, m.String())))
			}
			if m, ok := s.MaxPerPod[rn]; ok && q.Cmp(m) > 0 {
				errs = append(errs, field.Invalid(p, q.String(), fmt.Sprintf("exceeds spec.resources.maxPerPod.%s (%s): every defaulted pod would be denied", rn, m.String())))
			}
		}
	}
	for _, rn := range sortedResourceNames(s.Defaults.Requests) {
		req := s.Defaults.Requests[rn]
		if l, ok := s.Defaults.Limits[rn]; ok && req.Cmp(l) > 0 {
			errs = append(errs, field.Invalid(dp.Child("requests").Key(string(rn)), req.String(), "exceeds the default limit "+l.String()))
		}
	}
	rules.requiredLimits = sortedResourceNames(s.Defaults.Limits)
	rules.filledRequests = sortedResourceNames(s.Defaults.Requests)
	for _, rn := range rules.requiredLimits {
		if !slices.Contains(rules.filledRequests, rn) {
			rules.filledRequests = append(rules.filledRequests, rn)
		}
	}
	slices.Sort(rules.filledRequests)

	rules.allowed = map[corev1.ResourceName]bool{}
	if len(s.Allowed) == 0 { // unset and [] alike: an empty list does not survive a round trip through omitempty
		for _, rn := range defaultAllowedResources {
			rules.allowed[rn] = true
		}
	}
	ap := fp.Child("allowed")
	for i, rn := range s.Allowed {
		if err := validResourceName(rn); err != "" {
			errs = append(errs, field.Invalid(ap.Index(i), string(rn), err))
		}
		if rules.allowed[rn] {
			errs = append(errs, field.Duplicate(ap.Index(i), string(rn)))
		}
		rules.allowed[rn] = true
	}
	for _, n := range named {
		if !rules.allowed[n.name] && !reported[n.path.String()] {
			errs = append(errs, field.Invalid(n.path, string(n.name), "not in spec.resources.allowed (unset: cpu, memory, ephemeral-storage): list it there to let agent pods use it"))
		}
	}
	names := make([]string, 0, len(rules.allowed))
	for rn := range rules.allowed {
		names = append(names, string(rn))
	}
	slices.Sort(names)
	for _, first := range []bool{true, false} {
		for _, n := range names {
			rn := corev1.ResourceName(n)
			if (rn == corev1.ResourceCPU || rn == corev1.ResourceMemory) == first {
				m, hasMax := rules.max[rn]
				rules.entries = append(rules.entries, allowedEntry{name: rn, max: m, hasMax: hasMax})
			}
		}
	}
	for i := range rules.perPod {
		rules.perPod[i].entry = -1
		for j, e := range rules.entries {
			if e.name == rules.perPod[i].name && j < 64 {
				rules.perPod[i].entry = j
			}
		}
	}
	rules.allowedText = strings.Join(names, ", ")
	if len(names) == 0 {
		rules.allowedText = "none"
	}
	return rules, errs
}

// defaultAllowedResources is spec.resources.allowed when unset: what every node has and the kubelet bounds.
// Asking for any of them takes nothing scarce (a request too large leaves the pod unscheduled); GPUs and other
// extended resources are scarce devices, and hugepages are memory outside the memory limit.
var defaultAllowedResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

// validResourceName says why rn is not a resource a container can request ("" when it is), as the API
// server's validation would: a native name, hugepages-<size>, or an extended resource "domain/name" outside
// the kubernetes.io domain. A policy that misspells one ("CPU", "memroy") would bound nothing.
func validResourceName(rn corev1.ResourceName) string {
	s := string(rn)
	switch {
	case rn == corev1.ResourceCPU || rn == corev1.ResourceMemory || rn == corev1.ResourceEphemeralStorage:
		return ""
	case strings.HasPrefix(s, corev1.ResourceHugePagesPrefix):
		if q, err := resource.ParseQuantity(strings.TrimPrefix(s, corev1.ResourceHugePagesPrefix)); err != nil || q.Sign() <= 0 {
			return "hugepages-<page size>, such as hugepages-2Mi"
		}
		return ""
	case strings.Contains(s, "/"):
		if msgs := validation.IsQualifiedName(s); len(msgs) > 0 {
			return "an extended resource is a qualified name such as nvidia.com/gpu: " + strings.Join(msgs, "; ")
		}
		domain, _, _ := strings.Cut(s, "/")
		if domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io") || strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix) {
			return "the kubernetes.io domain holds no extended resources a container can request"
		}
		return ""
	}
	return "not a resource a container can request: cpu, memory, ephemeral-storage, hugepages-<size> or an extended resource such as nvidia.com/gpu"
}

// Resources bounds what an agent pod may ask of its node. Kubernetes' own rules decide what a pod gets: a
// container's requests and limits, the pod-level spec.resources (which replaces the containers' sum where set),
// init containers counted alone and restartable (sidecar) init containers counted with the regular ones.
type Resources struct {
	Defaults ResourceDefaults `json:"defaults,omitempty"`
	// Max is the ceiling of every request and limit one container declares, and of a pod-level limit
	// (spec.resources) beside a container without a limit of its own, which may use all of it.
	Max corev1.ResourceList `json:"max,omitempty"`
	// MaxPerPod is the ceiling of the pod's effective requests and limits: the pod-level value where set,
	// otherwise max(largest init container, regular containers + sidecars), as the scheduler and kubelet count.
	MaxPerPod corev1.ResourceList `json:"maxPerPod,omitempty"`
	// Allowed are the only resources a container or the pod may request or limit; any other name
	// (nvidia.com/gpu, hugepages-2Mi, example.com/anything) is denied. Unset (or empty): cpu, memory and
	// ephemeral-storage. Every name that defaults, max or maxPerPod gives a value must be allowed.
	Allowed []corev1.ResourceName `json:"allowed,omitempty"`
	// AllowResourceClaims lets a pod use dynamic resource allocation (spec.resourceClaims): devices the
	// policy cannot count. Unset: denied.
	AllowResourceClaims bool `json:"allowResourceClaims,omitempty"`
}

type ResourceDefaults struct {
	Requests corev1.ResourceList `json:"requests,omitempty"`
	Limits   corev1.ResourceList `json:"limits,omitempty"`
}
