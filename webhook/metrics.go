package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// durationBuckets reach from 100 µs (a small pod on a warm server) past the 5 s webhook timeout agentgate's
// configurations use, up to the API server's 30 s maximum: a histogram whose last finite bucket is below the
// timeout cannot tell "slow" from "timed out".
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// bodyBuckets: from a minimal pod (~1 KiB) to the default 8 MiB body limit.
var bodyBuckets = prometheus.ExponentialBuckets(256, 4, 9) // 256 B … 16 MiB

// metrics are agentgate's own series, all prefixed agentgate_. Label values come from bounded sets only
// (endpoints, known kinds and operations, policy and check names): a client cannot create series at will.
type metrics struct {
	requests     *prometheus.CounterVec   // endpoint, kind, operation, result
	violations   *prometheus.CounterVec   // policy, check, mode, kind
	exemptions   *prometheus.CounterVec   // policy, reason
	duration     *prometheus.HistogramVec // endpoint
	bodyBytes    *prometheus.HistogramVec // endpoint
	badRequests  *prometheus.CounterVec   // endpoint, reason
	generation   prometheus.Gauge
	reloads      *prometheus.CounterVec // result
	sourceValid  *prometheus.GaugeVec   // source
	policyLoaded *prometheus.GaugeVec   // policy, source: 1 per policy in force
	unknown      *unknownFields         // agentgate_unknown_fields_total{area} and the paths logged once
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_admission_requests_total",
			Help: "AdmissionReviews answered, by endpoint, object kind, operation and result (allowed, denied, warned, error).",
		}, []string{"endpoint", "kind", "operation", "result"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_violations_total",
			Help: "Policy violations found by /validate, by policy, check, mode (enforce, warn, audit) and object kind.",
		}, []string{"policy", "check", "mode", "kind"}),
		exemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_exemptions_total",
			Help: "Workloads or containers skipped by a policy exemption, by policy and reason (namespace, serviceAccount, container).",
		}, []string{"policy", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentgate_admission_duration_seconds",
			Help:    "Time from receiving the request to the AdmissionReview answer being ready to send, by endpoint.",
			Buckets: durationBuckets,
		}, []string{"endpoint"}),
		bodyBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentgate_request_body_bytes",
			Help:    "Size of AdmissionReview request bodies, by endpoint.",
			Buckets: bodyBuckets,
		}, []string{"endpoint"}),
		badRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_bad_requests_total",
			Help: "Requests refused before a policy decision (malformed, ambiguous or mistyped reviews, wrong method, content type or size), by endpoint and reason.",
		}, []string{"endpoint", "reason"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentgate_policy_generation",
			Help: "Generation of the policy set in force; it increases every time the set changes.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_policy_reload_total",
			Help: "Policy document updates, by result: success (now in force) or error (rejected, the last good version stays in force).",
		}, []string{"result"}),
		sourceValid: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "agentgate_policy_source_valid",
			Help: "1 when the latest version of a policy source (file or ConfigMap) is valid and in force, 0 when it was rejected.",
		}, []string{"source"}),
		policyLoaded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "agentgate_policy_info",
			Help: "1 for every policy in force, by policy name and source (\"default\" for the embedded default policy).",
		}, []string{"policy", "source"}),
	}
	m.unknown = newUnknownFields()
	for _, c := range []prometheus.Collector{m.requests, m.violations, m.exemptions, m.duration, m.bodyBytes, m.badRequests, m.generation, m.reloads, m.sourceValid, m.policyLoaded, m.unknown.total} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Both results exist from the start, so that rate() and alerts work before the first reload.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("error")
	return m, nil
}

// NewRegistry returns a registry with the Go runtime and process collectors, for Options.Registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
