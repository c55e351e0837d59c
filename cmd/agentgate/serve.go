package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/policy"
	"agentgate.io/agentgate/webhook"
)

const serveUsage = `Usage: agentgate serve [flags]

Serves POST /mutate, /validate, /validate-policy and /validate-guard (AdmissionReview v1 and v1beta1),
GET /healthz and /readyz over HTTPS, and /metrics over plain HTTP on --metrics-addr. Logs are JSON lines on
stdout.
Certificates: --cert-secret keeps a CA and serving certificate in a Secret, rotates them with overlap and injects
caBundle into the webhook configurations (what the manifests deploy); --cert-dir reads files (cert-manager),
reloaded on change; with neither, a self-signed CA and serving certificate are made at start (the log says where).

Flags:
`

// repeatedFlag is a repeatable flag.
type repeatedFlag []string

func (l *repeatedFlag) String() string     { return strings.Join(*l, ",") }
func (l *repeatedFlag) Set(v string) error { *l = append(*l, v); return nil }

type serveFlags struct {
	policyFiles      repeatedFlag
	addr             string
	metricsAddr      string
	certDir          string
	selfSignedDir    string
	clientCA         string
	tlsMinVersion    string
	http2            bool
	maxBodyBytes     int64
	kubeconfig       string
	watchConfigMaps  bool
	namespace        string
	shutdownTimeout  time.Duration
	shutdownDelay    time.Duration
	logLevel         string
	digestTimeout    time.Duration
	policyPollPeriod time.Duration
	adminGroups      repeatedFlag
	podTemplateKinds podTemplateKindFlag
	auditInterval    time.Duration
	policyReports    bool

	// Validated forms of the flags above, set by parseServeFlags.
	level          slog.Level
	minTLSVersion  uint16
	adminGroupList []string
	clientCAs      *x509.CertPool
	kindTable      *policy.PodTemplateKinds

	// --cert-secret: the certs.Rotator.
	certSecret            string
	webhookConfigurations string
	serviceName           string
	certDNSNames          string
	certIPSANs            string
	caValidity            time.Duration
	caLookahead           time.Duration
	servingValidity       time.Duration
	servingLookahead      time.Duration
	certOverlap           time.Duration
	certCheckInterval     time.Duration
	certNoOverlap         bool
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("agentgate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		printVisibleDefaults(fs, stderr)
	}
	fs.Var(&f.policyFiles, "policy-file", "policy document to serve, watched and reloaded (repeatable); default: the embedded default policy")
	fs.StringVar(&f.addr, "addr", webhook.DefaultAddr, "HTTPS listen address")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "127.0.0.1:8080", `plain-HTTP address of /metrics; "0" disables it`)
	fs.StringVar(&f.certDir, "cert-dir", "", "directory with tls.crt and tls.key (cert-manager, a Secret volume), reloaded on change (excludes --cert-secret); neither: self-signed at start")
	fs.StringVar(&f.selfSignedDir, "self-signed-dir", "", "where the self-signed certificate and its ca.crt are written without --cert-dir (default: $TMPDIR/agentgate-selfsigned-PORT)")
	fs.StringVar(&f.clientCA, "client-ca", "", "PEM bundle of CAs: require and verify a client certificate (the API server's)")
	fs.StringVar(&f.tlsMinVersion, "tls-min-version", "1.3", `minimum TLS version, "1.3" or "1.2" (old API servers)`)
	fs.BoolVar(&f.http2, "http2", false, "offer HTTP/2 as well as HTTP/1.1 (the API server calls webhooks over HTTP/1.1 except on loopback)")
	fs.Int64Var(&f.maxBodyBytes, "max-body-bytes", webhook.DefaultMaxBodyBytes, "largest request body accepted (413 above)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for namespace labels, --watch-configmaps and --cert-secret (default: in-cluster config, then $KUBECONFIG)")
	fs.BoolVar(&f.watchConfigMaps, "watch-configmaps", false, "serve the policy ConfigMaps labelled agentgate.io/policy=true in --namespace")
	fs.StringVar(&f.namespace, "namespace", "", "namespace of the policy ConfigMaps and of --cert-secret (default: $POD_NAMESPACE, then the service account's namespace)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", webhook.DefaultShutdownTimeout, "how long in-flight requests may drain after SIGTERM")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "keep serving this long after SIGTERM with /readyz failing, so endpoints drop this replica first")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.digestTimeout, "digest-timeout", webhook.DefaultDigestTimeout, "how long resolving one image tag to a digest may take (policies with images.pinDigests)")
	fs.BoolVar(&f.policyReports, "policy-reports", true, "with the background audit: write its findings as one wgpolicyk8s.io/v1alpha2 PolicyReport per agent namespace (named agentgate), while the API server serves that CRD")
	fs.DurationVar(&f.auditInterval, "audit-interval", time.Hour, "with a cluster and --namespace: how often the background audit judges the running agent pods (also after each policy change; one replica at a time, lease agentgate-audit); 0 disables it")
	fs.DurationVar(&f.policyPollPeriod, "policy-poll-interval", 250*time.Millisecond, "how often --policy-file files are re-read")
	fs.Var(&f.podTemplateKinds, "pod-template-kind", podTemplateKindUsage)
	fs.Var(&f.adminGroups, "admin-groups", "groups that may remove agentgate.io/agents from a namespace or switch a policy ConfigMap off (/validate-guard); repeatable or comma-separated (default system:masters)")
	fs.StringVar(&f.certSecret, "cert-secret", "", "Secret in --namespace that holds a self-managed CA and serving certificate: created, renewed and served from memory, CA injected into caBundle (excludes --cert-dir)")
	fs.StringVar(&f.webhookConfigurations, "webhook-configurations", "agentgate", "with --cert-secret: comma-separated names; the Validating and the Mutating webhook configuration of each name get caBundle")
	fs.StringVar(&f.serviceName, "service-name", "agentgate-webhook", "with --cert-secret: the Service the API server calls, for the default --cert-dns-names")
	fs.StringVar(&f.certDNSNames, "cert-dns-names", "", "with --cert-secret: comma-separated DNS names of the serving certificate (default SERVICE.NAMESPACE.svc and SERVICE.NAMESPACE.svc.cluster.local)")
	fs.StringVar(&f.certIPSANs, "cert-ip-sans", "", "with --cert-secret: comma-separated IP addresses the serving certificate names too (a webhook URL on loopback)")
	fs.DurationVar(&f.caValidity, "ca-validity", certs.DefaultCAValidity, "with --cert-secret: lifetime of a new CA")
	fs.DurationVar(&f.caLookahead, "ca-lookahead", 0, "with --cert-secret: how long before the CA expires its replacement starts (default a third of --ca-validity)")
	fs.DurationVar(&f.servingValidity, "serving-validity", certs.DefaultServingValidity, "with --cert-secret: lifetime of a serving certificate")
	fs.DurationVar(&f.servingLookahead, "serving-lookahead", 0, "with --cert-secret: how long before the serving certificate expires it is renewed (default a third of --serving-validity)")
	fs.DurationVar(&f.certOverlap, "cert-overlap", certs.DefaultOverlap, "with --cert-secret: how long a new CA is trusted in caBundle before it signs, and the old one after")
	fs.DurationVar(&f.certCheckInterval, "cert-check-interval", certs.DefaultCheckInterval, "with --cert-secret: longest time between two reads of the Secret when no watch event comes")
	fs.BoolVar(&f.certNoOverlap, "cert-no-overlap", false, "tests only: swap the CA in one step, without overlap (the failure mode the overlap prevents)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := f.validate(fs); err != nil {
		return nil, err
	}
	return f, nil
}

