package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/pager"

	"agentgate.io/agentgate/policy"
)

// AgentNamespaces lists the namespaces that at least one policy of set selects by its namespaceSelector (a
// policy without one selects every namespace), sorted by name. One paginated LIST of namespaces.
func AgentNamespaces(ctx context.Context, client kubernetes.Interface, set *policy.Set) ([]policy.Namespace, error) {
	var selectors []labels.Selector
	for _, p := range set.Policies {
		sel := labels.Everything()
		if ls := p.Spec.Match.NamespaceSelector; ls != nil {
			s, err := metav1.LabelSelectorAsSelector(ls)
			if err != nil {
				return nil, fmt.Errorf("policy %s: spec.match.namespaceSelector: %w", p.Name, err)
			}
			sel = s
		}
		selectors = append(selectors, sel)
	}
	var out []policy.Namespace
	err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Namespaces().List(ctx, opts)
	}).EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		ns := obj.(*corev1.Namespace)
		if slices.ContainsFunc(selectors, func(s labels.Selector) bool { return s.Matches(labels.Set(ns.Labels)) }) {
			out = append(out, policy.Namespace{Name: ns.Name, Labels: ns.Labels})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	slices.SortFunc(out, func(a, b policy.Namespace) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// workloadKind is one kind agentgate judges, listed live.
type workloadKind struct {
	apiVersion, kind string
	list             func(c kubernetes.Interface, ns string) pager.ListPageFunc
}

func lister[L runtime.Object](f func(ctx context.Context, opts metav1.ListOptions) (L, error)) pager.ListPageFunc {
	return func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) { return f(ctx, opts) }
}

// workloadKinds are the kinds policy.DecodeWorkload judges, and NetworkPolicies, in the order a report lists them.
var workloadKinds = []workloadKind{
	{"v1", "Pod", func(c kubernetes.Interface, ns string) pager.ListPageFunc { return lister(c.CoreV1().Pods(ns).List) }},
	{"apps/v1", "Deployment", func(c kubernetes.Interface, ns string) pager.ListPageFunc {
		return lister(c.AppsV1().Deployments(ns).List)
	}},
	{"apps/v1", "ReplicaSet", func(c kubernetes.Interface, ns string) pager.ListPageFunc {
		return lister(c.AppsV1().ReplicaSets(ns).List)
	}},
	{"apps/v1", "StatefulSet", func(c kubernetes.Interface, ns string) pager.ListPageFunc {
		return lister(c.AppsV1().StatefulSets(ns).List)
	}},
	{"apps/v1", "DaemonSet", func(c kubernetes.Interface, ns string) pager.ListPageFunc {
		return lister(c.AppsV1().DaemonSets(ns).List)
	}},
	{"batch/v1", "Job", func(c kubernetes.Interface, ns string) pager.ListPageFunc { return lister(c.BatchV1().Jobs(ns).List) }},
	{"batch/v1", "CronJob", func(c kubernetes.Interface, ns string) pager.ListPageFunc {
		return lister(c.BatchV1().CronJobs(ns).List)
	}},
	{"v1", "ReplicationController", func(c kubernetes.Interface, ns string) pager.ListPageFunc {
		return lister(c.CoreV1().ReplicationControllers(ns).List)
	}},
	// Not a workload, but what already runs beside them: one written before the namespace was managed was
	// never judged, and NetworkPolicies add up.
	{"networking.k8s.io/v1", "NetworkPolicy", func(c kubernetes.Interface, ns string) pager.ListPageFunc {
		return lister(c.NetworkingV1().NetworkPolicies(ns).List)
	}},
}

// pageSize bounds what one LIST returns: memory stays flat however many objects a namespace holds.
const pageSize = 500

// EachWorkload lists every pod, pod-making workload and NetworkPolicy of a namespace, paginated, and calls each with the
// object as JSON (apiVersion and kind set, managed fields dropped), in workloadKinds order. Finished pods
// (Succeeded, Failed) are skipped: nothing runs in them. API calls: one paginated LIST per kind.
func EachWorkload(ctx context.Context, client kubernetes.Interface, namespace string, each func(kind string, obj []byte) error) error {
	for _, k := range workloadKinds {
		p := pager.New(k.list(client, namespace))
		p.PageSize = pageSize
		err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
			if pod, ok := obj.(*corev1.Pod); ok && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed) {
				return nil
			}
			if m, ok := obj.(metav1.Object); ok {
				m.SetManagedFields(nil)
			}
			obj.GetObjectKind().SetGroupVersionKind(gvk(k.apiVersion, k.kind))
			data, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			return each(k.kind, data)
		})
		if err != nil {
			return fmt.Errorf("listing %s in namespace %s: %w", k.kind, namespace, err)
		}
	}
	return nil
}

