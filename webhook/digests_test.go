package webhook

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"agentgate.io/agentgate/policy"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testRegistry is go-containerregistry's in-process OCI registry on an httptest server on loopback (TLS unless
// plain), counting connections and manifest requests.
type testRegistry struct {
	host        string
	roots       *x509.CertPool // nil for a plain HTTP registry
	push        func(t *testing.T, repoTag string) string
	connections atomic.Int64
	requests    atomic.Int64 // every request the registry handled
	manifests   atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	delay       atomic.Int64 // nanoseconds every manifest HEAD waits: a registry that hangs
	mu          sync.Mutex
	paths       []string
}

func startRegistry(t *testing.T) *testRegistry { return startRegistryServer(t, true) }

func startRegistryServer(t *testing.T, withTLS bool) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.requests.Add(1)
		if strings.Contains(r.URL.Path, "/manifests/") {
			tr.manifests.Add(1)
			tr.mu.Lock()
			tr.paths = append(tr.paths, r.Method+" "+r.URL.Path)
			tr.mu.Unlock()
			n := tr.inFlight.Add(1)
			defer tr.inFlight.Add(-1)
			for m := tr.maxInFlight.Load(); n > m && !tr.maxInFlight.CompareAndSwap(m, n); m = tr.maxInFlight.Load() {
			}
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
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // a TLS handshake against the plain server is expected noise
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tr.connections.Add(1)
		}
	}
	if withTLS {
		srv.StartTLS()
		tr.roots = x509.NewCertPool()
		tr.roots.AddCert(srv.Certificate())
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr.host = u.Host
	tr.push = func(t *testing.T, repoTag string) string {
		t.Helper()
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(tr.host + "/" + repoTag)
		if err != nil {
			t.Fatal(err)
		}
		// Pushed through the registry's handler in process: no connection, nothing counted.
		if err := remote.Write(ref, img, remote.WithTransport(handlerTransport{reg})); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	return tr
}

// handlerTransport serves requests with a handler, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	served := req.Clone(req.Context())
	if served.Body == nil {
		served.Body = http.NoBody // a server's request always has a body
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, served)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func (tr *testRegistry) manifestPaths() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.paths)
}

// local is the access a policy grants a loopback registry in tests: images.pinRegistries, localAddresses.
var local = policy.PinAccess{LocalAddresses: true}

