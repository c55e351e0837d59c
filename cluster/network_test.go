package cluster

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	tu "agentgate.io/agentgate/internal/testutil"
	"agentgate.io/agentgate/policy"
)

// testPolicies is what webhook.Store gives the controller: the set in force and a channel closed on change.
type testPolicies struct {
	mu       sync.Mutex
	set      *policy.Set
	replaced chan struct{}
}

func newTestPolicies(t *testing.T, docs ...string) *testPolicies {
	tp := &testPolicies{}
	tp.put(t, docs...)
	return tp
}

func (tp *testPolicies) put(t *testing.T, docs ...string) {
	t.Helper()
	var ps []*policy.Policy
	for _, d := range docs {
		p, errs := policy.Parse([]byte(d))
		if errs != nil {
			t.Fatal(errs)
		}
		ps = append(ps, p)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.replaced != nil {
		close(tp.replaced)
	}
	tp.set, tp.replaced = policy.NewSet(ps...), make(chan struct{})
}

func (tp *testPolicies) get() (*policy.Set, <-chan struct{}) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.set, tp.replaced
}

// netPolicy manages namespaces labelled with the test's own key, so tests sharing the API server do not meet.
func netPolicy(key, allow string) string {
	return fmt.Sprintf(`apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: net}
spec:
  match:
    namespaceSelector: {matchLabels: {%s: "true"}}
  network:
    manage: true
    egress:
      allow: [%s]
`, key, allow)
}

// countingClient counts the requests a client makes, by method and resource path.
type countingClient struct {
	kubernetes.Interface
	mu    sync.Mutex
	calls map[string]int
}

func newCountingClient(t testing.TB) *countingClient {
	cfg := tu.APIServer(t)
	c := &countingClient{calls: map[string]int{}}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			key := r.Method
			if strings.Contains(r.URL.Path, "/networkpolicies") {
				key += " networkpolicies"
			} else if strings.Contains(r.URL.Path, "/leases") {
				key += " leases"
			} else {
				key += " other"
			}
			if r.URL.Query().Get("watch") == "true" {
				key += " watch"
			}
			c.mu.Lock()
			c.calls[key]++
			c.mu.Unlock()
			return rt.RoundTrip(r)
		})
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Interface = cs
	return c
}

func (c *countingClient) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[key]
}

