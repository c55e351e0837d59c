package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/policy"
)

// The benchmarks behind doc.go's choice of net/http over controller-runtime's webhook.Server: the same
// decision (policy.Set.Judge on the default policy) behind both front ends, in-process, without TLS.
//
//	go test ./webhook -run '^$' -bench Frontend -benchmem

func benchCert(b *testing.B) tls.Certificate {
	dir := b.TempDir()
	c, k, _, err := certs.SelfSigned(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(c, k)
	if err != nil {
		b.Fatal(err)
	}
	return pair
}

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
	srv, err := New(Options{GetCertificate: StaticCertificate(benchCert(b)), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
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
		res := set.Judge(w, policy.Namespace{Name: req.Namespace})
		if !res.Allowed() {
			return admission.Denied("denied")
		}
		return admission.Allowed("")
	})}
	for name, body := range benchBodies(b) {
		b.Run(name, func(b *testing.B) { runHandler(b, wh, body) })
	}
}
