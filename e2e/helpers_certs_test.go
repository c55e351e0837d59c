package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/e2e/testcluster"
)

// rotationLabel scopes the certificate tests' webhook configurations to their own namespaces, so that they never
// see the main suite's requests (whose namespaces carry agentgate.io/agents=true) and the main suite never sees
// theirs.
const rotationLabel = "agentgate.io/e2e-rotation"

// startCertServer runs `agentgate serve --cert-secret ...` as a child process on a free loopback port, with the
// given kubeconfig (the identity and the path to the API server), and stops it when the test ends. It does not
// wait for readiness: racing replicas must start together.
func startCertServer(t *testing.T, name, kubeconfig string, args ...string) *serverProcess {
	t.Helper()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return startCertServerAt(t, name, addr, kubeconfig, args...)
}

func startCertServerAt(t *testing.T, name, addr, kubeconfig string, args ...string) *serverProcess {
	t.Helper()
	metricsAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{bin: env.server.bin, kubeconfig: kubeconfig, addr: addr, metricsAddr: metricsAddr,
		logPath: filepath.Join(t.TempDir(), name+".log")}
	if p.log, err = os.Create(p.logPath); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, append([]string{"serve", "--addr", p.addr, "--metrics-addr", p.metricsAddr,
		"--kubeconfig", kubeconfig, "--namespace", systemNamespace, "--cert-ip-sans", "127.0.0.1"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting agentgate %s: %v", name, err)
	}
	p.exited = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s log (tail) ---\n%s", name, certLogTail(p.logPath, 12000))
		}
	})
	return p
}

func certLogTail(path string, n int) string {
	data, _ := os.ReadFile(path)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// waitCertServerReady polls /readyz on the metrics listener: with --cert-secret it turns ready only once a
// certificate is served and every named webhook configuration's caBundle trusts it.
func waitCertServerReady(t *testing.T, p *serverProcess, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		select {
		case <-p.exited:
			t.Fatalf("agentgate exited before it was ready:\n%s", certLogTail(p.logPath, 4000))
		default:
		}
		resp, err := http.Get("http://" + p.metricsAddr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
			last = string(body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("agentgate not ready within %s; last /readyz: %s", timeout, last)
	return 0
}

// certLogEvents returns the JSON log lines of p whose "event" is name.
func certLogEvents(t *testing.T, p *serverProcess, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == name {
			out = append(out, m)
		}
	}
	return out
}

// rotations lists the cert.rotated events of the processes as "cert/stage".
func rotations(t *testing.T, ps ...*serverProcess) []string {
	t.Helper()
	var out []string
	for _, p := range ps {
		for _, ev := range certLogEvents(t, p, "cert.rotated") {
			out = append(out, fmt.Sprintf("%v/%v", ev["cert"], ev["stage"]))
		}
	}
	return out
}

// servedCert is the certificate p presents to a new TLS connection.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the caller checks the chain
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func parseCertsPEM(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	cs, err := certs.ParseCertificatesPEM(data)
	if err != nil {
		t.Fatalf("parsing PEM: %v", err)
	}
	return cs
}

// caNames names the certificates of a PEM bundle by common name (the Rotator's CAs are agentgate-ca@UNIX).
func caNames(bundle []byte) string {
	cs, err := certs.ParseCertificatesPEM(bundle)
	if err != nil {
		return "[unparseable]"
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Subject.CommonName)
	}
	return "[" + strings.Join(names, " ") + "]"
}

func getCertSecret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	s, err := env.client.CoreV1().Secrets(systemNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading Secret %s: %v", name, err)
	}
	return s
}

