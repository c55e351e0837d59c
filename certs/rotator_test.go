package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"agentgate.io/agentgate/internal/testutil"
)

// fixture is one test's corner of the shared API server: its own namespace
// for the Secret and its own pair of webhook configurations.
type fixture struct {
	cs       kubernetes.Interface
	ns       string
	vwc, mwc string
	logs     *logBuffer
}

const secretName = "agentgate-certs"

var nonDNS = regexp.MustCompile(`[^a-z0-9]+`)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cs := testutil.Kube(t)
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	name := fmt.Sprintf("%s-%04x", base, rand.IntN(1<<16))
	f := &fixture{cs: cs, ns: name, vwc: name + "-validating", mwc: name + "-mutating", logs: &logBuffer{}}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	f.createValidating(t)
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: f.mwc},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{mutatingWebhook("m1." + name + ".agentgate.io"), mutatingWebhook("m2." + name + ".agentgate.io")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating MutatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		// Namespaces never finish terminating without a controller manager;
		// the configurations must go, or they would linger for later tests.
		ctx := context.Background()
		_ = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, f.vwc, metav1.DeleteOptions{})
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, f.mwc, metav1.DeleteOptions{})
		if t.Failed() {
			t.Logf("rotator log:\n%s", f.logs.String())
		}
	})
	return f
}

func (f *fixture) createValidating(t *testing.T) {
	t.Helper()
	if _, err := f.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(context.Background(), &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: f.vwc},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{validatingWebhook("v1." + f.ns + ".agentgate.io"), validatingWebhook("v2." + f.ns + ".agentgate.io")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ValidatingWebhookConfiguration: %v", err)
	}
}

// The webhooks match only a made-up resource, so the shared API server keeps
// working whatever the caBundle holds; injection is what is tested here.
var (
	noSideEffects = admissionregistrationv1.SideEffectClassNone
	ignore        = admissionregistrationv1.Ignore
	harmlessRules = []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{"certs-test.agentgate.io"}, APIVersions: []string{"v1"}, Resources: []string{"widgets"},
		},
	}}
	unusedURL = "https://127.0.0.1:1/never-called"
)

func validatingWebhook(name string) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name: name, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &unusedURL},
		Rules: harmlessRules, SideEffects: &noSideEffects, FailurePolicy: &ignore, AdmissionReviewVersions: []string{"v1"},
	}
}

func mutatingWebhook(name string) admissionregistrationv1.MutatingWebhook {
	return admissionregistrationv1.MutatingWebhook{
		Name: name, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &unusedURL},
		Rules: harmlessRules, SideEffects: &noSideEffects, FailurePolicy: &ignore, AdmissionReviewVersions: []string{"v1"},
	}
}

func (f *fixture) serverName() string { return "agentgate." + f.ns + ".svc" }

func (f *fixture) options() Options {
	return Options{
		Client:                          f.cs,
		Namespace:                       f.ns,
		SecretName:                      secretName,
		ValidatingWebhookConfigurations: []string{f.vwc},
		MutatingWebhookConfigurations:   []string{f.mwc},
		DNSNames:                        []string{f.serverName(), f.serverName() + ".cluster.local"},
		IPAddresses:                     []net.IP{net.ParseIP("127.0.0.1")},
		CheckInterval:                   2 * time.Second,
		Logger:                          slog.New(slog.NewJSONHandler(f.logs, nil)),
	}
}

// bundles reads every webhook entry's caBundle from the API server.
func (f *fixture) bundles(t *testing.T) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	v, err := f.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, f.vwc, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading ValidatingWebhookConfiguration: %v", err)
	}
	for _, w := range v.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	m, err := f.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, f.mwc, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading MutatingWebhookConfiguration: %v", err)
	}
	for _, w := range m.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	return out
}

func (f *fixture) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	s, err := f.cs.CoreV1().Secrets(f.ns).Get(context.Background(), secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading Secret: %v", err)
	}
	return s
}

