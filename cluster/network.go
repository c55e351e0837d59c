package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"agentgate.io/agentgate/policy"
)

// NetworkLease is the Lease the NetworkPolicy owner leads by: one writer among the replicas.
const NetworkLease = "agentgate-network"

// ManagedSelector selects the NetworkPolicies agentgate owns; the owner watches, and ever deletes, no other.
var ManagedSelector = policy.ManagedByLabel + "=" + policy.ManagedByValue

// Results of agentgate_networkpolicy_reconcile_total.
const (
	reconcileApplied   = "applied"   // created or updated after a policy or namespace change
	reconcileRestored  = "restored"  // rewritten after someone else edited or deleted what agentgate wrote
	reconcileRemoved   = "removed"   // deleted: the namespace left the sandbox or no policy manages it any more
	reconcileUnchanged = "unchanged" // already as wanted: no write
	reconcileError     = "error"
)

// NetworkOptions configure the NetworkPolicy owner.
type NetworkOptions struct {
	Client kubernetes.Interface
	// Policies returns the set in force and a channel closed when it is replaced (webhook.Snapshot.Replaced).
	Policies func() (*policy.Set, <-chan struct{})
	// AgentNamespaces selects the namespaces in the sandbox (agentgate.io/agents=true): a policy's own
	// namespaceSelector may be broader (or empty), and agentgate must never cut off egress elsewhere.
	AgentNamespaces labels.Selector
	// ExcludedNamespaces are never managed whatever their labels (kube-system, agentgate's own), like the
	// webhook configurations exclude them by name.
	ExcludedNamespaces []string
	Logger             *slog.Logger
	// Metrics are the owner's series (NewNetworkMetrics); unregistered ones when nil.
	Metrics *NetworkMetrics
	// PoliciesSynced reports whether every policy source has delivered its policies. Nothing is reconciled
	// before: a leader that started on the embedded default would remove what the real policies manage.
	PoliciesSynced func() bool
	// Workers reconcile namespaces in parallel (default 4).
	Workers int
}

// NetworkController keeps NetworkPolicy agentgate-egress in every agent namespace a policy with
// network.manage selects: created when a namespace gains the label, updated when the policy changes,
// restored when someone edits or deletes it, removed when the namespace leaves. Per namespace it reads from its
// informers' caches and makes at most one write. Run it under RunAsLeader: two replicas must not both write.
type NetworkController struct {
	o   NetworkOptions
	log *slog.Logger
	*NetworkMetrics

	mu         sync.Mutex
	written    map[string]string // namespace -> the spec last written there, to tell a restore from an update
	pendingRV  map[string]uint64 // namespace -> resourceVersion of a write the cache has not shown yet
	seenRV     map[string]uint64 // namespace -> newest resourceVersion of its NetworkPolicies the cache has shown
	managedSet map[string]bool
}

// NetworkMetrics are agentgate_networkpolicy_reconcile_total{result} and agentgate_network_managed_namespaces.
// Every replica exports them (zero where it does not lead), so that dashboards and alerts see one series set.
type NetworkMetrics struct {
	results *prometheus.CounterVec
	managed prometheus.Gauge
}

// NewNetworkMetrics makes the series and registers them with reg (nil: unregistered).
func NewNetworkMetrics(reg prometheus.Registerer) (*NetworkMetrics, error) {
	m := &NetworkMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_networkpolicy_reconcile_total",
			Help: "Reconciliations of NetworkPolicy agentgate-egress, one per namespace and pass, by result: applied, restored (someone else had changed or deleted it), removed, unchanged, error.",
		}, []string{"result"}),
		managed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentgate_network_managed_namespaces",
			Help: "Agent namespaces whose agentgate-egress NetworkPolicy this replica keeps (0 on replicas that do not lead).",
		}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.results, m.managed} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range []string{reconcileApplied, reconcileRestored, reconcileRemoved, reconcileUnchanged, reconcileError} {
		m.results.WithLabelValues(r)
	}
	return m, nil
}

