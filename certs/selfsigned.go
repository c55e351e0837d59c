package certs

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names follow the kubernetes.io/tls Secret keys, which is also what
// controller-runtime's webhook server and certwatcher look for in a cert dir.
const (
	CertFileName = "tls.crt"
	KeyFileName  = "tls.key"
	CAFileName   = "ca.crt"
)

// selfSignedValidity is long enough that a developer's `agentgate serve` never
// sees it expire; the pair is regenerated at every start anyway.
const selfSignedValidity = 365 * 24 * time.Hour

// SelfSigned writes a fresh CA and a serving certificate for localhost,
// 127.0.0.1, ::1 and the given hosts (DNS names or IP literals) into dir as
// tls.crt, tls.key and ca.crt, for a server started without certificates of
// its own. The CA key is never written: nothing should sign with it later.
func SelfSigned(dir string, hosts []string) (certFile, keyFile, caFile string, err error) {
	dnsNames := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if !slices.Contains(dnsNames, h) {
			dnsNames = append(dnsNames, h)
		}
	}
	now := time.Now()
	ca, err := GenerateCA("agentgate-selfsigned-ca", selfSignedValidity, now)
	if err != nil {
		return "", "", "", err
	}
	leaf, err := GenerateServing(ca, dnsNames, ips, selfSignedValidity, now)
	if err != nil {
		return "", "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", fmt.Errorf("creating certificate dir: %w", err)
	}
	certFile = filepath.Join(dir, CertFileName)
	keyFile = filepath.Join(dir, KeyFileName)
	caFile = filepath.Join(dir, CAFileName)
	// The key goes first: a watcher that sees the new certificate must find
	// its matching key already in place.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{keyFile, leaf.KeyPEM, 0o600},
		{certFile, leaf.CertPEM, 0o644},
		{caFile, ca.CertPEM, 0o644},
	} {
		if err := writeFileAtomic(f.path, f.data, f.mode); err != nil {
			return "", "", "", err
		}
	}
	return certFile, keyFile, caFile, nil
}

// writeFileAtomic writes through a temporary file and a rename, so that a
// reader (certwatcher, a curl --cacert) never sees a half-written PEM file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	// CreateTemp already uses 0600; Chmod makes the public files readable.
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
