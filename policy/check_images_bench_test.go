package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"agentgate.io/agentgate/internal/benchcpu"
)

// benchImageRefs are spellings a cluster really runs: short Docker Hub names, full names, ports, digests.
var benchImageRefs = []string{
	"nginx:1.27",
	"library/busybox:1.36",
	"docker.io/library/redis:7.2",
	"registry.corp.example/agents/runner:1.4.2",
	"registry.corp.example/agents/team/tool:2.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"registry.corp.example:5000/agents/cache:3",
	"ghcr.io/acme/agent/sidecar:v1.2.3",
	"quay.io/prometheus/node-exporter:v1.8.0",
}

// benchImagesPolicy admits every benchImageRefs entry past a deny list that names none of them.
const benchImagesPolicy = `images:
  allow: ["docker.io/library/*", "registry.corp.example/agents/**", "registry.corp.example:5000/**", "ghcr.io/acme/**", "quay.io/prometheus/*"]
  deny: ["docker.io/evil/**", "evil.example/**", "registry.corp.example/agents/untrusted/**", "ghcr.io/acme/legacy/**"]`

// BenchmarkImages: the images check alone over a pod with every benchImageRefs spelling ("check", the
// parse cache warm, as in a running webhook), and one uncached parse per reference ("parse": the cost of a
// spelling seen for the first time).
func BenchmarkImages(b *testing.B) {
	p := testPolicy(b, benchImagesPolicy)
	pod := validPod()
	pod.Spec.Containers = nil
	for i, ref := range benchImageRefs {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + string(rune('a'+i)), Image: ref})
	}
	w, err := NewWorkload(pod)
	if err != nil {
		b.Fatal(err)
	}
	view := newPodView(p, w, Requester{}, nil)
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		done := benchcpu.PerOp(b)
		for b.Loop() {
			r := &report{policy: p}
			checkImages.run(p, view, r)
			if len(r.out) != 0 {
				b.Fatalf("denied: %v", r.out)
			}
		}
		done()
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		done := benchcpu.PerOp(b)
		i := 0
		for b.Loop() {
			if _, err := parseImageUncached(benchImageRefs[i%len(benchImageRefs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		done()
	})
}
