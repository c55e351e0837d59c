package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"
)

// Keys of the Secret that is the source of truth for every replica. The
// kubernetes.io/tls keys hold what is served, so the Secret can also be
// mounted or inspected with ordinary tools.
const (
	SecretCACert         = "ca.crt"          // the CA that signs tls.crt
	SecretCAKey          = "ca.key"          // its key
	SecretServingCert    = "tls.crt"         // the serving certificate
	SecretServingKey     = "tls.key"         // its key
	SecretNextCACert     = "ca-next.crt"     // a new CA already trusted in caBundle, not yet signing
	SecretNextCAKey      = "ca-next.key"     // its key
	SecretPreviousCACert = "ca-previous.crt" // a retired CA still trusted in caBundle

	// The deadlines are stored, not derived from each replica's options, so
	// that replicas configured differently (a rolling update changing the
	// overlap) still agree on when a phase ends.
	AnnotationNextCAPromoteAfter = "agentgate.io/ca-next-promote-after"
	AnnotationPreviousCAUntil    = "agentgate.io/ca-previous-until"
)

// state is what the Secret holds, parsed. Unusable parts (unparseable, key
// not matching) are left nil, so that the plan replaces them.
type state struct {
	ca      *KeyPair
	serving *KeyPair
	next    *KeyPair
	prev    *x509.Certificate

	nextPromoteAfter time.Time
	prevUntil        time.Time
}

func decodeState(data map[string][]byte, annotations map[string]string) state {
	var s state
	if kp, err := ParseKeyPair(data[SecretCACert], data[SecretCAKey]); err == nil && kp.Cert.IsCA {
		s.ca = kp
	}
	if kp, err := ParseKeyPair(data[SecretServingCert], data[SecretServingKey]); err == nil {
		s.serving = kp
	}
	if kp, err := ParseKeyPair(data[SecretNextCACert], data[SecretNextCAKey]); err == nil && kp.Cert.IsCA {
		s.next = kp
		s.nextPromoteAfter, _ = time.Parse(time.RFC3339Nano, annotations[AnnotationNextCAPromoteAfter])
	}
	if certs, err := ParseCertificatesPEM(data[SecretPreviousCACert]); err == nil {
		s.prev = certs[0]
		s.prevUntil, _ = time.Parse(time.RFC3339Nano, annotations[AnnotationPreviousCAUntil])
	}
	return s
}

// encode writes s into data and annotations, touching only our own keys so
// that anything else someone keeps in the Secret survives.
func (s state) encode(data map[string][]byte, annotations map[string]string) {
	set := func(key string, v []byte) {
		if v == nil {
			delete(data, key)
		} else {
			data[key] = v
		}
	}
	setTime := func(key string, t time.Time, present bool) {
		if present {
			annotations[key] = t.UTC().Format(time.RFC3339Nano)
		} else {
			delete(annotations, key)
		}
	}
	set(SecretCACert, pemOf(s.ca, true))
	set(SecretCAKey, pemOf(s.ca, false))
	set(SecretServingCert, pemOf(s.serving, true))
	set(SecretServingKey, pemOf(s.serving, false))
	set(SecretNextCACert, pemOf(s.next, true))
	set(SecretNextCAKey, pemOf(s.next, false))
	var prev []byte
	if s.prev != nil {
		prev = certPEM(s.prev)
	}
	set(SecretPreviousCACert, prev)
	setTime(AnnotationNextCAPromoteAfter, s.nextPromoteAfter, s.next != nil)
	setTime(AnnotationPreviousCAUntil, s.prevUntil, s.prev != nil)
}

