package cluster

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPreview is the time the admission preview adds to a policy change, by the number of running agent
// pods in the cache: typical agent pods (runningAgentPod) spread over 20 agent namespaces, every one judged
// (no limit, no deadline) by a stricter default policy that denies all of them, so that every pod also gets
// its finding recorded and the warnings rendered: the worst case per pod.
func BenchmarkPreview(b *testing.B) {
	p := parsePolicy(b, "requireDigest: false", "requireDigest: true")
	labels := map[string]map[string]string{}
	for _, n := range []int{1000, 3000, 10000} {
		pods := make([]*StoredPod, n)
		for i := range n {
			ns := fmt.Sprintf("agents-%02d", i%20)
			labels[ns] = agentNS
			pods[i] = storedAgentPod(b, ns, fmt.Sprintf("agent-%05d", i), nil)
		}
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			for b.Loop() {
				r := Preview(p, pods, Namespaces{Labels: labelsOf(labels)}, 0, time.Time{})
				if len(r.Findings) != n {
					b.Fatalf("%d findings, want %d", len(r.Findings), n)
				}
				_ = r.Warnings()
			}
		})
	}
}
