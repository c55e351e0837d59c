package webhook

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"agentgate.io/agentgate/internal/testutil"
	"agentgate.io/agentgate/policy"
)

// ConfigMapSource through client-go's fake clientset: each policy ConfigMap is kept separately, an invalid
// update keeps its last good version, a delete or a removed label takes it out, and the namespace informer
// feeds namespaceSelector.
func TestWebhookConfigMapSource(t *testing.T) {
	const ns = "agentgate-system"
	label := map[string]string{policy.ConfigMapLabel: "true"}
	client := fake.NewClientset(
		policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t))}),
		policyConfigMap("unrelated", nil, map[string]string{"policy.yaml": "not a policy"}),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: agentsNS, Labels: map[string]string{"agentgate.io/agents": "true"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nsInf, err := StartNamespaceInformer(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{
		Sources:     []Source{&ConfigMapSource{Client: client, Namespace: ns}},
		Namespaces:  nsInf,
		ReadyChecks: map[string]func() error{"namespaces": nsInf.Ready},
	})
	key := ConfigMapKey(ns, "agents")
	snap := ts.srv.Policies().Snapshot()
	if snap.Default || len(snap.Policies) != 1 || snap.Policies[0].Source != key {
		t.Fatalf("after sync: %+v", snap.Policies)
	}

	// namespaceSelector with real labels: the agent namespace is judged, an unlabelled one is not.
	requireDenied(t, ts.answer("/validate", podReview(badPod("bad"))), "spec.hostPID")
	plain := badPod("plain")
	plain.Namespace = "plain"
	requireAllowed(t, ts.answer("/validate", podReview(plain)))
	// A namespace the cache has not seen: labels unknown, the strict side.
	unknown := badPod("new")
	unknown.Namespace = "created-a-moment-ago"
	requireDenied(t, ts.answer("/validate", podReview(unknown)), "spec.hostPID")

	cms := client.CoreV1().ConfigMaps(ns)
	gen := snap.Generation
	warn := policyConfigMap("agents", label, map[string]string{"policy.yaml": string(policyDoc(t, "mode: enforce", "mode: warn"))})
	if _, err := cms.Update(ctx, warn, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, 10*time.Second, "the warn-mode update is served", func() bool { return ts.srv.Policies().Snapshot().Generation > gen })
	requireAllowed(t, ts.answer("/validate", podReview(badPod("warned"))))

	broken := policyConfigMap("agents", label, map[string]string{"policy.yaml": "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nspec: {mode: maybe}\n"})
	if _, err := cms.Update(ctx, broken, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, 10*time.Second, "policy.rejected", func() bool { return len(ts.logs.Events("policy.rejected")) > 0 })
	requireAllowed(t, ts.answer("/validate", podReview(badPod("still-warned")))) // the last good (warn) policy
	_, st := ts.readyStatus()
	if !st.Ready || !strings.Contains(st.Policy.LastReloadError, key) || !strings.Contains(st.Policy.LastReloadError, "spec.mode") {
		t.Errorf("readyz: %+v", st)
	}

	noKey := policyConfigMap("other", label, map[string]string{"wrong.yaml": "x"})
	if _, err := cms.Create(ctx, noKey, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, 10*time.Second, "a ConfigMap without policy.yaml is rejected", func() bool { return len(ts.logs.Events("policy.rejected")) > 1 })

	if err := cms.Delete(ctx, "agents", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, 10*time.Second, "the deleted ConfigMap's policy is removed", func() bool { return ts.srv.Policies().Snapshot().Default })
	requireDenied(t, ts.answer("/validate", podReview(badPod("default-again"))), "spec.hostPID")
}

// The live namespace read through client-go's fake clientset: a stale cache is corrected by a GET; a cache that
// a GET found current is believed for a moment (one GET per namespace, not one per admission), and never once
// its resourceVersion moves.
func TestNamespaceInformerLiveLabels(t *testing.T) {
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web", ResourceVersion: "1"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nsInf, err := StartNamespaceInformer(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if err := nsInf.WaitSynced(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	gets := func() int {
		n := 0
		for _, a := range client.Actions() {
			if a.GetVerb() == "get" && a.GetResource().Resource == "namespaces" {
				n++
			}
		}
		return n
	}
	for i := 0; i < 3; i++ {
		l, err := nsInf.LiveLabels(ctx, "web")
		if err != nil || len(l) != 0 {
			t.Fatalf("live labels %v, %v", l, err)
		}
	}
	if gets() != 1 {
		t.Errorf("%d GETs for three reads of a current cache, want 1", gets())
	}
	// The namespace is labelled: once its resourceVersion moves, the earlier confirmation no longer holds.
	labelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web", ResourceVersion: "2", Labels: map[string]string{"agentgate.io/agents": "true"}}}
	if err := client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("namespaces"), labelled, ""); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, 10*time.Second, "the informer sees resourceVersion 2", func() bool { return nsInf.Labels("web")["agentgate.io/agents"] == "true" })
	l, err := nsInf.LiveLabels(ctx, "web")
	if err != nil || l["agentgate.io/agents"] != "true" {
		t.Fatalf("live labels after the change: %v, %v", l, err)
	}
	if gets() != 2 {
		t.Errorf("a moved resourceVersion did not cost a new GET: %d GETs", gets())
	}
}
