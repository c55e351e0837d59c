package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"agentgate.io/agentgate/policy"
)

// JudgeStored judges a cached running pod the way `agentgate audit` and the admission webhooks judge a pod
// (policy.Set.Review without the patch): as the mutating webhook would harden it, then validated. A running pod
// that its policies would deny on creation is one its controller could not recreate; a field left unset that
// mutation would fill is not a finding, since every recreation fills it.
func JudgeStored(set *policy.Set, sp *StoredPod, ns policy.Namespace) (policy.Result, error) {
	pod, err := sp.Pod()
	if err != nil {
		return policy.Result{}, err
	}
	w, err := policy.NewWorkload(pod)
	if err != nil {
		return policy.Result{}, err
	}
	// Who created a running pod is unknown: no exemption by requester applies (the strict side, as in
	// agentgate audit).
	var rq policy.Requester
	hardened, _ := set.Mutate(w, ns, rq)
	return set.Judge(hardened, ns, rq), nil
}

// SortPods orders pods by namespace, then name: the order previews judge and reports list them in.
func SortPods(pods []*StoredPod) {
	slices.SortFunc(pods, func(a, b *StoredPod) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// PodFinding is one pod a policy would refuse (or warn about, or audit), with the IDs of the checks it fails,
// in the policy's check order, each once.
type PodFinding struct {
	Namespace, Name string
	Checks          []string
}

// PreviewResult is what a policy would do to the running pods it selects.
type PreviewResult struct {
	Policy string
	Mode   policy.Mode
	// Selected is the number of running pods the policy selects by spec.match and spec.exempt.namespaces (M).
	Selected int
	// Checked is how many of them were judged, the first ones by (namespace, name); Checked < Selected when
	// Limited or TimedOut.
	Checked           int
	Limited, TimedOut bool
	// Findings are the pods among the Checked that the policy finds violations in, by (namespace, name).
	Findings []PodFinding
	// Unjudged counts pods whose cached spec could not be decoded; they are neither findings nor passes.
	Unjudged int
	// Elapsed is how long judging took.
	Elapsed time.Duration
}

// Namespaces is what the policies know of a namespace outside a review (the preview, the background audit):
// its labels (nil when unknown: every selector matches, the strict side) and which of its Secrets hold
// service-account tokens (nil when unknown: references to Secrets are not judged).
type Namespaces struct {
	Labels        func(namespace string) map[string]string
	IsTokenSecret func(namespace, secret string) bool
}

// Of is the policy.Namespace of name.
func (n Namespaces) Of(name string) policy.Namespace {
	ns := policy.Namespace{Name: name}
	if n.Labels != nil {
		ns.Labels = n.Labels(name)
	}
	if n.IsTokenSecret != nil {
		ns.IsTokenSecret = func(secret string) bool { return n.IsTokenSecret(name, secret) }
	}
	return ns
}

// Preview judges the running pods that p selects, by p alone: the warning names p, so it counts what p
// refuses; what the other policies in force refuse is no effect of this change, and every policy is
// satisfied separately, so judging p with the others would only add their findings to p's name. pods need
// not be sorted (Preview sorts a copy). nsLabels gives a namespace's labels, nil when unknown (the strict
// side: selected). At most limit pods are judged (0: no limit), and none is started after deadline (zero: no
// deadline), so that the cost is bounded whatever the cluster holds.
func Preview(p *policy.Policy, pods []*StoredPod, known Namespaces, limit int, deadline time.Time) PreviewResult {
	start := time.Now()
	res := PreviewResult{Policy: p.Name, Mode: p.Spec.Mode}
	set := policy.NewSet(p)
	namespaces := map[string]policy.Namespace{}
	var selected []*StoredPod
	for _, sp := range pods {
		ns, ok := namespaces[sp.Namespace]
		if !ok {
			ns = known.Of(sp.Namespace)
			namespaces[sp.Namespace] = ns
		}
		if p.SelectsPodMeta(ns, sp.Labels) {
			selected = append(selected, sp)
		}
	}
	SortPods(selected)
	res.Selected = len(selected)
	for _, sp := range selected {
		if limit > 0 && res.Checked >= limit {
			res.Limited = true
			break
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			res.TimedOut = true
			break
		}
		res.Checked++
		r, err := JudgeStored(set, sp, namespaces[sp.Namespace])
		if err != nil {
			res.Unjudged++
			continue
		}
		if checks := checkIDs(r.Violations); len(checks) > 0 {
			res.Findings = append(res.Findings, PodFinding{Namespace: sp.Namespace, Name: sp.Name, Checks: checks})
		}
	}
	res.Elapsed = time.Since(start)
	return res
}

// checkIDs are the distinct check IDs of vs, in their order.
func checkIDs(vs policy.Violations) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Check) {
			out = append(out, v.Check)
		}
	}
	return out
}

