package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
