package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// PodCache is an informer cache of the cluster's pods that keeps only what the checks read, compactly: the
// name, namespace, labels, owners, the annotations that name security profiles, the phase, and the spec as
// JSON. A typed *corev1.Pod costs about 1.2 KB of struct before any content; a running pod as the API server
// returns it (status, managed fields, last-applied annotation) about 11 KB in a store. Stored as StoredPod it
// is the few hundred bytes of its spec's JSON plus its metadata (BenchmarkPodCacheMemory measures it per
// 1,000 pods). Readers decode the spec when they judge a pod: one decode per pod per use, which the
// preview and the exec lookup can afford, rather than memory for every pod of the cluster all the time.
//
// RBAC: list and watch pods, cluster-wide. API calls: one paginated LIST at start, then one watch.
type PodCache struct {
	informer cache.SharedIndexInformer
	client   kubernetes.Interface
}

// StoredPod is what the cache keeps of a pod.
type StoredPod struct {
	metav1.ObjectMeta
	Phase corev1.PodPhase
	// Spec is the pod's spec as JSON, exactly as the API server sent it (defaults included).
	Spec []byte
}

// GetObjectKind and DeepCopyObject make StoredPod a runtime.Object, which informer stores expect.
func (p *StoredPod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (p *StoredPod) DeepCopyObject() runtime.Object {
	c := &StoredPod{Phase: p.Phase, Spec: p.Spec} // Spec is never written after the transform
	p.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return c
}

// Pod decodes the stored pod into a typed Pod (metadata, spec and phase).
func (p *StoredPod) Pod() (*corev1.Pod, error) {
	pod := &corev1.Pod{ObjectMeta: *p.ObjectMeta.DeepCopy(), Status: corev1.PodStatus{Phase: p.Phase}}
	if err := json.Unmarshal(p.Spec, &pod.Spec); err != nil {
		return nil, fmt.Errorf("cached pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return pod, nil
}

// StartPodCache starts the informer; it runs until ctx is done. Ready reports whether it has synced.
func StartPodCache(ctx context.Context, client kubernetes.Interface) (*PodCache, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(StripPod))
	c := &PodCache{informer: factory.Core().V1().Pods().Informer(), client: client}
	factory.Start(ctx.Done())
	return c, nil
}

// Ready is nil once the first LIST is in the cache.
func (c *PodCache) Ready() error {
	if !c.informer.HasSynced() {
		return errors.New("pod cache not synced yet")
	}
	return nil
}

// WaitSynced blocks until the cache has synced or timeout passes.
func (c *PodCache) WaitSynced(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return fmt.Errorf("pod cache not synced within %s", timeout)
	}
	return nil
}

// Get returns the cached pod; callers must not change it.
func (c *PodCache) Get(namespace, name string) (*StoredPod, bool) {
	obj, ok, err := c.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	p, ok := obj.(*StoredPod)
	return p, ok
}

// liveLookupTimeout bounds Pod's call to the API server: the webhook that asks has 5 s in all.
const liveLookupTimeout = 2 * time.Second

// Pod returns the pod from the cache or, when the cache does not hold it (not synced yet, or created a moment
// ago), from the API server: a LIST with a field selector on its name, so that RBAC stays list and watch, no
// get. A pod the API server does not know either is a NotFound error; a failed call is returned as is, and
// the caller refuses rather than guesses.
func (c *PodCache) Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	if sp, ok := c.Get(namespace, name); ok {
		return sp.Pod()
	}
	ctx, cancel := context.WithTimeout(ctx, liveLookupTimeout)
	defer cancel()
	list, err := c.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return nil, fmt.Errorf("looking up pod %s/%s: %w", namespace, name, err)
	}
	for i := range list.Items {
		if list.Items[i].Name == name {
			return &list.Items[i], nil
		}
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

// Running lists the cached pods of a namespace that have not finished (phase neither Succeeded nor Failed),
// of every namespace when namespace is "". Callers must not change them.
func (c *PodCache) Running(namespace string) []*StoredPod {
	var objs []any
	if namespace == "" {
		objs = c.informer.GetStore().List()
	} else {
		objs, _ = c.informer.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
	}
	out := make([]*StoredPod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*StoredPod); ok && p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// keptAnnotationPrefixes are the annotations a check reads (AppArmor profiles before the field existed).
var keptAnnotationPrefixes = []string{"container.apparmor.security.beta.kubernetes.io/", "agentgate.io/"}

// StripPod is the cache's transform: it keeps what the checks and the reports read, as a StoredPod, and
// drops the rest. It runs on every object the informer receives, before it is stored.
func StripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone (DeletedFinalStateUnknown) passes through
	}
	spec, err := json.Marshal(&p.Spec)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: encoding its spec: %w", p.Namespace, p.Name, err)
	}
	out := &StoredPod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, OwnerReferences: p.OwnerReferences,
		},
		Phase: p.Status.Phase,
		Spec:  spec,
	}
	for k, v := range p.Annotations {
		for _, prefix := range keptAnnotationPrefixes {
			if strings.HasPrefix(k, prefix) {
				if out.Annotations == nil {
					out.Annotations = map[string]string{}
				}
				out.Annotations[k] = v
				break
			}
		}
	}
	return out, nil
}