// NewNetworkController checks the options.
func NewNetworkController(o NetworkOptions) (*NetworkController, error) {
	if o.Client == nil || o.Policies == nil || o.AgentNamespaces == nil {
		return nil, errors.New("cluster: the NetworkPolicy owner needs a client, the policies and the agent namespace selector")
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	c := &NetworkController{o: o, log: o.Logger, NetworkMetrics: o.Metrics, written: map[string]string{}, managedSet: map[string]bool{}, pendingRV: map[string]uint64{}, seenRV: map[string]uint64{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.NetworkMetrics == nil {
		c.NetworkMetrics, _ = NewNetworkMetrics(nil)
	}
	return c, nil
}

// Run reconciles until ctx is done (the lease lost): informers on namespaces and on the NetworkPolicies labelled
// managed-by agentgate, a rate-limited workqueue of namespace names, and a full pass on every policy change.
func (c *NetworkController) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.o.Client, 10*time.Minute)
	npFactory := informers.NewSharedInformerFactoryWithOptions(c.o.Client, 10*time.Minute,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = ManagedSelector }))
	nsInf := factory.Core().V1().Namespaces()
	npInf := npFactory.Networking().V1().NetworkPolicies()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "agentgate-network"})
	defer queue.ShutDown()

	enqueueNamespace := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if m, err := meta(obj); err == nil {
			if m.GetNamespace() != "" {
				queue.Add(m.GetNamespace())
			} else {
				queue.Add(m.GetName())
			}
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: enqueueNamespace, UpdateFunc: func(_, o any) { enqueueNamespace(o) }, DeleteFunc: enqueueNamespace}
	if _, err := nsInf.Informer().AddEventHandler(handler); err != nil {
		return err
	}
	// The NetworkPolicy handler also records, per namespace, the newest version the cache holds (handlers run
	// after the cache is updated), so that a reconcile never acts on a cache older than its own last write.
	npHandler := handler
	npHandler.AddFunc = func(obj any) { c.observe(obj); enqueueNamespace(obj) }
	npHandler.UpdateFunc = func(_, obj any) { c.observe(obj); enqueueNamespace(obj) }
	npHandler.DeleteFunc = func(obj any) { c.observe(obj); enqueueNamespace(obj) }
	if _, err := npInf.Informer().AddEventHandler(npHandler); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	npFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer npFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nsInf.Informer().HasSynced, npInf.Informer().HasSynced) {
		return ctx.Err()
	}
	if c.o.PoliciesSynced != nil {
		if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) { return c.o.PoliciesSynced(), nil }); err != nil {
			return err
		}
	}
	r := &reconciler{c: c, namespaces: nsInf.Lister(), policies: npInf.Lister()}

	var wg sync.WaitGroup
	for range c.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.next(ctx, queue) {
			}
		}()
	}
	// Every policy change: every namespace again (the informers' events cover namespace and NetworkPolicy changes).
	go func() {
		for {
			_, replaced := c.o.Policies()
			all, _ := r.namespaces.List(labels.Everything())
			for _, ns := range all {
				queue.Add(ns.Name)
			}
			select {
			case <-ctx.Done():
				return
			case <-replaced:
			}
		}
	}()
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	c.mu.Lock()
	clear(c.managedSet)
	clear(c.written)
	clear(c.pendingRV)
	clear(c.seenRV)
	c.managed.Set(0)
	c.mu.Unlock()
	return nil
}

func meta(obj any) (metav1.Object, error) {
	if m, ok := obj.(metav1.Object); ok {
		return m, nil
	}
	return nil, fmt.Errorf("not an object: %T", obj)
}

type reconciler struct {
	c          *NetworkController
	namespaces corelisters.NamespaceLister
	policies   networkinglisters.NetworkPolicyLister
}

func (r *reconciler) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	ns, shutdown := queue.Get()
	if shutdown {
		return false
	}
	defer queue.Done(ns)
	if r.c.behindOwnWrite(ns) {
		// The cache has not seen this replica's last write yet: acting now would write again (a second create
		// failing with AlreadyExists, an update conflicting). Its event enqueues the namespace; the delay is a
		// safety net.
		queue.AddAfter(ns, 200*time.Millisecond)
		return true
	}
	result, err := r.reconcile(ctx, ns)
	r.c.results.WithLabelValues(result).Inc()
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		r.c.log.Error("reconciling NetworkPolicy "+policy.NetworkPolicyName+" failed; retried with backoff", "event", "network.failed",
			"namespace", ns, "error", err.Error(), "retries", queue.NumRequeues(ns))
		queue.AddRateLimited(ns)
		return true
	}
	queue.Forget(ns)
	return true
}

