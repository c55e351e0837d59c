package webhook

import (
	"encoding/json"

	"context"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"io"
	corev1 "k8s.io/api/core/v1"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testRegistry is go-containerregistry's in-process OCI registry on loopback, counting manifest requests.
type testRegistry struct {
	host      string
	manifests atomic.Int64
	delay     atomic.Int64 // nanoseconds every manifest HEAD waits: a registry that hangs
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			tr.manifests.Add(1)
			if delay := time.Duration(tr.delay.Load()); delay > 0 && r.Method == http.MethodHead {
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					return
				}
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// push writes a random image under ref and returns its digest.
func (tr *testRegistry) push(t *testing.T, repoTag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tr.manifests.Store(0) // count only what resolvers ask from here on
	return d.String()
}

func TestDigestResolverResolvesCachesAndFollowsTags(t *testing.T) {
	tr := startRegistry(t)
	first := tr.push(t, "agents/runner:1.4")
	reg := prometheus.NewRegistry()
	r, err := NewDigestResolver(DigestResolverOptions{CacheTTL: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	ref := tr.host + "/agents/runner:1.4"
	for i := 0; i < 3; i++ {
		got, err := r.Resolve(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got != first {
			t.Fatalf("resolved %s, want %s", got, first)
		}
	}
	if n := tr.manifests.Load(); n != 1 {
		t.Errorf("the registry was asked %d times for one tag within the TTL, want 1", n)
	}
	// The tag moves; after the TTL the new digest is served.
	moved := tr.push(t, "agents/runner:1.4")
	now = now.Add(2 * time.Hour)
	got, err := r.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if got != moved {
		t.Errorf("after the TTL resolved %s, want the moved tag's %s", got, moved)
	}
	if c := testutil.CollectAndCount(reg, "agentgate_image_resolve_duration_seconds"); c == 0 {
		t.Error("no resolution latency recorded")
	}
}

func TestDigestResolverFailsFastOnMissingTagAndHangingRegistry(t *testing.T) {
	tr := startRegistry(t)
	r, err := NewDigestResolver(DigestResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), tr.host+"/agents/absent:1"); err == nil {
		t.Error("a tag the registry does not have resolved")
	}

	hanging := startRegistry(t)
	hanging.push(t, "agents/runner:1")
	hanging.delay.Store(int64(time.Minute))
	r, err = NewDigestResolver(DigestResolverOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Resolve(context.Background(), hanging.host+"/agents/runner:1")
	if err == nil {
		t.Fatal("a registry that hangs produced a digest")
	}
	// Bounded by the resolver's own timeout, not by the registry: generous slack for a loaded machine,
	// and still far below the registry's one-minute hang.
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("resolution against a hanging registry took %s", elapsed)
	}
	t.Logf("hanging registry: %v", err)
}

// /mutate pins tags to the digests the registry holds for policies with images.pinDigests; then /validate
// admits the pinned pod under requireDigest, and a second /mutate has nothing left to do.
func TestWebhookMutatePinsDigests(t *testing.T) {
	tr := startRegistry(t)
	digest := tr.push(t, "agents/runner:1.4.2")
	resolver, err := NewDigestResolver(DigestResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := staticPolicy(t,
		`allow: ["registry.corp.example/agents/**"]`, `allow: ["`+tr.host+`/agents/**"]`,
		"pinDigests: false", "pinDigests: true",
		"requireDigest: false", "requireDigest: true")
	opts.DigestResolver = resolver
	ts := startServer(t, opts)

	pod := minimalPod("pinned")
	image := tr.host + "/agents/runner:1.4.2"
	pod.Spec.Containers[0].Image = image
	resp := ts.answer("/mutate", podReview(pod))
	requireAllowed(t, resp)
	patched := applyPatch(t, pod, resp.Patch)
	if got, want := patched.Spec.Containers[0].Image, image+"@"+digest; got != want {
		t.Fatalf("image after /mutate = %s, want %s", got, want)
	}
	requireAllowed(t, ts.answer("/validate", podReview(patched)))
	if again := ts.answer("/mutate", podReview(patched)); len(again.Patch) != 0 {
		t.Errorf("a pinned, hardened pod was patched again: %s", again.Patch)
	}

	// A tag the registry does not have stays a tag; requireDigest then denies it with its own message.
	missing := minimalPod("missing")
	missing.Spec.Containers[0].Image = tr.host + "/agents/runner:9.9"
	resp = ts.answer("/mutate", podReview(missing))
	requireAllowed(t, resp)
	requireDenied(t, ts.answer("/validate", podReview(applyPatch(t, missing, resp.Patch))), "spec.containers[0].image")
}

// applyPatch applies a /mutate answer's JSON patch to the pod (no patch: the pod as it is).
func applyPatch(t *testing.T, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	if len(patch) == 0 {
		return pod
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	var patched corev1.Pod
	if err := json.Unmarshal(out, &patched); err != nil {
		t.Fatal(err)
	}
	return &patched
}
