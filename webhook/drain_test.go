package webhook

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// During ShutdownDelay the server still answers, /readyz fails, and every answer says "Connection: close", so
// that clients move their connections to other replicas before the idle ones are closed under them.
func TestDrainingAnswersCloseConnections(t *testing.T) {
	pair, roots, _ := selfSigned(t)
	srv, err := New(Options{Addr: "127.0.0.1:0", GetCertificate: StaticCertificate(pair), ShutdownDelay: 2 * time.Second, HTTP2: true,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	url := "https://" + srv.Addr().String()
	client := func(h2 bool) *http.Client {
		var protos http.Protocols
		protos.SetHTTP1(!h2)
		protos.SetHTTP2(h2)
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: &protos}}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c := client(false)
		resp, err := c.Get(url + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.CloseIdleConnections()
			if resp.Close {
				t.Fatal("serving normally, the answer closes the connection")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	cancel()
	for !srv.stopping.Load() {
		time.Sleep(time.Millisecond)
	}
	for _, h2 := range []bool{false, true} {
		client := client(h2)
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			t.Fatalf("h2=%v: not serving during the shutdown delay: %v", h2, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("h2=%v: /healthz %d during the shutdown delay", h2, resp.StatusCode)
		}
		if !h2 && !resp.Close {
			t.Errorf("HTTP/1.1 answer during the shutdown delay keeps the connection open")
		}
		if h2 && resp.ProtoMajor != 2 {
			t.Errorf("asked for HTTP/2, got %s", resp.Proto)
		}
		if st := srv.Ready(); st.Ready {
			t.Error("ready during the shutdown delay")
		}
		client.CloseIdleConnections()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
}
