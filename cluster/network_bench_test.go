package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	tu "agentgate.io/agentgate/internal/testutil"
	"agentgate.io/agentgate/policy"
)

// BenchmarkNetworkPolicyChange1000Namespaces: 1,000 managed agent namespaces on a real API server; one op is a
// policy change followed by every namespace's agentgate-egress rewritten. Reported: the API requests the owner
// made per namespace (counted by a transport wrapper) and the time for all 1,000.
//
//	go test ./cluster/ -run '^$' -bench NetworkPolicyChange -benchtime 3x
func BenchmarkNetworkPolicyChange1000Namespaces(b *testing.B) {
	const n = 1000
	cs := tu.Kube(b)
	key := "net-bench.test/agents"
	for i := range n {
		labelNamespace(b, cs, fmt.Sprintf("net-bench-%04d", i), map[string]string{key: "true"})
	}
	tp := &testPolicies{}
	put := func(port int) {
		p, errs := policy.Parse([]byte(netPolicy(key, fmt.Sprintf("{cidr: 10.0.0.0/8, ports: [{port: %d}]}", port))))
		if errs != nil {
			b.Fatal(errs)
		}
		tp.mu.Lock()
		if tp.replaced != nil {
			close(tp.replaced)
		}
		tp.set, tp.replaced = policy.NewSet(p), make(chan struct{})
		tp.mu.Unlock()
	}
	put(1)
	client := newCountingClient(b)
	c := newController(b, client, key, tp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	allAt := func(port int32) {
		tu.Eventually(b, 5*time.Minute, fmt.Sprintf("every namespace at port %d", port), func() error {
			list, err := cs.NetworkingV1().NetworkPolicies("").List(context.Background(), metav1.ListOptions{LabelSelector: ManagedSelector})
			if err != nil {
				return err
			}
			ok := 0
			for i := range list.Items {
				if hasPort(&list.Items[i], port) {
					ok++
				}
			}
			if ok < n {
				return fmt.Errorf("%d of %d", ok, n)
			}
			return nil
		})
	}
	allAt(1)
	b.ResetTimer()
	var requests, writes int
	for i := range b.N {
		beforeAll, beforeWrites := client.total(), client.writes()
		start := time.Now()
		put(1000 + i)
		allAt(int32(1000 + i))
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/1000ns")
		requests += client.total() - beforeAll
		writes += client.writes() - beforeWrites
	}
	b.ReportMetric(float64(requests)/float64(b.N*n), "requests/ns")
	b.ReportMetric(float64(writes)/float64(b.N*n), "writes/ns")
}

func hasPort(np *networkingv1.NetworkPolicy, port int32) bool {
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			if p.Port != nil && p.Port.IntVal == port {
				return true
			}
		}
	}
	return false
}

// BenchmarkNetworkPolicyCacheMemory measures what NetworkPolicyCache keeps for 1,000 NetworkPolicies shaped like
// a namespace's usual ones (a podSelector, two egress rules with an ipBlock and ports, managed fields as the
// API server writes them for one field manager), after its transform.
func BenchmarkNetworkPolicyCacheMemory(b *testing.B) {
	const n = 1000
	np := func(i int) *networkingv1.NetworkPolicy {
		port, dns := intstr.FromInt32(443), intstr.FromInt32(53)
		return &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("allow-api-%d", i), Namespace: fmt.Sprintf("agents-%d", i%50),
				UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)), ResourceVersion: "12345",
				Labels:        map[string]string{"app.kubernetes.io/part-of": "agents"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "networking.k8s.io/v1", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 600)}}}},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{
					{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16"}}}, Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}},
					{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}}}, Ports: []networkingv1.NetworkPolicyPort{{Port: &dns}}},
				},
			},
		}
	}
	var kept float64
	for range b.N {
		kept = storeHeap(b, n, func(i int) any { return np(i) }, stripManagedFields)
	}
	b.ReportMetric(kept, "bytes-per-1000-networkpolicies")
}
