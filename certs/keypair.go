package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// KeyPair is a certificate with its private key, both as PEM (what is stored
// in a Secret or on disk) and parsed (what is signed with and verified).
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
}

// maxBackdate bounds how far NotBefore is moved into the past. The API server
// verifying our certificate may run on a node whose clock lags ours; without
// a backdate a freshly issued certificate would look "not yet valid" there.
const maxBackdate = time.Hour

// backdate is a tenth of the validity, capped: certificates living a few
// seconds in tests must not become mostly backdate.
func backdate(validity time.Duration) time.Duration {
	return min(validity/10, maxBackdate)
}

// serialLimit is 2^128: serials are random so that two certificates issued by
// racing replicas, or by a CA re-created with the same name, never collide
// (fixed serials make clients that cache by issuer+serial misbehave).
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

func randomSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("generating serial number: %w", err)
		}
		// RFC 5280 requires a positive serial.
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// GenerateCA creates a self-signed CA valid from now until now+validity,
// allowed to sign leaf certificates only (path length zero).
func GenerateCA(commonName string, validity time.Duration, now time.Time) (*KeyPair, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("CA validity must be positive, got %s", validity)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate(validity)),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, nil)
}

// GenerateServing creates a TLS server certificate signed by ca for the given
// DNS names and IP addresses. Its NotAfter never exceeds the CA's: a leaf that
// outlives its issuer would look valid to us but fail at every client.
func GenerateServing(ca *KeyPair, dnsNames []string, ips []net.IP, validity time.Duration, now time.Time) (*KeyPair, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("serving certificate needs a CA with certificate and key")
	}
	if !ca.Cert.IsCA {
		return nil, fmt.Errorf("issuer %q is not a CA", ca.Cert.Subject.CommonName)
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("serving certificate needs at least one DNS name or IP address")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("serving validity must be positive, got %s", validity)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	notBefore := now.Add(-backdate(validity))
	if notBefore.Before(ca.Cert.NotBefore) {
		notBefore = ca.Cert.NotBefore
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	} else {
		cn = ips[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		// ECDSA keys sign the handshake; they never encipher keys.
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              append([]string(nil), dnsNames...),
		IPAddresses:           append([]net.IP(nil), ips...),
	}
	return sign(tmpl, ca)
}

// sign creates a fresh P-256 key and a certificate for tmpl, signed by parent
// or self-signed when parent is nil.
func sign(tmpl *x509.Certificate, parent *KeyPair) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating P-256 key: %w", err)
	}
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing freshly signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return &KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		Cert:    cert,
		Key:     key,
	}, nil
}

// ParseKeyPair parses a PEM certificate (the first block is the certificate
// itself) and its PEM ECDSA key, and checks that they belong together, so that
// a half-written or hand-edited Secret is caught before it is served.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block in private key")
	}
	var key *ecdsa.PrivateKey
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var k any
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err == nil {
			var ok bool
			if key, ok = k.(*ecdsa.PrivateKey); !ok {
				err = fmt.Errorf("private key is %T, want ECDSA", k)
			}
		}
	default:
		err = fmt.Errorf("unsupported private key PEM type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	if !key.PublicKey.Equal(certs[0].PublicKey) {
		return nil, errors.New("private key does not match certificate")
	}
	return &KeyPair{
		CertPEM: bytes.Clone(certPEM),
		KeyPEM:  bytes.Clone(keyPEM),
		Cert:    certs[0],
		Key:     key,
	}, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block of a PEM bundle, such as
// a caBundle holding an old and a new CA. An empty bundle is an error.
func ParseCertificatesPEM(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d of bundle: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in PEM data")
	}
	return out, nil
}

// PoolFromPEM builds a root pool from a PEM bundle, failing on a bundle that
// holds no certificate (x509.CertPool.AppendCertsFromPEM would just say false).
func PoolFromPEM(bundle []byte) (*x509.CertPool, error) {
	certs, err := ParseCertificatesPEM(bundle)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// TLSCertificate returns the pair in the form tls.Config serves, with Leaf set
// so that handshakes need not re-parse it.
func (kp *KeyPair) TLSCertificate() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("building TLS certificate: %w", err)
	}
	return c, nil
}

// ValidAt verifies the certificate as a TLS client would at instant at:
// chained to roots, for dnsName (a host name or an IP address literal), within
// its validity period. Checking at a future instant (now plus a lookahead)
// tells whether it is time to renew, and a real x509.Verify also catches a
// wrong CA or a missing SAN, which a mere NotAfter comparison would not.
func (kp *KeyPair) ValidAt(roots *x509.CertPool, dnsName string, at time.Time) error {
	if kp == nil || kp.Cert == nil {
		return errors.New("no certificate")
	}
	_, err := kp.Cert.Verify(x509.VerifyOptions{
		DNSName:     dnsName,
		Roots:       roots,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("certificate %q at %s: %w", kp.Cert.Subject.CommonName, at.UTC().Format(time.RFC3339), err)
	}
	return nil
}
