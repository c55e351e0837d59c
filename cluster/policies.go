package cluster

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"agentgate.io/agentgate/policy"
)

// ReadPolicies reads the policy ConfigMaps of namespace as the server puts them in force (policy.ParseConfigMap)
// and returns every error at once, each naming its ConfigMap and field. One LIST, label-selected.
func ReadPolicies(ctx context.Context, client kubernetes.Interface, namespace string) ([]*policy.Policy, []error) {
	list, err := client.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: policy.ConfigMapSelector})
	if err != nil {
		return nil, []error{fmt.Errorf("listing policy ConfigMaps in %s: %w", namespace, err)}
	}
	var out []*policy.Policy
	var errs []error
	for i := range list.Items {
		cm := &list.Items[i]
		p, ferrs := policy.ParseConfigMap(cm)
		for _, e := range ferrs {
			errs = append(errs, fmt.Errorf("ConfigMap %s/%s: %s", cm.Namespace, cm.Name, e.Error()))
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out, errs
}
