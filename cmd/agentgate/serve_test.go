package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/internal/testutil"
	"agentgate.io/agentgate/policy"
	"agentgate.io/agentgate/webhook"
)

type runningServe struct {
	srv    *webhook.Server
	stdout *testutil.LogBuffer
	stderr *testutil.LogBuffer
	cancel context.CancelFunc
	code   chan int
}

// startServe runs `agentgate serve args...` in-process and returns once it listens.
func startServe(t *testing.T, args ...string) *runningServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningServe{stdout: &testutil.LogBuffer{}, stderr: &testutil.LogBuffer{}, cancel: cancel, code: make(chan int, 1)}
	started := make(chan *webhook.Server, 1)
	go func() {
		r.code <- serve(ctx, args, r.stdout, r.stderr, func(s *webhook.Server) { started <- s })
	}()
	select {
	case r.srv = <-started:
	case code := <-r.code:
		t.Fatalf("serve exited with %d before listening:\n%s\n%s", code, r.stderr, r.stdout)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start listening within 20s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(30 * time.Second):
			t.Error("serve did not exit")
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
	})
	return r
}

// stop cancels the context (SIGTERM in main) and returns the exit code.
func (r *runningServe) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.code:
		r.code <- code // for Cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30s of cancel")
		return -1
	}
}

func serveClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func waitServeReady(t *testing.T, c *http.Client, url string) {
	t.Helper()
	testutil.WaitHTTPOK(t, c, url+"/readyz", 20*time.Second)
}

func servePost(t *testing.T, c *http.Client, url string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var rev admissionv1.AdmissionReview
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &rev) != nil || rev.Response == nil {
		t.Fatalf("POST %s: HTTP %d: %s", url, resp.StatusCode, raw)
	}
	return rev.Response
}

func serveLogEvent(out, name string) map[string]any {
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == name {
			return m
		}
	}
	return nil
}

// `agentgate serve` with no flags but addresses: the embedded default policy over a self-signed certificate
// whose CA the log names; the example review is admitted; cancel drains and exits 0.
func TestServeSelfSignedDefaultPolicy(t *testing.T) {
	dir := t.TempDir()
	r := startServe(t, "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--self-signed-dir", dir)
	ev := serveLogEvent(r.stdout.String(), "cert.self_signed")
	if ev == nil {
		t.Fatalf("no cert.self_signed event:\n%s", r.stdout)
	}
	caFile, _ := ev["ca"].(string)
	hint, _ := ev["hint"].(string)
	if caFile != filepath.Join(dir, "ca.crt") || !strings.Contains(hint, "curl --cacert "+caFile) || !strings.Contains(hint, "https://"+r.srv.Addr().String()+"/validate") {
		t.Errorf("cert.self_signed event: %v", ev)
	}
	c := serveClient(t, caFile)
	url := "https://" + r.srv.Addr().String()
	waitServeReady(t, c, url)
	if serveLogEvent(r.stdout.String(), "policy.namespace_labels_unknown") == nil {
		t.Error("no policy.namespace_labels_unknown warning without a cluster")
	}

	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "review-pod.json"))
	if err != nil {
		t.Fatal(err)
	}
	if resp := servePost(t, c, url+"/validate", example); !resp.Allowed {
		t.Errorf("example review denied: %+v", resp.Result)
	}
	if resp := servePost(t, c, url+"/mutate", example); !resp.Allowed || resp.Patch != nil {
		t.Errorf("example review on /mutate: allowed %v patch %s", resp.Allowed, resp.Patch)
	}

	metrics, err := http.Get("http://" + r.srv.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(body), `agentgate_policy_info{policy="agents",source="default"} 1`) {
		t.Errorf("metrics do not show the default policy in force")
	}

	if code := r.stop(t); code != 0 {
		t.Errorf("exit code %d after cancel, want 0", code)
	}
	if serveLogEvent(r.stdout.String(), "serve.stopped") == nil {
		t.Error("no serve.stopped event")
	}
}