func pemOf(kp *KeyPair, cert bool) []byte {
	switch {
	case kp == nil:
		return nil
	case cert:
		return kp.CertPEM
	default:
		return kp.KeyPEM
	}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// bundle is the caBundle for the webhook configurations: every CA a replica
// may be serving from during a rotation, oldest first.
func (s state) bundle() []byte {
	var out []byte
	seen := map[string]bool{}
	for _, c := range []*x509.Certificate{s.prev, certOf(s.ca), certOf(s.next)} {
		if c == nil || seen[string(c.Raw)] {
			continue
		}
		seen[string(c.Raw)] = true
		out = append(out, certPEM(c)...)
	}
	return out
}

func certOf(kp *KeyPair) *x509.Certificate {
	if kp == nil {
		return nil
	}
	return kp.Cert
}

// policy is the part of the options that decides what the Secret should hold.
type policy struct {
	caCommonName     string
	caValidity       time.Duration
	caLookahead      time.Duration
	servingValidity  time.Duration
	servingLookahead time.Duration
	overlap          time.Duration
	noOverlap        bool
	dnsNames         []string
	ips              []net.IP
}

// newCA names each CA after its creation time, as Kubernetes names its own
// self-signed CAs: during a rotation the bundle holds two CAs, and people
// reading it (and clients building chains by subject) can tell them apart.
func (p policy) newCA(now time.Time) (*KeyPair, error) {
	return GenerateCA(fmt.Sprintf("%s@%d", p.caCommonName, now.Unix()), p.caValidity, now)
}

// verifyNames are the names a client may dial: the serving certificate must
// hold every one of them.
func (p policy) verifyNames() []string {
	names := append([]string(nil), p.dnsNames...)
	for _, ip := range p.ips {
		names = append(names, ip.String())
	}
	return names
}

// change is one certificate event, logged as cert.rotated.
type change struct {
	cert     string // "ca" or "serving"
	stage    string
	notAfter time.Time
	serial   string
}

func changeOf(cert, stage string, c *x509.Certificate) change {
	return change{cert: cert, stage: stage, notAfter: c.NotAfter, serial: fmt.Sprintf("%x", c.SerialNumber)}
}

func usableAt(c *x509.Certificate, at time.Time) bool {
	return c != nil && !at.Before(c.NotBefore) && !at.After(c.NotAfter)
}

// plan moves the stored state one step towards what should be served at now.
//
// A CA rotation with overlap has three steps, each a separate write, so that
// no client ever holds a caBundle that lacks the CA of the certificate it is
// offered:
//  1. a new CA is created beside the current one (ca-next) and both go into
//     caBundle;
//  2. once every webhook configuration trusts it (nextTrusted) and the overlap
//     has passed (time for API servers to pick up the bundle), it becomes the
//     signing CA, the serving certificate is reissued from it, and the old CA
//     becomes ca-previous, still in caBundle;
//  3. after another overlap (time for every replica to serve the new
//     certificate), ca-previous is dropped.
//
// It returns the new state, what changed, and when the state must be looked
// at again.
func (p policy) plan(cur state, now time.Time, nextTrusted bool) (state, []change, time.Time, error) {
	s := cur
	var changes []change

	switch {
	case s.ca == nil || !usableAt(s.ca.Cert, now):
		// Nothing to overlap with: an expired or missing CA fails every
		// handshake already. A pending CA is the best replacement, as clients
		// may trust it already.
		if s.next != nil && usableAt(s.next.Cert, now) {
			s.ca, s.next = s.next, nil
			changes = append(changes, changeOf("ca", "promoted", s.ca.Cert))
		} else {
			ca, err := p.newCA(now)
			if err != nil {
				return cur, nil, time.Time{}, err
			}
			s.ca, s.next = ca, nil
			changes = append(changes, changeOf("ca", "created", ca.Cert))
		}
		s.prev = nil
	case !now.Add(p.caLookahead).Before(s.ca.Cert.NotAfter) && s.next == nil:
		ca, err := p.newCA(now)
		if err != nil {
			return cur, nil, time.Time{}, err
		}
		if p.noOverlap {
			s.ca, s.prev = ca, nil
			changes = append(changes, changeOf("ca", "replaced", ca.Cert))
		} else {
			s.next, s.nextPromoteAfter = ca, now.Add(p.overlap)
			changes = append(changes, changeOf("ca", "pending", ca.Cert))
		}
	}

	if s.next != nil && !usableAt(s.next.Cert, now) {
		s.next = nil
	}
	if s.next != nil && s.nextPromoteAfter.IsZero() {
		// Someone removed the deadline: restart the wait rather than risk
		// promoting a CA that clients have not seen yet.
		s.nextPromoteAfter = now.Add(p.overlap)
	}
	if s.next != nil && !now.Before(s.nextPromoteAfter) && nextTrusted {
		s.prev, s.prevUntil = s.ca.Cert, now.Add(p.overlap)
		s.ca, s.next = s.next, nil
		changes = append(changes, changeOf("ca", "promoted", s.ca.Cert))
	}
	if s.prev != nil && s.prevUntil.IsZero() {
		s.prevUntil = now.Add(p.overlap)
	}
	if s.prev != nil && (!now.Before(s.prevUntil) || !usableAt(s.prev, now)) {
		changes = append(changes, changeOf("ca", "retired", s.prev))
		s.prev = nil
	}
	if s.next == nil {
		s.nextPromoteAfter = time.Time{}
	}
	if s.prev == nil {
		s.prevUntil = time.Time{}
	}

	if err := p.servingValid(s, now.Add(p.servingLookahead)); err != nil {
		leaf, err := GenerateServing(s.ca, p.dnsNames, p.ips, p.servingValidity, now)
		if err != nil {
			return cur, nil, time.Time{}, err
		}
		s.serving = leaf
		changes = append(changes, changeOf("serving", "issued", leaf.Cert))
	}

	wake := s.serving.Cert.NotAfter.Add(-p.servingLookahead)
	earliest := func(t time.Time) {
		if t.Before(wake) {
			wake = t
		}
	}
	if s.next == nil {
		earliest(s.ca.Cert.NotAfter.Add(-p.caLookahead))
	} else {
		earliest(s.nextPromoteAfter)
	}
	if s.prev != nil {
		earliest(s.prevUntil)
	}
	return s, changes, wake, nil
}

// servingValid says whether the serving certificate, checked as a client
// would at instant at, chains to the signing CA for every name.
func (p policy) servingValid(s state, at time.Time) error {
	if s.serving == nil || s.ca == nil {
		return errors.New("no serving certificate or CA")
	}
	// x509 still accepts a certificate at its NotAfter instant; renewal must
	// not wait for the instant after, or the loop would wake once for nothing.
	if !at.Before(s.serving.Cert.NotAfter) {
		return fmt.Errorf("serving certificate expires at %s", s.serving.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.ca.Cert)
	for _, name := range p.verifyNames() {
		if err := s.serving.ValidAt(roots, name, at); err != nil {
			return err
		}
	}
	return nil
}
