package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"agentgate.io/agentgate/policy"
)

// Defaults of Options.
const (
	DefaultAddr              = "127.0.0.1:8443"
	DefaultMaxBodyBytes      = 8 << 20
	DefaultShutdownTimeout   = 25 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 35 * time.Second // past the API server's longest webhook timeout (30 s)
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Options configure a Server. Only GetCertificate is required.
type Options struct {
	// Addr is the HTTPS address; DefaultAddr when empty. Port 0 picks a free port (see Server.Addr).
	Addr string
	// MetricsAddr serves /metrics, /healthz and /readyz over plain HTTP; "" or "0" disables that listener
	// (Server.MetricsHandler still works). Probes need it when ClientCAs is set.
	MetricsAddr string

	// GetCertificate returns the serving certificate for every handshake: a certwatcher's, a Secret-backed
	// rotator's, or StaticCertificate's.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ClientCAs, when set, makes the server require and verify a client certificate (the API server's).
	ClientCAs *x509.CertPool
	// MinTLSVersion defaults to TLS 1.3; tls.VersionTLS12 for old API servers.
	MinTLSVersion uint16
	// HTTP2 offers HTTP/2 beside HTTP/1.1. Off by default: the API server calls every webhook that is not on
	// loopback over HTTP/1.1 (k8s.io/apiserver pkg/util/webhook sets NextProtos to http/1.1, so that concurrent
	// calls spread over a Service's replicas: kubernetes/kubernetes#75791), and HTTP/2 would only add attack
	// surface (rapid reset, CONTINUATION floods) that no caller uses, as kubebuilder's scaffold also decides.
	HTTP2 bool

	// MaxBodyBytes caps request bodies (413 above it); DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64

	// Sources deliver policies; with none, or none holding a valid policy, the embedded default is in force.
	Sources []Source
	// Namespaces gives namespace labels; nil means unknown labels (namespaceSelector matches every
	// namespace, the strict side).
	Namespaces NamespaceLister
	// TokenSecrets tells which Secrets are service-account tokens; nil: unknown, and references to Secrets
	// are not judged by serviceAccountTokenSecrets.
	TokenSecrets TokenSecretLister
	// Pods finds the pod of a session for /validate-exec (cluster.PodCache); nil: the pod is unknown, and every
	// policy whose namespace rules select the namespace judges the session (the strict side).
	// When it also lists the running pods (RunningPods, as cluster.PodCache does), /validate-policy previews a
	// valid policy change against them; otherwise there is no preview.
	Pods PodLookup
	// DigestResolver pins image tags to digests for policies with images.pinDigests; nil: no pinning (the
	// tags stay, and requireDigest, where set, denies them).
	DigestResolver *DigestResolver
	// PodTemplateKinds are the kinds /validate judges by a pod template at a path: agent-sandbox's and those
	// declared with --pod-template-kind. nil: agent-sandbox's only.
	PodTemplateKinds *policy.PodTemplateKinds
	// ReadyChecks are extra conditions of /readyz, by name (for example an informer cache being synced).
	ReadyChecks map[string]func() error

	// AdminGroups may make the changes /validate-guard refuses to everyone else (removing a namespace's
	// agentgate.io/agents label, switching a policy ConfigMap off); DefaultAdminGroups when empty.
	AdminGroups []string
	// PolicyNamespace, when set, limits /validate-guard's policy ConfigMap checks to that namespace (the one
	// the ConfigMap source watches); empty: every namespace the webhook configuration sends.
	PolicyNamespace string
	// ControllerUsers are the usernames agentgate's own NetworkPolicy owner writes as: the guard lets them (and
	// the admins) edit and delete agentgate-egress.
	ControllerUsers []string
	// NetworkPolicies, when set, is asked before a pod that a policy with network.manage selects is admitted:
	// while its namespace lacks agentgate-egress the pod is denied (a retry succeeds once it is there), and
	// while another NetworkPolicy there would let it reach more than the policy allows.
	NetworkPolicies NetworkPolicyReader

	// Logger receives the JSON audit events; JSON on stdout when nil.
	Logger *slog.Logger
	// Registry receives agentgate's metrics; NewRegistry() when nil.
	Registry *prometheus.Registry

	// ShutdownDelay keeps serving, with /readyz failing and every answer saying "Connection: close" (clients
	// move their connections elsewhere), this long after ctx is cancelled, so that endpoints stop routing to
	// this replica before it stops accepting. ShutdownTimeout bounds the drain of in-flight
	// requests that follows (DefaultShutdownTimeout when zero).
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration

	// HTTP server limits; defaults above when zero.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
}

// Server is agentgate's admission webhook: /mutate, /validate, /validate-policy, /healthz and /readyz over
// HTTPS, /metrics over plain HTTP on its own listener.
type Server struct {
	opts     Options
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics
	store    *Store
	handler  http.Handler

	guardMetrics *guardMetrics
	execMetrics  *execMetrics
	sessions     sessionDedupe
	now          func() time.Time // the dedupe's clock; tests move it

	mu         sync.Mutex
	ln, mln    net.Listener
	httpsSrv   *http.Server
	metricsSrv *http.Server

	serving  atomic.Bool
	stopping atomic.Bool

	connState func(net.Conn, http.ConnState) // tests observe connections
}

// New builds a server; nothing listens until Listen or Serve.
func New(opts Options) (*Server, error) {
	if opts.GetCertificate == nil {
		return nil, errors.New("webhook: Options.GetCertificate is required")
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.MetricsAddr == "0" {
		opts.MetricsAddr = ""
	}
	if opts.MinTLSVersion == 0 {
		opts.MinTLSVersion = tls.VersionTLS13
	}
	if opts.MinTLSVersion != tls.VersionTLS12 && opts.MinTLSVersion != tls.VersionTLS13 {
		return nil, fmt.Errorf("webhook: minimum TLS version must be 1.2 or 1.3")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	setDefault(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&opts.ReadTimeout, DefaultReadTimeout)
	setDefault(&opts.WriteTimeout, DefaultWriteTimeout)
	setDefault(&opts.IdleTimeout, DefaultIdleTimeout)
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("webhook: registering metrics: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, registry: opts.Registry, metrics: m}
	if s.guardMetrics, err = newGuardMetrics(opts.Registry); err != nil {
		return nil, fmt.Errorf("webhook: registering metrics: %w", err)
	}
	if s.execMetrics, err = newExecMetrics(opts.Registry); err != nil {
		return nil, fmt.Errorf("webhook: registering metrics: %w", err)
	}
	s.now = time.Now
	s.store = newStore(s.log, m)

	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.Handle("/"+e.name, s.serveReview(e.name, e.decide(s)))
	}
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	s.handler = s.recoverPanics(s.closeWhenDraining(mux))
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Handler serves the HTTPS endpoints without TLS, for in-process use (httptest). Policy sources run only
// under Serve; without them the store holds the embedded default policy.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves the registry in the Prometheus text format.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})
}

// Policies is the policy store: its Snapshot is the set in force; Put, Reject and Remove drive it directly.
func (s *Server) Policies() *Store { return s.store }

// Logger is the server's event logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// TLSConfig is the configuration every handshake uses.
func (s *Server) TLSConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:     s.opts.MinTLSVersion,
		GetCertificate: s.opts.GetCertificate,
	}
	if s.opts.ClientCAs != nil {
		cfg.ClientCAs = s.opts.ClientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// Listen binds the HTTPS (and metrics) listeners, so that an address with port 0 is known (Addr) before
// Serve. Serve calls it when it has not been called.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.opts.Addr, err)
	}
	if s.opts.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.opts.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on %s for metrics: %w", s.opts.MetricsAddr, err)
		}
		s.mln = mln
	}
	s.ln = ln
	return nil
}