// validate turns every flag into its usable form, or says which flag is wrong and what it wants: a usage
// error (exit 2) before anything starts.
func (f *serveFlags) validate(fs *flag.FlagSet) error {
	if err := f.level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	for _, g := range f.adminGroups {
		f.adminGroupList = append(f.adminGroupList, splitList(g)...)
	}
	if len(f.adminGroups) > 0 && len(f.adminGroupList) == 0 {
		return errors.New("--admin-groups names no group")
	}
	if f.maxBodyBytes <= 0 {
		return errors.New("--max-body-bytes must be positive")
	}
	var err error
	if f.kindTable, err = f.podTemplateKinds.table(); err != nil {
		return fmt.Errorf("--pod-template-kind: %w", err)
	}
	switch f.tlsMinVersion {
	case "1.3":
		f.minTLSVersion = tls.VersionTLS13
	case "1.2":
		f.minTLSVersion = tls.VersionTLS12
	default:
		return fmt.Errorf("--tls-min-version %q: want 1.3 or 1.2", f.tlsMinVersion)
	}
	if f.clientCA != "" {
		pem, err := os.ReadFile(f.clientCA)
		if err == nil {
			f.clientCAs, err = certs.PoolFromPEM(pem)
		}
		if err != nil {
			return fmt.Errorf("--client-ca: %w", err)
		}
	}
	// An invalid policy file at start is a usage error: say everything wrong with it and do not serve.
	for _, p := range f.policyFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--policy-file: %w", err)
		}
		if _, errs := policy.Parse(data); len(errs) > 0 {
			var b strings.Builder
			for _, e := range errs {
				b.WriteString("\n  " + e.Error())
			}
			return fmt.Errorf("--policy-file %s: invalid policy:%s", p, b.String())
		}
	}
	return checkCertFlags(fs, f)
}

