package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/policy"
)

// ConfigMapKey is the Store key (and metric source label) of a policy ConfigMap.
func ConfigMapKey(namespace, name string) string { return "configmap:" + namespace + "/" + name }

// ConfigMapSource watches the policy ConfigMaps of one namespace through a label-selected, namespace-scoped
// informer (RBAC: get, list, watch configmaps in that namespace), and reads them by the contract of
// policy/configmap.go. Each ConfigMap is its own key: an invalid update keeps that ConfigMap's last good
// policy, a delete (or removing the label) removes it.
type ConfigMapSource struct {
	Client    kubernetes.Interface
	Namespace string
}

func (c *ConfigMapSource) Name() string { return "configmaps/" + c.Namespace }

func (c *ConfigMapSource) Run(ctx context.Context, u Updater) error {
	if c.Namespace == "" {
		return fmt.Errorf("ConfigMapSource needs a namespace")
	}
	factory := informers.NewSharedInformerFactoryWithOptions(c.Client, 0,
		informers.WithNamespace(c.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = policy.ConfigMapSelector }))
	inf := factory.Core().V1().ConfigMaps().Informer()
	put := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return
		}
		key := ConfigMapKey(cm.Namespace, cm.Name)
		if !policy.IsPolicyConfigMap(cm, c.Namespace) { // the selector already says so; a label removed means the policy is gone
			u.Remove(key)
			return
		}
		doc, errs := policy.ConfigMapDocument(cm)
		if len(errs) > 0 {
			u.Reject(key, errs)
			return
		}
		u.Put(key, doc) // a rejection is logged and counted by the store
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    put,
		UpdateFunc: func(_, obj any) { put(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				u.Remove(ConfigMapKey(cm.Namespace, cm.Name))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching policy ConfigMaps: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		return ctx.Err()
	}
	u.Synced()
	<-ctx.Done()
	return nil
}

// NamespaceLister gives the labels of a namespace for namespaceSelector. Labels returns nil when they are
// unknown (no cluster, or a namespace the cache has not seen yet): policies then take the strict side and
// select the workload.
type NamespaceLister interface {
	Labels(namespace string) map[string]string
}

// LiveNamespaceReader is a NamespaceLister that can also read a namespace's labels from the API server. The
// webhook asks it when the cached labels leave a policy out: a request that reached the webhook proves the
// API server's selector matched labels that the cache may not have seen yet (a namespace labelled a moment
// ago), and a stale cache must never make a pod unselected silently.
type LiveNamespaceReader interface {
	NamespaceLister
	LiveLabels(ctx context.Context, namespace string) (map[string]string, error)
}

const (
	// liveReadTimeout bounds a live namespace read, well inside the webhook's 5 s timeout.
	liveReadTimeout = 2 * time.Second
	// confirmedFor: after a live read finds the cache current (same resourceVersion), the cache is believed for
	// that namespace while it keeps that resourceVersion, for this long. A label change after the read makes
	// the cache stale only until the informer delivers it (milliseconds), the same window the API server's own
	// namespace selector has; without it, a namespace that the webhook configuration selects and a policy does
	// not would cost a GET per admission.
	confirmedFor = time.Second
)

// NamespaceInformer is a LiveNamespaceReader backed by a cluster-wide namespace informer (RBAC: list, watch
// namespaces; get for the live reads). Only names and labels are cached.
type NamespaceInformer struct {
	client kubernetes.Interface
	lister corelisters.NamespaceLister
	synced cache.InformerSynced

	mu        sync.Mutex
	confirmed map[string]confirmation // namespace -> when a live read found the cache current
}

type confirmation struct {
	resourceVersion string
	at              time.Time
}

// StartNamespaceInformer starts the informer; it stops with ctx. Ready reports whether the cache has synced.
func StartNamespaceInformer(ctx context.Context, client kubernetes.Interface) (*NamespaceInformer, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTransform(func(obj any) (any, error) {
			if ns, ok := obj.(*corev1.Namespace); ok {
				return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Labels: ns.Labels, ResourceVersion: ns.ResourceVersion}}, nil
			}
			return obj, nil
		}))
	nsInf := factory.Core().V1().Namespaces()
	inf := nsInf.Informer()
	factory.Start(ctx.Done())
	go func() { <-ctx.Done(); factory.Shutdown() }()
	return &NamespaceInformer{client: client, lister: nsInf.Lister(), synced: inf.HasSynced, confirmed: map[string]confirmation{}}, nil
}