// --cert-dir: files reloaded by certwatcher without a restart.
func TestServeCertDirReload(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := certs.SelfSigned(dir, nil); err != nil {
		t.Fatal(err)
	}
	r := startServe(t, "--addr", "127.0.0.1:0", "--metrics-addr", "0", "--cert-dir", dir)
	url := "https://" + r.srv.Addr().String()
	oldCA, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	oldCAFile := filepath.Join(t.TempDir(), "old-ca.crt")
	if err := os.WriteFile(oldCAFile, oldCA, 0o600); err != nil {
		t.Fatal(err)
	}
	waitServeReady(t, serveClient(t, oldCAFile), url)

	// A new CA and serving certificate replace the files: new connections get the new certificate.
	if _, _, _, err := certs.SelfSigned(dir, nil); err != nil {
		t.Fatal(err)
	}
	fresh := serveClient(t, filepath.Join(dir, "ca.crt"))
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; ; attempt++ {
		fresh.CloseIdleConnections()
		resp, err := fresh.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			t.Logf("rotated certificate served at attempt %d", attempt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificate was not served within 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := serveClient(t, oldCAFile).Get(url + "/healthz"); err == nil {
		t.Error("the old certificate is still served")
	}
}

// A policy file is watched: rewriting it changes the verdict without a restart.
func TestServePolicyFileReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	doc := string(policy.DefaultPolicyYAML())
	if err := os.WriteFile(path, []byte(strings.Replace(doc, "mode: enforce", "mode: warn", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startServe(t, "--addr", "127.0.0.1:0", "--metrics-addr", "0", "--self-signed-dir", filepath.Join(dir, "tls"), "--policy-file", path)
	c := serveClient(t, filepath.Join(dir, "tls", "ca.crt"))
	url := "https://" + r.srv.Addr().String()
	waitServeReady(t, c, url)

	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "review-pod.json"))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(example, []byte("registry.corp.example/agents/runner:1.4.2"), []byte("docker.io/library/busybox:1.36"), 1)
	if resp := servePost(t, c, url+"/validate", bad); !resp.Allowed || len(resp.Warnings) == 0 {
		t.Fatalf("warn mode: allowed %v warnings %v", resp.Allowed, resp.Warnings)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for servePost(t, c, url+"/validate", bad).Allowed {
		if time.Now().After(deadline) {
			t.Fatal("the enforce-mode rewrite was not served within 1s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeRefusesInvalidPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	doc := strings.NewReplacer("mode: enforce", "mode: sometimes", "windows: deny", "windows: maybe").Replace(string(policy.DefaultPolicyYAML()))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := serve(context.Background(), []string{"--addr", "127.0.0.1:0", "--metrics-addr", "0", "--policy-file", path}, &stdout, &stderr, nil)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{path, "spec.mode", "spec.windows"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not name %s:\n%s", want, stderr.String())
		}
	}
}

func TestServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-min-version", "1.1"},
		{"--no-such-flag"},
		{"--log-level", "loud"},
		{"--max-body-bytes", "0"},
		{"--policy-file", "/does/not/exist.yaml"},
		{"--client-ca", "/does/not/exist.pem"},
		{"extra-argument"},
	} {
		var stdout, stderr bytes.Buffer
		if code := serve(context.Background(), args, &stdout, &stderr, nil); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr: %s)", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := serve(context.Background(), []string{"-h"}, &stdout, &stderr, nil); code != 0 || !strings.Contains(stderr.String(), "--policy-file") && !strings.Contains(stderr.String(), "-policy-file") {
		t.Errorf("-h: exit %d: %s", code, stderr.String())
	}
}