// Addr is the bound HTTPS address (nil before Listen).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// MetricsAddr is the bound metrics address (nil before Listen or when disabled).
func (s *Server) MetricsAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mln == nil {
		return nil
	}
	return s.mln.Addr()
}

// Serve runs the policy sources and serves until ctx is cancelled, then stops accepting, drains in-flight
// requests (ShutdownTimeout) and returns nil; an error when listening fails or the drain times out.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(s.opts.HTTP2)
	errLog := slog.NewLogLogger(s.log.With("event", "http.error").Handler(), slog.LevelWarn)
	s.mu.Lock()
	if s.httpsSrv != nil {
		s.mu.Unlock()
		return errors.New("webhook: Serve called twice")
	}
	s.httpsSrv = &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		Protocols:         protocols,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ErrorLog:          errLog,
		ConnState:         s.connState,
	}
	if s.mln != nil {
		// The probes are served here too: with ClientCAs the HTTPS listener refuses the kubelet, which
		// presents no client certificate.
		mux := http.NewServeMux()
		mux.Handle("/metrics", s.MetricsHandler())
		mux.HandleFunc("/healthz", s.healthz)
		mux.HandleFunc("/readyz", s.readyz)
		s.metricsSrv = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
			ReadTimeout:       s.opts.ReadTimeout,
			WriteTimeout:      s.opts.WriteTimeout,
			IdleTimeout:       s.opts.IdleTimeout,
			MaxHeaderBytes:    s.opts.MaxHeaderBytes,
			ErrorLog:          errLog,
		}
	}
	httpsSrv, metricsSrv, ln, mln := s.httpsSrv, s.metricsSrv, s.ln, s.mln
	s.mu.Unlock()

	srcCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	var sources sync.WaitGroup
	for _, src := range s.opts.Sources {
		u := s.store.register(src.Name())
		sources.Go(func() {
			if err := src.Run(srcCtx, u); err != nil && srcCtx.Err() == nil {
				s.log.Error("policy source stopped", "event", "policy.source_failed", "source", src.Name(), "error", err.Error())
			}
		})
	}

	errs := make(chan error, 2)
	go func() { errs <- httpsSrv.ServeTLS(ln, "", "") }()
	if metricsSrv != nil {
		go func() { errs <- metricsSrv.Serve(mln) }()
	}
	attrs := []any{"event", "serve.started", "addr", ln.Addr().String(), "tls_min_version", tlsVersionName(s.opts.MinTLSVersion),
		"client_ca", s.opts.ClientCAs != nil, "max_body_bytes", s.opts.MaxBodyBytes, "admin_groups", s.adminGroups()}
	if mln != nil {
		attrs = append(attrs, "metrics_addr", mln.Addr().String())
	}
	s.log.Info("serving", attrs...)
	if s.opts.Namespaces == nil {
		s.log.Warn("namespace labels are unknown without a cluster: every namespaceSelector matches every namespace (the strict side)",
			"event", "policy.namespace_labels_unknown")
	}
	s.serving.Store(true)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
		s.log.Error("server failed", "event", "serve.failed", "error", serveErr.Error())
	}
	s.stopping.Store(true)
	if serveErr == nil && s.opts.ShutdownDelay > 0 {
		s.log.Info("shutting down: not ready, still serving", "event", "serve.draining", "delay", s.opts.ShutdownDelay.String())
		time.Sleep(s.opts.ShutdownDelay)
	}
	s.log.Info("shutting down: draining in-flight requests", "event", "serve.stopping", "timeout", s.opts.ShutdownTimeout.String())
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	var drainErr error
	if metricsSrv != nil {
		go func() { _ = metricsSrv.Shutdown(shutCtx) }()
	}
	if err := httpsSrv.Shutdown(shutCtx); err != nil {
		drainErr = fmt.Errorf("draining in-flight requests: %w", err)
		_ = httpsSrv.Close()
	}
	s.serving.Store(false)
	stopSources()
	sources.Wait()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	if drainErr != nil {
		s.log.Error("shutdown incomplete", "event", "serve.stopped", "error", drainErr.Error())
		return drainErr
	}
	s.log.Info("stopped", "event", "serve.stopped")
	return nil
}