// runServe is the `agentgate serve` command: JSON logs on stdout, usage errors on stderr.
func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	return serve(ctx, args, os.Stdout, stderr, nil)
}

// serve returns 0 after a clean shutdown, 1 when serving fails, 2 on unusable flags or policy. started, when
// set, receives the server once it listens (tests read its address).
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, started func(*webhook.Server)) int {
	f, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "agentgate serve:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: f.level}))

	opts := webhook.Options{
		Addr: f.addr, MetricsAddr: f.metricsAddr, MaxBodyBytes: f.maxBodyBytes, HTTP2: f.http2,
		MinTLSVersion: f.minTLSVersion, ClientCAs: f.clientCAs, AdminGroups: f.adminGroupList,
		ShutdownTimeout: f.shutdownTimeout, ShutdownDelay: f.shutdownDelay, Logger: log, PodTemplateKinds: f.kindTable,
	}

	if len(f.policyFiles) > 0 {
		opts.Sources = append(opts.Sources, &webhook.FileSource{Paths: f.policyFiles, Interval: f.policyPollPeriod})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One registry for the server's metrics and the certificate expiry gauge.
	opts.Registry = webhook.NewRegistry()
	// Tags are resolved only for policies with images.pinDigests; the resolver costs nothing otherwise.
	digests, err := webhook.NewDigestResolver(webhook.DigestResolverOptions{Timeout: f.digestTimeout, Logger: log, Registerer: opts.Registry})
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return 2
	}
	opts.DigestResolver = digests

	var client kubernetes.Interface
	var reports *cluster.PolicyReports
	if f.kubeconfig != "" || f.watchConfigMaps || f.certSecret != "" {
		var code int
		if client, reports, code = connectCluster(ctx, f, &opts, log, stderr); code != 0 {
			return code
		}
	}
	if declared := opts.PodTemplateKinds.Declared(); len(declared) > 0 {
		log.Info("judging declared pod-template kinds", "event", "kinds.declared", "kinds", f.podTemplateKinds.String())
		if client != nil {
			go warnUnservedKinds(ctx, client.Discovery(), declared, log)
		} else {
			log.Info("declared pod-template kinds not checked against an API server (no cluster)", "event", "kinds.unchecked")
		}
	}
	var audit *cluster.BackgroundAudit
	if pods, ok := opts.Pods.(*cluster.PodCache); ok && f.auditInterval > 0 {
		audit = &cluster.BackgroundAudit{Pods: pods, Namespaces: cluster.Namespaces{Labels: opts.Namespaces.Labels}, Interval: f.auditInterval, Logger: log, Reports: reports}
		if opts.TokenSecrets != nil {
			audit.Namespaces.IsTokenSecret = opts.TokenSecrets.IsTokenSecret
		}
		if err := audit.Register(opts.Registry); err != nil {
			fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
			return 2
		}
	}
	var selfSigned *selfSignedFiles
	if f.certSecret != "" {
		rot, code := certRotator(f, client, opts.Registry, log, stderr)
		if rot == nil {
			return code
		}
		rotatorDone := make(chan struct{})
		go func() {
			defer close(rotatorDone)
			if err := rot.Start(ctx); err != nil {
				log.Error("certificate rotator stopped", "event", "cert.rotator_failed", "error", err.Error())
			}
		}()
		// Deferred calls run last first: stop the rotator and wait for its watches before returning.
		defer func() { cancel(); <-rotatorDone }()
		opts.GetCertificate = rot.GetCertificate
		if opts.ReadyChecks == nil {
			opts.ReadyChecks = map[string]func() error{}
		}
		opts.ReadyChecks["certificates"] = rot.Ready
	} else {
		getCert, files, code := servingCertificate(ctx, f, opts.Registry, log, stderr)
		if getCert == nil {
			return code
		}
		opts.GetCertificate, selfSigned = getCert, files
	}
	// The network sandbox needs agentgate's namespace (its Lease); without one there is nothing to lead.
	networkNS := ""
	if client != nil {
		if networkNS = serveNamespace(f); networkNS != "" {
			if err := prepareNetwork(ctx, client, networkNS, &opts, log); err != nil {
				fmt.Fprintln(stderr, "agentgate serve:", err)
				return 1
			}
			if audit != nil {
				audit.NetworkPolicies = opts.NetworkPolicies.Others
			}
		}
	}
	if len(opts.Sources) == 0 {
		log.Info("no --policy-file and no --watch-configmaps: serving the embedded default policy", "event", "policy.default")
	}

	srv, err := webhook.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "agentgate serve:", err)
		return 2
	}
	// Every replica exports the owner's series, whether or not it runs (or leads) the owner.
	networkMetrics, err := cluster.NewNetworkMetrics(opts.Registry)
	if err != nil {
		fmt.Fprintln(stderr, "agentgate serve:", err)
		return 1
	}
	if networkNS != "" {
		if err := startNetworkOwner(ctx, client, networkNS, srv, log, networkMetrics); err != nil {
			fmt.Fprintln(stderr, "agentgate serve:", err)
			return 1
		}
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintln(stderr, "agentgate serve:", err)
		return 1
	}
	if selfSigned != nil {
		addr := srv.Addr().(*net.TCPAddr)
		host := addr.IP.String()
		if addr.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
		log.Info("self-signed serving certificate made at start: trust its CA", "event", "cert.self_signed",
			"ca", selfSigned.ca, "cert", selfSigned.cert, "key", selfSigned.key,
			"hint", fmt.Sprintf("curl --cacert %s -H 'Content-Type: application/json' --data @examples/review-pod.json https://%s/validate",
				selfSigned.ca, net.JoinHostPort(host, fmt.Sprint(addr.Port))))
	}
	if audit != nil {
		startBackgroundAudit(ctx, f, client, srv, audit, log)
	}
	if started != nil {
		started(srv)
	}
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(stderr, "agentgate serve:", err)
		return 1
	}
	return 0
}

