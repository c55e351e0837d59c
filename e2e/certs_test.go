package e2e

// Self-managed certificates (agentgate serve --cert-secret) on the real API server. Every test starts its own
// agentgate processes, with its own Secret and its own copies of manifests/base/webhooks.yaml whose
// namespaceSelector picks only the test's namespace (rotationLabel), so nothing here touches the main suite.
//
// The rotation tests run two replicas sharing one Secret, as the Deployment does: A talks to the API server
// directly; B, the one the API server calls, sees the API server through a link that delays every byte by
// replicaLag, so it learns of a new certificate later than A writes it and than the API server sees the new
// caBundle A injects. That lag is what an overlap must absorb (in a cluster: replicas and API servers that see
// a change at different times), and what a one-step CA swap cannot: the control run shows the failures. The
// webhook URLs move to a new port of a pass-through proxy every churnPeriod, so that the API server keeps
// opening new TLS connections during the rotation (over one long-lived connection it would never look at a
// new certificate at all).
//
// A refused create counts against a rotation unless the API server's words say only that the webhook call
// timed out (an overloaded machine), with nothing about TLS or certificates: those are reported, not failed.

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"agentgate.io/agentgate/certs"
)

const (
	replicaLag  = 150 * time.Millisecond
	churnPeriod = 400 * time.Millisecond
	loadWorkers = 3
	readyWithin = 60 * time.Second
	// settleFor keeps the load running after the last step, so that creates against the final state count too.
	settleFor = time.Second
	sa        = "system:serviceaccount:agentgate-system:agentgate"
)