// Certificate-source flags: one source at most, rotator tuning only with --cert-secret, and options the rotator
// refuses are usage errors that say why. The kubeconfig points nowhere: nothing is contacted before these fail.
func TestServeCertSecretUsageErrors(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
		"users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAMESPACE", "")
	secret := []string{"--addr", "127.0.0.1:0", "--metrics-addr", "0", "--cert-secret", "agentgate-tls", "--kubeconfig", kubeconfig}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cert-dir", dir, "--cert-secret", "agentgate-tls"}, "exclude each other"},
		{[]string{"--cert-ip-sans", "127.0.0.1", "--ca-validity", "1h"}, "--ca-validity, --cert-ip-sans only apply with --cert-secret"},
		{[]string{"--cert-no-overlap"}, "--cert-no-overlap only apply with --cert-secret"},
		{secret, "--cert-secret needs --namespace"},
		{append(slices.Clone(secret), "--namespace", "ns", "--cert-ip-sans", "127.0.0.1,localhost"), `"localhost" is not an IP address`},
		{append(slices.Clone(secret), "--namespace", "ns", "--ca-validity", "1h", "--ca-lookahead", "2h"), "CALookahead 2h0m0s must be shorter than CAValidity 1h0m0s"},
		{append(slices.Clone(secret), "--namespace", "ns", "--cert-overlap", "-1s"), "must not be negative"},
	} {
		var stdout, stderr bytes.Buffer
		code := serve(context.Background(), c.args, &stdout, &stderr, nil)
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// -h documents the certificate flags but not the test-only --cert-no-overlap.
func TestServeHelpHidesTestOnlyFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := serve(context.Background(), []string{"-h"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	help := stderr.String()
	for _, want := range []string{"-cert-secret", "-webhook-configurations", "-cert-dns-names", "-cert-ip-sans", "-ca-validity",
		"-serving-validity", "-ca-lookahead", "-serving-lookahead", "-cert-overlap", "-cert-check-interval", "-service-name"} {
		if !strings.Contains(help, want+" ") {
			t.Errorf("-h does not document %s", want)
		}
	}
	if strings.Contains(help, "no-overlap") {
		t.Errorf("-h shows the test-only --cert-no-overlap:\n%s", help)
	}
}

// --cert-dir: the expiry of the served certificate and of ca.crt are on /metrics, under the same name the
// Rotator uses, and follow a renewal of the files.
func TestServeCertDirExpiryMetric(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := certs.SelfSigned(dir, nil); err != nil {
		t.Fatal(err)
	}
	r := startServe(t, "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--cert-dir", dir)
	notAfter := func(file string) float64 {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		c, err := certs.ParseCertificatesPEM(data)
		if err != nil {
			t.Fatal(err)
		}
		return float64(c[0].NotAfter.Unix())
	}
	gauge := func(cert string) (float64, bool) {
		resp, err := http.Get("http://" + r.srv.MetricsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		prefix := `agentgate_certificate_expiry_timestamp_seconds{cert="` + cert + `"} `
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				f, err := strconv.ParseFloat(v, 64)
				return f, err == nil
			}
		}
		return 0, false
	}
	for _, c := range []struct{ label, file string }{{"serving", "tls.crt"}, {"ca", "ca.crt"}} {
		if got, ok := gauge(c.label); !ok || got != notAfter(c.file) {
			t.Errorf("expiry{cert=%q} = %v (present %v), want %v", c.label, got, ok, notAfter(c.file))
		}
	}

	// Renewed files: the gauge follows once certwatcher has loaded them (it polls, and fsnotify is not
	// guaranteed to fire for a rename onto the file).
	time.Sleep(1100 * time.Millisecond) // whole seconds in NotAfter: make the renewal visible
	if _, _, _, err := certs.SelfSigned(dir, nil); err != nil {
		t.Fatal(err)
	}
	want := notAfter("tls.crt")
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := gauge("serving")
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expiry{cert=serving} = %v after renewal, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, _ := gauge("ca"); got != notAfter("ca.crt") {
		t.Errorf("expiry{cert=ca} = %v after renewal, want %v", got, notAfter("ca.crt"))
	}
}
