package certs

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	certFile, keyFile, caFile, err := SelfSigned(dir, []string{"agentgate.test", "10.1.2.3", "localhost", ""})
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	for path, wantMode := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600, caFile: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), wantMode)
		}
	}
	if filepath.Base(certFile) != "tls.crt" || filepath.Base(keyFile) != "tls.key" || filepath.Base(caFile) != "ca.crt" {
		t.Errorf("file names %s %s %s", certFile, keyFile, caFile)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("dir holds %d entries, want exactly the three files (no CA key, no temp files)", len(entries))
	}

	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := PoolFromPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("files are not a usable key pair: %v", err)
	}
	kp := &KeyPair{Cert: pair.Leaf}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "agentgate.test", "10.1.2.3"} {
		if err := kp.ValidAt(pool, name, time.Now()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := kp.ValidAt(pool, "other.test", time.Now()); err == nil {
		t.Errorf("certificate also valid for a name it was not asked for")
	}

	// A real HTTPS round trip, the way `agentgate serve` and curl --cacert use the files.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13},
	}
	go srv.ServeTLS(ln, certFile, keyFile)
	t.Cleanup(func() { srv.Close() })
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("HTTPS with ca.crt: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
}