// allBundlesEqual returns an error unless every webhook entry holds want.
func (f *fixture) allBundlesEqual(t *testing.T, want []byte) error {
	for name, b := range f.bundles(t) {
		if !bytes.Equal(b, want) {
			return fmt.Errorf("webhook %s holds %s, want %s", name, fingerprints(b), fingerprints(want))
		}
	}
	return nil
}

func startRotator(t *testing.T, opts Options) *Rotator {
	t.Helper()
	r, err := NewRotator(opts)
	if err != nil {
		t.Fatalf("NewRotator: %v", err)
	}
	run(t, r)
	return r
}

// run starts r in the background and stops it when the test ends.
func run(t *testing.T, r *Rotator) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Start did not return within 10s of cancel")
		}
	})
}

func servedLeaf(t *testing.T, r *Rotator) *x509.Certificate {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	return c.Leaf
}

// fingerprints names the certificates of a bundle briefly, for messages.
func fingerprints(bundle []byte) string {
	certs, err := ParseCertificatesPEM(bundle)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	var out []string
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		out = append(out, hex.EncodeToString(sum[:4]))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// logBuffer collects the JSON log lines of one or more Rotators.
type logBuffer struct{ testutil.LogBuffer }

// rotated returns the cert.rotated events as "cert/stage", checking that each
// carries a parseable notAfter.
func (l *logBuffer) rotated(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, ev := range l.Events("cert.rotated") {
		na, _ := ev["notAfter"].(string)
		if _, err := time.Parse(time.RFC3339, na); err != nil {
			t.Fatalf("cert.rotated without a valid notAfter: %v", ev)
		}
		if ev["cert"] != "ca" && ev["cert"] != "serving" {
			t.Fatalf("cert.rotated with cert=%v, want ca or serving", ev["cert"])
		}
		out = append(out, fmt.Sprintf("%s/%s", ev["cert"], ev["stage"]))
	}
	return out
}

func count(events []string, want string) int {
	n := 0
	for _, e := range events {
		if e == want {
			n++
		}
	}
	return n
}

func TestRotatorFreshInstall(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	opts := f.options()
	opts.Registerer = reg
	r := startRotator(t, opts)

	took := testutil.Eventually(t, 10*time.Second, "Ready", r.Ready)
	t.Logf("ready %s after Start", took.Round(time.Millisecond))

	sec := f.secret(t)
	if sec.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q, want %q", sec.Type, corev1.SecretTypeTLS)
	}
	for _, k := range []string{SecretCACert, SecretCAKey, SecretServingCert, SecretServingKey} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("Secret lacks %s", k)
		}
	}
	for _, k := range []string{SecretNextCACert, SecretNextCAKey, SecretPreviousCACert} {
		if _, ok := sec.Data[k]; ok {
			t.Errorf("fresh Secret holds %s, which only a CA rotation needs", k)
		}
	}
	if err := f.allBundlesEqual(t, sec.Data[SecretCACert]); err != nil {
		t.Fatalf("caBundle not injected into every webhook: %v", err)
	}
	if !bytes.Equal(r.CABundle(), sec.Data[SecretCACert]) {
		t.Errorf("CABundle() differs from the Secret's CA")
	}
	leaf := servedLeaf(t, r)
	if !bytes.Equal(leaf.Raw, mustParse(t, sec.Data[SecretServingCert]).Raw) {
		t.Fatalf("served certificate is not the Secret's tls.crt")
	}
	pool, _ := PoolFromPEM(sec.Data[SecretCACert])
	for _, name := range []string{f.serverName(), f.serverName() + ".cluster.local", "127.0.0.1"} {
		if err := (&KeyPair{Cert: leaf}).ValidAt(pool, name, time.Now()); err != nil {
			t.Errorf("served certificate for %s: %v", name, err)
		}
	}
	if ev := f.logs.rotated(t); !slices.Equal(ev, []string{"ca/created", "serving/issued"}) {
		t.Errorf("cert.rotated events %v, want ca/created then serving/issued", ev)
	}

	t.Run("expiry metric", func(t *testing.T) {
		ca := mustParse(t, sec.Data[SecretCACert])
		want := map[string]float64{"ca": float64(ca.NotAfter.Unix()), "serving": float64(leaf.NotAfter.Unix())}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "agentgate_certificate_expiry_timestamp_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "cert" {
						got[lp.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
		}
		if len(got) != 2 || got["ca"] != want["ca"] || got["serving"] != want["serving"] {
			t.Fatalf("agentgate_certificate_expiry_timestamp_seconds = %v, want %v", got, want)
		}
		if days := (got["ca"] - float64(time.Now().Unix())) / 86400; math.Abs(days-5*365) > 1 {
			t.Errorf("default CA lifetime %.0f days, want about 5 years", days)
		}
	})
}

