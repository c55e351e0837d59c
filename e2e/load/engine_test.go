package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"agentgate.io/agentgate/e2e/load/corpus"
	"agentgate.io/agentgate/e2e/load/floorsrv"
)

// The runs here are short: they check that the engine counts and measures
// correctly, not how fast anything is.

func startFloor(t *testing.T) (*floorsrv.Server, *tls.Config) {
	t.Helper()
	s, err := floorsrv.Start("127.0.0.1:0", floorsrv.Options{HTTP2: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	return s, &tls.Config{RootCAs: pool}
}

func checkClean(t *testing.T, res *Result) {
	t.Helper()
	if res.Requests == 0 || res.OK != res.Requests || res.Errors != 0 {
		t.Fatalf("requests %d, ok %d, errors %d %v; want all ok", res.Requests, res.OK, res.Errors, res.ErrorKind)
	}
	if !(0 < res.P50 && res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) {
		t.Errorf("percentiles out of order: p50 %v p90 %v p99 %v max %v", res.P50, res.P90, res.P99, res.Max)
	}
	if res.Throughput <= 0 {
		t.Errorf("throughput %v", res.Throughput)
	}
}

func TestRunAgainstFloor(t *testing.T) {
	s, tlsCfg := startFloor(t)
	cases := []struct {
		name string
		cfg  Config
	}{
		{"closed/http1/small", Config{Corpus: corpus.Small, Mode: ModeClosed, Concurrency: 4}},
		{"closed/http2/large", Config{Corpus: corpus.Large, Mode: ModeClosed, Concurrency: 4, HTTP2: true}},
		{"open/http1/small", Config{Corpus: corpus.Small, Mode: ModeOpen, Concurrency: 8, Rate: 200}},
		{"open/http2/deployment", Config{Corpus: corpus.Deployment, Mode: ModeOpen, Concurrency: 8, Rate: 200, HTTP2: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.URL = s.URL + "/validate"
			cfg.Duration = time.Second
			cfg.Timeout = 5 * time.Second
			cfg.TLS = tlsCfg
			cfg.PID = os.Getpid() // the floor runs in this process
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkClean(t, res)
			if wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[cfg.HTTP2]; res.Proto != wantProto {
				t.Errorf("proto %s, want %s", res.Proto, wantProto)
			}
			if cfg.Mode == ModeOpen && res.Requests != 200 {
				t.Errorf("open mode sent %d requests, want the 200 scheduled", res.Requests)
			}
			if res.RSSKiB <= 0 || res.PeakRSSKiB < res.RSSKiB {
				t.Errorf("RSS %d KiB, peak %d KiB", res.RSSKiB, res.PeakRSSKiB)
			}
		})
	}
}

// answer writes an AdmissionReview response, the way a webhook would.
func answer(w http.ResponseWriter, apiVersion, uid string) {
	json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": apiVersion, "kind": "AdmissionReview",
		"response": map[string]any{"uid": uid, "allowed": true},
	})
}

func requestUID(r *http.Request) string {
	var review struct {
		Request struct {
			UID string `json:"uid"`
		} `json:"request"`
	}
	json.NewDecoder(r.Body).Decode(&review)
	return review.Request.UID
}

func TestRunCountsErrors(t *testing.T) {
	cases := map[string]struct {
		handler http.HandlerFunc
		want    string
	}{
		"500": {func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, "HTTP 500"},
		"wrong uid": {func(w http.ResponseWriter, r *http.Request) {
			answer(w, "admission.k8s.io/v1", requestUID(r)+"x")
		}, "response.uid does not match"},
		"not json": {func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>")
		}, "unparseable AdmissionReview"},
		"wrong apiVersion": {func(w http.ResponseWriter, r *http.Request) {
			answer(w, "admission.k8s.io/v1beta1", requestUID(r))
		}, "want admission.k8s.io/v1 AdmissionReview"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(c.handler)
			defer srv.Close()
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			res, err := Run(t.Context(), Config{
				URL: srv.URL, Corpus: corpus.Small, Mode: ModeClosed, Concurrency: 2,
				Duration: 200 * time.Millisecond, Timeout: 2 * time.Second, TLS: &tls.Config{RootCAs: pool},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests == 0 || res.Errors != res.Requests || res.OK != 0 {
				t.Fatalf("requests %d, errors %d, ok %d; want every request an error", res.Requests, res.Errors, res.OK)
			}
			found := false
			for k := range res.ErrorKind {
				found = found || strings.Contains(k, c.want)
			}
			if !found {
				t.Errorf("error kinds %v, want one containing %q", res.ErrorKind, c.want)
			}
		})
	}
}

