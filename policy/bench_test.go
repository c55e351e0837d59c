package policy

// Benchmarks for BENCHMARKS.md:
//
//	go test ./policy/ -run '^$' -bench . -benchmem
//
// Target (issue 2): Check ≤ 5 µs/op and ≤ 20 allocs/op on the small pod.

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"agentgate.io/agentgate/internal/benchcpu"
)

// benchNS is a labelled agent namespace, so the default policy's namespaceSelector is evaluated for real.
var benchNS = Namespace{Name: "agents", Labels: map[string]string{"agentgate.io/agents": "true", "team": "automation"}}

// benchContainer is an agent container as users write it: nothing agentgate forces is set.
func benchContainer(name string, envs, mounts int) corev1.Container {
	c := corev1.Container{
		Name:    name,
		Image:   "registry.corp.example/agents/" + name + ":1.4.2",
		Command: []string{"/usr/local/bin/agent"},
		Args:    []string{"--control-plane=https://control-plane.corp.example:8443", "--queue=tasks-" + name, "--concurrency=4"},
		Ports:   []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("metrics")}},
			PeriodSeconds: 10},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9090)}}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		},
	}
	for i := range envs {
		c.Env = append(c.Env, corev1.EnvVar{
			Name:  fmt.Sprintf("AGENT_SETTING_%02d", i),
			Value: fmt.Sprintf("value-%02d-for-%s-with-some-realistic-length-/opt/agent/config/%s/%02d.yaml", i, name, name, i),
		})
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "API_TOKEN", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "agent-token"}, Key: "token"}}})
	for i := range mounts {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("work-%d", i), MountPath: fmt.Sprintf("/work/%s/%d", name, i)})
	}
	return c
}

// benchPod builds a Pod with n containers (the first as an init container when n > 2).
func benchPod(name string, n, envs, mounts int) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "agents",
			Labels:      map[string]string{"app.kubernetes.io/name": "agent", "app.kubernetes.io/instance": name},
			Annotations: map[string]string{"agentgate.io/owner": "automation"}},
		Spec: corev1.PodSpec{ServiceAccountName: "agent", RestartPolicy: corev1.RestartPolicyNever},
	}
	for i := range mounts {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("work-%d", i), VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	for i := range n {
		c := benchContainer(fmt.Sprintf("worker-%02d", i), envs, mounts)
		if n > 2 && i == 0 {
			p.Spec.InitContainers = append(p.Spec.InitContainers, c)
			continue
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	return p
}

type benchCase struct {
	name     string
	pod      *Workload // as sent
	hardened *Workload
	size     int // JSON bytes as sent
}

func benchCases(tb testing.TB) []benchCase {
	set := NewSet(Default())
	var out []benchCase
	for _, bc := range []struct {
		name                string
		containers, envs, m int
	}{
		{"small", 2, 4, 1},
		{"large", 11, 24, 4},
	} {
		pod := benchPod("agent-"+bc.name, bc.containers, bc.envs, bc.m)
		w, err := NewWorkload(pod)
		if err != nil {
			tb.Fatal(err)
		}
		h := w.DeepCopy()
		set.Harden(h, benchNS, Requester{})
		out = append(out, benchCase{name: bc.name, pod: w, hardened: h, size: len(mustJSON(tb, pod))})
	}
	return out
}

// TestBenchmarkPods: the benchmark pods are what they claim: compliant after hardening (so Check runs every
// check to the end), the small one with 2 containers, the large one with 11 and about 40 KB of JSON.
func TestBenchmarkPods(t *testing.T) {
	set := NewSet(Default())
	for _, bc := range benchCases(t) {
		if res := set.evaluate(bc.hardened, benchNS, Requester{}); !res.Allowed() {
			t.Errorf("%s: hardened pod denied: %q", bc.name, violationKeys(res.Violations))
		}
		if res := set.evaluate(bc.pod, benchNS, Requester{}); res.Allowed() {
			t.Errorf("%s: the pod as sent passes; hardening would have nothing to do", bc.name)
		}
		n := len(bc.pod.Spec.Containers) + len(bc.pod.Spec.InitContainers)
		switch bc.name {
		case "small":
			if n != 2 {
				t.Errorf("small pod has %d containers", n)
			}
		case "large":
			if n != 11 || bc.size < 36_000 || bc.size > 44_000 {
				t.Errorf("large pod: %d containers, %d bytes; want 11 and about 40 KB", n, bc.size)
			}
		}
		t.Logf("%s: %d containers, %d bytes", bc.name, n, bc.size)
	}
}

// BenchmarkCheck is Set.evaluate on an already hardened pod: what the validating webhook does per admission
// after decoding.
func BenchmarkCheck(b *testing.B) {
	set := NewSet(Default())
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			done := benchcpu.PerOp(b)
			for b.Loop() {
				res := set.evaluate(bc.hardened, benchNS, Requester{})
				if !res.Allowed() {
					b.Fatal("denied")
				}
			}
			done()
		})
	}
}

