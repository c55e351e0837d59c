package webhook

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

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

// NamespaceInformer is a NamespaceLister backed by a cluster-wide namespace informer (RBAC: list, watch
// namespaces). Only names and labels are cached.
type NamespaceInformer struct {
	lister corelisters.NamespaceLister
	synced cache.InformerSynced
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
	return &NamespaceInformer{lister: nsInf.Lister(), synced: inf.HasSynced}, nil
}

func (n *NamespaceInformer) Labels(namespace string) map[string]string {
	ns, err := n.lister.Get(namespace)
	if err != nil {
		return nil // not cached (yet): the strict side
	}
	if ns.Labels == nil {
		return map[string]string{}
	}
	return ns.Labels
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