// total is every request made.
func (c *countingClient) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// writes are the NetworkPolicy writes: create, update, delete.
func (c *countingClient) writes() int {
	return c.count("POST networkpolicies") + c.count("PUT networkpolicies") + c.count("DELETE networkpolicies")
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newController(t testing.TB, client kubernetes.Interface, key string, tp *testPolicies) *NetworkController {
	c, err := NewNetworkController(NetworkOptions{Client: client, Policies: tp.get,
		AgentNamespaces: labels.SelectorFromSet(labels.Set{key: "true"}), ExcludedNamespaces: []string{"kube-system"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func labelNamespace(t testing.TB, cs kubernetes.Interface, name string, set map[string]string) {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: set}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = set
	if _, err := cs.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func egressOf(cs kubernetes.Interface, ns string) (*networkingv1.NetworkPolicy, error) {
	return cs.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), policy.NetworkPolicyName, metav1.GetOptions{})
}

// waitSpec waits until the namespace's agentgate-egress is what the policy wants.
func waitSpec(t testing.TB, cs kubernetes.Interface, ns string, p *policy.Policy) {
	t.Helper()
	want := policy.DesiredNetworkPolicy(p, ns)
	tu.Eventually(t, 30*time.Second, ns+"/agentgate-egress as the policy wants", func() error {
		np, err := egressOf(cs, ns)
		if err != nil {
			return err
		}
		if !equality.Semantic.DeepEqual(np.Spec, want.Spec) || np.Labels[policy.ManagedByLabel] != policy.ManagedByValue {
			return fmt.Errorf("spec %v, labels %v", np.Spec.String(), np.Labels)
		}
		return nil
	})
}

func waitGone(t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	tu.Eventually(t, 30*time.Second, ns+"/agentgate-egress removed", func() error {
		if _, err := egressOf(cs, ns); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
}

// The owner's life cycle on a real API server: a namespace labelled gets agentgate-egress; an edit and a delete
// are undone; a policy change reaches every managed namespace; unlabelling removes it; a NetworkPolicy of the
// same name that agentgate does not own is neither rewritten nor deleted.
func TestNetworkControllerReconciles(t *testing.T) {
	cs := tu.Kube(t)
	key := "net-reconcile.test/agents"
	tp := newTestPolicies(t, netPolicy(key, "{cidr: 10.0.0.0/8, ports: [{port: 443}]}"))
	c := newController(t, cs, key, tp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	on := map[string]string{key: "true"}
	labelNamespace(t, cs, "net-a", on)
	labelNamespace(t, cs, "net-b", on)
	labelNamespace(t, cs, "net-outside", nil)
	set, _ := tp.get()
	waitSpec(t, cs, "net-a", set.Policies[0])
	waitSpec(t, cs, "net-b", set.Policies[0])

	// Edited: restored.
	np, _ := egressOf(cs, "net-a")
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	if _, err := cs.NetworkingV1().NetworkPolicies("net-a").Update(context.Background(), np, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, cs, "net-a", set.Policies[0])
	// Deleted: restored.
	if err := cs.NetworkingV1().NetworkPolicies("net-b").Delete(context.Background(), policy.NetworkPolicyName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, cs, "net-b", set.Policies[0])
	// Counted once the write has returned, which may be just after the object is seen.
	tu.EventuallyTrue(t, 10*time.Second, "both counted as restored", func() bool {
		return testutil.ToFloat64(c.results.WithLabelValues(reconcileRestored)) == 2
	})

	// A policy change reaches every managed namespace.
	tp.put(t, netPolicy(key, "{cidr: 192.168.0.0/16, ports: [{port: 5432}]}"))
	set, _ = tp.get()
	waitSpec(t, cs, "net-a", set.Policies[0])
	waitSpec(t, cs, "net-b", set.Policies[0])
	if got := testutil.ToFloat64(c.managed); got != 2 {
		t.Errorf("managed namespaces %v, want 2", got)
	}

	// An unowned agentgate-egress where agentgate would manage: not rewritten, and not deleted when the
	// namespace leaves.
	foreign := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: policy.NetworkPolicyName, Namespace: "net-outside"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	foreign, err := cs.NetworkingV1().NetworkPolicies("net-outside").Create(context.Background(), foreign, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errorsBefore := testutil.ToFloat64(c.results.WithLabelValues(reconcileError))
	labelNamespace(t, cs, "net-outside", on)
	tu.EventuallyTrue(t, 30*time.Second, "the conflict is reported", func() bool {
		return testutil.ToFloat64(c.results.WithLabelValues(reconcileError)) > errorsBefore
	})

	// Unlabelled: removed; the foreign one stays as it was.
	labelNamespace(t, cs, "net-a", nil)
	labelNamespace(t, cs, "net-outside", nil)
	waitGone(t, cs, "net-a")
	waitSpec(t, cs, "net-b", set.Policies[0])
	got, err := egressOf(cs, "net-outside")
	if err != nil {
		t.Fatalf("the NetworkPolicy agentgate does not own is gone: %v", err)
	}
	if got.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("the NetworkPolicy agentgate does not own was rewritten: %v", got)
	}

	// manage turned off: removed everywhere.
	tp.put(t, strings.Replace(netPolicy(key, ""), "manage: true", "manage: false", 1))
	waitGone(t, cs, "net-b")
	if got := testutil.ToFloat64(c.managed); got != 0 {
		t.Errorf("managed namespaces %v, want 0", got)
	}
}

// Two replicas on one Lease: only the leader writes; when it stops, the other takes over and restores.
func TestNetworkControllerTwoReplicasOneWriter(t *testing.T) {
	cs := tu.Kube(t)
	leaseNS := testNamespace(t, "net-lease")
	key := "net-replicas.test/agents"
	tp := newTestPolicies(t, netPolicy(key, "{cidr: 10.0.0.0/8}"))
	set, _ := tp.get()
	clients := map[string]*countingClient{"a": newCountingClient(t), "b": newCountingClient(t)}
	var leading atomic.Int32
	var overlap atomic.Bool
	start := func(id string) context.CancelFunc {
		c := newController(t, clients[id], key, tp)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			_ = RunAsLeader(ctx, LeaderOptions{Client: clients[id], Namespace: leaseNS, Name: NetworkLease, Identity: id,
				LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond},
				func(ctx context.Context) {
					if leading.Add(1) > 1 {
						overlap.Store(true)
					}
					defer leading.Add(-1)
					_ = c.Run(ctx)
				})
		}()
		return cancel
	}
	cancelA := start("a")
	tu.EventuallyTrue(t, 20*time.Second, "a leads", func() bool { return leading.Load() == 1 })
	cancelB := start("b")
	defer cancelB()
	labelNamespace(t, cs, "net-replicas-1", map[string]string{key: "true"})
	waitSpec(t, cs, "net-replicas-1", set.Policies[0])
	if err := cs.NetworkingV1().NetworkPolicies("net-replicas-1").Delete(context.Background(), policy.NetworkPolicyName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, cs, "net-replicas-1", set.Policies[0])
	if w := clients["a"].writes(); w != 2 {
		t.Errorf("a wrote %d times, want 2 (create, restore)", w)
	}
	// b contends for the lease all along (its lease requests prove it runs), and has written nothing.
	if clients["b"].count("GET leases") == 0 {
		t.Error("b never contended for the lease")
	}
	if w := clients["b"].writes(); w != 0 {
		t.Errorf("b wrote %d times while a led", w)
	}

	cancelA()
	tu.EventuallyTrue(t, 20*time.Second, "b leads", func() bool { return leading.Load() == 1 && clients["b"].count("GET networkpolicies watch") > 0 })
	aWrites := clients["a"].writes()
	if err := cs.NetworkingV1().NetworkPolicies("net-replicas-1").Delete(context.Background(), policy.NetworkPolicyName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, cs, "net-replicas-1", set.Policies[0])
	if w := clients["b"].writes(); w != 1 {
		t.Errorf("b wrote %d times, want 1 (the restore): %v", w, clients["b"].calls)
	}
	if w := clients["a"].writes(); w != aWrites {
		t.Errorf("a wrote after it stopped leading: %d -> %d", aWrites, w)
	}
	if overlap.Load() {
		t.Error("two replicas led at once")
	}
}

// TestNetworkPolicyCache: agentgate-egress counts as present only with agentgate's label (anyone may use the
// name), and every other NetworkPolicy of the namespace is listed, an unlabelled agentgate-egress included.
func TestNetworkPolicyCache(t *testing.T) {
	cs := tu.Kube(t)
	ctx := t.Context()
	ns := "npcache"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cache, err := StartNetworkPolicyCache(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string, labels map[string]string) {
		t.Helper()
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}}
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	others := func() []string {
		var names []string
		for _, np := range cache.Others(ns) {
			names = append(names, np.Name)
		}
		return names
	}
	create(policy.NetworkPolicyName, nil) // someone else's, under agentgate's name
	create("legacy", nil)
	tu.EventuallyTrue(t, 10*time.Second, "the cache to see both", func() bool { return cache.Ready() == nil && len(others()) == 2 })
	if cache.Present(ns) {
		t.Error("an unlabelled agentgate-egress counts as agentgate's")
	}
	create("aaa-first", nil)
	tu.EventuallyTrue(t, 10*time.Second, "the cache to see the third", func() bool { return len(others()) == 3 })
	if got := others(); !slices.Equal(got, []string{"aaa-first", policy.NetworkPolicyName, "legacy"}) {
		t.Errorf("others %v, want them by name", got)
	}
	if err := cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, policy.NetworkPolicyName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	create(policy.NetworkPolicyName, map[string]string{policy.ManagedByLabel: policy.ManagedByValue})
	tu.EventuallyTrue(t, 10*time.Second, "agentgate-egress present", func() bool { return cache.Present(ns) })
	if got := others(); !slices.Equal(got, []string{"aaa-first", "legacy"}) {
		t.Errorf("others = %v, want [aaa-first legacy]", got)
	}
	if cache.Present("elsewhere") || len(cache.Others("elsewhere")) != 0 {
		t.Error("another namespace shares this one's NetworkPolicies")
	}
}