func (n *NamespaceInformer) Labels(namespace string) map[string]string {
	ns, err := n.lister.Get(namespace)
	if err != nil {
		return nil // not cached (yet): the strict side
	}
	return nonNilLabels(ns.Labels)
}

// LiveLabels reads the namespace from the API server (a quorum read, never its watch cache), bounded by
// liveReadTimeout, unless a live read found the cached copy current less than confirmedFor ago.
func (n *NamespaceInformer) LiveLabels(ctx context.Context, namespace string) (map[string]string, error) {
	cached, _ := n.lister.Get(namespace)
	now := time.Now()
	n.mu.Lock()
	c, ok := n.confirmed[namespace]
	n.mu.Unlock()
	if ok && cached != nil && c.resourceVersion == cached.ResourceVersion && now.Sub(c.at) < confirmedFor {
		return nonNilLabels(cached.Labels), nil
	}
	ctx, cancel := context.WithTimeout(ctx, liveReadTimeout)
	defer cancel()
	ns, err := n.client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if cached != nil && cached.ResourceVersion == ns.ResourceVersion {
		n.mu.Lock()
		if len(n.confirmed) > 1000 { // namespaces come and go: drop what has expired
			for k, v := range n.confirmed {
				if now.Sub(v.at) >= confirmedFor {
					delete(n.confirmed, k)
				}
			}
		}
		n.confirmed[namespace] = confirmation{resourceVersion: ns.ResourceVersion, at: now}
		n.mu.Unlock()
	}
	return nonNilLabels(ns.Labels), nil
}

func nonNilLabels(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}

// Ready is a ReadyCheck: nil once the namespace cache has synced.
func (n *NamespaceInformer) Ready() error {
	if !n.synced() {
		return fmt.Errorf("namespace cache not synced")
	}
	return nil
}

// WaitSynced blocks until the cache has synced or the timeout passes.
func (n *NamespaceInformer) WaitSynced(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), n.synced) {
		return fmt.Errorf("namespace cache not synced within %s", timeout)
	}
	return nil
}

// TokenSecretLister says which Secrets hold service-account tokens (type kubernetes.io/service-account-token),
// which a pod spec that references a Secret does not say.
type TokenSecretLister interface {
	IsTokenSecret(namespace, name string) bool
}

// TokenSecretInformer watches the metadata of service-account token Secrets only: the list and watch ask the API
// server for PartialObjectMetadata with fieldSelector type=kubernetes.io/service-account-token, so no Secret
// data ever reaches agentgate, and other Secrets not even their names. RBAC must still grant list and watch on
// secrets cluster-wide (RBAC cannot limit a field selector): README "Decisions" weighs that.
type TokenSecretInformer struct {
	lister cache.GenericLister
	synced cache.InformerSynced
}

// StartTokenSecretInformer starts the informer; it stops with ctx.
func StartTokenSecretInformer(ctx context.Context, client metadata.Interface) *TokenSecretInformer {
	factory := metadatainformer.NewFilteredSharedInformerFactory(client, 0, metav1.NamespaceAll,
		func(o *metav1.ListOptions) { o.FieldSelector = cluster.TokenSecretSelector })
	inf := factory.ForResource(corev1.SchemeGroupVersion.WithResource("secrets"))
	// Names are all that is kept: annotations and managed fields would only cost memory.
	_ = inf.Informer().SetTransform(func(obj any) (any, error) {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
				Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion}}, nil
		}
		return obj, nil
	})
	factory.Start(ctx.Done())
	go func() { <-ctx.Done(); factory.Shutdown() }()
	return &TokenSecretInformer{lister: inf.Lister(), synced: inf.Informer().HasSynced}
}

func (t *TokenSecretInformer) IsTokenSecret(namespace, name string) bool {
	_, err := t.lister.ByNamespace(namespace).Get(name)
	return err == nil
}

// Ready is a ReadyCheck: nil once the cache has synced (before that, a token Secret could be missed).
func (t *TokenSecretInformer) Ready() error {
	if !t.synced() {
		return fmt.Errorf("service-account token Secret cache not synced")
	}
	return nil
}
