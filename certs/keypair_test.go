package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func mustCA(t *testing.T, validity time.Duration, now time.Time) *KeyPair {
	t.Helper()
	ca, err := GenerateCA("test-ca", validity, now)
	if err != nil {
		t.Fatalf("GenerateCA: %v", err)
	}
	return ca
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestGenerateCA(t *testing.T) {
	ca := mustCA(t, 24*time.Hour, t0)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("want a CA limited to signing leaves, got IsCA=%v MaxPathLen=%d zero=%v", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA lacks KeyUsageCertSign: %v", c.KeyUsage)
	}
	if c.Subject.CommonName != "test-ca" {
		t.Errorf("CommonName = %q", c.Subject.CommonName)
	}
	if !c.NotAfter.Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("NotAfter = %s, want %s", c.NotAfter, t0.Add(24*time.Hour))
	}
	if !c.NotBefore.Before(t0) {
		t.Errorf("NotBefore = %s, want backdated before %s for clock skew", c.NotBefore, t0)
	}
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", c.PublicKey)
	}
	// Self-signed: verifies against itself.
	if _, err := c.Verify(x509.VerifyOptions{Roots: poolOf(c), CurrentTime: t0}); err != nil {
		t.Errorf("CA does not verify against itself: %v", err)
	}
	if strings.TrimSpace(string(ca.CertPEM))[:27] != "-----BEGIN CERTIFICATE-----" {
		t.Errorf("CertPEM is not a PEM certificate")
	}
}

func TestSerialsAreRandom128Bit(t *testing.T) {
	seen := map[string]bool{}
	ca := mustCA(t, time.Hour, t0)
	for range 20 {
		leaf, err := GenerateServing(ca, []string{"a.example"}, nil, time.Hour, t0)
		if err != nil {
			t.Fatal(err)
		}
		s := leaf.Cert.SerialNumber
		if s.Sign() <= 0 || s.BitLen() > 128 {
			t.Fatalf("serial %x: want positive and at most 128 bits", s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %x issued twice", s)
		}
		seen[s.String()] = true
	}
	// Two CAs with the same name must differ in serial too (cert-controller's fixed serials do not).
	if a, b := mustCA(t, time.Hour, t0), mustCA(t, time.Hour, t0); a.Cert.SerialNumber.Cmp(b.Cert.SerialNumber) == 0 {
		t.Fatalf("two CAs share serial %x", a.Cert.SerialNumber)
	}
}

func TestServingValidAt(t *testing.T) {
	ca := mustCA(t, 48*time.Hour, t0)
	other := mustCA(t, 48*time.Hour, t0)
	leaf, err := GenerateServing(ca, []string{"agentgate.agentgate-system.svc", "agentgate.agentgate-system.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1")}, 10*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.Cert.ExtKeyUsage; len(got) != 1 || got[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v, want ServerAuth only", got)
	}
	if leaf.Cert.Subject.CommonName != "agentgate.agentgate-system.svc" {
		t.Errorf("CommonName = %q", leaf.Cert.Subject.CommonName)
	}
	var (
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		authority x509.UnknownAuthorityError
	)
	tests := []struct {
		name   string
		roots  *x509.CertPool
		dns    string
		at     time.Time
		wantAs any // nil: valid
		reason x509.InvalidReason
	}{
		{name: "valid now", roots: poolOf(ca.Cert), dns: "agentgate.agentgate-system.svc", at: t0},
		{name: "second SAN", roots: poolOf(ca.Cert), dns: "agentgate.agentgate-system.svc.cluster.local", at: t0},
		{name: "IP SAN", roots: poolOf(ca.Cert), dns: "127.0.0.1", at: t0},
		{name: "valid just before expiry", roots: poolOf(ca.Cert), dns: "agentgate.agentgate-system.svc", at: t0.Add(10*time.Hour - time.Second)},
		{name: "in a bundle with another CA", roots: poolOf(other.Cert, ca.Cert), dns: "agentgate.agentgate-system.svc", at: t0},
		{name: "wrong DNS name", roots: poolOf(ca.Cert), dns: "agentgate.default.svc", at: t0, wantAs: &hostname},
		{name: "wrong IP", roots: poolOf(ca.Cert), dns: "10.0.0.1", at: t0, wantAs: &hostname},
		{name: "expired at a future instant", roots: poolOf(ca.Cert), dns: "agentgate.agentgate-system.svc", at: t0.Add(10*time.Hour + time.Second), wantAs: &invalid, reason: x509.Expired},
		{name: "not yet valid", roots: poolOf(ca.Cert), dns: "agentgate.agentgate-system.svc", at: t0.Add(-2 * time.Hour), wantAs: &invalid, reason: x509.Expired},
		{name: "signed by another CA", roots: poolOf(other.Cert), dns: "agentgate.agentgate-system.svc", at: t0, wantAs: &authority},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := leaf.ValidAt(tc.roots, tc.dns, tc.at)
			if tc.wantAs == nil {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error of type %T, got none", tc.wantAs)
			}
			if !errors.As(err, tc.wantAs) {
				t.Fatalf("error %v (%T) is not a %T", err, errors.Unwrap(err), tc.wantAs)
			}
			if ie, ok := tc.wantAs.(*x509.CertificateInvalidError); ok && ie.Reason != tc.reason {
				t.Fatalf("reason %v, want %v", ie.Reason, tc.reason)
			}
		})
	}
}