func deleteCertSecret(t *testing.T, name string) {
	t.Helper()
	err := env.client.CoreV1().Secrets(systemNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// rotationNamespace is a fresh namespace that only the webhook configurations labelled value select.
func rotationNamespace(t *testing.T, value string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rotation-" + value + "-", Labels: map[string]string{rotationLabel: value}}}
	created, err := env.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created.Name
}

// installCertWebhooks creates copies of manifests/base/webhooks.yaml named name, every clientConfig a URL on
// hostPort and caBundle empty (the Rotator injects it), every namespaceSelector narrowed to the namespaces
// labelled rotationLabel=label. They are deleted when the test ends.
func installCertWebhooks(t *testing.T, name, hostPort, label string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := testcluster.SplitYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	point := func(cc *admissionregistrationv1.WebhookClientConfig, sel **metav1.LabelSelector) {
		u := "https://" + hostPort + *cc.Service.Path
		cc.URL, cc.Service, cc.CABundle = &u, nil, nil
		*sel = &metav1.LabelSelector{MatchLabels: map[string]string{rotationLabel: label}}
	}
	arv1 := env.client.AdmissionregistrationV1()
	for _, doc := range docs {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			var c admissionregistrationv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(doc, &c); err != nil {
				t.Fatal(err)
			}
			c.Name = name
			for i := range c.Webhooks {
				point(&c.Webhooks[i].ClientConfig, &c.Webhooks[i].NamespaceSelector)
			}
			if _, err := arv1.MutatingWebhookConfigurations().Create(ctx, &c, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating MutatingWebhookConfiguration %s: %v", name, err)
			}
			t.Cleanup(func() {
				_ = arv1.MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
			})
		case "ValidatingWebhookConfiguration":
			var c admissionregistrationv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(doc, &c); err != nil {
				t.Fatal(err)
			}
			c.Name = name
			for i := range c.Webhooks {
				point(&c.Webhooks[i].ClientConfig, &c.Webhooks[i].NamespaceSelector)
			}
			if _, err := arv1.ValidatingWebhookConfigurations().Create(ctx, &c, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating ValidatingWebhookConfiguration %s: %v", name, err)
			}
			t.Cleanup(func() {
				_ = arv1.ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
			})
		}
	}
}

// webhookBundles returns the caBundle of every webhook entry of both configurations named name, by
// "Kind/webhook".
func webhookBundles(t *testing.T, name string) map[string][]byte {
	t.Helper()
	arv1 := env.client.AdmissionregistrationV1()
	out := map[string][]byte{}
	m, err := arv1.MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Webhooks {
		out["Mutating/"+w.Name] = w.ClientConfig.CABundle
	}
	v, err := arv1.ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range v.Webhooks {
		out["Validating/"+w.Name] = w.ClientConfig.CABundle
	}
	return out
}

// pointWebhooks moves every clientConfig URL of both configurations named name to hostPort, keeping
// everything else (the caBundle the Rotator maintains included).
func pointWebhooks(name, hostPort string) error {
	arv1 := env.client.AdmissionregistrationV1()
	move := func(cc *admissionregistrationv1.WebhookClientConfig) {
		if cc.URL == nil {
			return
		}
		if u, err := url.Parse(*cc.URL); err == nil {
			u.Host = hostPort
			s := u.String()
			cc.URL = &s
		}
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := arv1.MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range c.Webhooks {
			move(&c.Webhooks[i].ClientConfig)
		}
		_, err = arv1.MutatingWebhookConfigurations().Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := arv1.ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range c.Webhooks {
			move(&c.Webhooks[i].ClientConfig)
		}
		_, err = arv1.ValidatingWebhookConfigurations().Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
}

// kubeconfigVia writes a kubeconfig for the suite's admin that reaches the API server at hostPort (a proxy;
// "" for the API server itself) and, when user is set, impersonates that user.
func kubeconfigVia(t *testing.T, hostPort, user string) string {
	t.Helper()
	server := env.cfg.Host
	if hostPort != "" {
		server = "https://" + hostPort
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: env.cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.cfg.CertData, ClientKeyData: env.cfg.KeyData,
		Token: env.cfg.BearerToken, Impersonate: user}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "admin"}
	kc.CurrentContext = "e2e"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiServerHostPort is where the suite's API server listens.
func apiServerHostPort(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(env.cfg.Host)
	if err != nil || u.Host == "" {
		return strings.TrimPrefix(env.cfg.Host, "https://")
	}
	return u.Host
}

// delayProxy forwards TCP connections from its listeners to target, delaying every chunk of bytes by delay in
// each direction (a slow link to the API server), and records when each connection was accepted (a new TLS
// handshake when it fronts agentgate).
type delayProxy struct {
	target atomic.Pointer[string] // settable after start: see startRotationRig
	delay  time.Duration
	lns    []net.Listener

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted []time.Time
	closed   bool
	wg       sync.WaitGroup
}

func startDelayProxy(t *testing.T, target string, delay time.Duration, listeners int) *delayProxy {
	t.Helper()
	p := &delayProxy{delay: delay, conns: map[net.Conn]struct{}{}}
	p.target.Store(&target)
	for range listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.lns = append(p.lns, ln)
		p.wg.Go(func() { p.accept(ln) })
	}
	t.Cleanup(p.close)
	return p
}

func (p *delayProxy) addr(i int) string { return p.lns[i%len(p.lns)].Addr().String() }

func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) accept(ln net.Listener) {
	for {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted = append(p.accepted, time.Now())
		p.mu.Unlock()
		up, err := net.Dial("tcp", *p.target.Load())
		if err != nil {
			down.Close()
			continue
		}
		if !p.track(down) || !p.track(up) {
			down.Close()
			up.Close()
			return
		}
		var once sync.Once
		done := func() { once.Do(func() { down.Close(); up.Close() }) }
		p.wg.Go(func() { p.pipe(up, down); done() })
		p.wg.Go(func() { p.pipe(down, up); done() })
	}
}