func TestRotatorReadyWaitsForWebhookConfiguration(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), f.vwc, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := startRotator(t, f.options())
	if err := r.Ready(); err == nil {
		t.Fatalf("Ready before anything was loaded")
	}
	// Bound by what the rotator reports, not by a sleep: from the first call on, Ready must never pass while
	// the configuration is missing, and once its informers have synced it must name that configuration.
	testutil.Eventually(t, 10*time.Second, "Ready naming the missing ValidatingWebhookConfiguration", func() error {
		err := r.Ready()
		if err == nil {
			t.Fatalf("Ready passed with the ValidatingWebhookConfiguration %s missing", f.vwc)
		}
		if !strings.Contains(err.Error(), f.vwc) {
			return err
		}
		return nil
	})
	f.createValidating(t)
	took := testutil.Eventually(t, 5*time.Second, "Ready once the configuration exists", r.Ready)
	t.Logf("configuration created later: injected and ready in %s", took.Round(time.Millisecond))
	if err := f.allBundlesEqual(t, r.CABundle()); err != nil {
		t.Fatal(err)
	}
}

func TestRotatorReplicasAgreeOnOneCA(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const replicas = 3
	// Build them all first, then start them together so that they race on
	// creating the Secret.
	var rs []*Rotator
	for range replicas {
		opts := f.options()
		opts.Logger = slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r, err := NewRotator(opts)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		run(t, r)
	}
	for i, r := range rs {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("replica %d ready", i), r.Ready)
	}
	sec := f.secret(t)
	ca := mustParse(t, sec.Data[SecretCACert])
	tlsCrt := mustParse(t, sec.Data[SecretServingCert])
	for i, r := range rs {
		if leaf := servedLeaf(t, r); !leaf.Equal(tlsCrt) {
			t.Errorf("replica %d serves a certificate other than the Secret's", i)
		}
		if !bytes.Equal(r.CABundle(), sec.Data[SecretCACert]) {
			t.Errorf("replica %d bundle %s, Secret CA %s", i, fingerprints(r.CABundle()), fingerprints(sec.Data[SecretCACert]))
		}
	}
	if err := f.allBundlesEqual(t, certPEM(ca)); err != nil {
		t.Fatal(err)
	}
	// Whether the creates actually collided depends on scheduling; say so
	// rather than assert it.
	t.Logf("%d writes lost to another replica and re-read", strings.Count(f.logs.String(), "another replica wrote the Secret first"))
	// Only the replica whose create won logged certificates: the others
	// adopted them.
	ev := f.logs.rotated(t)
	if count(ev, "ca/created") != 1 || count(ev, "serving/issued") != 1 {
		t.Fatalf("cert.rotated events across %d replicas: %v, want one CA and one serving certificate", replicas, ev)
	}
}