// startBackgroundAudit runs the audit on the replica that holds the lease agentgate-audit in agentgate's
// namespace, judged by the policies this server has in force.
func startBackgroundAudit(ctx context.Context, f *serveFlags, client kubernetes.Interface, srv *webhook.Server, audit *cluster.BackgroundAudit, log *slog.Logger) {
	ns := serveNamespace(f)
	if ns == "" {
		// Namespace labels and the preview need no namespace; refusing to start for the audit's sake would
		// break them. Said once, at start.
		log.Warn("no background audit: its lease needs --namespace (or $POD_NAMESPACE)", "event", "audit.disabled")
		return
	}
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		identity, _ = os.Hostname()
	}
	audit.Policies = srv.Policies().Current
	go func() {
		err := cluster.RunAsLeader(ctx, cluster.LeaderOptions{Client: client, Namespace: ns, Name: "agentgate-audit", Identity: identity, Logger: log}, audit.Run)
		if err != nil {
			log.Error("background audit not started", "event", "audit.failed", "error", err.Error())
		}
	}()
	log.Info("background audit", "event", "audit.scheduled", "interval", f.auditInterval.String(), "lease", ns+"/agentgate-audit", "identity", identity)
}

// selfSignedFiles is where a self-signed pair made at start was written.
type selfSignedFiles struct{ ca, cert, key string }

