// Package e2e runs agentgate behind a real kube-apiserver: by default a local control plane (etcd +
// kube-apiserver from bin/, driven by envtest) with the agentgate binary as a child process, registered through
// the project's own webhook configurations; with AGENTGATE_E2E_EXTERNAL=1, any cluster from KUBECONFIG on which
// manifests/ are installed (kind, via make e2e-kind). Every assertion is on what the API server stored or answered.
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/e2e/testcluster"
	"agentgate.io/agentgate/internal/metricstest"
)

const (
	systemNamespace = "agentgate-system"
	agentLabel      = "agentgate.io/agents"
	policyLabel     = "agentgate.io/policy"
	defaultPolicyCM = "agentgate-policy-agents"
	allowedImage    = "registry.corp.example/agents/runner:1.4.2"
	// e2eWebhookName names the loopback copies of manifests/base/webhooks.yaml, so that the manifests
	// themselves can still be applied (dry-run) under their own name.
	e2eWebhookName = "agentgate-e2e"
)

// suite is the environment every test shares.
type suite struct {
	cfg        *rest.Config
	client     kubernetes.Interface
	external   bool
	kubeconfig string
	root       string // repository root
	server     *serverProcess
	caBundle   []byte
}

var env *suite

func TestMain(m *testing.M) {
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func setUp(m *testing.M) (int, error) {
	root := repoRoot()
	s := &suite{root: root}
	env = s
	if os.Getenv("AGENTGATE_E2E_EXTERNAL") == "1" {
		s.external = true
		s.kubeconfig = os.Getenv("KUBECONFIG")
		cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
		if err != nil {
			return 0, fmt.Errorf("AGENTGATE_E2E_EXTERNAL=1 needs a KUBECONFIG: %w", err)
		}
		s.cfg = cfg
		s.client = kubernetes.NewForConfigOrDie(cfg)
		return m.Run(), nil
	}

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return 0, fmt.Errorf("%s not found in %s: run `make test` or `make controlplane`, which build the control plane into bin/", b, assets)
		}
	}
	tmp, err := os.MkdirTemp("", "agentgate-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)

	testEnv := &envtest.Environment{BinaryAssetsDirectory: assets, ErrorIfCRDPathMissing: false}
	start := time.Now()
	cfg, err := testEnv.Start()
	if err != nil {
		return 0, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stopping control plane:", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "e2e: control plane up in %s at %s\n", time.Since(start).Round(time.Millisecond), cfg.Host)
	s.cfg = cfg
	s.client = kubernetes.NewForConfigOrDie(cfg)
	s.kubeconfig = filepath.Join(tmp, "kubeconfig")
	if err := testcluster.WriteKubeconfig(cfg, s.kubeconfig); err != nil {
		return 0, err
	}

	bin := filepath.Join(tmp, "agentgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/agentgate")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("building agentgate: %w", err)
	}

	ctx := context.Background()
	if err := s.installSystemNamespace(ctx); err != nil {
		return 0, err
	}

	certDir := filepath.Join(tmp, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return 0, err
	}
	if _, _, caFile, err := certs.SelfSigned(certDir, nil); err != nil {
		return 0, err
	} else if s.caBundle, err = os.ReadFile(caFile); err != nil {
		return 0, err
	}

	s.server = &serverProcess{bin: bin, certDir: certDir, kubeconfig: s.kubeconfig, logPath: filepath.Join(tmp, "agentgate.log")}
	if err := s.server.start(); err != nil {
		return 0, err
	}
	defer s.server.stop()

	if err := s.installWebhooks(ctx); err != nil {
		return 0, err
	}
	if err := s.waitForWebhook(ctx); err != nil {
		s.server.dumpLog()
		return 0, err
	}
	code := m.Run()
	if code != 0 {
		s.server.dumpLog()
	}
	return code, nil
}

// installSystemNamespace creates agentgate's namespace and the default policy ConfigMap exactly as
// manifests/base holds it.
func (s *suite) installSystemNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}
	if _, err := s.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	policyYAML, err := os.ReadFile(filepath.Join(s.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		return err
	}
	cm := policyConfigMap(defaultPolicyCM, string(policyYAML))
	if _, err := s.client.CoreV1().ConfigMaps(systemNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func policyConfigMap(name, doc string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: systemNamespace, Labels: map[string]string{policyLabel: "true"}},
		Data:       map[string]string{"policy.yaml": doc},
	}
}