func TestRotatorRenewsServingFromSameCA(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opts := f.options()
	opts.ServingValidity = 4 * time.Second // renewal at ~2/3: after ~2.7s
	a := startRotator(t, opts)
	testutil.Eventually(t, 10*time.Second, "Ready", a.Ready)
	b := startRotator(t, opts) // a second replica, to see it follow the Secret
	testutil.Eventually(t, 10*time.Second, "second replica Ready", b.Ready)

	first := servedLeaf(t, a)
	bundle := f.secret(t).Data[SecretCACert]
	took := testutil.Eventually(t, 10*time.Second, "serving certificate renewed", func() error {
		if servedLeaf(t, a).Equal(first) {
			return errors.New("still the first certificate")
		}
		return nil
	})
	renewed := servedLeaf(t, a)
	life := first.NotAfter.Sub(first.NotBefore)
	t.Logf("renewed %s after Ready; first certificate lived %s (NotBefore backdated)", took.Round(time.Millisecond), life)
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Errorf("renewal reused serial %x", first.SerialNumber)
	}
	pool, _ := PoolFromPEM(bundle)
	if err := (&KeyPair{Cert: renewed}).ValidAt(pool, f.serverName(), time.Now()); err != nil {
		t.Fatalf("renewed certificate does not chain to the original CA: %v", err)
	}
	if err := f.allBundlesEqual(t, bundle); err != nil {
		t.Fatalf("serving renewal changed the caBundle: %v", err)
	}
	testutil.Eventually(t, 3*time.Second, "second replica serves the renewed certificate", func() error {
		if !servedLeaf(t, b).Equal(servedLeaf(t, a)) {
			return errors.New("replicas serve different certificates")
		}
		return nil
	})
	if err := a.Ready(); err != nil {
		t.Fatalf("not ready after renewal: %v", err)
	}
	if ev := f.logs.rotated(t); count(ev, "ca/created") != 1 || count(ev, "serving/issued") < 2 {
		t.Fatalf("cert.rotated events %v, want one CA and at least two serving certificates", ev)
	}
}

func TestRotatorRestoresOverwrittenCABundle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opts := f.options()
	// Far longer than the test: only the watch can restore the bundle in time.
	opts.CheckInterval = time.Hour
	r := startRotator(t, opts)
	testutil.Eventually(t, 10*time.Second, "Ready", r.Ready)
	want := r.CABundle()

	intruder, err := GenerateCA("intruder", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := f.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, f.vwc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v.Webhooks[1].ClientConfig.CABundle = intruder.CertPEM
	if _, err := f.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, v, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := f.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, f.mwc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Webhooks[0].ClientConfig.CABundle = nil
	if _, err := f.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, m, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	took := testutil.Eventually(t, 5*time.Second, "caBundle restored", func() error { return f.allBundlesEqual(t, want) })
	t.Logf("overwritten caBundle restored in %s", took.Round(time.Millisecond))
	testutil.Eventually(t, 2*time.Second, "Ready again", r.Ready)
}

// trafficResult is what a client saw while certificates rotated.
type trafficResult struct {
	ok, failed int
	firstErr   error
	// bundles is the sequence of distinct caBundles the client observed, as
	// fingerprints.
	bundles []string
}

// runTraffic plays the API server: it polls the MutatingWebhookConfiguration
// (as the API server's informer does), trusts each caBundle only lag after
// seeing it (the API server's propagation delay, exaggerated), and sends a
// fresh-handshake HTTPS request to addr every few milliseconds. It stops once
// done(result) is true, or fails the test at timeout.
func runTraffic(t *testing.T, f *fixture, addr string, lag, timeout time.Duration, done func(trafficResult) bool) trafficResult {
	t.Helper()
	type seen struct {
		at     time.Time
		bundle []byte
	}
	var history []seen
	var res trafficResult
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for !done(res) {
		if time.Now().After(deadline) {
			t.Fatalf("traffic: condition not reached in %s; bundles seen %v, %d ok, %d failed", timeout, res.bundles, res.ok, res.failed)
		}
		m, err := f.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, f.mwc, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("reading MutatingWebhookConfiguration: %v", err)
		}
		now := time.Now()
		if b := m.Webhooks[0].ClientConfig.CABundle; len(b) > 0 && (len(history) == 0 || !bytes.Equal(history[len(history)-1].bundle, b)) {
			history = append(history, seen{now, b})
			res.bundles = append(res.bundles, fingerprints(b))
		}
		var trusted []byte
		for _, h := range history {
			if !h.at.After(now.Add(-lag)) {
				trusted = h.bundle
			}
		}
		if trusted == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		pool, err := PoolFromPEM(trusted)
		if err != nil {
			t.Fatalf("caBundle unusable: %v", err)
		}
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true, // every request a new handshake
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: f.serverName(), MinVersion: tls.VersionTLS13},
		}}
		resp, err := client.Get("https://" + addr + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res.ok++
		} else {
			res.failed++
			if res.firstErr == nil {
				res.firstErr = err
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return res
}

// serveTLS runs an HTTPS server that takes its certificate from r, as the
// webhook server does.
func serveTLS(t *testing.T, r *Rotator) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS13},
		// Handshake failures are what the control run is about; the counts say enough.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// caRotationOptions rotate the CA a few seconds after start.