func gvk(apiVersion, kind string) schema.GroupVersionKind {
	gv, _ := schema.ParseGroupVersion(apiVersion)
	return gv.WithKind(kind)
}

// TemplateObjects lists the objects of the pod-template kinds of a table (agent-sandbox's Sandbox and
// SandboxTemplate, the declared kinds) that the API server serves. A group and kind is listed once, in the
// newest of its table's versions that is served (the API server returns every object in the version asked); a
// kind not served (its CRD not installed) is skipped. API calls: one discovery GET per group version when
// built, then one paginated LIST per served kind and namespace.
type TemplateObjects struct {
	dyn    dynamic.Interface
	served []servedKind
}

// NewTemplateObjects resolves the table's kinds against the API server's discovery.
func NewTemplateObjects(dyn dynamic.Interface, disc discovery.DiscoveryInterface, kinds *policy.PodTemplateKinds) (*TemplateObjects, error) {
	served, err := servedTemplateKinds(disc, kinds)
	if err != nil {
		return nil, err
	}
	return &TemplateObjects{dyn: dyn, served: served}, nil
}

// Each calls each with every object of the served kinds in namespace, as JSON (managed fields dropped).
func (t *TemplateObjects) Each(ctx context.Context, namespace string, each func(kind string, obj []byte) error) error {
	for _, k := range t.served {
		p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return t.dyn.Resource(k.gvr).Namespace(namespace).List(ctx, opts)
		})
		p.PageSize = pageSize
		err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return fmt.Errorf("listing %s: got %T", k.gvr.Resource, obj)
			}
			u.SetManagedFields(nil)
			data, err := u.MarshalJSON()
			if err != nil {
				return err
			}
			return each(u.GetKind(), data)
		})
		if err != nil {
			return fmt.Errorf("listing %s in namespace %s: %w", k.gvr.GroupResource(), namespace, err)
		}
	}
	return nil
}

type servedKind struct {
	gvk schema.GroupVersionKind
	gvr schema.GroupVersionResource
}

// servedTemplateKinds resolves each kind of the table to its resource, keeping per group and kind the newest
// served version (Kubernetes version order: v1 > v1beta1 > v1alpha1).
func servedTemplateKinds(disc discovery.DiscoveryInterface, kinds *policy.PodTemplateKinds) ([]servedKind, error) {
	byGK := map[schema.GroupKind]servedKind{}
	var order []schema.GroupKind
	resources := map[string]*metav1.APIResourceList{}
	for _, k := range kinds.All() {
		gv := k.GroupVersionKind.GroupVersion().String()
		list, ok := resources[gv]
		if !ok {
			var err error
			list, err = disc.ServerResourcesForGroupVersion(gv)
			if err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("discovering %s: %w", gv, err)
			}
			resources[gv] = list
		}
		if list == nil {
			continue
		}
		i := slices.IndexFunc(list.APIResources, func(r metav1.APIResource) bool {
			return r.Kind == k.GroupVersionKind.Kind && !strings.Contains(r.Name, "/")
		})
		if i < 0 {
			continue
		}
		gk := k.GroupVersionKind.GroupKind()
		prev, seen := byGK[gk]
		if !seen {
			order = append(order, gk)
		}
		if !seen || version.CompareKubeAwareVersionStrings(k.GroupVersionKind.Version, prev.gvk.Version) > 0 {
			byGK[gk] = servedKind{gvk: k.GroupVersionKind, gvr: k.GroupVersionKind.GroupVersion().WithResource(list.APIResources[i].Name)}
		}
	}
	out := make([]servedKind, 0, len(order))
	for _, gk := range order {
		out = append(out, byGK[gk])
	}
	return out, nil
}

// TokenSecretSelector selects service-account token Secrets (Secrets support the field "type"): a pod spec
// names a Secret, not its type.
var TokenSecretSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()

// TokenSecretNames lists the names of a namespace's service-account token Secrets through their metadata only
// (PartialObjectMetadata: no Secret data is read), paginated. API calls: one paginated LIST.
func TokenSecretNames(ctx context.Context, mc metadata.Interface, namespace string) ([]string, error) {
	var names []string
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return mc.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(namespace).List(ctx, opts)
	})
	p.PageSize = pageSize
	err := p.EachListItem(ctx, metav1.ListOptions{FieldSelector: TokenSecretSelector}, func(obj runtime.Object) error {
		if m, ok := obj.(metav1.Object); ok {
			names = append(names, m.GetName())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing service-account token Secrets in namespace %s: %w", namespace, err)
	}
	return names, nil
}