// pipe copies src to dst, each chunk written delay after it was read, without slowing the throughput.
func (p *delayProxy) pipe(dst, src net.Conn) {
	if p.delay == 0 {
		_, _ = io.Copy(dst, src)
		return
	}
	type chunk struct {
		at   time.Time
		data []byte
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now().Add(p.delay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			src.Close()
			for range ch {
			}
			return
		}
	}
}

// acceptedSince counts the connections accepted at or after since.
func (p *delayProxy) acceptedSince(since time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.accepted {
		if !at.Before(since) {
			n++
		}
	}
	return n
}

func (p *delayProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	for _, ln := range p.lns {
		ln.Close()
	}
	p.wg.Wait()
}

// podLoad keeps creating pods through the API server from several workers, counting what it asked for and
// what the API server refused, with the refusals in its own words.
type podLoad struct {
	attempted, failed atomic.Int64
	timeouts          atomic.Int64 // failed only because a webhook call timed out (see isTimeoutOnly)
	mu                sync.Mutex
	failures          []string // the first few, verbatim
	firstFail         time.Time
	lastFail          time.Time
	stopped           atomic.Bool
	wg                sync.WaitGroup
}

// isTimeoutOnly says whether a refusal is a webhook call that timed out with no word of TLS or certificates:
// on an overloaded machine the API server's 5 s webhook timeout can expire whatever the certificates do. Any
// other refusal, a TLS or certificate one first of all, counts against the rotation.
func isTimeoutOnly(msg string) bool {
	for _, w := range []string{"tls", "x509", "certificate"} {
		if strings.Contains(msg, w) {
			return false
		}
	}
	return strings.Contains(msg, "context deadline exceeded") || strings.Contains(msg, "Client.Timeout")
}

