package cluster

import (
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	tu "agentgate.io/agentgate/internal/testutil"
	"agentgate.io/agentgate/policy"
)

// TestPolicyReports: through a real API server, the background audit writes one PolicyReport per agent
// namespace once the CRD is served (and nothing before), rewrites it only when its findings change, and deletes
// it when the namespace has no judged pod left.
func TestPolicyReports(t *testing.T) {
	ctx := t.Context()
	cs := tu.Kube(t)
	dyn := dynamic.NewForConfigOrDie(tu.APIServer(t))
	reports := &PolicyReports{Client: dyn, Discovery: cs.Discovery()}
	const ns, nsB = "reports-a", "reports-b"
	for _, n := range []string{ns, nsB} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: agentNS}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runningIn := func(namespace, name string, edit func(*corev1.Pod)) {
		t.Helper()
		p := runningAgentPod(0)
		p.Namespace, p.Name, p.UID = namespace, name, ""
		if edit != nil {
			edit(p)
		}
		created, err := cs.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.Phase = corev1.PodRunning
		if _, err := cs.CoreV1().Pods(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runningIn(ns, "good", nil)
	runningIn(ns, "big", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("16Gi")
	})
	runningIn(nsB, "good", nil)
	pods, err := StartPodCache(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	tu.EventuallyTrue(t, 10*time.Second, "the cache to hold the pods running", func() bool {
		return len(pods.Running(ns)) == 2 && len(pods.Running(nsB)) == 1
	})
	set := policy.NewSet(parsePolicy(t))
	a := &BackgroundAudit{Pods: pods, Policies: func() (*policy.Set, <-chan struct{}) { return set, nil },
		Reports: reports,
		// Other tests' namespaces share this API server: known, unselected labels keep them out.
		Namespaces: Namespaces{Labels: func(name string) map[string]string {
			if name == ns || name == nsB {
				return agentNS
			}
			return map[string]string{}
		}}}

	if sum := a.RunOnce(ctx); sum.ReportsSkipped != "wgpolicyk8s.io/v1alpha2 PolicyReport not served" || sum.Violating != 1 {
		t.Fatalf("before the CRD: %+v", sum)
	}
	installPolicyReportCRD(t, dyn)
	tu.EventuallyTrue(t, 30*time.Second, "PolicyReports served", func() bool { ok, err := reports.Available(); return err == nil && ok })
	// A report under agentgate's name but without its label, saying all is well: taken over, not kept.
	forged := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
		"metadata": map[string]any{"name": ReportName, "namespace": ns},
		"summary":  map[string]any{"pass": int64(99)}, "results": []any{},
	}}
	if _, err := dyn.Resource(policyReportGVR).Namespace(ns).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	get := func() *unstructured.Unstructured {
		t.Helper()
		r, err := dyn.Resource(policyReportGVR).Namespace(ns).Get(ctx, ReportName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if sum := a.RunOnce(ctx); sum.Reports.Updated != 1 || sum.Reports.Created != 1 || sum.ReportsSkipped != "" {
		t.Fatalf("first run with the CRD (%s forged, %s empty): %+v", ns, nsB, sum)
	}
	r := get()
	if r.GetLabels()[policy.ManagedByLabel] != policy.ManagedByValue {
		t.Errorf("labels %v", r.GetLabels())
	}
	pass, _, _ := unstructured.NestedInt64(r.Object, "summary", "pass")
	fail, _, _ := unstructured.NestedInt64(r.Object, "summary", "fail")
	results, _, _ := unstructured.NestedSlice(r.Object, "results")
	if pass != 1 || fail != 1 || len(results) != 1 {
		t.Fatalf("summary pass %d fail %d, %d results: %v", pass, fail, len(results), r.Object)
	}
	res := results[0].(map[string]any)
	resources := res["resources"].([]any)
	props := res["properties"].(map[string]any)
	if res["policy"] != "agents" || res["rule"] != "resources" || res["result"] != "fail" || res["source"] != ReportSource ||
		resources[0].(map[string]any)["name"] != "big" || resources[0].(map[string]any)["uid"] == "" ||
		props["field"] != "spec.containers[0].resources.limits[memory]" || props["mode"] != "enforce" {
		t.Errorf("result %v", res)
	}

	// No kubelet here to confirm a graceful deletion.
	now := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	rv := r.GetResourceVersion()
	if sum := a.RunOnce(ctx); sum.Reports.Unchanged != 2 || sum.Reports.Updated+sum.Reports.Created != 0 {
		t.Errorf("an unchanged namespace was rewritten: %+v", sum.Reports)
	}
	if get().GetResourceVersion() != rv {
		t.Error("the report's resourceVersion moved without a change")
	}

	if err := cs.CoreV1().Pods(ns).Delete(ctx, "big", now); err != nil {
		t.Fatal(err)
	}
	tu.EventuallyTrue(t, 10*time.Second, "the cache to drop big", func() bool { return len(pods.Running(ns)) == 1 })
	if sum := a.RunOnce(ctx); sum.Reports.Updated != 1 {
		t.Errorf("after the violating pod left: %+v", sum.Reports)
	}
	if results, _, _ := unstructured.NestedSlice(get().Object, "results"); len(results) != 0 {
		t.Errorf("results %v after the violating pod left", results)
	}

	if err := cs.CoreV1().Pods(ns).Delete(ctx, "good", now); err != nil {
		t.Fatal(err)
	}
	tu.EventuallyTrue(t, 10*time.Second, "the cache to drop good", func() bool { return len(pods.Running(ns)) == 0 })
	if sum := a.RunOnce(ctx); sum.Reports.Deleted != 1 {
		t.Errorf("a namespace without judged pods kept its report: %+v", sum.Reports)
	}
}

func installPolicyReportCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	raw, err := os.ReadFile("testdata/policyreport-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &crd.Object); err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dyn.Resource(gvr).Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