func caRotationOptions(f *fixture) Options {
	opts := f.options()
	// The new CA comes ~7s after the first, is promoted 2s later and the old
	// one retired 2s after that; the next rotation would start only 3s later.
	opts.CAValidity = 18 * time.Second
	opts.CALookahead = 11 * time.Second
	opts.Overlap = 2 * time.Second
	opts.ServingValidity = 10 * time.Second
	opts.ServingLookahead = 3 * time.Second
	return opts
}

// rotatedAndSettled is true once the client has seen a bundle holding a CA
// other than the first one alone, and has used it for a while.
func rotatedAndSettled(settledAt *time.Time) func(trafficResult) bool {
	return func(res trafficResult) bool {
		if len(res.bundles) < 2 {
			return false
		}
		last := res.bundles[len(res.bundles)-1]
		if strings.Count(last, " ") != 0 || last == res.bundles[0] {
			return false
		}
		if settledAt.IsZero() {
			*settledAt = time.Now()
		}
		return time.Since(*settledAt) > 1500*time.Millisecond
	}
}

// TestRotatorCARotationWithOverlap rotates the CA under HTTPS traffic from a
// client that trusts the webhook configuration's caBundle one second late:
// both CAs must be in the bundle while either may be served, then only the
// new one, and no request may fail.
func TestRotatorCARotationWithOverlap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := startRotator(t, caRotationOptions(f))
	testutil.Eventually(t, 10*time.Second, "Ready", r.Ready)
	firstCA := mustParse(t, f.secret(t).Data[SecretCACert])
	addr := serveTLS(t, r)

	// Watch the Secret too: the previous or next CA must be recorded there
	// whenever the bundle holds two.
	var sawNext, sawPrevious bool
	var settled time.Time
	stopSecretWatch := make(chan struct{})
	secretDone := make(chan struct{})
	go func() {
		defer close(secretDone)
		for {
			select {
			case <-stopSecretWatch:
				return
			case <-time.After(50 * time.Millisecond):
			}
			s, err := f.cs.CoreV1().Secrets(f.ns).Get(context.Background(), secretName, metav1.GetOptions{})
			if err != nil {
				continue
			}
			if len(s.Data[SecretNextCACert]) > 0 && s.Annotations[AnnotationNextCAPromoteAfter] != "" {
				sawNext = true
			}
			if len(s.Data[SecretPreviousCACert]) > 0 && s.Annotations[AnnotationPreviousCAUntil] != "" {
				sawPrevious = true
			}
		}
	}()
	start := time.Now()
	res := runTraffic(t, f, addr, time.Second, 30*time.Second, rotatedAndSettled(&settled))
	close(stopSecretWatch)
	<-secretDone
	t.Logf("CA rotated in %s: bundles %v, %d requests ok, %d failed", time.Since(start).Round(time.Millisecond), res.bundles, res.ok, res.failed)

	if res.failed != 0 {
		t.Errorf("%d of %d requests failed during a CA rotation with overlap; first: %v", res.failed, res.ok+res.failed, res.firstErr)
	}
	// [A] -> [A B] -> [B]: the old CA first, then both, then the new alone.
	if len(res.bundles) != 3 || strings.Count(res.bundles[1], " ") != 1 ||
		!strings.Contains(res.bundles[1], strings.Trim(res.bundles[0], "[]")) ||
		!strings.Contains(res.bundles[1], strings.Trim(res.bundles[2], "[]")) {
		t.Errorf("caBundle sequence %v, want [old] -> [old new] -> [new]", res.bundles)
	}
	if !sawNext || !sawPrevious {
		t.Errorf("Secret never recorded the pending (%v) or the previous (%v) CA with its deadline", sawNext, sawPrevious)
	}
	newCA := mustParse(t, f.secret(t).Data[SecretCACert])
	if newCA.Equal(firstCA) {
		t.Fatalf("CA not rotated")
	}
	if err := servedLeaf(t, r).CheckSignatureFrom(newCA); err != nil {
		t.Errorf("served certificate not signed by the new CA: %v", err)
	}
	if err := f.allBundlesEqual(t, certPEM(newCA)); err != nil {
		t.Errorf("after the overlap: %v", err)
	}
	ev := f.logs.rotated(t)
	for _, want := range []string{"ca/created", "ca/pending", "ca/promoted", "ca/retired"} {
		if count(ev, want) != 1 {
			t.Errorf("cert.rotated events %v: want exactly one %s", ev, want)
		}
	}
	if err := r.Ready(); err != nil {
		t.Errorf("not ready after the rotation: %v", err)
	}
}