func TestServingNeverOutlivesCA(t *testing.T) {
	ca := mustCA(t, time.Hour, t0)
	leaf, err := GenerateServing(ca, []string{"a.example"}, nil, 24*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Fatalf("leaf NotAfter %s, want clamped to CA NotAfter %s", leaf.Cert.NotAfter, ca.Cert.NotAfter)
	}
	if leaf.Cert.NotBefore.Before(ca.Cert.NotBefore) {
		t.Fatalf("leaf NotBefore %s precedes CA NotBefore %s", leaf.Cert.NotBefore, ca.Cert.NotBefore)
	}
}

func TestGenerateServingRejects(t *testing.T) {
	ca := mustCA(t, time.Hour, t0)
	leaf, err := GenerateServing(ca, []string{"a.example"}, nil, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	for name, fn := range map[string]func() error{
		"no names":      func() error { _, err := GenerateServing(ca, nil, nil, time.Hour, t0); return err },
		"leaf as CA":    func() error { _, err := GenerateServing(leaf, []string{"b"}, nil, time.Hour, t0); return err },
		"nil CA":        func() error { _, err := GenerateServing(nil, []string{"b"}, nil, time.Hour, t0); return err },
		"zero validity": func() error { _, err := GenerateServing(ca, []string{"b"}, nil, 0, t0); return err },
		"CA validity":   func() error { _, err := GenerateCA("x", -time.Second, t0); return err },
	} {
		if err := fn(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestParseKeyPair(t *testing.T) {
	ca := mustCA(t, time.Hour, t0)
	other := mustCA(t, time.Hour, t0)

	got, err := ParseKeyPair(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if !got.Cert.Equal(ca.Cert) || !got.Key.Equal(ca.Key) {
		t.Fatalf("round trip changed the pair")
	}

	pkcs8, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKeyPair(ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})); err != nil {
		t.Fatalf("PKCS#8 key (what cert-manager may write): %v", err)
	}

	if _, err := ParseKeyPair(ca.CertPEM, other.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: want 'does not match', got %v", err)
	}
	if _, err := ParseKeyPair([]byte("garbage"), ca.KeyPEM); err == nil {
		t.Fatalf("garbage certificate: want an error")
	}
	rsaLike := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}})
	if _, err := ParseKeyPair(ca.CertPEM, rsaLike); err == nil {
		t.Fatalf("unsupported key type: want an error")
	}

	tc, err := ca.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if tc.Leaf == nil || !tc.Leaf.Equal(ca.Cert) {
		t.Fatalf("TLSCertificate: Leaf not set to the certificate")
	}
}

func TestPoolFromPEM(t *testing.T) {
	a, b := mustCA(t, time.Hour, t0), mustCA(t, time.Hour, t0)
	bundle := append(append([]byte{}, a.CertPEM...), b.CertPEM...)
	certs, err := ParseCertificatesPEM(bundle)
	if err != nil || len(certs) != 2 {
		t.Fatalf("two-CA bundle: got %d certificates, err %v", len(certs), err)
	}
	if _, err := PoolFromPEM(nil); err == nil {
		t.Fatalf("empty bundle: want an error")
	}
	// A key block alone holds no certificate.
	if _, err := PoolFromPEM(a.KeyPEM); err == nil {
		t.Fatalf("key-only bundle: want an error")
	}
	// Truncated DER inside a CERTIFICATE block.
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw[:20]})
	if _, err := PoolFromPEM(bad); err == nil {
		t.Fatalf("corrupt certificate: want an error")
	}
}