// Bounds of the preview's warnings. Pod Security's namespace-label warnings are the model: pods with the same
// findings are grouped on one line, and the list is cut short rather than flooding kubectl.
const (
	// PreviewMaxLines bounds the pod lines (groups) after the first warning.
	PreviewMaxLines = 20
	// PreviewMaxLineLength bounds every warning line, in bytes.
	PreviewMaxLineLength = 120
)

// verb is what the policy's mode does to a pod that fails it.
func verb(m policy.Mode) string {
	switch m {
	case policy.ModeWarn:
		return "warn about"
	case policy.ModeAudit:
		return "audit"
	}
	return "deny"
}

// Warnings renders the result as admission warnings: first `policy "NAME" would deny N of M running agent
// pods` (warn about / audit for those modes), then one line per group of pods with the same failed checks
// (`namespace/pod: check, check`, or `namespace/pod (and 3 other pods): check`), at most PreviewMaxLines,
// then a line when pods were left unjudged, unlisted or unchecked (limit, time). Every line is at most
// PreviewMaxLineLength bytes.
func (r PreviewResult) Warnings() []string {
	out := []string{fmt.Sprintf("policy %q would %s %d of %d running agent pods", r.Policy, verb(r.Mode), len(r.Findings), r.Selected)}
	type group struct {
		first PodFinding
		more  int
	}
	var groups []*group
	byChecks := map[string]*group{}
	for _, f := range r.Findings {
		key := strings.Join(f.Checks, ", ")
		if g, ok := byChecks[key]; ok {
			g.more++
			continue
		}
		g := &group{first: f}
		byChecks[key] = g
		groups = append(groups, g)
	}
	for i, g := range groups {
		if i == PreviewMaxLines {
			hidden := 0
			for _, g := range groups[i:] {
				hidden += 1 + g.more
			}
			out = append(out, fmt.Sprintf("%d more pods not listed: agentgate audit lists every one", hidden))
			break
		}
		who := g.first.Namespace + "/" + g.first.Name
		if g.more > 0 {
			who += fmt.Sprintf(" (and %d other %s)", g.more, plural(g.more, "pod", "pods"))
		}
		out = append(out, who+": "+strings.Join(g.first.Checks, ", "))
	}
	if r.Unjudged > 0 {
		out = append(out, fmt.Sprintf("%d %s could not be judged: cached spec unreadable", r.Unjudged, plural(r.Unjudged, "pod", "pods")))
	}
	switch {
	case r.TimedOut:
		out = append(out, fmt.Sprintf("ran out of time after %s: checked only the first %d of %d pods (by namespace, name)", r.Elapsed.Round(time.Millisecond), r.Checked, r.Selected))
	case r.Limited:
		out = append(out, fmt.Sprintf("checked only the first %d of %d pods (by namespace, name): agentgate audit judges them all", r.Checked, r.Selected))
	}
	for i, l := range out {
		out[i] = truncateLine(l)
	}
	return out
}

// PreviewFailed is the one warning of a preview that could not run: the policy is still admitted.
func PreviewFailed(policyName string, reason string) []string {
	return []string{truncateLine(fmt.Sprintf("policy %q: preview of its effect on running agent pods not run: %s", policyName, reason))}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// truncateLine cuts a line to PreviewMaxLineLength bytes, on a rune boundary, ending in "...".
func truncateLine(s string) string {
	if len(s) <= PreviewMaxLineLength {
		return s
	}
	cut := PreviewMaxLineLength - len("...")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