// installWebhooks registers manifests/base/webhooks.yaml, pointing each clientConfig at the child process on
// loopback (the Service does not exist here).
func (s *suite) installWebhooks(ctx context.Context) error {
	return testcluster.Webhooks{Name: e2eWebhookName, BaseURL: "https://" + s.server.addr, CABundle: s.caBundle}.Install(ctx, s.client, s.root)
}

// waitForWebhook polls until the API server calls agentgate: webhook configurations reach the API server's
// admission chain asynchronously.
func (s *suite) waitForWebhook(ctx context.Context) error {
	ns, err := s.createNamespace(ctx, "e2e-ready", true)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		pod := agentPod("ready-probe")
		pod.Spec.HostNetwork = true
		_, err := s.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "hostNetwork") {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("the API server never called agentgate within 60s")
}

func (s *suite) createNamespace(ctx context.Context, prefix string, agent bool) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if agent {
		ns.Labels = map[string]string{agentLabel: "true"}
	}
	created, err := s.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return created.Name, nil
}

// agentNamespace is a fresh namespace per test: without kube-controller-manager, deleted namespaces never
// finish terminating, so none is reused.
func agentNamespace(t *testing.T) string {
	t.Helper()
	ns, err := env.createNamespace(context.Background(), "agents", true)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func plainNamespace(t *testing.T) string {
	t.Helper()
	ns, err := env.createNamespace(context.Background(), "plain", false)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// serverProcess is `agentgate serve` as a child process, the way users run it.
type serverProcess struct {
	bin, certDir, kubeconfig, logPath string
	addr, metricsAddr                 string
	cmd                               *exec.Cmd
	log                               *os.File
	exited                            chan struct{}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (p *serverProcess) start() error {
	var err error
	if p.addr == "" {
		if p.addr, err = freePort(); err != nil {
			return err
		}
		if p.metricsAddr, err = freePort(); err != nil {
			return err
		}
	}
	p.log, err = os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.bin, "serve",
		"--addr", p.addr, "--metrics-addr", p.metricsAddr, "--cert-dir", p.certDir,
		"--kubeconfig", p.kubeconfig, "--watch-configmaps", "--namespace", systemNamespace)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting agentgate: %w", err)
	}
	p.exited = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p.waitReady()
}

func (p *serverProcess) waitReady() error {
	client := p.httpsClient()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.dumpLog()
			return errors.New("agentgate exited before it was ready")
		default:
		}
		resp, err := client.Get("https://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.dumpLog()
	return errors.New("agentgate not ready within 30s")
}

func (p *serverProcess) httpsClient() *http.Client {
	pool := x509.NewCertPool()
	if ca, err := os.ReadFile(filepath.Join(p.certDir, "ca.crt")); err == nil {
		pool.AppendCertsFromPEM(ca)
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
}

// stop sends SIGTERM (graceful drain) and waits for the exit.
func (p *serverProcess) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	testcluster.Stop(p.cmd.Process, p.exited, 30*time.Second)
	p.log.Close()
	p.cmd = nil
}

func (p *serverProcess) dumpLog() {
	data, _ := os.ReadFile(p.logPath)
	if len(data) > 20000 {
		data = data[len(data)-20000:]
	}
	fmt.Fprintf(os.Stderr, "--- agentgate log (tail) ---\n%s\n--- end ---\n", data)
}

// metric sums every series of a counter on the server's /metrics whose labels contain all of match.
func (p *serverProcess) metric(t *testing.T, name string, match ...string) float64 {
	t.Helper()
	v, err := metricstest.Fetch("http://"+p.metricsAddr+"/metrics", name, match...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func agentPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "agent"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:    "runner",
				Image:   allowedImage,
				Command: []string{"/agent"},
				Args:    []string{"--queue", "tasks"},
			}},
		},
	}
}

func requireServer(t *testing.T) {
	t.Helper()
	if env.external {
		t.Skip("needs the suite's own agentgate process (not available with AGENTGATE_E2E_EXTERNAL=1)")
	}
}
