package certs

import (
	"crypto/x509"
	"net"
	"slices"
	"testing"
	"time"
)

func testPolicy() policy {
	return policy{
		caCommonName:     "test-ca",
		caValidity:       100 * time.Hour,
		caLookahead:      30 * time.Hour,
		servingValidity:  9 * time.Hour,
		servingLookahead: 3 * time.Hour,
		overlap:          time.Hour,
		dnsNames:         []string{"agentgate.ns.svc"},
		ips:              []net.IP{net.ParseIP("127.0.0.1")},
	}
}

// roundTrip stores and re-reads a state, as the Secret does between reconciles.
func roundTrip(t *testing.T, s state) state {
	t.Helper()
	data, ann := map[string][]byte{"foreign": []byte("kept")}, map[string]string{}
	s.encode(data, ann)
	if string(data["foreign"]) != "kept" {
		t.Fatalf("encode dropped a key it does not own")
	}
	return decodeState(data, ann)
}

func step(t *testing.T, p policy, s state, now time.Time, nextTrusted bool) (state, []string, time.Time) {
	t.Helper()
	next, changes, wake, err := p.plan(s, now, nextTrusted)
	if err != nil {
		t.Fatalf("plan at %s: %v", now, err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.cert+"/"+c.stage)
	}
	return roundTrip(t, next), got, wake
}

func bundleCAs(t *testing.T, s state) []*x509.Certificate {
	t.Helper()
	certs, err := ParseCertificatesPEM(s.bundle())
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	return certs
}

// servedTrusted is the zero-downtime invariant: the certificate served must
// verify against the caBundle that clients hold.
func servedTrusted(t *testing.T, s state, clientBundle []*x509.Certificate, at time.Time) {
	t.Helper()
	if err := s.serving.ValidAt(poolOf(clientBundle...), "agentgate.ns.svc", at); err != nil {
		t.Fatalf("at %s the served certificate is not trusted by the bundle clients hold: %v", at, err)
	}
}

