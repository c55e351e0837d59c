package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Set is every policy in force, sorted by name. A workload must satisfy every policy that selects it.
// A Set is immutable; reloads build a new one and swap it in whole.
type Set struct {
	Policies []*Policy
}

// NewSet sorts the policies by name so that evaluation order, and so every message, is deterministic.
func NewSet(policies ...*Policy) *Set {
	ps := slices.Clone(policies)
	slices.SortFunc(ps, func(a, b *Policy) int { return strings.Compare(a.Name, b.Name) })
	return &Set{Policies: ps}
}

// Namespace is what selection knows of the workload's namespace.
type Namespace struct {
	Name string
	// Labels are nil when they cannot be known (no cluster): a namespaceSelector then matches every
	// namespace, the strict side.
	Labels map[string]string
	// IsTokenSecret says whether the namespace's Secret of that name has type
	// kubernetes.io/service-account-token (the pod spec does not say). nil when unknown (offline): references to
	// Secrets are then not judged by serviceAccountTokenSecrets.
	IsTokenSecret func(name string) bool
}

// Exemption records that a policy skipped a whole workload or one container, and why.
type Exemption struct {
	Policy string `json:"policy"`
	Reason string `json:"reason"` // namespace | serviceAccount | container
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

// Result is the verdict of a Set on one workload.
type Result struct {
	// Matched lists the policies that selected the workload.
	Matched []string
	// Violations of every matched policy, enforce, warn and audit modes alike, in policy then check order.
	Violations Violations
	Exemptions []Exemption
}

// Allowed is false when a policy in enforce mode is violated.
func (r *Result) Allowed() bool {
	for _, v := range r.Violations {
		if v.Mode == ModeEnforce {
			return false
		}
	}
	return true
}

// ByMode returns the violations of one mode.
func (r *Result) ByMode(m Mode) Violations {
	var out Violations
	for _, v := range r.Violations {
		if v.Mode == m {
			out = append(out, v)
		}
	}
	return out
}

// selects reports whether the policy applies to the workload sent by rq, and if not because of an exemption,
// which.
func (p *Policy) selects(w *Workload, ns Namespace, rq Requester) (bool, *Exemption) {
	if !p.matchesLabels(ns, w.PodMeta.Labels) {
		return false, nil
	}
	if p.exemptNS[ns.Name] {
		return false, &Exemption{Policy: p.Name, Reason: "namespace", Field: "metadata.namespace", Detail: "namespace " + ns.Name + " is exempt"}
	}
	if ex := p.requesterExemption(rq); ex != nil {
		return false, ex
	}
	return true, nil
}

// Unselects lists the policies that select old but not cur, the same pod with other labels: a relabelling that
// takes a running pod out of a policy's podSelector (and out of its NetworkPolicy's, when it manages the
// network), after which updates of the pod are judged without it.
func (s *Set) Unselects(old, cur *Workload, ns Namespace, rq Requester) []string {
	var out []string
	for _, p := range s.Policies {
		before, _ := p.selects(old, ns, rq)
		after, _ := p.selects(cur, ns, rq)
		if before && !after {
			out = append(out, p.Name)
		}
	}
	return out
}

// requesterExemption is the exemption of whatever rq sends (spec.exempt.serviceAccounts, usernames), or nil.
func (p *Policy) requesterExemption(rq Requester) *Exemption {
	listed, ok := p.exemptBy.match(rq)
	if !ok {
		return nil
	}
	reason := "username"
	if strings.HasPrefix(rq.Username, "system:serviceaccount:") {
		reason = "serviceAccount"
	}
	return &Exemption{Policy: p.Name, Reason: reason, Detail: "requested by " + rq.Username + ", exempt by the policy's " + listed}
}

// view is the pod as one selecting policy sees it in namespace ns when rq sends it.
func (p *Policy) view(w *Workload, ns Namespace, rq Requester, exempted func(containerAt)) *podView {
	pod := newPodView(p, w, rq, exempted)
	pod.isTokenSecret = ns.IsTokenSecret
	pod.namespace = ns.Name
	if _, ok := p.tokenBy.match(rq); ok {
		pod.mayMountToken = true
	}
	return pod
}

// NamespaceExcludes reports whether some policy's namespaceSelector rejects the namespace's known labels. The
// webhook then re-reads the labels live: a request that reached it proves the API server's selector matched, so
// labels that leave a policy out may be a stale cache's.
func (s *Set) NamespaceExcludes(ns Namespace) bool {
	if ns.Labels == nil {
		return false
	}
	for _, p := range s.Policies {
		if p.nsSelector != nil && !p.nsSelector.Matches(labels.Set(ns.Labels)) {
			return true
		}
	}
	return false
}

// matchesLabels is spec.match: the namespace's labels (unknown labels match, the strict side) and the pod's.
func (p *Policy) matchesLabels(ns Namespace, podLabels map[string]string) bool {
	return p.selectsNamespace(ns) && (p.podSelector == nil || p.podSelector.Matches(labels.Set(podLabels)))
}

// selectsNamespace is spec.match.namespaceSelector against the namespace's labels; unknown labels match.
func (p *Policy) selectsNamespace(ns Namespace) bool {
	return p.nsSelector == nil || ns.Labels == nil || p.nsSelector.Matches(labels.Set(ns.Labels))
}

// SelectsPodMeta is the part of selection that needs no pod spec and no requester: spec.match and
// spec.exempt.namespaces.
func (p *Policy) SelectsPodMeta(ns Namespace, podLabels map[string]string) bool {
	return p.matchesLabels(ns, podLabels) && !p.exemptNS[ns.Name]
}

// evaluate judges the workload as it is. Callers that judge a controller's template, or a manifest
// offline, harden a copy first (Harden), because that is what the pods it makes will look like.
func (s *Set) evaluate(w *Workload, ns Namespace, rq Requester) Result {
	var res Result
	for _, p := range s.Policies {
		ok, ex := p.selects(w, ns, rq)
		if ex != nil {
			res.Exemptions = append(res.Exemptions, *ex)
		}
		if !ok {
			continue
		}
		res.Matched = append(res.Matched, p.Name)
		pod := p.view(w, ns, rq, func(ca containerAt) {
			res.Exemptions = append(res.Exemptions, Exemption{
				Policy: p.Name, Reason: "container", Field: w.SpecPath.Child(ca.field).Index(ca.index).String(),
				Detail: "container " + ca.c.Name + " (" + ca.c.Image + ") requested by " + rq.Username + " is exempt from " + strings.Join(ca.relaxed, ", "),
			})
		})
		res.Violations = append(res.Violations, p.check(pod)...)
	}
	return res
}

// Harden fills, in place, what every selecting policy forces and the workload leaves unset. It never changes
// an explicit value and is idempotent. It reports whether anything changed.
// Where several policies fill the same resource, the smallest of their defaults is filled
// (strictestDefaults), whichever policy sorts first.
func (s *Set) Harden(w *Workload, ns Namespace, rq Requester) bool {
	var buf [8]*Policy
	selecting := buf[:0]
	for _, p := range s.Policies {
		if ok, _ := p.selects(w, ns, rq); ok {
			selecting = append(selecting, p)
		}
	}
	defaults := strictestDefaults(selecting)
	changed := false
	for _, p := range selecting {
		pod := p.view(w, ns, rq, nil)
		pod.defaults = defaults
		if p.harden(pod) {
			changed = true
		}
	}
	return changed
}

// strictestDefaults is, per resource, the smallest resources.defaults request and limit among the policies;
// nil when fewer than two select (each fills its own). Without it the policy that sorts first would fill its
// own, so a policy added beside another, with larger defaults and a name sorting first, would make mutation
// fill more than the other allows by default (within its max, but more): a loosening that no UPDATE guard sees.
func strictestDefaults(ps []*Policy) *ResourceDefaults {
	if len(ps) < 2 {
		return nil
	}
	d := &ResourceDefaults{}
	for _, p := range ps {
		d.Requests = smallestInto(d.Requests, p.Spec.Resources.Defaults.Requests)
		d.Limits = smallestInto(d.Limits, p.Spec.Resources.Defaults.Limits)
	}
	return d
}

func smallestInto(dst, src corev1.ResourceList) corev1.ResourceList {
	for rn, q := range src {
		if cur, ok := dst[rn]; !ok || q.Cmp(cur) < 0 {
			if dst == nil {
				dst = corev1.ResourceList{}
			}
			dst[rn] = q
		}
	}
	return dst
}

// needsHardening says whether Harden would change anything, without copying or changing the workload. It
// asks every selecting policy the very conditions Harden acts on (hardenPod, dry). When no policy would
// fill anything in the workload as it is, hardening in sequence fills nothing either, so the answer is exact.
func (s *Set) needsHardening(w *Workload, ns Namespace, rq Requester) bool {
	for _, p := range s.Policies {
		if ok, _ := p.selects(w, ns, rq); !ok {
			continue
		}
		if p.hardenPod(p.view(w, ns, rq, nil), true) {
			return true
		}
	}
	return false
}

// Judge is the one decision path shared by the webhook and the CLI:
//   - a controller template is judged as it will be after hardening, since its pods will be hardened;
//   - a Pod is judged as it is (the mutating webhook already ran); if the hardened pod would pass but the pod
//     as sent does not, mutation was bypassed and the unset fields are the violations; otherwise the
//     hardened pod's violations are reported, which are the real problems, without noise about fields that
//     mutation would have filled.
//
// rq is who sent the request (the zero Requester when unknown: no requester-anchored exemption applies).
// A workload that hardening would not change (every Pod that went through the mutating webhook, and every
// compliant template) is its own hardened form: it is judged once, without a copy.
func (s *Set) Judge(w *Workload, ns Namespace, rq Requester) Result {
	if !s.needsHardening(w, ns, rq) {
		return s.evaluate(w, ns, rq)
	}
	hardened := w.DeepCopy()
	s.Harden(hardened, ns, rq)
	res := s.evaluate(hardened, ns, rq)
	if w.IsPod() && res.Allowed() {
		return s.evaluate(w, ns, rq)
	}
	return res
}

// Mutate is what the mutating webhook does to a Pod: it returns a hardened copy and whether to patch. A pod
// that the policies will deny anyway is not mutated: the validating webhook then denies it with agentgate's
// own message, instead of the API server refusing a half-hardened object with one of its own.
func (s *Set) Mutate(w *Workload, ns Namespace, rq Requester) (*Workload, bool) {
	if !s.needsHardening(w, ns, rq) {
		return w, false
	}
	hardened := w.DeepCopy()
	if !s.Harden(hardened, ns, rq) {
		return w, false
	}
	if res := s.evaluate(hardened, ns, rq); !res.Allowed() {
		return w, false
	}
	return hardened, true
}
