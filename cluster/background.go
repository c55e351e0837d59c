package cluster

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	networkingv1 "k8s.io/api/networking/v1"

	"agentgate.io/agentgate/policy"
)

// DefaultAuditMaxEvents caps the audit.violation events of one run: a cluster where a policy change breaks ten
// thousand pods gets a hundred examples and one audit.truncated, not ten thousand log lines per hour (the
// metrics count them all).
const DefaultAuditMaxEvents = 100

// BackgroundAudit judges the cached running pods by the policies in force, on a schedule and after each
// policy change, and reports by metrics, log events and, where the CRD is served, one PolicyReport per agent
// namespace: no object per pod or per run is written (peers' per-resource reports have filled etcd). Run it on
// one replica at a time (RunAsLeader, lease agentgate-audit).
type BackgroundAudit struct {
	// Pods are the running pods (the pod cache); Run waits until it has synced.
	Pods *PodCache
	// Policies returns the set in force and a channel closed once a newer one is (webhook.Snapshot.Replaced),
	// as NetworkOptions.Policies does.
	Policies func() (*policy.Set, <-chan struct{})
	// Namespaces says what the policies know of each namespace (labels, token Secrets).
	Namespaces Namespaces
	// Interval between runs without a change; 0: only after changes.
	Interval  time.Duration
	MaxEvents int // DefaultAuditMaxEvents when 0
	Logger    *slog.Logger
	// Reports, when set, writes each run's findings as PolicyReports while the API server serves them.
	Reports *PolicyReports
	// NetworkPolicies, when set, lists a namespace's NetworkPolicies other than agentgate's
	// (NetworkPolicyCache.Others): those of namespaces with judged pods are judged too, since one written before
	// the namespace was managed was never judged and still widens its running pods' egress.
	NetworkPolicies func(namespace string) []*networkingv1.NetworkPolicy

	violations *prometheus.GaugeVec
	lastRun    prometheus.Gauge
}

// AuditSummary is what one run found.
type AuditSummary struct {
	Judged, Violating, Unjudged int
	// NetworkPolicies counts the NetworkPolicies judged (those a network-managing policy selects).
	NetworkPolicies int
	Elapsed         time.Duration
	// Reports is what the PolicyReport writer did; ReportsSkipped says why it did nothing ("" when it ran).
	Reports        ReportWrites
	ReportsSkipped string
}

// Register adds the audit's metrics to reg; call it once, before Run.
//   - agentgate_audit_violations{policy,check}: running pods that fail the check of the policy, as of the
//     last run (labels bounded by the policies and the check registry: no pod, no namespace);
//   - agentgate_audit_last_run_timestamp_seconds: when the last run ended.
func (a *BackgroundAudit) Register(reg prometheus.Registerer) error {
	a.violations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "agentgate_audit_violations",
		Help: "Running agent pods, and NetworkPolicies of their namespaces, that fail a check of a policy, as of the last background audit (this replica while it leads).",
	}, []string{"policy", "check"})
	a.lastRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "agentgate_audit_last_run_timestamp_seconds",
		Help: "When the last background audit ended (Unix time).",
	})
	for _, c := range []prometheus.Collector{a.violations, a.lastRun} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Run audits until ctx is done: once the cache has synced, then every Interval and after each change. When it
// returns (the lease lost, shutdown) the violation series are dropped: the new leader reports them, and two
// replicas never add up the same pods.
func (a *BackgroundAudit) Run(ctx context.Context) {
	if a.violations != nil {
		defer a.violations.Reset()
	}
	for a.Pods.WaitSynced(10*time.Second) != nil {
		if ctx.Err() != nil {
			return
		}
	}
	var tick <-chan time.Time
	if a.Interval > 0 {
		t := time.NewTicker(a.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		set, replaced := a.Policies()
		a.judge(ctx, set)
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-replaced:
		}
	}
}

// RunOnce judges every cached running pod that some policy selects, in (namespace, name) order, sets the
// metrics and logs one audit.violation per failing pod (at most MaxEvents, then one audit.truncated), and
// audit.completed.
func (a *BackgroundAudit) RunOnce(ctx context.Context) AuditSummary {
	set, _ := a.Policies()
	return a.judge(ctx, set)
}

