package floorsrv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"agentgate.io/agentgate/e2e/load/corpus"
	admissionv1 "k8s.io/api/admission/v1"
)

func TestHandlerAllowsEveryCorpus(t *testing.T) {
	for hname, h := range map[string]http.Handler{"floor": Handler(), "null": NullHandler()} {
		for _, name := range corpus.Names() {
			uid := "uid-" + name
			body, err := corpus.Review(name, uid)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(string(body))))
			if rec.Code != http.StatusOK {
				t.Fatalf("%s, %s: HTTP %d: %s", hname, name, rec.Code, rec.Body)
			}
			var r admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			if r.APIVersion != "admission.k8s.io/v1" || r.Kind != "AdmissionReview" || r.Response == nil ||
				string(r.Response.UID) != uid || !r.Response.Allowed {
				t.Errorf("%s, %s: got %s", hname, name, rec.Body)
			}
		}
	}
}

// The null handler decodes nothing past request.uid, so only the first three are refused by both.
func TestHandlerRejectsBadInput(t *testing.T) {
	cases := map[string]struct {
		method, body string
		want         int
		wantNull     int
	}{
		"get":          {http.MethodGet, "", http.StatusMethodNotAllowed, http.StatusMethodNotAllowed},
		"not json":     {http.MethodPost, "{", http.StatusBadRequest, http.StatusBadRequest},
		"no request":   {http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest, http.StatusBadRequest},
		"unknown kind": {http.MethodPost, `{"request":{"uid":"u","kind":{"version":"v1","kind":"Secret"},"object":{}}}`, http.StatusBadRequest, http.StatusOK},
		"bad object":   {http.MethodPost, `{"request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"object":{"spec":7}}}`, http.StatusBadRequest, http.StatusOK},
	}
	for name, c := range cases {
		for _, h := range []struct {
			name    string
			handler http.Handler
			want    int
		}{{"floor", Handler(), c.want}, {"null", NullHandler(), c.wantNull}} {
			rec := httptest.NewRecorder()
			h.handler.ServeHTTP(rec, httptest.NewRequest(c.method, "/", strings.NewReader(c.body)))
			if rec.Code != h.want {
				t.Errorf("%s, %s: HTTP %d, want %d", h.name, name, rec.Code, h.want)
			}
		}
	}
}

func TestStartServesTLS13AndHTTP2(t *testing.T) {
	s, err := Start("127.0.0.1:0", Options{HTTP2: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CertPEM) {
		t.Fatal("CertPEM holds no certificate")
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: &protos}}
	defer client.CloseIdleConnections()
	body, _ := corpus.Review(corpus.Small, "u1")
	resp, err := client.Post(s.URL+"/validate", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("HTTP %d over %s, TLS version %#x; want 200 over HTTP/2 with TLS 1.3", resp.StatusCode, resp.Proto, resp.TLS.Version)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:9443"} {
		if s, err := Start(addr, Options{}); err == nil {
			s.Close()
			t.Errorf("Start(%q) succeeded, want a refusal", addr)
		}
	}
}
