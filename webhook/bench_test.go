package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"agentgate.io/agentgate/e2e/load/corpus"
	"agentgate.io/agentgate/e2e/load/floorsrv"
	"agentgate.io/agentgate/internal/benchcpu"
	"agentgate.io/agentgate/policy"
)

// The benchmarks behind doc.go's choice of net/http over controller-runtime's webhook.Server: the same
// decision (policy.Set.Judge on the default policy) behind both front ends, in-process, without TLS.
//
//	go test ./webhook -run '^$' -bench Frontend -benchmem

// largePod is about 40 KB of JSON: many containers with env and probes, as big agent pods are.
func largePod() *corev1.Pod {
	p := compliantPod("large")
	base := p.Spec.Containers[0]
	p.Spec.Containers = nil
	for i := range 12 {
		c := *base.DeepCopy()
		c.Name = fmt.Sprintf("worker-%d", i)
		for j := range 20 {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("AGENT_SETTING_%d", j), Value: "a-value-of-some-length-for-realism"})
		}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready"}}}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	return p
}

func benchBodies(b *testing.B) map[string][]byte {
	return map[string][]byte{
		"small": podReview(compliantPod("small")).body(b),
		"large": podReview(largePod()).body(b),
	}
}

func runHandler(b *testing.B, h http.Handler, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("HTTP %d: %s", w.Code, w.Body.String())
		}
	}
}

func BenchmarkFrontendAgentgate(b *testing.B) {
	pair, _, _ := selfSigned(b)
	srv, err := New(Options{GetCertificate: StaticCertificate(pair), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	for name, body := range benchBodies(b) {
		b.Run(name, func(b *testing.B) { runHandler(b, srv.Handler(), body) })
	}
}

// BenchmarkFrontendControllerRuntime: admission.Webhook decodes the review (non-strict, through the
// runtime codecs), then the handler decodes request.object a second time with admission.Decoder.
func BenchmarkFrontendControllerRuntime(b *testing.B) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	dec := admission.NewDecoder(scheme)
	set := policy.NewSet(policy.Default())
	wh := &admission.Webhook{Handler: admission.HandlerFunc(func(_ context.Context, req admission.Request) admission.Response {
		var pod corev1.Pod
		if err := dec.Decode(req, &pod); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		w, err := policy.NewWorkload(&pod)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		res := set.Judge(w, policy.Namespace{Name: req.Namespace}, policy.Requester{})
		if !res.Allowed() {
			return admission.Denied("denied")
		}
		return admission.Allowed("")
	})}
	for name, body := range benchBodies(b) {
		b.Run(name, func(b *testing.B) { runHandler(b, wh, body) })
	}
}

// The benchmarks behind BENCHMARKS.md (make bench), on the load tool's corpora (e2e/load/corpus): the
// same payloads the load tool sends, so the in-process and over-the-wire figures can be read side by side.
//
//	go test ./webhook -run '^$' -bench 'Decode|Handler|Floor' -benchmem

// corpusReview is a corpus review with a fixed uid.
func corpusReview(b *testing.B, name string) []byte {
	body, err := corpus.Review(name, "ffffffff-ffff-4fff-bfff-ffffffffffff")
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecode is the decode path alone: the AdmissionReview, strictly, then request.object by its kind,
// strictly, into the typed object the policy judges.
func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{corpus.Small, corpus.Large, corpus.Deployment} {
		body := corpusReview(b, name)
		b.Run(name, func(b *testing.B) { benchDecode(b, body) })
	}
}

// benchServer is agentgate's handler with the embedded default policy and audit events encoded as JSON into
// io.Discard: the logging cost is in, the write syscall is not.
func benchServer(b *testing.B) http.Handler {
	pair, _, _ := selfSigned(b)
	srv, err := New(Options{GetCertificate: StaticCertificate(pair), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return srv.Handler()
}

func serveBench(b *testing.B, h http.Handler, path string, body []byte, want string) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	rd := bytes.NewReader(body)
	done := benchcpu.PerOp(b)
	for b.Loop() {
		rd.Reset(body)
		req := httptest.NewRequest(http.MethodPost, path, rd)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(want)) {
			b.Fatalf("HTTP %d: %.300s", w.Code, w.Body.String())
		}
	}
	done()
}

// BenchmarkHandler is one review end to end in-process (no TLS, no sockets): read, decode, decide, encode,
// metrics and the audit event.
func BenchmarkHandler(b *testing.B) {
	h := benchServer(b)
	for _, c := range []struct{ path, corpus, want string }{
		{"/validate", corpus.Small, `"allowed":true`},
		{"/validate", corpus.Large, `"allowed":true`},
		{"/validate", corpus.Deployment, `"allowed":true`},
		{"/validate", corpus.Violating, `"allowed":false`},
		{"/mutate", corpus.Small, `"allowed":true`},
		{"/mutate", corpus.Large, `"allowed":true`},
	} {
		body := corpusReview(b, c.corpus)
		b.Run(c.path[1:]+"/"+c.corpus, func(b *testing.B) { serveBench(b, h, c.path, body, c.want) })
	}
	// The small pod as users write it, before the mutating webhook: /mutate hardens it and answers a patch.
	sent := podReview(unhardened(b)).body(b)
	b.Run("mutate/small-as-written", func(b *testing.B) { serveBench(b, h, "/mutate", sent, `"patch":`) })
}

// unhardened is the corpus small pod without anything agentgate fills in.
func unhardened(b *testing.B) *corev1.Pod {
	obj, err := corpus.Object(corpus.Small)
	if err != nil {
		b.Fatal(err)
	}
	p := obj.(*corev1.Pod)
	p.Spec.AutomountServiceAccountToken, p.Spec.SecurityContext = nil, nil
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].SecurityContext = nil
		p.Spec.Containers[i].Resources = corev1.ResourceRequirements{}
	}
	return p
}

