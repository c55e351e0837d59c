package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Bad input: every case is answered promptly with a 4xx or with an AdmissionReview that refuses; never an
// admission, never a 5xx, and the server stays healthy. Each case goes to /validate and /mutate.
func TestWebhookBadInput(t *testing.T) {
	const limit = DefaultMaxBodyBytes
	ts := startServer(t, Options{Sources: []Source{StaticSource{"test:agents": policyDoc(t)}}})

	pod := minimalPod("p")
	podJSON, _ := json.Marshal(pod)
	good := podReview(pod).body(t)
	// withObject splices the object in as raw text: json.Marshal would refuse the malformed ones.
	withObject := func(obj string) []byte {
		if !bytes.Contains(good, podJSON) {
			t.Fatal("test setup: the pod is not in the review verbatim")
		}
		return bytes.Replace(good, podJSON, []byte(obj), 1)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("test setup: %q not in the review", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	objReplace := func(old, new string) []byte {
		if !bytes.Contains(podJSON, []byte(old)) {
			t.Fatalf("test setup: %q not in the pod", old)
		}
		return withObject(string(bytes.Replace(podJSON, []byte(old), []byte(new), 1)))
	}
	deep := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	manyContainers := func(n int) []byte {
		p := minimalPod("many")
		p.Spec.Containers = nil
		for i := range n {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: allowedImage, SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}})
		}
		return podReview(p).body(t)
	}

	cases := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		wantHTTP    int // 0: a 4xx, or a 200 AdmissionReview that refuses
		// mutateAllows: /mutate answers allowed without a patch by design (it patches Pod CREATEs only, and
		// leaves a pod that /validate will deny as sent); the mutating webhook never admits on its own, and
		// /validate refuses these.
		mutateAllows bool
	}{
		{name: "empty body", body: nil, wantHTTP: 400},
		{name: "whitespace", body: []byte("   \n"), wantHTTP: 400},
		{name: "not JSON", body: []byte("this is not json"), wantHTTP: 400},
		{name: "YAML", body: []byte("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n"), wantHTTP: 400},
		{name: "truncated", body: good[:len(good)/2], wantHTTP: 400},
		{name: "truncated by one byte", body: good[:len(good)-1], wantHTTP: 400},
		{name: "trailing garbage", body: append(append([]byte{}, good...), []byte(`{}`)...), wantHTTP: 400},
		{name: "null", body: []byte("null"), wantHTTP: 400},
		{name: "array", body: []byte(`[` + string(good) + `]`), wantHTTP: 400},
		{name: "string", body: []byte(`"AdmissionReview"`), wantHTTP: 400},
		{name: "number", body: []byte(`42`), wantHTTP: 400},
		{name: "empty object", body: []byte(`{}`), wantHTTP: 400},
		{name: "missing request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), wantHTTP: 400},
		{name: "null request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`), wantHTTP: 400},
		{name: "request is a string", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"x"}`), wantHTTP: 400},
		{name: "unknown review version", body: replace(`"admission.k8s.io/v1"`, `"admission.k8s.io/v2"`), wantHTTP: 400},
		{name: "missing apiVersion", body: replace(`"apiVersion":"admission.k8s.io/v1",`, ``), wantHTTP: 400},
		{name: "wrong review kind", body: replace(`"kind":"AdmissionReview"`, `"kind":"TokenReview"`), wantHTTP: 400},
		{name: "missing uid", body: replace(`"uid":"uid-p"`, `"uid":""`), wantHTTP: 400},
		{name: "uid is a number", body: replace(`"uid":"uid-p"`, `"uid":7`), wantHTTP: 400},
		{name: "response already set", body: replace(`"request":`, `"response":{"uid":"x","allowed":true},"request":`), wantHTTP: 400},
		{name: "duplicate top-level key", body: replace(`"kind":"AdmissionReview"`, `"kind":"AdmissionReview","kind":"AdmissionReview"`), wantHTTP: 400},
		{name: "duplicate request key", body: replace(`"operation":"CREATE"`, `"operation":"DELETE","operation":"CREATE"`), wantHTTP: 400},
		{name: "unknown review field", body: replace(`"kind":"AdmissionReview"`, `"kind":"AdmissionReview","extra":1`), wantHTTP: 400},
		{name: "unknown request field", body: replace(`"operation":"CREATE"`, `"operation":"CREATE","priority":"high"`), wantHTTP: 400},
		{name: "case-folded field", body: replace(`"operation":"CREATE"`, `"Operation":"CREATE"`), wantHTTP: 400},
		{name: "invalid UTF-8", body: replace(`"name":"p"`, "\"name\":\"p\xff\xfe\""), wantHTTP: 400},
		{name: "deep nesting", body: withObject(deep), wantHTTP: 400},
		{name: "deep nesting in review", body: []byte(strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000)), wantHTTP: 400},
		{name: "null object", body: withObject(`null`)},
		{name: "object is a string", body: withObject(`"pod"`)},
		{name: "object is an array", body: withObject(`[]`)},
		{name: "empty object", body: withObject(`{}`)},
		{name: "type confusion: privileged string", body: objReplace(`"name":"runner",`, `"name":"runner","securityContext":{"privileged":"true"},`)},
		{name: "type confusion: containers object", body: objReplace(`"containers":[`, `"containers":{"a":1},"x":[`)},
		{name: "duplicate key in object", body: objReplace(`"image":"`+allowedImage+`"`, `"image":"docker.io/evil:1","image":"`+allowedImage+`"`)},
		{name: "duplicate hostPID in object", body: objReplace(`"containers":`, `"hostPID":true,"hostPID":false,"containers":`)},
		{name: "unknown field in the pod spec (/validate denies it: check unknownFields)", body: objReplace(`"containers":`, `"hostEverything":true,"containers":`), mutateAllows: true},
		{name: "kind mismatch: Deployment holding a Pod", body: replace(`"kind":{"group":"","version":"v1","kind":"Pod"}`, `"kind":{"group":"apps","version":"v1","kind":"Deployment"}`), mutateAllows: true},
		{name: "kind mismatch: object says Deployment", body: objReplace(`"kind":"Pod"`, `"kind":"Deployment"`)},
		{name: "object without kind", body: objReplace(`"kind":"Pod",`, ``)},
		{name: "unsupported kind version", body: replace(`"version":"v1","kind":"Pod"`, `"version":"v2","kind":"Pod"`)},
		{name: "empty request kind", body: replace(`"kind":{"group":"","version":"v1","kind":"Pod"}`, `"kind":{"group":"","version":"","kind":""}`)},
		{name: "unknown operation", body: replace(`"operation":"CREATE"`, `"operation":"PATCH"`)},
		{name: "namespace mismatch", body: replace(`"namespace":"agents","object"`, `"namespace":"elsewhere","object"`)},
		{name: "10,000 privileged containers", body: manyContainers(10000), mutateAllows: true},
		{name: "body over the limit", body: bytes.Repeat([]byte(" "), limit+1), wantHTTP: 413},
		{name: "64 MiB body", body: bytes.Repeat([]byte(" "), 64<<20), wantHTTP: 413},
		{name: "review padded over the limit", body: append(bytes.Repeat([]byte(" "), limit), good...), wantHTTP: 413},
		{name: "GET", method: http.MethodGet, wantHTTP: 405},
		{name: "DELETE", method: http.MethodDelete, body: good, wantHTTP: 405},
		{name: "PUT", method: http.MethodPut, body: good, wantHTTP: 405},
		{name: "text/plain", contentType: "text/plain", body: good, wantHTTP: 415},
		{name: "no content type", contentType: "-", body: good, wantHTTP: 415},
		{name: "application/yaml", contentType: "application/yaml", body: good, wantHTTP: 415},
		{name: "malformed content type", contentType: "application/json; ===", body: good, wantHTTP: 415},
	}
	for _, path := range []string{"/validate", "/mutate"} {
		for _, c := range cases {
			t.Run(strings.TrimPrefix(path, "/")+"/"+c.name, func(t *testing.T) {
				method := c.method
				if method == "" {
					method = http.MethodPost
				}
				ct := c.contentType
				switch ct {
				case "":
					ct = "application/json"
				case "-":
					ct = ""
				}
				code, rev, raw := ts.do(method, path, ct, c.body)
				if code >= 500 {
					t.Fatalf("HTTP %d: %s", code, raw)
				}
				if c.wantHTTP != 0 {
					if code != c.wantHTTP {
						t.Fatalf("HTTP %d, want %d: %.300s", code, c.wantHTTP, raw)
					}
					var st struct{ Message string }
					if json.Unmarshal(raw, &st) != nil || !strings.HasPrefix(st.Message, "agentgate: ") {
						t.Errorf("answer without a clear message: %.300s", raw)
					}
					return
				}
				if code >= 400 && code < 500 {
					return // refused at the HTTP level
				}
				if code != http.StatusOK || rev == nil {
					t.Fatalf("HTTP %d, want a 4xx or an AdmissionReview that refuses: %.300s", code, raw)
				}
				if c.mutateAllows && path == "/mutate" {
					if !rev.Response.Allowed || rev.Response.Patch != nil {
						t.Errorf("want allowed without patch: %.300s", raw)
					}
					return
				}
				if rev.Response.Allowed {
					t.Fatalf("admitted: %.300s", raw)
				}
				if rev.Response.Patch != nil {
					t.Errorf("a refusal carries a patch")
				}
				if rev.Response.Result == nil || rev.Response.Result.Code < 400 || rev.Response.Result.Code >= 500 || rev.Response.Result.Message == "" {
					t.Errorf("refusal without a 4xx status and message: %+v", rev.Response.Result)
				}
			})
		}
	}
	ts.healthy()
	if got := ts.metric("agentgate_bad_requests_total", `reason="panic"`); got != 0 {
		t.Errorf("%v panics", got)
	}
	if got := ts.metric("agentgate_bad_requests_total", `endpoint="validate"`, `reason="too_large"`); got != 3 {
		t.Errorf("bad_requests_total{too_large} = %v, want 3", got)
	}
	if got := ts.metric("agentgate_bad_requests_total", `endpoint="mutate"`, `reason="strict"`); got < 4 {
		t.Errorf("bad_requests_total{strict} = %v", got)
	}
}

// A body over the limit sent without Content-Length (chunked) is cut off at the limit and answered 413.
func TestWebhookChunkedBodyOverLimit(t *testing.T) {
	const limit = 64 << 10
	ts := startServer(t, Options{MaxBodyBytes: limit})
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte(" "), 4096)
		for i := 0; i < 4*limit/len(chunk); i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/validate", pr)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte("larger than")) {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	ts.healthy()
}

// A handler panic is answered 500 and logged; the server stays up. (Reached here through a namespace lister
// that panics: agentgate's own code is meant never to.)
func TestWebhookRecoversPanics(t *testing.T) {
	ts := startServer(t, Options{Namespaces: panickyNamespaces{}})
	code, _, raw := ts.post("/validate", podReview(compliantPod("p")).body(t))
	if code != http.StatusInternalServerError {
		t.Fatalf("HTTP %d: %s", code, raw)
	}
	if evs := ts.logs.Events("http.panic"); len(evs) != 1 {
		t.Errorf("http.panic events: %d", len(evs))
	}
	ts.healthy()
}

type panickyNamespaces struct{}

func (panickyNamespaces) Labels(string) map[string]string { panic("namespace cache exploded") }