// BenchmarkHarden hardens a fresh copy of the pod as sent each time (Harden works in place; Mutate copies
// too). "copy" is the DeepCopy alone, to subtract.
func BenchmarkHarden(b *testing.B) {
	set := NewSet(Default())
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			done := benchcpu.PerOp(b)
			for b.Loop() {
				h := bc.pod.DeepCopy()
				if !set.Harden(h, benchNS, Requester{}) {
					b.Fatal("nothing hardened")
				}
			}
			done()
		})
		b.Run(bc.name+"/copy", func(b *testing.B) {
			b.ReportAllocs()
			done := benchcpu.PerOp(b)
			for b.Loop() {
				_ = bc.pod.DeepCopy()
			}
			done()
		})
	}
}

// BenchmarkJudge is the validating webhook's decision on a Pod: "sent" needs hardening (Judge copies and
// hardens it, then judges the pod as sent), "hardened" is what arrives after the mutating webhook.
func BenchmarkJudge(b *testing.B) {
	set := NewSet(Default())
	for _, bc := range benchCases(b) {
		for _, v := range []struct {
			name string
			w    *Workload
		}{{"sent", bc.pod}, {"hardened", bc.hardened}} {
			b.Run(bc.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				done := benchcpu.PerOp(b)
				for b.Loop() {
					res := set.Judge(v.w, benchNS, Requester{})
					if v.name == "hardened" && !res.Allowed() {
						b.Fatal("denied")
					}
				}
				done()
			})
		}
	}
}

// BenchmarkMutate is the mutating webhook's decision (without the patch): "sent" is hardened, "hardened"
// has nothing left to do.
func BenchmarkMutate(b *testing.B) {
	set := NewSet(Default())
	for _, bc := range benchCases(b) {
		for _, v := range []struct {
			name string
			w    *Workload
		}{{"sent", bc.pod}, {"hardened", bc.hardened}} {
			b.Run(bc.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				done := benchcpu.PerOp(b)
				for b.Loop() {
					_, changed := set.Mutate(v.w, benchNS, Requester{})
					if changed != (v.name == "sent") {
						b.Fatalf("changed = %v", changed)
					}
				}
				done()
			})
		}
	}
}

// Scaling (BENCHMARKS.md tables and plot): how the cost grows with containers per pod, policies in force and
// allowlist patterns. Every point is a compliant pod, so every check runs to the end.

var scaleContainers = []int{1, 2, 5, 10, 20, 50, 100}

// BenchmarkScaleContainers, BenchmarkScalePolicies and BenchmarkScaleAllowlist measure three operations:
// "check" is Set.evaluate of the hardened pod, "judge" is Set.Judge of the hardened pod (what /validate
// decides once the mutating webhook has run) and "mutate" is Set.Mutate of the pod as sent (what /mutate
// decides, without the patch).
func scaleOp(b *testing.B, set *Set, op string, sent, hardened *Workload, matched int) {
	b.ReportAllocs()
	done := benchcpu.PerOp(b)
	for b.Loop() {
		switch op {
		case "check":
			if res := set.evaluate(hardened, benchNS, Requester{}); !res.Allowed() || len(res.Matched) != matched {
				b.Fatal("denied")
			}
		case "judge":
			if res := set.Judge(hardened, benchNS, Requester{}); !res.Allowed() || len(res.Matched) != matched {
				b.Fatal("denied")
			}
		case "mutate":
			if _, changed := set.Mutate(sent, benchNS, Requester{}); !changed {
				b.Fatal("nothing hardened")
			}
		}
	}
	done()
}