// TestCertsFreshInstall installs agentgate as manifests/base does: the agentgate ServiceAccount with
// manifests/base/rbac.yaml (impersonated), Secret agentgate-tls, webhook configurations named agentgate with an
// empty caBundle. The Secret is generated, both configurations get the CA, the API server calls agentgate, the
// expiry metric is on /metrics, and a caBundle someone overwrites is restored within seconds.
func TestCertsFreshInstall(t *testing.T) {
	requireServer(t)
	applyBaseRBAC(t)
	const secret, configs = "agentgate-tls", "agentgate"
	deleteCertSecret(t, secret)
	t.Cleanup(func() { deleteCertSecret(t, secret) })
	ns := rotationNamespace(t, "fresh")
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	installCertWebhooks(t, configs, addr, "fresh")

	p := startCertServerAt(t, "fresh", addr, kubeconfigVia(t, "", sa), "--cert-secret", secret)
	t.Logf("ready %s after start (Secret created, caBundle injected, as %s)", waitCertServerReady(t, p, readyWithin).Round(time.Millisecond), sa)

	sec := getCertSecret(t, secret)
	if sec.Type != "kubernetes.io/tls" {
		t.Errorf("Secret type %q, want kubernetes.io/tls", sec.Type)
	}
	for _, k := range []string{certs.SecretCACert, certs.SecretCAKey, certs.SecretServingCert, certs.SecretServingKey} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("Secret has no %s", k)
		}
	}
	cas := parseCertsPEM(t, sec.Data[certs.SecretCACert])
	if len(cas) != 1 {
		t.Fatalf("ca.crt holds %d certificates, want 1", len(cas))
	}
	ca, leaf := cas[0], parseCertsPEM(t, sec.Data[certs.SecretServingCert])[0]
	bundles := webhookBundles(t, configs)
	if len(bundles) < 3 {
		t.Fatalf("webhook entries %v: want every entry of manifests/base/webhooks.yaml", bundles)
	}
	for entry, b := range bundles {
		if !bytes.Equal(b, sec.Data[certs.SecretCACert]) {
			t.Errorf("%s: caBundle %s, want the Secret's ca.crt %s", entry, caNames(b), caNames(sec.Data[certs.SecretCACert]))
		}
	}
	served := servedCert(t, p.addr)
	if !served.Equal(leaf) {
		t.Errorf("served certificate (serial %x) is not the Secret's tls.crt (serial %x)", served.SerialNumber, leaf.SerialNumber)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"agentgate-webhook.agentgate-system.svc", "agentgate-webhook.agentgate-system.svc.cluster.local", "127.0.0.1"} {
		if _, err := served.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("served certificate for %s: %v", name, err)
		}
	}

	// The API server trusts it: a pod in the namespace goes through both webhooks.
	before := p.metric(t, "agentgate_admission_requests_total")
	createThroughWebhook(t, p, ns, "fresh")
	if calls := p.metric(t, "agentgate_admission_requests_total") - before; calls < 2 {
		t.Errorf("agentgate answered %v admission requests for a pod create, want 2 (mutate, validate)", calls)
	}

	for label, want := range map[string]*x509.Certificate{"serving": leaf, "ca": ca} {
		got := p.metric(t, "agentgate_certificate_expiry_timestamp_seconds", `cert="`+label+`"`)
		if got != float64(want.NotAfter.Unix()) {
			t.Errorf(`agentgate_certificate_expiry_timestamp_seconds{cert=%q} = %v, want %d`, label, got, want.NotAfter.Unix())
		}
	}
	if ev := rotations(t, p); strings.Join(ev, " ") != "ca/created serving/issued" {
		t.Errorf("cert.rotated events %v, want ca/created then serving/issued", ev)
	}

	// Someone overwrites caBundle of both configurations with another CA: re-injected within seconds.
	other, err := certs.GenerateCA("someone-else", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	arv1 := env.client.AdmissionregistrationV1()
	overwritten := time.Now()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := arv1.ValidatingWebhookConfigurations().Get(ctx, configs, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range c.Webhooks {
			c.Webhooks[i].ClientConfig.CABundle = other.CertPEM
		}
		_, err = arv1.ValidatingWebhookConfigurations().Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err == nil {
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			c, err := arv1.MutatingWebhookConfigurations().Get(ctx, configs, metav1.GetOptions{})
			if err != nil {
				return err
			}
			c.Webhooks[0].ClientConfig.CABundle = other.CertPEM
			_, err = arv1.MutatingWebhookConfigurations().Update(ctx, c, metav1.UpdateOptions{})
			return err
		})
	}
	if err != nil {
		t.Fatalf("overwriting caBundle: %v", err)
	}
	for {
		restored := true
		for _, b := range webhookBundles(t, configs) {
			restored = restored && bytes.Equal(b, sec.Data[certs.SecretCACert])
		}
		if restored {
			break
		}
		if time.Since(overwritten) > 10*time.Second {
			t.Fatalf("caBundle not restored within 10s: %v", webhookBundles(t, configs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("overwritten caBundle restored in %s", time.Since(overwritten).Round(time.Millisecond))
	createThroughWebhook(t, p, ns, "fresh-after-overwrite")
}

// TestCertsRacingReplicasAgreeOnOneCA starts two replicas at once on a Secret that does not exist. Both reach
// the API server over a link that delays every byte by 300 ms, so each reads "no Secret" before the other's
// create lands: both create, one loses, and adopts the winner's CA. One CA, one serving certificate, served by
// both.
func TestCertsRacingReplicasAgreeOnOneCA(t *testing.T) {
	requireServer(t)
	const name = "agentgate-race"
	deleteCertSecret(t, name)
	t.Cleanup(func() { deleteCertSecret(t, name) })
	lag := startDelayProxy(t, apiServerHostPort(t), 300*time.Millisecond, 1)
	kubeconfig := kubeconfigVia(t, lag.addr(0), "")
	addrA, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	installCertWebhooks(t, name, addrA, "race")
	args := []string{"--cert-secret", name, "--webhook-configurations", name, "--log-level", "debug"}
	a := startCertServerAt(t, "race-a", addrA, kubeconfig, args...)
	b := startCertServer(t, "race-b", kubeconfig, args...)
	waitCertServerReady(t, a, readyWithin)
	waitCertServerReady(t, b, readyWithin)

	sec := getCertSecret(t, name)
	cas := parseCertsPEM(t, sec.Data[certs.SecretCACert])
	if len(cas) != 1 {
		t.Fatalf("ca.crt holds %d certificates, want 1", len(cas))
	}
	leaf := parseCertsPEM(t, sec.Data[certs.SecretServingCert])[0]
	for _, p := range []*serverProcess{a, b} {
		if served := servedCert(t, p.addr); !served.Equal(leaf) {
			t.Errorf("%s serves serial %x, not the Secret's %x", p.addr, served.SerialNumber, leaf.SerialNumber)
		}
	}
	for entry, bundle := range webhookBundles(t, name) {
		if !bytes.Equal(bundle, sec.Data[certs.SecretCACert]) {
			t.Errorf("%s: caBundle %s, want the Secret's CA %s", entry, caNames(bundle), caNames(sec.Data[certs.SecretCACert]))
		}
	}
	ev := rotations(t, a, b)
	if countEvents(ev, "ca/created") != 1 || countEvents(ev, "serving/issued") != 1 {
		t.Errorf("cert.rotated events across both replicas %v, want one ca/created and one serving/issued", ev)
	}
	lost := 0
	for _, p := range []*serverProcess{a, b} {
		lost += strings.Count(certLogTail(p.logPath, 1<<20), "another replica wrote the Secret first")
	}
	if lost == 0 {
		t.Errorf("no replica lost the race (no Conflict or AlreadyExists): the test did not race them")
	}
	t.Logf("one CA %s; %d lost write(s) re-read and adopted; events %v", cas[0].Subject.CommonName, lost, ev)
}

// TestCertsServingRotationUnderLoad renews the serving certificate every 2.5 s while pods are created through
// the API server without pause: no create may fail, and the API server must have connected anew after the last
// renewal (so that it checked the new certificate).
func TestCertsServingRotationUnderLoad(t *testing.T) {
	requireServer(t)
	// Renewed 7.5 s before expiry: short intervals, but room for a slow machine before anything expires.
	r := startRotationRig(t, "serving", "--serving-validity", "10s", "--serving-lookahead", "7500ms")
	ca0 := getCertSecret(t, r.name).Data[certs.SecretCACert]
	serials := []string{servingSerial(t, r.name)}
	var secondRenewal, settled time.Time
	res := r.underLoad(t, 30*time.Second, func() bool {
		if s := servingSerial(t, r.name); s != serials[len(serials)-1] {
			serials = append(serials, s)
			if len(serials) == 3 {
				secondRenewal = time.Now()
			}
		}
		// Done once b serves a certificate from the second renewal or later, and a little after.
		if len(serials) < 3 || slices.Contains(serials[:2], servedCert(t, r.b.addr).SerialNumber.Text(16)[:8]) {
			return false
		}
		if settled.IsZero() {
			settled = time.Now()
		}
		return time.Since(settled) > settleFor
	})
	t.Logf("serving certificate renewed %d times in %s (serials %v); %s", len(serials)-1, res.took.Round(time.Millisecond), serials, res)
	checkNoFailures(t, "serving-certificate rotation", res)
	if got := getCertSecret(t, r.name).Data[certs.SecretCACert]; !bytes.Equal(got, ca0) {
		t.Errorf("the CA changed during a serving-certificate renewal: %s -> %s", caNames(ca0), caNames(got))
	}
	if n := r.front.acceptedSince(secondRenewal); n == 0 {
		t.Errorf("the API server opened no new connection to agentgate after the second renewal: the test proves nothing about it")
	}
	r.checkCalled(t, res)
}

// TestCertsCARotationWithOverlapUnderLoad rotates the CA (pending -> promoted -> retired, 4 s overlaps) while
// pods are created through the API server without pause: caBundle goes [old] -> [old new] -> [new], and no
// create fails although the replica the API server calls learns of every step late.
func TestCertsCARotationWithOverlapUnderLoad(t *testing.T) {
	requireServer(t)
	// CA lifetime 27 s, replaced 17 s before expiry: the rotation starts ~10 s after the CA was made (time enough
	// for both replicas and the load to start) and ends ~8 s later; the next one would start 10 s after the first.
	// The overlap is what b's lag must stay under; 4 s leaves room for a machine busy with other work.
	r := startRotationRig(t, "ca", "--ca-validity", "27s", "--ca-lookahead", "17s", "--cert-overlap", "4s",
		"--serving-validity", "10s", "--serving-lookahead", "7500ms")
	first := parseCertsPEM(t, getCertSecret(t, r.name).Data[certs.SecretCACert])[0]
	var sawNext, sawPrev, polled, early bool
	var promoted, retired, settled time.Time
	res := r.underLoad(t, 40*time.Second, func() bool {
		sec := getCertSecret(t, r.name)
		ca := parseCertsPEM(t, sec.Data[certs.SecretCACert])[0]
		hasNext, hasPrev := len(sec.Data[certs.SecretNextCACert]) > 0, len(sec.Data[certs.SecretPreviousCACert]) > 0
		if !polled {
			polled, early = true, hasNext || !ca.Equal(first)
		}
		sawNext = sawNext || hasNext && ca.Equal(first)
		sawPrev = sawPrev || hasPrev && !ca.Equal(first)
		if promoted.IsZero() && !ca.Equal(first) {
			promoted = time.Now()
		}
		// Retired: the old CA is gone from the Secret (a next rotation may already be pending on a slow machine).
		if retired.IsZero() && !promoted.IsZero() && !hasPrev {
			retired = time.Now()
		}
		if retired.IsZero() || servedCert(t, r.b.addr).CheckSignatureFrom(first) == nil {
			return false
		}
		if settled.IsZero() {
			settled = time.Now()
		}
		return time.Since(settled) > settleFor
	})
	t.Logf("CA rotated with overlap in %s: caBundle %v; %s", res.took.Round(time.Millisecond), res.bundles, res)
	if early {
		t.Errorf("the rotation began before the load did (the replicas took too long to start): the run shows little")
	}
	checkNoFailures(t, "a CA rotation with overlap", res)
	if !sawNext || !sawPrev {
		t.Errorf("the Secret never held the pending CA beside the old one (%v), or the old one beside the new (%v)", sawNext, sawPrev)
	}
	// [old] -> [old new] -> [new], then possibly the start of the next rotation on a slow machine.
	if b := res.bundles; len(b) < 3 || strings.Count(b[1], " ") != 1 ||
		!strings.Contains(b[1], strings.Trim(b[0], "[]")) || !strings.Contains(b[1], strings.Trim(b[2], "[]")) || strings.Contains(b[2], " ") {
		t.Errorf("caBundle went %v, want [old] -> [old new] -> [new]", res.bundles)
	} else if len(b) > 3 {
		t.Logf("the next rotation began before the run ended: %v", b[3:])
	}
	ev := rotations(t, r.a, r.b)
	if i, j, k := slices.Index(ev, "ca/pending"), slices.Index(ev, "ca/promoted"), slices.Index(ev, "ca/retired"); i < 0 || j < i || k < j {
		t.Errorf("cert.rotated events %v: want ca/pending, ca/promoted, ca/retired in that order", ev)
	}
	if r.front.acceptedSince(promoted) == 0 || r.front.acceptedSince(retired) == 0 {
		t.Errorf("the API server opened no new connection after the promotion or the retirement: the test proves nothing about them")
	}
	r.checkCalled(t, res)
}

// TestCertsCARotationWithoutOverlapFails is the control run: the same replicas, lag, URL churn and load, with
// --cert-no-overlap (the CA swapped in one step, as cert-controller does). Creates must fail, or the test above
// could not see failures either.
func TestCertsCARotationWithoutOverlapFails(t *testing.T) {
	requireServer(t)
	// The swap comes ~5 s after the CA was made; the next one would come 5 s later.
	r := startRotationRig(t, "control", "--cert-no-overlap", "--ca-validity", "14s", "--ca-lookahead", "9s",
		"--serving-validity", "10s", "--serving-lookahead", "7500ms")
	first := parseCertsPEM(t, getCertSecret(t, r.name).Data[certs.SecretCACert])[0]
	var settled time.Time
	var polled, early bool
	res := r.underLoad(t, 30*time.Second, func() bool {
		ca := parseCertsPEM(t, getCertSecret(t, r.name).Data[certs.SecretCACert])[0]
		if !polled {
			polled, early = true, !ca.Equal(first)
		}
		if ca.Equal(first) || servedCert(t, r.b.addr).CheckSignatureFrom(first) == nil {
			return false
		}
		if settled.IsZero() {
			settled = time.Now()
		}
		return time.Since(settled) > settleFor
	})
	t.Logf("CA swapped without overlap in %s: caBundle %v; %s", res.took.Round(time.Millisecond), res.bundles, res)
	if early {
		t.Errorf("the swap happened before the load began (the replicas took too long to start): the run shows nothing")
	}
	if res.failed-res.timeouts == 0 {
		t.Fatalf("no create failed for its certificate across a CA swap without overlap (%d attempted): the load cannot see a broken rotation", res.attempted)
	}
	t.Logf("as expected, %d of %d creates failed, %s", res.failed, res.attempted, res.words)
	if !strings.Contains(res.words, "x509") && !strings.Contains(res.words, "certificate") {
		t.Errorf("the failures are not certificate failures: %s", res.words)
	}
	if len(res.bundles) < 2 || strings.Contains(res.bundles[0], " ") || strings.Contains(res.bundles[1], " ") {
		t.Errorf("caBundle went %v, want [old] -> [new]", res.bundles)
	}
}

func countEvents(events []string, want string) int {
	n := 0
	for _, e := range events {
		if e == want {
			n++
		}
	}
	return n
}

// applyBaseRBAC applies the ServiceAccount and manifests/base/rbac.yaml, as TestServiceAccountHasLeastPrivilege does.
func applyBaseRBAC(t *testing.T) {
	t.Helper()
	rbac, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sa := `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"agentgate","namespace":"agentgate-system"}}`
	if out, err := kubectl(t, append([]byte(sa+"\n---\n"), rbac...), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying RBAC: %v\n%s", err, out)
	}
}

// createThroughWebhook creates a pod in ns and checks that agentgate p answered for it.
func createThroughWebhook(t *testing.T, p *serverProcess, ns, name string) {
	t.Helper()
	before := p.metric(t, "agentgate_admission_requests_total")
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, agentPod(name), metav1.CreateOptions{}); err != nil {
		t.Fatalf("the API server refused a pod: %v", err)
	}
	if p.metric(t, "agentgate_admission_requests_total") == before {
		t.Fatalf("the pod was created without agentgate being called")
	}
}

func servingSerial(t *testing.T, secret string) string {
	t.Helper()
	return parseCertsPEM(t, getCertSecret(t, secret).Data[certs.SecretServingCert])[0].SerialNumber.Text(16)[:8]
}
