package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"agentgate.io/agentgate/internal/testutil"
)

// TestRunAsLeaderOneAtATime: two replicas contest one Lease on a real API server; exactly one leads, and when
// it stops (its context cancelled, the lease released) the other takes over without waiting out the lease.
func TestRunAsLeaderOneAtATime(t *testing.T) {
	cs := testutil.Kube(t)
	ns := testNamespace(t, "leader")
	var leading atomic.Int32
	var mu sync.Mutex
	var leaders []string
	var overlap atomic.Bool
	start := func(identity string) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			_ = RunAsLeader(ctx, LeaderOptions{Client: cs, Namespace: ns, Name: "agentgate-test", Identity: identity,
				LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond},
				func(ctx context.Context) {
					if leading.Add(1) > 1 {
						overlap.Store(true)
					}
					mu.Lock()
					leaders = append(leaders, identity)
					mu.Unlock()
					<-ctx.Done()
					leading.Add(-1)
				})
		}()
		return cancel
	}
	cancelA := start("a")
	testutil.EventuallyTrue(t, 20*time.Second, "a leads", func() bool { return leading.Load() == 1 })
	cancelB := start("b")
	defer cancelB()
	// b contests for several retry periods while a holds the lease: bounded by b's own attempts, seen in the
	// Lease's holder staying a.
	lease := func() string {
		l, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "agentgate-test", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	if h := lease(); h != "a" {
		t.Fatalf("lease held by %q, want a", h)
	}
	cancelA()
	took := testutil.EventuallyTrue(t, 20*time.Second, "b takes over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(leaders) == 2 && leaders[1] == "b"
	})
	t.Logf("b took over %s after a stopped", took.Round(time.Millisecond))
	if overlap.Load() {
		t.Error("two replicas led at once")
	}
	if h := lease(); h != "b" {
		t.Errorf("lease held by %q, want b", h)
	}
}