// servingCertificate returns the certificate source: certwatcher over --cert-dir (reloaded without a
// restart), or a self-signed pair made now (and where it is). A nil func comes with the exit code.
func servingCertificate(ctx context.Context, f *serveFlags, reg prometheus.Registerer, log *slog.Logger, stderr io.Writer) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), *selfSignedFiles, int) {
	if f.certDir != "" {
		cw, err := certwatcher.New(filepath.Join(f.certDir, certs.CertFileName), filepath.Join(f.certDir, certs.KeyFileName))
		if err != nil {
			fmt.Fprintf(stderr, "agentgate serve: --cert-dir: %v\n", err)
			return nil, nil, 2
		}
		if err := reg.Register(&certs.FileExpiry{GetCertificate: cw.GetCertificate, CAFile: filepath.Join(f.certDir, certs.CAFileName)}); err != nil {
			fmt.Fprintf(stderr, "agentgate serve: registering the certificate expiry metric: %v\n", err)
			return nil, nil, 1
		}
		go func() {
			if err := cw.Start(ctx); err != nil {
				log.Error("certificate watcher stopped", "event", "cert.watch_failed", "error", err.Error())
			}
		}()
		log.Info("serving certificate from --cert-dir, reloaded on change", "event", "cert.loaded", "dir", f.certDir)
		return cw.GetCertificate, nil, 0
	}
	host, port, err := net.SplitHostPort(f.addr)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: --addr %q: %v\n", f.addr, err)
		return nil, nil, 2
	}
	dir := f.selfSignedDir
	if dir == "" {
		if port == "0" {
			if dir, err = os.MkdirTemp("", "agentgate-selfsigned-"); err != nil {
				fmt.Fprintln(stderr, "agentgate serve:", err)
				return nil, nil, 1
			}
		} else {
			dir = filepath.Join(os.TempDir(), "agentgate-selfsigned-"+port)
		}
	}
	var hosts []string
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		hosts = append(hosts, host)
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	certFile, keyFile, caFile, err := certs.SelfSigned(dir, hosts)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: making a self-signed certificate: %v\n", err)
		return nil, nil, 1
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: loading the self-signed certificate: %v\n", err)
		return nil, nil, 1
	}
	getCert := webhook.StaticCertificate(pair)
	if err := reg.Register(&certs.FileExpiry{GetCertificate: getCert, CAFile: caFile}); err != nil {
		fmt.Fprintf(stderr, "agentgate serve: registering the certificate expiry metric: %v\n", err)
		return nil, nil, 1
	}
	return getCert, &selfSignedFiles{ca: caFile, cert: certFile, key: keyFile}, 0
}

// connectCluster adds the namespace-label and service-account token Secret informers and, with --watch-configmaps, the policy ConfigMaps, and
// returns the client (--cert-secret's rotator uses it too) and, with --policy-reports, the background audit's
// PolicyReport writer. A nil client comes with the exit code.
func connectCluster(ctx context.Context, f *serveFlags, opts *webhook.Options, log *slog.Logger, stderr io.Writer) (kubernetes.Interface, *cluster.PolicyReports, int) {
	cfg, err := clusterConfig(f.kubeconfig, "agentgate")
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return nil, nil, 2
	}
	// client-go's default of 5 requests/s (burst 10) queues requests client-side: the certificate rotator re-reads
	// the Secret on every event of its Secret and webhook configurations, and a burst of such events (someone
	// rewriting the configurations) then delayed renewals by seconds in the e2e tests. The API server's priority
	// and fairness is what protects it.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return nil, nil, 2
	}
	nsInf, err := webhook.StartNamespaceInformer(ctx, client)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return nil, nil, 1
	}
	opts.Namespaces = nsInf
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return nil, nil, 2
	}
	tokens := webhook.StartTokenSecretInformer(ctx, mc)
	opts.TokenSecrets = tokens
	// The pods of agent namespaces, for /validate-exec (a CONNECT carries the session's options, not the pod),
	// the preview of a policy change at /validate-policy and the background audit.
	pods, err := cluster.StartPodCache(ctx, client)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return nil, nil, 1
	}
	opts.Pods = pods
	opts.ReadyChecks = map[string]func() error{"namespaces": nsInf.Ready, "token-secrets": tokens.Ready, "pods": pods.Ready}
	if f.watchConfigMaps {
		ns := serveNamespace(f)
		if ns == "" {
			fmt.Fprintln(stderr, "agentgate serve: --watch-configmaps needs --namespace (or $POD_NAMESPACE)")
			return nil, nil, 2
		}
		opts.Sources = append(opts.Sources, &webhook.ConfigMapSource{Client: client, Namespace: ns})
		opts.PolicyNamespace = ns
		log.Info("watching policy ConfigMaps", "event", "policy.watch", "namespace", ns, "selector", policy.ConfigMapSelector)
	}
	var reports *cluster.PolicyReports
	if f.policyReports {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
			return nil, nil, 2
		}
		reports = &cluster.PolicyReports{Client: dyn, Discovery: client.Discovery()}
	}
	log.Info("namespace labels from the cluster", "event", "cluster.connected", "host", cfg.Host)
	return client, reports, 0
}