func startPodLoad(namespace string, workers int) *podLoad {
	l := &podLoad{}
	for w := range workers {
		l.wg.Go(func() {
			// Every create runs to its answer: stopping never cuts a request short.
			for !l.stopped.Load() {
				// generateName: a create that client-go retries after a broken connection is no AlreadyExists.
				pod := agentPod("")
				pod.GenerateName = fmt.Sprintf("load-%d-", w)
				_, err := env.client.CoreV1().Pods(namespace).Create(context.Background(), pod, metav1.CreateOptions{})
				l.attempted.Add(1)
				if err != nil {
					l.failed.Add(1)
					if isTimeoutOnly(err.Error()) {
						l.timeouts.Add(1)
					}
					l.mu.Lock()
					now := time.Now()
					if l.firstFail.IsZero() {
						l.firstFail = now
					}
					l.lastFail = now
					if len(l.failures) < 5 {
						l.failures = append(l.failures, err.Error())
					}
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

func (l *podLoad) finish() (attempted, failed, timeouts int64) {
	l.stopped.Store(true)
	l.wg.Wait()
	return l.attempted.Load(), l.failed.Load(), l.timeouts.Load()
}

func (l *podLoad) words() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) == 0 {
		return "(none)"
	}
	return fmt.Sprintf("between %s and %s; the first %d, as the API server said them:\n  %s",
		l.firstFail.Format("15:04:05.000"), l.lastFail.Format("15:04:05.000"), len(l.failures), strings.Join(l.failures, "\n  "))
}

// churnWebhookURLs moves the webhook URLs of configuration name to the next of the proxy's listeners every
// period, so that the API server opens a new TLS connection to agentgate each time (it keeps its keep-alive
// connections to a host:port otherwise, and a long-lived connection never sees a new certificate).
func churnWebhookURLs(t *testing.T, name string, front *delayProxy, period time.Duration) (stop func() int) {
	t.Helper()
	cctx, cancel := context.WithCancel(context.Background())
	var switches atomic.Int64
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	wg.Go(func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
			}
			if err := pointWebhooks(name, front.addr(i)); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				continue
			}
			switches.Add(1)
		}
	})
	return func() int {
		cancel()
		wg.Wait()
		if firstErr != nil {
			t.Errorf("moving the webhook URLs: %v", firstErr)
		}
		return int(switches.Load())
	}
}

// bundleHistory polls the MutatingWebhookConfiguration name and records every distinct caBundle, as the API
// server's informer would see them.
type bundleHistory struct {
	mu      sync.Mutex
	seen    []string
	stopped atomic.Bool
	wg      sync.WaitGroup
}

func watchBundles(name string) *bundleHistory {
	h := &bundleHistory{}
	h.wg.Go(func() {
		for !h.stopped.Load() {
			if m, err := env.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{}); err == nil && len(m.Webhooks) > 0 {
				names := caNames(m.Webhooks[0].ClientConfig.CABundle)
				h.mu.Lock()
				if len(h.seen) == 0 || h.seen[len(h.seen)-1] != names {
					h.seen = append(h.seen, names)
				}
				h.mu.Unlock()
			}
			time.Sleep(40 * time.Millisecond)
		}
	})
	return h
}

func (h *bundleHistory) finish() []string {
	h.stopped.Store(true)
	h.wg.Wait()
	return slices.Clone(h.seen)
}

// rotationRig is two replicas sharing one Secret: a, on a direct link to the API server, and b, the one the
// API server calls (through front, a pass-through proxy with many ports), on a link delayed by replicaLag.
type rotationRig struct {
	name, ns string
	a, b     *serverProcess
	front    *delayProxy
}