// BenchmarkFloor is the decode-only floor server's handler on the same payloads (e2e/load/floorsrv).
func BenchmarkFloor(b *testing.B) {
	h := floorsrv.Handler()
	for _, name := range []string{corpus.Small, corpus.Large, corpus.Deployment} {
		body := corpusReview(b, name)
		b.Run(name, func(b *testing.B) { serveBench(b, h, "/validate", body, `"allowed":true`) })
	}
}

// BenchmarkValidateExec is one session review end to end in-process, beside BenchmarkHandler's /validate: the
// pod from an in-memory lookup (a cache hit), the default policy, the exec.* event written every time (the
// clock moves past the dedupe window between reviews).
func BenchmarkValidateExec(b *testing.B) {
	pair, _, _ := selfSigned(b)
	srv, err := New(Options{GetCertificate: StaticCertificate(pair), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Pods: execPods()})
	if err != nil {
		b.Fatal(err)
	}
	clock := time.Unix(0, 0)
	srv.now = func() time.Time { clock = clock.Add(execDedupeWindow); return clock }
	for _, c := range []struct {
		name string
		r    sessionReview
		want string
	}{
		{"exec", sessionReview{sub: "exec", obj: execOpts("runner", false, false, "ls", "-la", "/data")}, `"allowed":true`},
		{"exec-shell-script", sessionReview{sub: "exec", obj: execOpts("runner", false, false, "sh", "-c", "cd /data && tar cf - . | gzip -c")}, `"allowed":true`},
		{"exec-blocked", sessionReview{sub: "exec", obj: execOpts("runner", false, false, "sh", "-c", "echo bye; rm -rf /")}, `"allowed":false`},
		{"attach", sessionReview{sub: "attach", obj: attachOpts("runner", true, true)}, `"allowed":true`},
		{"portforward", sessionReview{sub: "portforward", obj: portForwardOpts(8080)}, `"allowed":true`},
	} {
		body := c.r.body(b)
		b.Run(c.name, func(b *testing.B) { serveBench(b, srv.Handler(), "/"+EndpointValidateExec, body, c.want) })
	}
}