// serveNamespace is agentgate's own namespace: --namespace, $POD_NAMESPACE, then the service account's.
func serveNamespace(f *serveFlags) string {
	if f.namespace != "" {
		return f.namespace
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(data))
	}
	return ""
}

// rotatorFlags mean something only with --cert-secret.
var rotatorFlags = []string{"webhook-configurations", "service-name", "cert-dns-names", "cert-ip-sans", "ca-validity",
	"ca-lookahead", "serving-validity", "serving-lookahead", "cert-overlap", "cert-check-interval", "cert-no-overlap"}

// hiddenServeFlags exist for tests and stay out of -h.
var hiddenServeFlags = map[string]bool{"cert-no-overlap": true}

// checkCertFlags allows one certificate source: --cert-dir, --cert-secret, or neither (self-signed).
func checkCertFlags(fs *flag.FlagSet, f *serveFlags) error {
	if f.certDir != "" && f.certSecret != "" {
		return errors.New("--cert-dir and --cert-secret exclude each other: files written by someone else (cert-manager), or a Secret agentgate manages")
	}
	if f.certSecret != "" {
		return nil
	}
	var stray []string
	fs.Visit(func(fl *flag.Flag) {
		if slices.Contains(rotatorFlags, fl.Name) {
			stray = append(stray, "--"+fl.Name)
		}
	})
	if len(stray) > 0 {
		return fmt.Errorf("%s only apply with --cert-secret", strings.Join(stray, ", "))
	}
	return nil
}

// printVisibleDefaults is fs.PrintDefaults without the hidden flags.
func printVisibleDefaults(fs *flag.FlagSet, w io.Writer) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(w)
	fs.VisitAll(func(fl *flag.Flag) {
		if !hiddenServeFlags[fl.Name] {
			shown.Var(fl.Value, fl.Name, fl.Usage)
			shown.Lookup(fl.Name).DefValue = fl.DefValue
		}
	})
	shown.PrintDefaults()
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// certRotator builds the Secret-backed rotator of --cert-secret: the Secret is the source of truth shared by
// every replica, the certificate is served from memory, and the CA goes into caBundle of the named webhook
// configurations (both kinds). A nil rotator comes with the exit code.
func certRotator(f *serveFlags, client kubernetes.Interface, reg prometheus.Registerer, log *slog.Logger, stderr io.Writer) (*certs.Rotator, int) {
	ns := serveNamespace(f)
	if ns == "" {
		fmt.Fprintln(stderr, "agentgate serve: --cert-secret needs --namespace (or $POD_NAMESPACE)")
		return nil, 2
	}
	dnsNames := splitList(f.certDNSNames)
	if len(dnsNames) == 0 {
		if f.serviceName == "" {
			fmt.Fprintln(stderr, "agentgate serve: --cert-secret needs --service-name or --cert-dns-names")
			return nil, 2
		}
		dnsNames = []string{f.serviceName + "." + ns + ".svc", f.serviceName + "." + ns + ".svc.cluster.local"}
	}
	var ips []net.IP
	for _, s := range splitList(f.certIPSANs) {
		ip := net.ParseIP(s)
		if ip == nil {
			fmt.Fprintf(stderr, "agentgate serve: --cert-ip-sans: %q is not an IP address\n", s)
			return nil, 2
		}
		ips = append(ips, ip)
	}
	configs := splitList(f.webhookConfigurations)
	rot, err := certs.NewRotator(certs.Options{
		Client: client, Namespace: ns, SecretName: f.certSecret,
		ValidatingWebhookConfigurations: configs, MutatingWebhookConfigurations: configs,
		DNSNames: dnsNames, IPAddresses: ips,
		CAValidity: f.caValidity, CALookahead: f.caLookahead,
		ServingValidity: f.servingValidity, ServingLookahead: f.servingLookahead,
		Overlap: f.certOverlap, NoOverlap: f.certNoOverlap, CheckInterval: f.certCheckInterval,
		Logger: log, Registerer: reg,
	})
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: --cert-secret: %v\n", err)
		return nil, 2
	}
	log.Info("certificates kept in a Secret, renewed before expiry and served from memory", "event", "cert.managed",
		"secret", ns+"/"+f.certSecret, "webhookConfigurations", configs, "dnsNames", dnsNames, "ipAddresses", splitList(f.certIPSANs))
	if f.certNoOverlap {
		log.Warn("--cert-no-overlap: a CA rotation swaps the CA in one step, and admissions fail meanwhile", "event", "cert.no_overlap")
	}
	return rot, 0
}