var scaleOps = []string{"check", "judge", "mutate"}

// BenchmarkScaleContainers: by containers per pod, under the default policy with a per-pod ceiling that a
// hundred default-sized containers fit (the default's would deny them; the totals are computed all the same).
func BenchmarkScaleContainers(b *testing.B) {
	doc := string(DefaultPolicyYAML())
	const perPod = `maxPerPod: {cpu: "16", memory: 32Gi, ephemeral-storage: 20Gi}`
	if !strings.Contains(doc, perPod) {
		b.Fatal("default policy: maxPerPod line not found")
	}
	p, errs := Parse([]byte(strings.Replace(doc, perPod, `maxPerPod: {cpu: "1000", memory: 1Ti, ephemeral-storage: 20Gi}`, 1)))
	if len(errs) > 0 {
		b.Fatal(errs.ToAggregate())
	}
	set := NewSet(p)
	for _, op := range scaleOps {
		for _, n := range scaleContainers {
			w, err := NewWorkload(benchPod("scale", n, 4, 1))
			if err != nil {
				b.Fatal(err)
			}
			h := w.DeepCopy()
			set.Harden(h, benchNS, Requester{})
			b.Run(fmt.Sprintf("%s/containers=%d", op, n), func(b *testing.B) { scaleOp(b, set, op, w, h, 1) })
		}
	}
}

// scalePolicy is the default policy under another name, with extra allowlist patterns before its own.
func scalePolicy(tb testing.TB, name string, extraAllow int) *Policy {
	doc := string(DefaultPolicyYAML())
	doc = strings.Replace(doc, "  name: agents\n", "  name: "+name+"\n", 1)
	if extraAllow > 0 {
		pats := make([]string, 0, extraAllow+1)
		for i := range extraAllow {
			pats = append(pats, fmt.Sprintf("%q", fmt.Sprintf("registry.corp.example/team-%04d/**", i)))
		}
		pats = append(pats, `"registry.corp.example/agents/**"`)
		old := `allow: ["registry.corp.example/agents/**"]`
		if !strings.Contains(doc, old) {
			tb.Fatal("default policy: allowlist line not found")
		}
		doc = strings.Replace(doc, old, "allow: ["+strings.Join(pats, ", ")+"]", 1)
	}
	p, errs := Parse([]byte(doc))
	if len(errs) > 0 {
		tb.Fatal(errs.ToAggregate())
	}
	return p
}

var (
	scalePolicies  = []int{1, 2, 5, 10, 20, 50}
	scalePatterns  = []int{1, 10, 100, 250, 500, 1000}
	scaleSmallPod  = func() *corev1.Pod { return benchPod("scale", 2, 4, 1) }
	hardenedByFull = func(tb testing.TB, set *Set) (*Workload, *Workload) {
		w, err := NewWorkload(scaleSmallPod())
		if err != nil {
			tb.Fatal(err)
		}
		h := w.DeepCopy()
		set.Harden(h, benchNS, Requester{})
		return w, h
	}
)

// BenchmarkScalePolicies: the small pod with n policies in force, all selecting it.
func BenchmarkScalePolicies(b *testing.B) {
	for _, op := range scaleOps {
		for _, n := range scalePolicies {
			ps := make([]*Policy, n)
			for i := range ps {
				ps[i] = scalePolicy(b, fmt.Sprintf("agents-%02d", i), 0)
			}
			set := NewSet(ps...)
			w, h := hardenedByFull(b, set)
			b.Run(fmt.Sprintf("%s/policies=%d", op, n), func(b *testing.B) { scaleOp(b, set, op, w, h, n) })
		}
	}
}

// BenchmarkScaleAllowlist: the small pod when its images match only the last of n allowlist patterns (the
// worst case of a first-match scan).
func BenchmarkScaleAllowlist(b *testing.B) {
	for _, op := range scaleOps {
		for _, n := range scalePatterns {
			set := NewSet(scalePolicy(b, "agents", n-1))
			w, h := hardenedByFull(b, set)
			b.Run(fmt.Sprintf("%s/patterns=%d", op, n), func(b *testing.B) { scaleOp(b, set, op, w, h, 1) })
		}
	}
}
