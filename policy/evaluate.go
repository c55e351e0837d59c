package policy

import (
	corev1 "k8s.io/api/core/v1"
	"slices"
	"strings"

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

// selects reports whether the policy applies to the workload, and if not because of an exemption, which.
func (p *Policy) selects(w *Workload, ns Namespace) (bool, *Exemption) {
	if p.nsSelector != nil && ns.Labels != nil && !p.nsSelector.Matches(labels.Set(ns.Labels)) {
		return false, nil
	}
	if p.podSelector != nil && !p.podSelector.Matches(labels.Set(w.PodMeta.Labels)) {
		return false, nil
	}
	if p.exemptNS[ns.Name] {
		return false, &Exemption{Policy: p.Name, Reason: "namespace", Field: "metadata.namespace", Detail: "namespace " + ns.Name + " is exempt"}
	}
	if len(p.exemptSA) > 0 {
		if key := serviceAccountKey(ns.Name, w.Spec); p.exemptSA[key] {
			return false, &Exemption{Policy: p.Name, Reason: "serviceAccount", Field: w.SpecPath.Child("serviceAccountName").String(), Detail: "service account " + key + " is exempt"}
		}
	}
	return true, nil
}

// Evaluate judges the workload as it is. Callers that judge a controller's template, or a manifest
// offline, harden a copy first (Harden), because that is what the pods it makes will look like.
func (s *Set) Evaluate(w *Workload, ns Namespace) Result {
	var res Result
	for _, p := range s.Policies {
		ok, ex := p.selects(w, ns)
		if ex != nil {
			res.Exemptions = append(res.Exemptions, *ex)
		}
		if !ok {
			continue
		}
		res.Matched = append(res.Matched, p.Name)
		pod := newPodView(p, w, func(ca containerAt) {
			res.Exemptions = append(res.Exemptions, Exemption{
				Policy: p.Name, Reason: "container", Field: w.SpecPath.Child(ca.field).Index(ca.index).String(),
				Detail: "container " + ca.c.Name + " (" + ca.c.Image + ") is exempt",
			})
		})
		pod.mayMountToken = pod.mayMountToken || p.tokenSA[serviceAccountKey(ns.Name, w.Spec)]
		res.Violations = append(res.Violations, p.check(pod)...)
	}
	return res
}

// Harden fills, in place, what every selecting policy forces and the workload leaves unset. It never changes
// an explicit value and is idempotent. It reports whether anything changed.
func (s *Set) Harden(w *Workload, ns Namespace) bool {
	changed := false
	for _, p := range s.Policies {
		if ok, _ := p.selects(w, ns); !ok {
			continue
		}
		pod := newPodView(p, w, nil)
		pod.mayMountToken = pod.mayMountToken || p.tokenSA[serviceAccountKey(ns.Name, w.Spec)]
		if p.harden(pod) {
			changed = true
		}
	}
	return changed
}

// needsHardening says whether Harden would change anything, without copying or changing the workload. It
// asks every selecting policy the very conditions Harden acts on (hardenPod, dry). When no policy would
// fill anything in the workload as it is, hardening in sequence fills nothing either, so the answer is exact.
func (s *Set) needsHardening(w *Workload, ns Namespace) bool {
	for _, p := range s.Policies {
		if ok, _ := p.selects(w, ns); !ok {
			continue
		}
		pod := newPodView(p, w, nil)
		pod.mayMountToken = pod.mayMountToken || p.tokenSA[serviceAccountKey(ns.Name, w.Spec)]
		if p.hardenPod(pod, true) {
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
// A workload that hardening would not change (every Pod that went through the mutating webhook, and every
// compliant template) is its own hardened form: it is judged once, without a copy.
func (s *Set) Judge(w *Workload, ns Namespace) Result {
	if !s.needsHardening(w, ns) {
		return s.Evaluate(w, ns)
	}
	hardened := w.DeepCopy()
	s.Harden(hardened, ns)
	res := s.Evaluate(hardened, ns)
	if w.IsPod() && res.Allowed() {
		return s.Evaluate(w, ns)
	}
	return res
}

// Mutate is what the mutating webhook does to a Pod: it returns a hardened copy and whether to patch. A pod
// that the policies will deny anyway is not mutated: the validating webhook then denies it with agentgate's
// own message, instead of the API server refusing a half-hardened object with one of its own.
func (s *Set) Mutate(w *Workload, ns Namespace) (*Workload, bool) {
	if !s.needsHardening(w, ns) {
		return w, false
	}
	hardened := w.DeepCopy()
	if !s.Harden(hardened, ns) {
		return w, false
	}
	if res := s.Evaluate(hardened, ns); !res.Allowed() {
		return w, false
	}
	return hardened, true
}

// serviceAccountKey is "namespace/name" of the pod's service account ("default" when unset, as the API
// server defaults it).
func serviceAccountKey(namespace string, spec *corev1.PodSpec) string {
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return namespace + "/" + sa
}
