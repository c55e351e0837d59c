package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/policy"
	"agentgate.io/agentgate/webhook"
)

const serveUsage = `Usage: agentgate serve [flags]

Serves POST /mutate, /validate and /validate-policy (AdmissionReview v1 and v1beta1), GET /healthz and
/readyz over HTTPS, and /metrics over plain HTTP on --metrics-addr. Logs are JSON lines on stdout.
Without --cert-dir, a self-signed CA and serving certificate are made at start (the log says where).

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
	maxBodyBytes     int64
	kubeconfig       string
	watchConfigMaps  bool
	namespace        string
	shutdownTimeout  time.Duration
	shutdownDelay    time.Duration
	logLevel         string
	policyPollPeriod time.Duration
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("agentgate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	fs.Var(&f.policyFiles, "policy-file", "policy document to serve, watched and reloaded (repeatable); default: the embedded default policy")
	fs.StringVar(&f.addr, "addr", webhook.DefaultAddr, "HTTPS listen address")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "127.0.0.1:8080", `plain-HTTP address of /metrics; "0" disables it`)
	fs.StringVar(&f.certDir, "cert-dir", "", "directory with tls.crt and tls.key (cert-manager, a Secret volume), reloaded on change; empty: self-signed at start")
	fs.StringVar(&f.selfSignedDir, "self-signed-dir", "", "where the self-signed certificate and its ca.crt are written without --cert-dir (default: $TMPDIR/agentgate-selfsigned-PORT)")
	fs.StringVar(&f.clientCA, "client-ca", "", "PEM bundle of CAs: require and verify a client certificate (the API server's)")
	fs.StringVar(&f.tlsMinVersion, "tls-min-version", "1.3", `minimum TLS version, "1.3" or "1.2" (old API servers)`)
	fs.Int64Var(&f.maxBodyBytes, "max-body-bytes", webhook.DefaultMaxBodyBytes, "largest request body accepted (413 above)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for namespace labels and --watch-configmaps (default: in-cluster config, then $KUBECONFIG)")
	fs.BoolVar(&f.watchConfigMaps, "watch-configmaps", false, "serve the policy ConfigMaps labelled agentgate.io/policy=true in --namespace")
	fs.StringVar(&f.namespace, "namespace", "", "namespace of the policy ConfigMaps (default: $POD_NAMESPACE, then the service account's namespace)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", webhook.DefaultShutdownTimeout, "how long in-flight requests may drain after SIGTERM")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "keep serving this long after SIGTERM with /readyz failing, so endpoints drop this replica first")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.policyPollPeriod, "policy-poll-interval", 250*time.Millisecond, "how often --policy-file files are re-read")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return f, nil
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
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(stderr, "agentgate serve: --log-level %q: want debug, info, warn or error\n", f.logLevel)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))

	opts := webhook.Options{
		Addr: f.addr, MetricsAddr: f.metricsAddr, MaxBodyBytes: f.maxBodyBytes,
		ShutdownTimeout: f.shutdownTimeout, ShutdownDelay: f.shutdownDelay, Logger: log,
	}
	if f.maxBodyBytes <= 0 {
		fmt.Fprintln(stderr, "agentgate serve: --max-body-bytes must be positive")
		return 2
	}
	switch f.tlsMinVersion {
	case "1.3":
		opts.MinTLSVersion = tls.VersionTLS13
	case "1.2":
		opts.MinTLSVersion = tls.VersionTLS12
	default:
		fmt.Fprintf(stderr, "agentgate serve: --tls-min-version %q: want 1.3 or 1.2\n", f.tlsMinVersion)
		return 2
	}
	if f.clientCA != "" {
		pem, err := os.ReadFile(f.clientCA)
		if err == nil {
			opts.ClientCAs, err = certs.PoolFromPEM(pem)
		}
		if err != nil {
			fmt.Fprintf(stderr, "agentgate serve: --client-ca: %v\n", err)
			return 2
		}
	}

	// An invalid policy file at start is a usage error: say everything wrong with it and do not serve.
	for _, p := range f.policyFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(stderr, "agentgate serve: --policy-file: %v\n", err)
			return 2
		}
		if _, errs := policy.Parse(data); len(errs) > 0 {
			fmt.Fprintf(stderr, "agentgate serve: --policy-file %s: invalid policy:\n", p)
			for _, e := range errs {
				fmt.Fprintf(stderr, "  %s\n", e.Error())
			}
			return 2
		}
	}
	if len(f.policyFiles) > 0 {
		opts.Sources = append(opts.Sources, &webhook.FileSource{Paths: f.policyFiles, Interval: f.policyPollPeriod})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	getCert, selfSigned, code := servingCertificate(ctx, f, log, stderr)
	if getCert == nil {
		return code
	}
	opts.GetCertificate = getCert

	if f.kubeconfig != "" || f.watchConfigMaps {
		if code := connectCluster(ctx, f, &opts, log, stderr); code != 0 {
			return code
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
	if started != nil {
		started(srv)
	}
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(stderr, "agentgate serve:", err)
		return 1
	}
	return 0
}

// selfSignedFiles is where a self-signed pair made at start was written.
type selfSignedFiles struct{ ca, cert, key string }

// servingCertificate returns the certificate source: certwatcher over --cert-dir (reloaded without a
// restart), or a self-signed pair made now (and where it is). A nil func comes with the exit code.
func servingCertificate(ctx context.Context, f *serveFlags, log *slog.Logger, stderr io.Writer) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), *selfSignedFiles, int) {
	if f.certDir != "" {
		cw, err := certwatcher.New(filepath.Join(f.certDir, certs.CertFileName), filepath.Join(f.certDir, certs.KeyFileName))
		if err != nil {
			fmt.Fprintf(stderr, "agentgate serve: --cert-dir: %v\n", err)
			return nil, nil, 2
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
	return webhook.StaticCertificate(pair), &selfSignedFiles{ca: caFile, cert: certFile, key: keyFile}, 0
}

// connectCluster adds the namespace-label informer and, with --watch-configmaps, the policy ConfigMaps.
func connectCluster(ctx context.Context, f *serveFlags, opts *webhook.Options, log *slog.Logger, stderr io.Writer) int {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: no cluster configuration (--kubeconfig, in-cluster, $KUBECONFIG): %v\n", err)
		return 2
	}
	cfg.UserAgent = "agentgate/" + version
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return 2
	}
	nsInf, err := webhook.StartNamespaceInformer(ctx, client)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate serve: %v\n", err)
		return 1
	}
	opts.Namespaces = nsInf
	opts.ReadyChecks = map[string]func() error{"namespaces": nsInf.Ready}
	if f.watchConfigMaps {
		ns := f.namespace
		if ns == "" {
			ns = os.Getenv("POD_NAMESPACE")
		}
		if ns == "" {
			if data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
				ns = strings.TrimSpace(string(data))
			}
		}
		if ns == "" {
			fmt.Fprintln(stderr, "agentgate serve: --watch-configmaps needs --namespace (or $POD_NAMESPACE)")
			return 2
		}
		opts.Sources = append(opts.Sources, &webhook.ConfigMapSource{Client: client, Namespace: ns})
		log.Info("watching policy ConfigMaps", "event", "policy.watch", "namespace", ns, "selector", webhook.PolicyLabel+"="+webhook.PolicyLabelValue)
	}
	log.Info("namespace labels from the cluster", "event", "cluster.connected", "host", cfg.Host)
	return 0
}