// A server that stops answering must neither stall the run past its bound nor
// vanish from the figures: in open mode every scheduled request it did not
// answer is an error.
func TestRunOpenStalledServer(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid := requestUID(r)
		if calls.Add(1) > 1 { // answer the preflight, then hang
			<-r.Context().Done()
			return
		}
		answer(w, "admission.k8s.io/v1", uid)
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg := Config{
		URL: srv.URL, Corpus: corpus.Small, Mode: ModeOpen, Concurrency: 2, Rate: 100,
		Duration: 300 * time.Millisecond, Timeout: 300 * time.Millisecond, TLS: &tls.Config{RootCAs: pool},
	}
	start := time.Now()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took, bound := time.Since(start), cfg.Duration+2*cfg.Timeout+time.Second; took > bound {
		t.Errorf("run took %v, want under %v", took, bound)
	}
	if res.Requests != 30 || res.Errors != 30 || res.OK != 0 || res.Unsent == 0 {
		t.Errorf("requests %d, errors %d, ok %d, unsent %d; want all 30 scheduled requests failed, some unsent",
			res.Requests, res.Errors, res.OK, res.Unsent)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	floor, _ := startFloor(t)
	h1only := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer h1only.Close()
	pool := x509.NewCertPool()
	pool.AddCert(h1only.Certificate())
	h1onlyTLS := &tls.Config{RootCAs: pool}
	ok := Config{URL: "https://127.0.0.1:1/validate", Corpus: corpus.Small, Mode: ModeClosed, Concurrency: 1, Duration: time.Second}
	cases := map[string]func(c *Config){
		"non-loopback":   func(c *Config) { c.URL = "https://192.0.2.1:8443/validate" },
		"hostname":       func(c *Config) { c.URL = "https://example.com/validate" },
		"plain http":     func(c *Config) { c.URL = "http://127.0.0.1:8443/validate" },
		"mode":           func(c *Config) { c.Mode = "burst" },
		"open no rate":   func(c *Config) { c.Mode = ModeOpen },
		"corpus":         func(c *Config) { c.Corpus = "huge" },
		"no duration":    func(c *Config) { c.Duration = 0 },
		"concurrency":    func(c *Config) { c.Concurrency = 0 },
		"unreachable":    func(c *Config) {},
		"missing pid":    func(c *Config) { c.PID = 1 << 30 },
		"unknown TLS CA": func(c *Config) { c.URL = floor.URL }, // no RootCAs: the floor's certificate is untrusted
		"HTTP/2 refused": func(c *Config) { c.URL = h1only.URL; c.TLS = h1onlyTLS; c.HTTP2 = true },
	}
	for name, mutate := range cases {
		cfg := ok
		mutate(&cfg)
		if _, err := Run(t.Context(), cfg); err == nil {
			t.Errorf("%s: Run succeeded, want an error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestCLIJSON(t *testing.T) {
	s, _ := startFloor(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", s.URL + "/validate", "-cacert", ca, "-corpus", "violating", "-c", "2",
		"-d", "300ms", "-warmup", "0s", "-http2", "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout.String())
	}
	if rep.Corpus != "violating" || rep.Proto != "HTTP/2.0" || rep.OK == 0 || rep.Errors != 0 || rep.LatencyMS.P99 <= 0 {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(stderr.String(), "reviews/s") {
		t.Errorf("with -json the text report goes to stderr; got %q", stderr.String())
	}
	if code := run([]string{"-mode", "open", "-url", s.URL, "-insecure"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("open mode without -rate: exit %d, want 2", code)
	}
}

// An interrupted run reports what it measured, and does not charge the
// requests that never fell due as failures.
func TestRunInterrupted(t *testing.T) {
	s, tlsCfg := startFloor(t)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, Config{
		URL: s.URL, Corpus: corpus.Small, Mode: ModeOpen, Concurrency: 4, Rate: 100,
		Duration: time.Minute, Timeout: 5 * time.Second, TLS: tlsCfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.OK == 0 || res.Requests > 60 || res.Errors > 4 {
		t.Errorf("interrupted %v, requests %d, ok %d, errors %d %v; want about 50 requests, hardly any errors",
			res.Interrupted, res.Requests, res.OK, res.Errors, res.ErrorKind)
	}
}