// reconcile makes the namespace's agentgate-egress what the policies say: one cache read, at most one write.
func (r *reconciler) reconcile(ctx context.Context, name string) (string, error) {
	c := r.c
	set, _ := c.o.Policies()
	cur, err := r.policies.NetworkPolicies(name).Get(policy.NetworkPolicyName)
	if apierrors.IsNotFound(err) {
		cur = nil
	} else if err != nil {
		return reconcileError, err
	}
	nsObj, err := r.namespaces.Get(name)
	if apierrors.IsNotFound(err) || (err == nil && nsObj.DeletionTimestamp != nil) {
		c.forget(name) // its NetworkPolicies go with it
		return reconcileUnchanged, nil
	} else if err != nil {
		return reconcileError, err
	}
	var manager *policy.Policy
	if r.inSandbox(nsObj) {
		manager = set.NetworkManager(policy.Namespace{Name: name, Labels: nsObj.Labels})
	}
	if manager == nil {
		c.forget(name)
		if cur == nil { // the cache holds only NetworkPolicies labelled managed-by agentgate: nothing else is ever deleted
			return reconcileUnchanged, nil
		}
		err := c.o.Client.NetworkingV1().NetworkPolicies(name).Delete(ctx, policy.NetworkPolicyName,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
		if err != nil && !apierrors.IsNotFound(err) {
			return reconcileError, fmt.Errorf("deleting %s/%s: %w", name, policy.NetworkPolicyName, err)
		}
		c.log.Info("namespace left the network sandbox: NetworkPolicy removed", "event", "network.removed", "namespace", name)
		return reconcileRemoved, nil
	}
	want := policy.DesiredNetworkPolicy(manager, name)
	wantKey := specKey(want)
	c.mu.Lock()
	restoring := c.written[name] == wantKey
	c.mu.Unlock()
	result := reconcileApplied
	if restoring {
		result = reconcileRestored
	}
	switch {
	case cur == nil:
		var created *networkingv1.NetworkPolicy
		created, err = c.o.Client.NetworkingV1().NetworkPolicies(name).Create(ctx, want, metav1.CreateOptions{FieldManager: "agentgate"})
		if err == nil {
			c.wrote(name, created.ResourceVersion)
		}
		if apierrors.IsAlreadyExists(err) {
			// A NetworkPolicy without agentgate's label holds the name (the label-selected cache does not see
			// it). agentgate neither rewrites nor deletes what it does not own: the namespace stays without its
			// default-deny (agent pods there are denied at admission meanwhile), retried with backoff, and the
			// alert on failing reconciliations tells an admin to remove or rename it.
			return reconcileError, fmt.Errorf("a NetworkPolicy %s/%s not labelled %s exists: agentgate does not take over what it does not own; delete or rename it",
				name, policy.NetworkPolicyName, ManagedSelector)
		}
	case !upToDate(cur, want):
		err = r.update(ctx, cur, want)
	default:
		c.remember(name, wantKey)
		return reconcileUnchanged, nil
	}
	if err != nil {
		return reconcileError, fmt.Errorf("writing %s/%s: %w", name, policy.NetworkPolicyName, err)
	}
	c.remember(name, wantKey)
	msg := "NetworkPolicy " + policy.NetworkPolicyName + " applied"
	if result == reconcileRestored {
		msg = "NetworkPolicy " + policy.NetworkPolicyName + " restored: it had been changed or deleted by someone else"
	}
	c.log.Info(msg, "event", "network."+result, "namespace", name, "policy", manager.Name)
	return result, nil
}

func (r *reconciler) update(ctx context.Context, cur, want *networkingv1.NetworkPolicy) error {
	np := cur.DeepCopy()
	if np.Labels == nil {
		np.Labels = map[string]string{}
	}
	if np.Annotations == nil {
		np.Annotations = map[string]string{}
	}
	maps.Copy(np.Labels, want.Labels)
	maps.Copy(np.Annotations, want.Annotations)
	np.Spec = want.Spec
	updated, err := r.c.o.Client.NetworkingV1().NetworkPolicies(np.Namespace).Update(ctx, np, metav1.UpdateOptions{FieldManager: "agentgate"})
	if err == nil {
		r.c.wrote(np.Namespace, updated.ResourceVersion)
	}
	return err
}

func upToDate(cur, want *networkingv1.NetworkPolicy) bool {
	for k, v := range want.Labels {
		if cur.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.Annotations {
		if cur.Annotations[k] != v {
			return false
		}
	}
	// Semantic equality: nil and empty lists and maps are the same to the API server.
	return equality.Semantic.DeepEqual(cur.Spec, want.Spec)
}

func specKey(np *networkingv1.NetworkPolicy) string {
	return np.Annotations[policy.PolicyAnnotation] + "\x00" + np.Spec.String()
}

func (r *reconciler) inSandbox(ns *corev1.Namespace) bool {
	return !slices.Contains(r.c.o.ExcludedNamespaces, ns.Name) && r.c.o.AgentNamespaces.Matches(labels.Set(ns.Labels))
}

// wrote records the resourceVersion of this replica's write; observe, the newest one the cache has seen.
// resourceVersions are compared as numbers, as etcd hands them out; one that does not parse disables the wait.
func (c *NetworkController) wrote(ns, rv string) {
	v, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v > c.seenRV[ns] { // the watch event may have come before the write's answer
		c.pendingRV[ns] = v
	}
}

func (c *NetworkController) observe(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		c.mu.Lock()
		delete(c.pendingRV, namespaceOfKey(t.Key)) // the cache relisted: whatever it holds now is newer
		c.mu.Unlock()
		return
	}
	m, err := meta(obj)
	if err != nil {
		return
	}
	ns := m.GetNamespace()
	v, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		delete(c.pendingRV, ns)
		return
	}
	c.seenRV[ns] = max(c.seenRV[ns], v)
	if c.pendingRV[ns] <= v {
		delete(c.pendingRV, ns)
	}
}