func tlsVersionName(v uint16) string {
	if v == tls.VersionTLS12 {
		return "1.2"
	}
	return "1.3"
}

// recoverPanics answers 500 instead of dropping the connection if a handler panics, and logs the stack.
// The goal is that it never fires: every input error is a 4xx or a refusal.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.metrics.badRequests.WithLabelValues(endpointLabel(r.URL.Path), "panic").Inc()
				s.log.Error("handler panicked", "event", "http.panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeStatus(w, http.StatusInternalServerError, "agentgate: internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// closeWhenDraining answers "Connection: close" once shutdown has begun (the ShutdownDelay window): an
// HTTP/1.1 client then stops reusing its connection after the answer, and an HTTP/2 client gets a graceful
// GOAWAY and opens its next streams elsewhere, while this replica still serves. Without it, the idle
// keep-alive connections that Shutdown closes race requests already on their way: seen as EOFs in
// e2e/faults_test.go (HTTP/1.1, rolling restart under load).
func (s *Server) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.stopping.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeStatus(w, http.StatusMethodNotAllowed, "agentgate: GET /healthz")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// ReadyStatus is the /readyz detail.
type ReadyStatus struct {
	Ready bool `json:"ready"`
	// Reasons lists what is not ready yet.
	Reasons []string          `json:"reasons,omitempty"`
	TLS     string            `json:"tls"`
	Policy  PolicyStatus      `json:"policy"`
	Checks  map[string]string `json:"checks,omitempty"`
}

// PolicyStatus describes the policy set in force and every source's state.
type PolicyStatus struct {
	Generation uint64       `json:"generation"`
	Default    bool         `json:"default"`
	Policies   []PolicyInfo `json:"policies"`
	// Sources lists every policy document's state; a rejected one keeps its last good policy in force.
	Sources         []SourceStatus `json:"sources"`
	Unsynced        []string       `json:"unsynced,omitempty"`
	LastReloadError string         `json:"lastReloadError,omitempty"`
}

// Ready reports whether the server is ready, with the detail /readyz shows: a policy set is loaded and every
// source has synced, TLS is serving with a certificate, every ReadyCheck passes, and no shutdown has begun.
// A rejected policy update does not make the server unready: the last good policy stays in force.
func (s *Server) Ready() ReadyStatus {
	snap := s.store.Snapshot()
	sources, lastErr := s.store.status()
	st := ReadyStatus{
		Policy: PolicyStatus{Generation: snap.Generation, Default: snap.Default, Policies: snap.Policies, Sources: sources,
			Unsynced: s.store.unsynced(), LastReloadError: lastErr},
		TLS: "ok",
	}
	if st.Policy.Sources == nil {
		st.Policy.Sources = []SourceStatus{}
	}
	if len(st.Policy.Unsynced) > 0 {
		st.Reasons = append(st.Reasons, fmt.Sprintf("policy sources not synced: %v", st.Policy.Unsynced))
	}
	if !s.serving.Load() {
		st.TLS = "not serving"
	} else if cert, err := s.opts.GetCertificate(&tls.ClientHelloInfo{}); err != nil || cert == nil {
		st.TLS = "no serving certificate"
		if err != nil {
			st.TLS += ": " + err.Error()
		}
	}
	if st.TLS != "ok" {
		st.Reasons = append(st.Reasons, "tls: "+st.TLS)
	}
	if len(s.opts.ReadyChecks) > 0 {
		st.Checks = map[string]string{}
		names := make([]string, 0, len(s.opts.ReadyChecks))
		for n := range s.opts.ReadyChecks {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if err := s.opts.ReadyChecks[n](); err != nil {
				st.Checks[n] = err.Error()
				st.Reasons = append(st.Reasons, n+": "+err.Error())
			} else {
				st.Checks[n] = "ok"
			}
		}
	}
	if s.stopping.Load() {
		st.Reasons = append(st.Reasons, "shutting down")
	}
	st.Ready = len(st.Reasons) == 0
	return st
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeStatus(w, http.StatusMethodNotAllowed, "agentgate: GET /readyz")
		return
	}
	st := s.Ready()
	body, _ := json.MarshalIndent(st, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	if !st.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(append(body, '\n'))
}

// StaticCertificate serves one certificate, for a server whose certificate never changes (tests; the
// self-signed pair made at start).
func StaticCertificate(cert tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
}