func newResolver(t *testing.T, tr *testRegistry, opts DigestResolverOptions) *DigestResolver {
	t.Helper()
	opts.RootCAs = tr.roots
	r, err := NewDigestResolver(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDigestResolverResolvesCachesAndFollowsTags(t *testing.T) {
	tr := startRegistry(t)
	first := tr.push(t, "agents/runner:1.4")
	reg := prometheus.NewRegistry()
	r := newResolver(t, tr, DigestResolverOptions{CacheTTL: time.Hour, Registerer: reg})
	now := time.Now()
	r.now = func() time.Time { return now }
	ref := tr.host + "/agents/runner:1.4"
	for i := 0; i < 3; i++ {
		got, err := r.Resolve(context.Background(), ref, local)
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
	got, err := r.Resolve(context.Background(), ref, local)
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
	r := newResolver(t, tr, DigestResolverOptions{})
	if _, err := r.Resolve(context.Background(), tr.host+"/agents/absent:1", local); err == nil {
		t.Error("a tag the registry does not have resolved")
	}

	hanging := startRegistry(t)
	hanging.push(t, "agents/runner:1")
	hanging.delay.Store(int64(time.Minute))
	r = newResolver(t, hanging, DigestResolverOptions{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := r.Resolve(context.Background(), hanging.host+"/agents/runner:1", local)
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

// A failure is remembered for FailureTTL: a registry that is down, or a tag that is missing, is not asked once
// per admission; after the TTL it is asked again.
func TestDigestResolverCachesFailures(t *testing.T) {
	tr := startRegistry(t)
	tr.push(t, "agents/runner:1")
	reg := prometheus.NewRegistry()
	r := newResolver(t, tr, DigestResolverOptions{FailureTTL: time.Minute, Registerer: reg})
	now := time.Now()
	r.now = func() time.Time { return now }
	ref := tr.host + "/agents/runner:9.9"
	for i := 0; i < 5; i++ {
		if _, err := r.Resolve(context.Background(), ref, local); err == nil {
			t.Fatal("a missing tag resolved")
		}
	}
	if n := tr.manifests.Load(); n != 1 {
		t.Errorf("a failing tag was asked %d times within its failure TTL, want 1", n)
	}
	now = now.Add(time.Minute + time.Second)
	if _, err := r.Resolve(context.Background(), ref, local); err == nil {
		t.Fatal("a missing tag resolved")
	}
	if n := tr.manifests.Load(); n != 2 {
		t.Errorf("after the failure TTL the registry was asked %d times in all, want 2", n)
	}
	if got := resolutions(t, reg, "cached_failure"); got != 4 {
		t.Errorf("cached failures counted %v, want 4", got)
	}
}

// resolutions is the sample count of agentgate_image_resolve_duration_seconds{result}.
func resolutions(t *testing.T, reg *prometheus.Registry, result string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// Loopback, link-local and the other special addresses are refused when dialled, on the resolved address:
// an IP literal, a name that resolves to loopback ("localhost", as DNS rebinding would make any name), the
// cloud metadata API. The registry sees no connection at all. Listed in pinRegistries, it is reached.
func TestDigestResolverRefusesSpecialAddressesAtDial(t *testing.T) {
	tr := startRegistry(t)
	digest := tr.push(t, "agents/runner:1")
	_, port, err := net.SplitHostPort(tr.host)
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, tr, DigestResolverOptions{})
	for _, ref := range []string{
		tr.host + "/agents/runner:1",
		"localhost:" + port + "/agents/runner:1",
		"169.254.169.254/latest/meta-data:1",
		"[::ffff:127.0.0.1]:" + port + "/agents/runner:1",
		"0.0.0.0:" + port + "/agents/runner:1",
	} {
		_, err := r.Resolve(context.Background(), ref, policy.PinAccess{})
		var refused *DialRefusedError
		if !errors.As(err, &refused) {
			t.Errorf("%s: want a refused dial, got %v", ref, err)
			continue
		}
		t.Logf("%s: %v", ref, err)
	}
	// Plain HTTP allowed is not local addresses allowed.
	if _, err := r.Resolve(context.Background(), tr.host+"/agents/runner:1", policy.PinAccess{PlainHTTP: true}); err == nil {
		t.Error("plainHTTP alone reached a loopback registry")
	}
	if n := tr.connections.Load(); n != 0 {
		t.Fatalf("the loopback registry saw %d connections from a resolver that may not reach it", n)
	}
	got, err := r.Resolve(context.Background(), tr.host+"/agents/runner:1", local)
	if err != nil || got != digest {
		t.Fatalf("listed with localAddresses: %q, %v; want %s", got, err, digest)
	}
	// Listing one loopback registry does not open another: localhost:port is another registry name.
	if _, err := r.Resolve(context.Background(), "localhost:"+port+"/agents/runner:2", policy.PinAccess{}); err == nil {
		t.Error("an unlisted name resolving to loopback was reached")
	}
}

// A registry's redirect to a loopback host that no policy lists is refused at dial, even when the registry
// itself is listed.
func TestDigestResolverRefusesRedirectToUnlistedLoopback(t *testing.T) {
	target := startRegistry(t)
	target.push(t, "agents/runner:1")
	_, port, _ := net.SplitHostPort(target.host)
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, "https://localhost:"+port+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	roots := x509.NewCertPool()
	roots.AddCert(redirector.Certificate())
	r, err := NewDigestResolver(DigestResolverOptions{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(redirector.URL, "https://")
	_, err = r.Resolve(context.Background(), host+"/agents/runner:1", local)
	var refused *DialRefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("want the redirect's dial refused, got %v", err)
	}
	if n := target.connections.Load(); n != 0 {
		t.Errorf("the redirect target saw %d connections", n)
	}
}

// Plain HTTP is never spoken, even to names go-containerregistry would ask over HTTP (127.0.0.1 here): a
// plain registry listed with localAddresses only never sees a request. Listed with plainHTTP, it answers.
func TestDigestResolverNeverPlainHTTP(t *testing.T) {
	plain := startRegistryServer(t, false)
	digest := plain.push(t, "agents/runner:1")
	r := newResolver(t, plain, DigestResolverOptions{})
	ref := plain.host + "/agents/runner:1"
	if _, err := r.Resolve(context.Background(), ref, local); err == nil {
		t.Fatal("a plain HTTP registry answered over HTTPS")
	}
	if n := plain.requests.Load(); n != 0 {
		t.Fatalf("the plain HTTP registry handled %d requests", n)
	}
	got, err := r.Resolve(context.Background(), ref, policy.PinAccess{LocalAddresses: true, PlainHTTP: true})
	if err != nil || got != digest {
		t.Fatalf("listed with plainHTTP: %q, %v; want %s", got, err, digest)
	}
}

// Registry requests in flight stay within MaxInFlight, across references and admissions.
func TestDigestResolverBoundsConcurrency(t *testing.T) {
	tr := startRegistry(t)
	const tags = 6
	for i := range tags {
		tr.push(t, fmt.Sprintf("agents/runner:%d", i))
	}
	tr.delay.Store(int64(50 * time.Millisecond))
	r := newResolver(t, tr, DigestResolverOptions{MaxInFlight: 2, Timeout: time.Minute})
	var wg sync.WaitGroup
	for i := range tags {
		wg.Go(func() {
			if _, err := r.Resolve(context.Background(), fmt.Sprintf("%s/agents/runner:%d", tr.host, i), local); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := tr.maxInFlight.Load(); n > 2 || n == 0 {
		t.Errorf("%d manifest requests were in flight at once, want 1 or 2", n)
	}
}

// pinPolicy is the default policy allowing the test registry's agents/ repositories, pinning them, listing the
// registry (loopback) in pinRegistries, with requireDigest as given.
func pinPolicy(t *testing.T, tr *testRegistry, requireDigest string) Options {
	return staticPolicy(t,
		`allow: ["registry.corp.example/agents/**"]`, `allow: ["`+tr.host+`/agents/**"]`,
		"pinDigests: false", `pinDigests: true
    pinRegistries: [{registry: "`+tr.host+`", localAddresses: true}]`,
		"requireDigest: false", "requireDigest: "+requireDigest)
}

// /mutate pins tags to the digests the registry holds for policies with images.pinDigests; then /validate
// admits the pinned pod under requireDigest, and a second /mutate has nothing left to do.
func TestWebhookMutatePinsDigests(t *testing.T) {
	tr := startRegistry(t)
	digest := tr.push(t, "agents/runner:1.4.2")
	opts := pinPolicy(t, tr, "true")
	opts.DigestResolver = newResolver(t, tr, DigestResolverOptions{})
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

// /mutate asks no registry about an image the policy does not admit: not another repository of the allowed
// registry, not an unlisted registry, not a denied name. The allowed image in the same pod is pinned, so the
// counts below can tell.
func TestWebhookMutatePinsOnlyAdmittedImages(t *testing.T) {
	tr := startRegistry(t)
	digest := tr.push(t, "agents/runner:1")
	tr.push(t, "other/tool:1")
	tr.push(t, "agents/untrusted/tool:1")
	elsewhere := startRegistry(t)
	elsewhere.push(t, "agents/runner:1")
	opts := staticPolicy(t,
		`allow: ["registry.corp.example/agents/**"]`, `allow: ["`+tr.host+`/agents/**"]`,
		"deny: []", `deny: ["`+tr.host+`/agents/untrusted/**"]`,
		"pinDigests: false", `pinDigests: true
    pinRegistries: [{registry: "`+tr.host+`", localAddresses: true}, {registry: "`+elsewhere.host+`", localAddresses: true}]`)
	opts.DigestResolver = newResolver(t, tr, DigestResolverOptions{})
	ts := startServer(t, opts)

	pod := minimalPod("mixed")
	pod.Spec.Containers = append(pod.Spec.Containers,
		corev1.Container{Name: "other", Image: tr.host + "/other/tool:1"},
		corev1.Container{Name: "untrusted", Image: tr.host + "/agents/untrusted/tool:1"},
		corev1.Container{Name: "elsewhere", Image: elsewhere.host + "/agents/runner:1"},
	)
	pod.Spec.Containers[0].Image = tr.host + "/agents/runner:1"
	resp := ts.answer("/mutate", podReview(pod))
	requireAllowed(t, resp)
	if got, want := tr.manifestPaths(), []string{"HEAD /v2/agents/runner/manifests/1"}; !slices.Equal(got, want) {
		t.Errorf("manifest requests: got %q, want %q", got, want)
	}
	if n := elsewhere.connections.Load(); n != 0 {
		t.Errorf("a registry outside the allowlist saw %d connections", n)
	}
	requireDenied(t, ts.answer("/validate", podReview(pod)), "spec.containers[1].image", "spec.containers[2].image", "spec.containers[3].image")

	// The same pod without the off-list images is pinned.
	pod.Spec.Containers = pod.Spec.Containers[:1]
	patched := applyPatch(t, pod, ts.answer("/mutate", podReview(pod)).Patch)
	if got, want := patched.Spec.Containers[0].Image, tr.host+"/agents/runner:1@"+digest; got != want {
		t.Errorf("image after /mutate = %s, want %s", got, want)
	}
}

// requireDigest with pinDigests: a Deployment with allowed tags is admitted (its pods will be pinned at
// creation); a pod at /validate without a digest is denied.
func TestWebhookRequireDigestWithPinDigests(t *testing.T) {
	tr := startRegistry(t)
	tr.push(t, "agents/runner:1")
	opts := pinPolicy(t, tr, "true")
	opts.DigestResolver = newResolver(t, tr, DigestResolverOptions{})
	ts := startServer(t, opts)

	pod := compliantPod("agent")
	pod.Spec.Containers[0].Image = tr.host + "/agents/runner:1"
	deployment := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "agents", Namespace: agentsNS},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: pod.Labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: pod.Labels}, Spec: pod.Spec},
		},
	}
	requireAllowed(t, ts.answer("/validate", rv{gvk: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		namespace: agentsNS, name: deployment.Name, obj: deployment}))
	if n := tr.connections.Load(); n != 0 {
		t.Errorf("judging a Deployment contacted the registry %d times", n)
	}
	requireDenied(t, ts.answer("/validate", podReview(pod)), "spec.containers[0].image")
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