// TestRotatorCARotationWithoutOverlapFails is the control run: the same
// client and traffic against a one-step CA swap (as cert-controller does)
// must see failed requests, or the test above could not see them either.
func TestRotatorCARotationWithoutOverlapFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opts := caRotationOptions(f)
	opts.NoOverlap = true
	opts.CAValidity = 8 * time.Second
	opts.CALookahead = 4 * time.Second // the swap comes ~4s after start
	r := startRotator(t, opts)
	testutil.Eventually(t, 10*time.Second, "Ready", r.Ready)
	addr := serveTLS(t, r)

	var settled time.Time
	res := runTraffic(t, f, addr, time.Second, 30*time.Second, rotatedAndSettled(&settled))
	t.Logf("CA swapped without overlap: bundles %v, %d requests ok, %d failed; first failure: %v", res.bundles, res.ok, res.failed, res.firstErr)
	if len(res.bundles) != 2 {
		t.Errorf("caBundle sequence %v, want [old] -> [new]", res.bundles)
	}
	if res.failed == 0 {
		t.Fatalf("no request failed across a CA swap without overlap: the traffic cannot detect a broken rotation")
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(res.firstErr, &unknown) && !strings.Contains(res.firstErr.Error(), "unknown authority") {
		t.Errorf("failure %v, want an unknown-authority error", res.firstErr)
	}
}

func mustParse(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	certs, err := ParseCertificatesPEM(pemBytes)
	if err != nil {
		t.Fatalf("parsing certificate: %v", err)
	}
	return certs[0]
}

// An API server that accepts connections and then says nothing must not stall the Rotator: each pass gives
// up after APITimeout, is logged, and retried; and Start still returns when asked to stop.
func TestRotatorGivesUpOnASilentAPIServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		accepting sync.WaitGroup
		mu        sync.Mutex
		held      []net.Conn // kept open, never read: every request hangs until the client gives up
	)
	accepting.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		accepting.Wait()
		for _, c := range held {
			c.Close()
		}
	})
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "http://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	r, err := NewRotator(Options{Client: cs, Namespace: "agentgate-system", SecretName: "agentgate-tls", DNSNames: []string{"agentgate.test"},
		APITimeout: 200 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "context deadline exceeded") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no reconcile gave up within 10 s; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "certificate reconcile failed") {
		t.Errorf("the timeout was not logged as a failed reconcile:\n%s", logs.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return within 10 s of cancel")
	}
}