func startRotationRig(t *testing.T, label string, args ...string) *rotationRig {
	t.Helper()
	r := &rotationRig{name: "agentgate-rot-" + label}
	deleteCertSecret(t, r.name)
	t.Cleanup(func() { deleteCertSecret(t, r.name) })
	r.ns = rotationNamespace(t, label)
	// b's port is picked last, right before b binds it: the proxies' own listeners could take it otherwise.
	r.front = startDelayProxy(t, "", 0, 64)
	installCertWebhooks(t, r.name, r.front.addr(0), label)
	args = append([]string{"--cert-secret", r.name, "--webhook-configurations", r.name}, args...)
	r.a = startCertServer(t, label+"-a", kubeconfigVia(t, "", ""), args...)
	waitCertServerReady(t, r.a, readyWithin)
	lag := startDelayProxy(t, apiServerHostPort(t), replicaLag, 1)
	bKubeconfig := kubeconfigVia(t, lag.addr(0), "")
	bAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	r.front.target.Store(&bAddr)
	r.b = startCertServerAt(t, label+"-b", bAddr, bKubeconfig, args...)
	waitCertServerReady(t, r.b, readyWithin)
	// The API server sees the configurations (and their caBundle) asynchronously: wait until it calls b.
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := r.b.metric(t, "agentgate_admission_requests_total")
		_, err := env.client.CoreV1().Pods(r.ns).Create(ctx, agentPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && r.b.metric(t, "agentgate_admission_requests_total") > before {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not call agentgate through %s: %v", r.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rotationLoad is what the pod load saw during one run.
type rotationLoad struct {
	attempted, failed int64
	timeouts          int64    // of failed: webhook calls that timed out, nothing about TLS (isTimeoutOnly)
	words             string   // the API server's refusals
	bundles           []string // distinct caBundles, in order
	switches          int      // webhook URL moves
	connections       int      // new TLS connections from the API server to b
	calls             float64  // admission requests b answered
	retriesA          int      // "certificate reconcile failed" in a's log (retried with backoff)
	retriesB          int
	took              time.Duration
}

func (r rotationLoad) String() string {
	return fmt.Sprintf("creates attempted %d, failed %d (timeouts only: %d); agentgate answered %.0f admission requests over %d new TLS connections (%d URL moves); reconcile retries a=%d b=%d",
		r.attempted, r.failed, r.timeouts, r.calls, r.connections, r.switches, r.retriesA, r.retriesB)
}

// underLoad runs the pod load, the URL churn and the caBundle history until done (polled every 50 ms) is true.
func (r *rotationRig) underLoad(t *testing.T, timeout time.Duration, done func() bool) rotationLoad {
	t.Helper()
	hist := watchBundles(r.name)
	calls := r.b.metric(t, "agentgate_admission_requests_total")
	start := time.Now()
	load := startPodLoad(r.ns, loadWorkers)
	stopChurn := churnWebhookURLs(t, r.name, r.front, churnPeriod)
	finish := func() rotationLoad {
		res := rotationLoad{switches: stopChurn(), took: time.Since(start)}
		res.attempted, res.failed, res.timeouts = load.finish()
		res.words = load.words()
		res.bundles = hist.finish()
		res.connections = r.front.acceptedSince(start)
		res.calls = r.b.metric(t, "agentgate_admission_requests_total") - calls
		res.retriesA = strings.Count(certLogTail(r.a.logPath, 1<<24), "certificate reconcile failed")
		res.retriesB = strings.Count(certLogTail(r.b.logPath, 1<<24), "certificate reconcile failed")
		return res
	}
	for !done() {
		if time.Since(start) > timeout {
			res := finish()
			t.Fatalf("rotation not complete within %s: caBundle %v, cert.rotated %v; %s; failures %s",
				timeout, res.bundles, rotations(t, r.a, r.b), res, res.words)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return finish()
}

// checkNoFailures fails the test for every refused create but those that only timed out, which it reports.
func checkNoFailures(t *testing.T, what string, res rotationLoad) {
	t.Helper()
	if n := res.failed - res.timeouts; n != 0 {
		t.Errorf("%d of %d creates failed during %s, %s", n, res.attempted, what, res.words)
	} else if res.timeouts > 0 {
		t.Logf("warning: %d creates failed only because a webhook call timed out (an overloaded machine; no TLS or certificate error): %s", res.timeouts, res.words)
	}
}

// checkCalled fails the test when the load did not go through agentgate.
func (r *rotationRig) checkCalled(t *testing.T, res rotationLoad) {
	t.Helper()
	if res.attempted < 50 || res.calls < float64(res.attempted) {
		t.Errorf("%s: too little load went through agentgate to mean anything", res)
	}
}