func TestPlanFreshInstall(t *testing.T) {
	p := testPolicy()
	s, changes, wake := step(t, p, state{}, t0, false)
	if want := []string{"ca/created", "serving/issued"}; !slices.Equal(changes, want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	if got := bundleCAs(t, s); len(got) != 1 || !got[0].Equal(s.ca.Cert) {
		t.Fatalf("bundle should be the CA alone")
	}
	servedTrusted(t, s, bundleCAs(t, s), t0)
	if err := s.serving.ValidAt(poolOf(s.ca.Cert), "127.0.0.1", t0); err != nil {
		t.Fatalf("IP SAN: %v", err)
	}
	if want := t0.Add(6 * time.Hour); !wake.Equal(want) {
		t.Fatalf("wake %s, want serving renewal at 2/3 of its life %s", wake, want)
	}
	// Nothing to do until then: a second plan is a no-op.
	if _, changes, _ := step(t, p, s, t0.Add(time.Minute), false); len(changes) != 0 {
		t.Fatalf("second plan changed %v", changes)
	}
}

func TestPlanRenewsServingFromSameCA(t *testing.T) {
	p := testPolicy()
	s, _, _ := step(t, p, state{}, t0, false)
	first := s.serving

	s, changes, _ := step(t, p, s, t0.Add(6*time.Hour-time.Second), false)
	if len(changes) != 0 {
		t.Fatalf("renewed before the lookahead: %v", changes)
	}
	s, changes, _ = step(t, p, s, t0.Add(6*time.Hour), false)
	if !slices.Equal(changes, []string{"serving/issued"}) {
		t.Fatalf("changes %v, want serving/issued only", changes)
	}
	if s.serving.Cert.Equal(first.Cert) {
		t.Fatalf("serving certificate not renewed")
	}
	if s.serving.Cert.CheckSignatureFrom(s.ca.Cert) != nil || first.Cert.CheckSignatureFrom(s.ca.Cert) != nil {
		t.Fatalf("renewed certificate not signed by the same CA")
	}
}

func TestPlanReissuesServingForNewName(t *testing.T) {
	p := testPolicy()
	s, _, _ := step(t, p, state{}, t0, false)
	p.dnsNames = append(p.dnsNames, "agentgate.ns.svc.cluster.local")
	s, changes, _ := step(t, p, s, t0.Add(time.Minute), false)
	if !slices.Equal(changes, []string{"serving/issued"}) {
		t.Fatalf("a SAN added to the options must reissue; changes %v", changes)
	}
	if !slices.Contains(s.serving.Cert.DNSNames, "agentgate.ns.svc.cluster.local") {
		t.Fatalf("new SAN missing: %v", s.serving.Cert.DNSNames)
	}
}

// TestPlanCARotationWithOverlap walks a CA rotation with a client that sees
// every caBundle one overlap late, the worst case the overlap is sized for.
func TestPlanCARotationWithOverlap(t *testing.T) {
	p := testPolicy()
	s, _, _ := step(t, p, state{}, t0, false)
	oldCA := s.ca.Cert

	type seen struct {
		at     time.Time
		bundle []*x509.Certificate
	}
	var history []seen
	clientBundle := func(now time.Time) []*x509.Certificate {
		// The newest bundle written at least p.overlap-1s ago, as an API server lagging that much would hold.
		var b []*x509.Certificate
		for _, h := range history {
			if !h.at.After(now.Add(-p.overlap + time.Second)) {
				b = h.bundle
			}
		}
		return b
	}
	var all []string
	nextTrusted := false
	for now := t0; now.Before(t0.Add(80 * time.Hour)); now = now.Add(10 * time.Minute) {
		var changes []string
		s, changes, _ = step(t, p, s, now, nextTrusted)
		all = append(all, changes...)
		// The reconcile injects the bundle right after the write; the next
		// plan learns whether every webhook holds the pending CA.
		history = append(history, seen{now, bundleCAs(t, s)})
		nextTrusted = s.next != nil && slices.ContainsFunc(bundleCAs(t, s), s.next.Cert.Equal)
		if cb := clientBundle(now); cb != nil {
			servedTrusted(t, s, cb, now)
		}
		if s.next != nil || s.prev != nil {
			if len(bundleCAs(t, s)) != 2 {
				t.Fatalf("at %s: during a rotation the bundle must hold both CAs, has %d", now, len(bundleCAs(t, s)))
			}
		}
	}
	ca := slices.DeleteFunc(slices.Clone(all), func(c string) bool { return c == "serving/issued" })
	if wantCA := []string{"ca/pending", "ca/promoted", "ca/retired"}; !slices.Equal(ca, wantCA) {
		t.Fatalf("CA changes %v, want %v (all: %v)", ca, wantCA, all)
	}
	if s.ca.Cert.Equal(oldCA) {
		t.Fatalf("CA not rotated")
	}
	if got := bundleCAs(t, s); len(got) != 1 || !got[0].Equal(s.ca.Cert) {
		t.Fatalf("after the rotation the bundle must hold the new CA alone")
	}
	if s.serving.Cert.CheckSignatureFrom(s.ca.Cert) != nil {
		t.Fatalf("serving certificate not from the new CA")
	}
}

func TestPlanPromotionWaitsForInjection(t *testing.T) {
	p := testPolicy()
	s, _, _ := step(t, p, state{}, t0, false)
	due := s.ca.Cert.NotAfter.Add(-p.caLookahead)
	s, _, _ = step(t, p, s, due.Add(-time.Minute), false) // a fresh serving certificate
	s, changes, wake := step(t, p, s, due, false)
	if !slices.Equal(changes, []string{"ca/pending"}) {
		t.Fatalf("changes %v, want ca/pending", changes)
	}
	if !wake.Equal(due.Add(p.overlap)) {
		t.Fatalf("wake %s, want the end of the overlap %s", wake, due.Add(p.overlap))
	}
	// Overlap passed, but some webhook configuration lacks the new CA: wait.
	s, changes, _ = step(t, p, s, due.Add(2*p.overlap), false)
	if len(changes) != 0 || s.next == nil {
		t.Fatalf("promoted a CA that clients may not trust: %v", changes)
	}
	s, changes, _ = step(t, p, s, due.Add(2*p.overlap), true)
	if !slices.Equal(changes, []string{"ca/promoted", "serving/issued"}) {
		t.Fatalf("changes %v, want promotion and a new serving certificate", changes)
	}
	if s.prev == nil || !s.prevUntil.Equal(due.Add(3*p.overlap)) {
		t.Fatalf("previous CA kept until %s, want %s", s.prevUntil, due.Add(3*p.overlap))
	}
}

func TestPlanNoOverlapSwapsAtOnce(t *testing.T) {
	p := testPolicy()
	p.noOverlap = true
	s, _, _ := step(t, p, state{}, t0, false)
	old := s.ca.Cert
	s, changes, _ := step(t, p, s, old.NotAfter.Add(-p.caLookahead), false)
	if !slices.Equal(changes, []string{"ca/replaced", "serving/issued"}) {
		t.Fatalf("changes %v", changes)
	}
	if got := bundleCAs(t, s); len(got) != 1 || got[0].Equal(old) {
		t.Fatalf("bundle should hold only the new CA")
	}
}

func TestPlanReplacesExpiredOrBrokenCA(t *testing.T) {
	p := testPolicy()
	s, _, _ := step(t, p, state{}, t0, false)
	old := s.ca.Cert
	// Nobody ran for longer than the CA lives: no overlap can help.
	s, changes, _ := step(t, p, s, old.NotAfter.Add(time.Hour), false)
	if !slices.Equal(changes, []string{"ca/created", "serving/issued"}) {
		t.Fatalf("changes %v", changes)
	}
	if s.prev != nil || s.next != nil {
		t.Fatalf("an expired CA must not linger in the bundle")
	}

	// A CA key that does not match its certificate is discarded.
	data, ann := map[string][]byte{}, map[string]string{}
	s.encode(data, ann)
	other := mustCA(t, time.Hour, t0)
	data[SecretCAKey] = other.KeyPEM
	broken := decodeState(data, ann)
	if broken.ca != nil || broken.serving == nil {
		t.Fatalf("decode: want CA dropped and serving kept")
	}
	now := old.NotAfter.Add(2 * time.Hour)
	_, changes, _ = step(t, p, broken, now, false)
	if !slices.Equal(changes, []string{"ca/created", "serving/issued"}) {
		t.Fatalf("changes %v", changes)
	}
}

func TestPlanRestoresLostDeadlines(t *testing.T) {
	p := testPolicy()
	s, _, _ := step(t, p, state{}, t0, false)
	due := s.ca.Cert.NotAfter.Add(-p.caLookahead)
	s, _, _ = step(t, p, s, due, false)
	s.nextPromoteAfter = time.Time{} // someone edited the annotation away
	now := due.Add(5 * p.overlap)
	s, changes, _ := step(t, p, s, now, true)
	if len(changes) != 0 || !s.nextPromoteAfter.Equal(now.Add(p.overlap)) {
		t.Fatalf("lost deadline must restart the wait; changes %v, deadline %s", changes, s.nextPromoteAfter)
	}
}