func (c *NetworkController) behindOwnWrite(ns string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pendingRV[ns]
	return ok
}

func namespaceOfKey(key string) string {
	ns, _, _ := strings.Cut(key, "/")
	return ns
}

func (c *NetworkController) remember(ns, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[ns] = key
	c.managedSet[ns] = true
	c.managed.Set(float64(len(c.managedSet)))
}

func (c *NetworkController) forget(ns string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.written, ns)
	delete(c.managedSet, ns)
	c.managed.Set(float64(len(c.managedSet)))
}

// NetworkPolicyCache is an informer of every NetworkPolicy, on every replica: before admitting an agent pod in
// a managed namespace the webhook asks whether agentgate's agentgate-egress is in place, and which other
// NetworkPolicies would select the pod (they add to what agentgate-egress allows; one written before the
// namespace was managed was never judged). Memory: the objects without managedFields, about 2 KiB each
// (1.98 MB per 1,000 usual ones: BenchmarkNetworkPolicyCacheMemory); API calls: one list and one watch, none
// per admission.
type NetworkPolicyCache struct {
	lister networkinglisters.NetworkPolicyLister
	synced cache.InformerSynced
}

// StartNetworkPolicyCache starts the informer; it stops with ctx.
func StartNetworkPolicyCache(ctx context.Context, client kubernetes.Interface) (*NetworkPolicyCache, error) {
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Networking().V1().NetworkPolicies()
	_ = inf.Informer().SetTransform(stripManagedFields)
	m := &NetworkPolicyCache{lister: inf.Lister(), synced: inf.Informer().HasSynced}
	factory.Start(ctx.Done())
	go func() { <-ctx.Done(); factory.Shutdown() }()
	return m, nil
}

// stripManagedFields drops what no reader of the cache uses and is often the biggest part of an object.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// Present reports whether the namespace holds agentgate's agentgate-egress: that name with agentgate's label
// (anyone may create a NetworkPolicy of that name). False until the informer synced.
func (m *NetworkPolicyCache) Present(namespace string) bool {
	np, err := m.lister.NetworkPolicies(namespace).Get(policy.NetworkPolicyName)
	return err == nil && isManaged(np)
}

// Others lists the namespace's NetworkPolicies that are not agentgate's, by name (a denial and a report read
// the same every time). Shared with the cache: read only.
func (m *NetworkPolicyCache) Others(namespace string) []*networkingv1.NetworkPolicy {
	all, err := m.lister.NetworkPolicies(namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	all = slices.DeleteFunc(all, func(np *networkingv1.NetworkPolicy) bool { return np.Name == policy.NetworkPolicyName && isManaged(np) })
	slices.SortFunc(all, func(a, b *networkingv1.NetworkPolicy) int { return strings.Compare(a.Name, b.Name) })
	return all
}

func isManaged(np *networkingv1.NetworkPolicy) bool {
	return np.Labels[policy.ManagedByLabel] == policy.ManagedByValue
}

// Ready fails until the informer has synced.
func (m *NetworkPolicyCache) Ready() error {
	if !m.synced() {
		return errors.New("managed NetworkPolicies not synced yet")
	}
	return nil
}
