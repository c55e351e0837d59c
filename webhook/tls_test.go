package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"agentgate.io/agentgate/certs"
)

func tlsClient(roots *x509.CertPool, maxVersion uint16, clientCert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: roots, MaxVersion: maxVersion}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func TestWebhookTLS12RefusedByDefault(t *testing.T) {
	ts := startServer(t, Options{})
	_, err := tlsClient(ts.roots, tls.VersionTLS12, nil).Get(ts.url + "/healthz")
	if err == nil {
		t.Fatal("a TLS 1.2 client was served")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Logf("handshake error (expected a protocol version alert): %v", err)
	}
	ts.healthy()
}

func TestWebhookTLS12AllowedByOption(t *testing.T) {
	ts := startServer(t, Options{MinTLSVersion: tls.VersionTLS12})
	resp, err := tlsClient(ts.roots, tls.VersionTLS12, nil).Get(ts.url + "/healthz")
	if err != nil {
		t.Fatalf("TLS 1.2 client refused with MinTLSVersion 1.2: %v", err)
	}
	resp.Body.Close()
	if resp.TLS.Version != tls.VersionTLS12 {
		t.Errorf("negotiated %x", resp.TLS.Version)
	}
}

// clientCertificate issues a client-auth certificate from a fresh CA.
func clientCertificate(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	ca, err := certs.GenerateCA("test-client-ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestWebhookClientCA(t *testing.T) {
	clientCAs, clientCert := clientCertificate(t)
	ts := startServer(t, Options{ClientCAs: clientCAs}) // probes /readyz on the plain metrics listener

	if _, err := tlsClient(ts.roots, 0, nil).Get(ts.url + "/healthz"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	// A certificate from another CA is refused too.
	_, stranger := clientCertificate(t)
	if _, err := tlsClient(ts.roots, 0, &stranger).Get(ts.url + "/healthz"); err == nil {
		t.Fatal("a client certificate from an unknown CA was accepted")
	}
	withCert := tlsClient(ts.roots, 0, &clientCert)
	resp, err := withCert.Post(ts.url+"/validate", "application/json", strings.NewReader(string(podReview(compliantPod("ok")).body(t))))
	if err != nil {
		t.Fatalf("the API server's certificate was refused: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"allowed":true`) {
		t.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
}

// Shutdown stops accepting and finishes the request in flight: a review whose body is still arriving when
// the context is cancelled is answered, and Serve returns nil.
func TestWebhookGracefulShutdownDrainsInFlight(t *testing.T) {
	ts := startServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(Options{Addr: "127.0.0.1:0", GetCertificate: ts.srv.opts.GetCertificate, Logger: ts.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	active := make(chan struct{}, 16)
	srv.connState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateActive {
			active <- struct{}{}
		}
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	url := "https://" + srv.Addr().String()
	client := tlsClient(ts.roots, 0, nil)

	// Leading whitespace (valid JSON) larger than the client's write buffer, so that the request header
	// reaches the server at once: a request whose header arrives after shutdown began is dropped by net/http.
	body := append(bytes.Repeat([]byte(" "), 64<<10), podReview(compliantPod("inflight")).body(t)...)
	pr, pw := io.Pipe()
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url+"/validate", pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{code: resp.StatusCode, body: string(b)}
	}()
	if _, err := pw.Write(body[:len(body)-200]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-active:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the server")
	}
	time.Sleep(50 * time.Millisecond) // let the handler start reading the body
	cancel()
	// Shutdown has begun once new connections are refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := tlsClient(ts.roots, 0, nil)
		if _, err := c.Get(url + "/healthz"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still accepting new connections 5s after cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := pw.Write(body[len(body)-200:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-res
	if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, `"allowed":true`) {
		t.Fatalf("in-flight review not answered: %v %d %s", r.err, r.code, r.body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}

// A client that sends its header slowly (slowloris) is disconnected after ReadHeaderTimeout, and others are
// served meanwhile.
func TestWebhookSlowClientDisconnected(t *testing.T) {
	ts := startServer(t, Options{ReadHeaderTimeout: 300 * time.Millisecond})
	conn, err := tls.Dial("tcp", strings.TrimPrefix(ts.url, "https://"), &tls.Config{RootCAs: ts.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /validate HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	ts.healthy() // another client is served while the slow one holds its connection
	closed := make(chan error, 1)
	go func() {
		// Keep trickling header bytes; the server must hang up anyway.
		for {
			if _, err := conn.Write([]byte("X-Slow: 1\r\n")); err != nil {
				closed <- err
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				closed <- err
				return
			}
		}
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a slowloris connection was kept open for 10s with a 300ms ReadHeaderTimeout")
	}
	ts.healthy()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
