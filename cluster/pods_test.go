package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"agentgate.io/agentgate/internal/testutil"
)

func testNamespace(t *testing.T, name string) string {
	t.Helper()
	cs := testutil.Kube(t)
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func agentPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "agent"}, Annotations: map[string]string{
			"container.apparmor.security.beta.kubernetes.io/agent": "runtime/default",
			"kubectl.kubernetes.io/last-applied-configuration":     `{"a":"big blob"}`,
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "registry.corp.example/agents/a:1", Command: []string{"agent"}}}},
	}
}

// TestPodCacheKeepsWhatChecksRead: through a real API server, the cache holds every pod, stripped of status,
// managed fields and annotations no check reads; finished pods are not Running; deletes leave the cache.
func TestPodCacheKeepsWhatChecksRead(t *testing.T) {
	cs := testutil.Kube(t)
	ns := testNamespace(t, "podcache")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := StartPodCache(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, agentPod(fmt.Sprintf("agent-%d", i)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.EventuallyTrue(t, 10*time.Second, "three pods cached", func() bool { return len(c.Running(ns)) == 3 })

	stored, ok := c.Get(ns, "agent-0")
	if !ok {
		t.Fatal("agent-0 not in the cache")
	}
	p, err := stored.Pod()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ManagedFields) != 0 || p.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "" {
		t.Errorf("not stripped: managedFields %d, annotations %v", len(p.ManagedFields), p.Annotations)
	}
	if p.Annotations["container.apparmor.security.beta.kubernetes.io/agent"] != "runtime/default" || p.Labels["app"] != "agent" {
		t.Errorf("dropped what the checks read: labels %v annotations %v", p.Labels, p.Annotations)
	}
	if p.Spec.Containers[0].Image != "registry.corp.example/agents/a:1" || p.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Errorf("spec not kept as stored (defaults included): %+v", p.Spec)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("status: want the phase only, got %+v", p.Status)
	}

	// A finished pod is no longer running.
	live, err := cs.CoreV1().Pods(ns).Get(ctx, "agent-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live.Status.Phase = corev1.PodSucceeded
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, live, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "agent-2", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, 10*time.Second, "only agent-0 running", func() bool {
		r := c.Running(ns)
		return len(r) == 1 && r[0].Name == "agent-0"
	})
	if _, ok := c.Get(ns, "agent-2"); ok {
		t.Error("a deleted pod is still in the cache")
	}
}

// TestPodLiveLookup: a pod the cache does not hold (here: a cache never started) is found with a live LIST on
// its name; a pod that does not exist is NotFound; a failed call (no RBAC to list pods) is an error, never a
// pod and never NotFound, so that the exec webhook refuses rather than guesses.
func TestPodLiveLookup(t *testing.T) {
	cs := testutil.Kube(t)
	ns := testNamespace(t, "podlookup")
	ctx := context.Background()
	for _, name := range []string{"agent", "agent-2"} {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, agentPod(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cold := &PodCache{informer: informers.NewSharedInformerFactory(cs, 0).Core().V1().Pods().Informer(), client: cs}
	p, err := cold.Pod(ctx, ns, "agent")
	if err != nil || p.Name != "agent" || p.Spec.Containers[0].Name != "agent" || p.Labels["app"] != "agent" {
		t.Fatalf("live lookup: %v %+v", err, p)
	}
	if _, err := cold.Pod(ctx, ns, "agen"); !apierrors.IsNotFound(err) {
		t.Errorf("a missing pod (a prefix of existing ones): %v, want NotFound", err)
	}
	cfg := rest.CopyConfig(testutil.APIServer(t))
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	denied := &PodCache{informer: cold.informer, client: kubernetes.NewForConfigOrDie(cfg)}
	if p, err := denied.Pod(ctx, ns, "agent"); err == nil || apierrors.IsNotFound(err) || p != nil {
		t.Errorf("without RBAC: pod %v, error %v; want a failure that is not NotFound", p, err)
	}
}