func (a *BackgroundAudit) judge(ctx context.Context, set *policy.Set) AuditSummary {
	start := time.Now()
	log := a.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxEvents := a.MaxEvents
	if maxEvents <= 0 {
		maxEvents = DefaultAuditMaxEvents
	}
	pods := a.Pods.Running("")
	SortPods(pods)
	namespaces := map[string]policy.Namespace{}
	counts := map[[2]string]int{}
	findings := map[string]NamespaceFindings{}
	var sum AuditSummary
	unlogged := 0
	// record counts one judged object: its report results, the metric (objects failing a check of a policy),
	// and its audit.violation event while under the cap.
	record := func(obj ReportResource, res policy.Result) {
		f := findings[obj.Namespace]
		f.Pass += passingPolicies(res)
		f.Results = append(f.Results, objectResults(obj, res.Violations)...)
		findings[obj.Namespace] = f
		if len(res.Violations) == 0 {
			return
		}
		sum.Violating++
		var pairs [][2]string
		for _, v := range res.Violations {
			if k := [2]string{v.Policy, v.Check}; !slices.Contains(pairs, k) {
				pairs = append(pairs, k)
				counts[k]++
			}
		}
		if sum.Violating > maxEvents {
			unlogged++
			return
		}
		checks := make([]string, len(pairs))
		for i, k := range pairs {
			checks[i] = k[0] + "/" + k[1]
		}
		log.Warn(obj.what()+" fails its policies", "event", "audit.violation", "namespace", obj.Namespace,
			strings.ToLower(obj.Kind), obj.Name, "allowed", res.Allowed(), "checks", checks, "violations", res.Violations)
	}
	for _, sp := range pods {
		ns, ok := namespaces[sp.Namespace]
		if !ok {
			ns = a.Namespaces.Of(sp.Namespace)
			namespaces[sp.Namespace] = ns
		}
		if !slices.ContainsFunc(set.Policies, func(p *policy.Policy) bool { return p.SelectsPodMeta(ns, sp.Labels) }) {
			continue
		}
		sum.Judged++
		res, err := JudgeStored(set, sp, ns)
		if err != nil {
			sum.Unjudged++
			log.Warn("pod not judged", "event", "audit.unjudged", "namespace", sp.Namespace, "pod", sp.Name, "error", err.Error())
			continue
		}
		record(ReportResource{APIVersion: "v1", Kind: "Pod", Namespace: sp.Namespace, Name: sp.Name, UID: string(sp.UID)}, res)
	}
	if a.NetworkPolicies != nil {
		for _, name := range slices.Sorted(maps.Keys(findings)) { // the namespaces with judged pods
			for _, np := range a.NetworkPolicies(name) {
				res := set.JudgeNetworkPolicy(np, namespaces[name])
				if len(res.Matched) == 0 {
					continue
				}
				sum.NetworkPolicies++
				record(ReportResource{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Namespace: name, Name: np.Name, UID: string(np.UID)}, res)
			}
		}
	}
	if unlogged > 0 {
		log.Warn("more running pods fail their policies: not logged one by one", "event", "audit.truncated",
			"unlogged", unlogged, "max_events", maxEvents)
	}
	// The metrics first: they are what the run found, whatever becomes of the API writes after them.
	if a.violations != nil {
		a.violations.Reset()
		for k, n := range counts {
			a.violations.WithLabelValues(k[0], k[1]).Set(float64(n))
		}
		a.lastRun.SetToCurrentTime()
	}
	sum.Reports, sum.ReportsSkipped = a.writeReports(ctx, findings, log)
	sum.Elapsed = time.Since(start)
	log.Info("background audit done", "event", "audit.completed", "judged", sum.Judged, "violating", sum.Violating,
		"unjudged", sum.Unjudged, "duration", sum.Elapsed.Seconds())
	return sum
}

// passingPolicies counts the policies that selected the pod and found nothing.
func passingPolicies(res policy.Result) int {
	n := 0
	for _, p := range res.Matched {
		if !slices.ContainsFunc(res.Violations, func(v policy.Violation) bool { return v.Policy == p }) {
			n++
		}
	}
	return n
}

// writeReports writes the run's PolicyReports when a writer is set and the CRD is served; a failure is
// logged (audit.reports_failed) and retried by the next run, never fatal to the audit.
func (a *BackgroundAudit) writeReports(ctx context.Context, findings map[string]NamespaceFindings, log *slog.Logger) (ReportWrites, string) {
	if a.Reports == nil {
		return ReportWrites{}, "no writer"
	}
	ok, err := a.Reports.Available()
	if err != nil {
		log.Warn("PolicyReports not written: discovery failed", "event", "audit.reports_failed", "error", err.Error())
		return ReportWrites{}, "discovery failed"
	}
	if !ok {
		return ReportWrites{}, "wgpolicyk8s.io/v1alpha2 PolicyReport not served"
	}
	w, err := a.Reports.Write(ctx, findings, time.Now())
	if err != nil {
		log.Warn("PolicyReports not all written", "event", "audit.reports_failed", "error", err.Error())
	}
	log.Info("PolicyReports written", "event", "audit.reports", "created", w.Created, "updated", w.Updated,
		"deleted", w.Deleted, "unchanged", w.Unchanged)
	return w, ""
}
