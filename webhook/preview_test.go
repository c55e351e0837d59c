package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/policy"
)

// previewServer serves /validate-policy with a pod cache and namespace labels over client.
func previewServer(t *testing.T, objs ...runtime.Object) *testServer {
	t.Helper()
	client := fake.NewClientset(objs...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nsInf, err := StartNamespaceInformer(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cluster.StartPodCache(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if err := pods.WaitSynced(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nsInf.WaitSynced(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return startServer(t, Options{Namespaces: nsInf, Pods: pods})
}

func inNamespace(p *corev1.Pod, ns string) *corev1.Pod { p.Namespace = ns; return p }

// TestWebhookPolicyPreview: a valid policy ConfigMap CREATE or UPDATE is admitted with the preview of its effect
// on the running pods it selects, never refused for it; DELETE and an invalid policy get none.
func TestWebhookPolicyPreview(t *testing.T) {
	ts := previewServer(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: agentsNS, Labels: map[string]string{"agentgate.io/agents": "true"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		compliantPod("a"), compliantPod("b"), inNamespace(compliantPod("web"), "plain"),
	)
	label := map[string]string{policy.ConfigMapLabel: "true"}
	stricter := policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t, "requireDigest: false", "requireDigest: true"))})
	want := []string{`policy "agents" would deny 2 of 2 running agent pods`, `agents/a (and 1 other pod): images`}
	for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
		r := rv{gvk: cmGVK, namespace: stricter.Namespace, name: stricter.Name, obj: stricter, op: op}
		if op == admissionv1.Update {
			r.old = policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t))})
		}
		resp := ts.answer("/validate-policy", r)
		requireAllowed(t, resp)
		if !slices.Equal(resp.Warnings, want) {
			t.Errorf("%s: warnings %q, want %q", op, resp.Warnings, want)
		}
	}
	same := policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t))})
	if resp := ts.answer("/validate-policy", rv{gvk: cmGVK, namespace: same.Namespace, name: same.Name, obj: same}); !slices.Equal(resp.Warnings, []string{`policy "agents" would deny 0 of 2 running agent pods`}) {
		t.Errorf("the default policy: warnings %q", resp.Warnings)
	}
	if resp := ts.answer("/validate-policy", rv{gvk: cmGVK, namespace: stricter.Namespace, name: stricter.Name, op: admissionv1.Delete, old: stricter}); len(resp.Warnings) != 0 {
		t.Errorf("DELETE: warnings %q", resp.Warnings)
	}
	invalid := policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t, "requireDigest: false", "requireDigest: perhaps"))})
	resp := ts.answer("/validate-policy", rv{gvk: cmGVK, namespace: invalid.Namespace, name: invalid.Name, obj: invalid})
	requireDenied(t, resp, "data[policy.yaml].spec.images.requireDigest")
	if len(resp.Warnings) != 0 {
		t.Errorf("invalid policy: warnings %q", resp.Warnings)
	}
	// The API server's ?timeout= bounds the preview: with no time left, it judges nothing and says so.
	code, rev, raw := ts.post("/validate-policy?timeout=1ns", rv{gvk: cmGVK, namespace: stricter.Namespace, name: stricter.Name, obj: stricter}.body(t))
	if code != 200 || rev == nil || !rev.Response.Allowed {
		t.Fatalf("HTTP %d: %s", code, raw)
	}
	if w := rev.Response.Warnings; len(w) != 2 || w[0] != `policy "agents" would deny 0 of 2 running agent pods` ||
		!strings.HasPrefix(w[1], "ran out of time after ") || !strings.HasSuffix(w[1], "checked only the first 0 of 2 pods (by namespace, name)") {
		t.Errorf("no time left: warnings %q", w)
	}
}

// TestWebhookPolicyPreviewCacheNotSynced: a pod cache that cannot reach its API server degrades the preview to
// one warning; the policy is still judged and admitted.
func TestWebhookPolicyPreviewCacheNotSynced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cluster.StartPodCache(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{Pods: pods})
	label := map[string]string{policy.ConfigMapLabel: "true"}
	cm := policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t, "requireDigest: false", "requireDigest: true"))})
	resp := ts.answer("/validate-policy", rv{gvk: cmGVK, namespace: cm.Namespace, name: cm.Name, obj: cm})
	requireAllowed(t, resp)
	want := []string{`policy "agents": preview of its effect on running agent pods not run: pod cache not synced yet`}
	if !slices.Equal(resp.Warnings, want) {
		t.Errorf("warnings %q, want %q", resp.Warnings, want)
	}
}

// panickyPods stands for a bug met while previewing (cluster.Preview on some cached pod).
type panickyPods struct{}

func (panickyPods) Running(string) []*cluster.StoredPod { panic("pod cache exploded") }
func (panickyPods) Ready() error                        { return nil }
func (panickyPods) Pod(context.Context, string, string) (*corev1.Pod, error) {
	panic("pod cache exploded")
}

// TestWebhookPolicyPreviewPanicIsAWarning: a panic in the preview costs the preview, not the validation: the
// valid policy is admitted with one warning (an HTTP 500 would let failurePolicy Ignore admit anything, an
// invalid policy included), and preview.failed is logged.
func TestWebhookPolicyPreviewPanicIsAWarning(t *testing.T) {
	ts := startServer(t, Options{Pods: panickyPods{}})
	label := map[string]string{policy.ConfigMapLabel: "true"}
	cm := policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t))})
	resp := ts.answer("/validate-policy", rv{gvk: cmGVK, namespace: cm.Namespace, name: cm.Name, obj: cm})
	requireAllowed(t, resp)
	want := []string{`policy "agents": preview of its effect on running agent pods not run: internal error (logged as preview.failed)`}
	if !slices.Equal(resp.Warnings, want) {
		t.Errorf("warnings %q, want %q", resp.Warnings, want)
	}
	if evs := ts.logs.Events("preview.failed"); len(evs) != 1 || evs[0]["panic"] != "pod cache exploded" {
		t.Errorf("preview.failed events: %v", evs)
	}
	invalid := policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t, "mode: enforce", "mode: sometimes"))})
	requireDenied(t, ts.answer("/validate-policy", rv{gvk: cmGVK, namespace: invalid.Namespace, name: invalid.Name, obj: invalid}), "data[policy.yaml].spec.mode")
}
