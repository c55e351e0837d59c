package policy

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestCheckResources(t *testing.T) {
	set := func(l *corev1.ResourceList, name corev1.ResourceName, q string) {
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = resource.MustParse(q)
	}
	first := func(p *corev1.Pod) *corev1.ResourceRequirements { return &p.Spec.Containers[0].Resources }
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "at max", tweak: func(p *corev1.Pod) {
			r := first(p)
			set(&r.Limits, corev1.ResourceCPU, "4")
			set(&r.Requests, corev1.ResourceCPU, "4000m")
			set(&r.Limits, corev1.ResourceMemory, "8Gi")
		}},
		{
			name:  "no cpu limit",
			tweak: func(p *corev1.Pod) { delete(first(p).Limits, corev1.ResourceCPU) },
			want:  []string{"spec.containers[0].resources.limits[cpu] | unset | a limit of at most 4"},
			msgs:  []string{"[resources] agent containers must declare a cpu limit, or the pod a pod-level one (spec.resources.limits) (found unset; allowed: a limit of at most 4)"},
		},
		{
			name:  "no resources at all",
			tweak: func(p *corev1.Pod) { *first(p) = corev1.ResourceRequirements{} },
			want: []string{
				"spec.containers[0].resources.limits[cpu] | unset | a limit of at most 4",
				"spec.containers[0].resources.limits[memory] | unset | a limit of at most 8Gi",
			},
		},
		{
			name: "above max",
			tweak: func(p *corev1.Pod) {
				r := first(p)
				set(&r.Requests, corev1.ResourceCPU, "6")
				set(&r.Limits, corev1.ResourceCPU, "8")
				set(&r.Limits, corev1.ResourceMemory, "16Gi")
			},
			want: []string{
				"spec.containers[0].resources.requests[cpu] | 6 | at most 4",
				"spec.containers[0].resources.limits[cpu] | 8 | at most 4",
				"spec.containers[0].resources.limits[memory] | 16Gi | at most 8Gi",
			},
			msgs: []string{
				"[resources] cpu requests exceed the policy's ceiling (found 6; allowed: at most 4)",
				"[resources] cpu limits exceed the policy's ceiling (found 8; allowed: at most 4)",
				"[resources] memory limits exceed the policy's ceiling (found 16Gi; allowed: at most 8Gi)",
			},
		},
		{
			// The API forbids resources on ephemeral containers: they are not judged.
			name: "every kind without resources", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.InitContainers[0].Resources = corev1.ResourceRequirements{}
				p.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
			},
			want: []string{
				"spec.initContainers[0].resources.limits[cpu] | unset | a limit of at most 4",
				"spec.initContainers[0].resources.limits[memory] | unset | a limit of at most 8Gi",
				"spec.containers[0].resources.limits[cpu] | unset | a limit of at most 4",
				"spec.containers[0].resources.limits[memory] | unset | a limit of at most 8Gi",
			},
		},
		{
			name: "a policy without max or defaults", policy: "resources: {}",
			tweak: func(p *corev1.Pod) { *first(p) = corev1.ResourceRequirements{} },
		},
		{
			name: "a policy with a default limit and no max", policy: "resources: {defaults: {limits: {memory: 1Gi}}}",
			tweak: func(p *corev1.Pod) { *first(p) = corev1.ResourceRequirements{} },
			want:  []string{"spec.containers[0].resources.limits[memory] | unset | any limit"},
		},
	}
	runCheckCases(t, checkResources, cases)
}

func TestCheckResourcesPodLevelAndNames(t *testing.T) {
	set := func(l *corev1.ResourceList, name corev1.ResourceName, q string) {
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = resource.MustParse(q)
	}
	podLevel := func(p *corev1.Pod) *corev1.ResourceRequirements {
		if p.Spec.Resources == nil {
			p.Spec.Resources = &corev1.ResourceRequirements{}
		}
		return p.Spec.Resources
	}
	first := func(p *corev1.Pod) *corev1.ResourceRequirements { return &p.Spec.Containers[0].Resources }
	cases := []checkCase{
		{
			// A pod-level limit bounds every container: none needs its own.
			name: "pod-level limits instead of container limits",
			tweak: func(p *corev1.Pod) {
				set(&podLevel(p).Limits, corev1.ResourceCPU, "2")
				set(&podLevel(p).Limits, corev1.ResourceMemory, "1Gi")
				first(p).Limits = nil
			},
		},
		{
			name: "a pod-level cpu limit does not excuse the memory one",
			tweak: func(p *corev1.Pod) {
				set(&podLevel(p).Limits, corev1.ResourceCPU, "2")
				first(p).Limits = nil
			},
			want: []string{"spec.containers[0].resources.limits[memory] | unset | a limit of at most 8Gi"},
		},
		{
			name: "a pod-level request does not excuse a container limit",
			tweak: func(p *corev1.Pod) {
				set(&podLevel(p).Requests, corev1.ResourceCPU, "150m")
				delete(first(p).Limits, corev1.ResourceCPU)
			},
			want: []string{"spec.containers[0].resources.limits[cpu] | unset | a limit of at most 4"},
		},
		{
			// Every container has its own limits: the pod-level values only cap the sum, bounded per pod.
			name: "pod-level above the per-pod ceiling",
			tweak: func(p *corev1.Pod) {
				set(&podLevel(p).Requests, corev1.ResourceCPU, "60")
				set(&podLevel(p).Limits, corev1.ResourceCPU, "60")
				set(&podLevel(p).Limits, corev1.ResourceMemory, "400Gi")
			},
			want: []string{
				"spec.resources.requests[cpu] | 60 | at most 16 per pod",
				"spec.resources.limits[cpu] | 60 | at most 16 per pod",
				"spec.resources.limits[memory] | 400Gi | at most 32Gi per pod",
			},
			msgs: []string{
				"[resources] the pod-level cpu request exceeds the policy's per-pod ceiling (found 60; allowed: at most 16 per pod)",
				"[resources] the pod-level cpu limit exceeds the policy's per-pod ceiling (found 60; allowed: at most 16 per pod)",
				"[resources] the pod-level memory limit exceeds the policy's per-pod ceiling (found 400Gi; allowed: at most 32Gi per pod)",
			},
		},
		{
			// A container without a limit of its own may use the whole pod-level limit: max bounds it, and the
			// per-pod ceiling says nothing more at the same path.
			name: "pod-level limits above max beside containers without limits",
			tweak: func(p *corev1.Pod) {
				set(&podLevel(p).Limits, corev1.ResourceCPU, "8")
				set(&podLevel(p).Limits, corev1.ResourceMemory, "400Gi")
				first(p).Limits = nil
			},
			want: []string{
				"spec.resources.limits[cpu] | 8 | at most 4, or a cpu limit on every container",
				"spec.resources.limits[memory] | 400Gi | at most 8Gi, or a memory limit on every container",
			},
			msgs: []string{
				"[resources] a container without a cpu limit of its own may use the whole pod-level limit, above the policy's per-container ceiling (found 8; allowed: at most 4, or a cpu limit on every container)",
				"[resources] a container without a memory limit of its own may use the whole pod-level limit, above the policy's per-container ceiling (found 400Gi; allowed: at most 8Gi, or a memory limit on every container)",
			},
		},
		{
			name: "extended, hugepages and unknown resources",
			tweak: func(p *corev1.Pod) {
				r := first(p)
				set(&r.Limits, "nvidia.com/gpu", "1")
				set(&r.Requests, "nvidia.com/gpu", "1")
				set(&r.Limits, "hugepages-2Mi", "1Gi")
				set(&r.Limits, "example.com/anything", "1k")
			},
			want: []string{
				"spec.containers[0].resources.requests[nvidia.com/gpu] | 1 | unset; the policy allows cpu, ephemeral-storage, memory",
				"spec.containers[0].resources.limits[example.com/anything] | 1k | unset; the policy allows cpu, ephemeral-storage, memory",
				"spec.containers[0].resources.limits[hugepages-2Mi] | 1Gi | unset; the policy allows cpu, ephemeral-storage, memory",
				"spec.containers[0].resources.limits[nvidia.com/gpu] | 1 | unset; the policy allows cpu, ephemeral-storage, memory",
			},
			msgs: []string{
				"[resources] nvidia.com/gpu is not a resource this policy lets agent pods use (spec.resources.allowed) (found 1; allowed: unset; the policy allows cpu, ephemeral-storage, memory)",
				"[resources] example.com/anything is not a resource this policy lets agent pods use (spec.resources.allowed) (found 1k; allowed: unset; the policy allows cpu, ephemeral-storage, memory)",
				"[resources] hugepages-2Mi is not a resource this policy lets agent pods use (spec.resources.allowed) (found 1Gi; allowed: unset; the policy allows cpu, ephemeral-storage, memory)",
				"[resources] nvidia.com/gpu is not a resource this policy lets agent pods use (spec.resources.allowed) (found 1; allowed: unset; the policy allows cpu, ephemeral-storage, memory)",
			},
		},
		{
			name: "an unknown resource at the pod level",
			tweak: func(p *corev1.Pod) {
				set(&podLevel(p).Limits, "nvidia.com/gpu", "8")
			},
			want: []string{"spec.resources.limits[nvidia.com/gpu] | 8 | unset; the policy allows cpu, ephemeral-storage, memory"},
		},
		{
			name: "ephemeral-storage within and above max", policy: "resources: {max: {ephemeral-storage: 10Gi}, maxPerPod: {ephemeral-storage: 40Gi}}",
			tweak: func(p *corev1.Pod) {
				set(&first(p).Requests, corev1.ResourceEphemeralStorage, "1Gi")
				set(&first(p).Limits, corev1.ResourceEphemeralStorage, "100Gi")
			},
			// Two rules, two facts: the container's own ceiling, and the pod's (which a second container would
			// break too).
			want: []string{
				"spec.containers[0].resources.limits[ephemeral-storage] | 100Gi | at most 10Gi",
				"spec.resources.limits[ephemeral-storage] | 100Gi | at most 40Gi per pod",
			},
		},
		{
			name: "ephemeral-storage: the default policy bounds it per pod",
			tweak: func(p *corev1.Pod) {
				set(&first(p).Requests, corev1.ResourceEphemeralStorage, "1Gi")
				set(&first(p).Limits, corev1.ResourceEphemeralStorage, "100Gi")
			},
			want: []string{"spec.resources.limits[ephemeral-storage] | 100Gi | at most 20Gi per pod"},
		},
		{
			// The API forbids resources on ephemeral containers; should one carry them anyway, they are judged.
			name: "an ephemeral container with resources", allKinds: true,
			tweak: func(p *corev1.Pod) {
				c := &p.Spec.EphemeralContainers[0]
				set(&c.Resources.Limits, corev1.ResourceCPU, "64")
				set(&c.Resources.Limits, "nvidia.com/gpu", "1")
			},
			want: []string{
				"spec.ephemeralContainers[0].resources.limits[cpu] | 64 | at most 4",
				"spec.ephemeralContainers[0].resources.limits[nvidia.com/gpu] | 1 | unset; the policy allows cpu, ephemeral-storage, memory",
			},
		},
		{
			name: "a resource claim",
			tweak: func(p *corev1.Pod) {
				p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptrTo("one-gpu")}}
				first(p).Claims = []corev1.ResourceClaim{{Name: "gpu"}}
			},
			want: []string{`spec.resourceClaims[0] | "gpu" | none (spec.resources.allowResourceClaims is false)`},
		},
		{
			name: "a resource claim, allowed", policy: "resources: {allowResourceClaims: true}",
			tweak: func(p *corev1.Pod) {
				p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptrTo("one-gpu")}}
			},
		},
		{
			name: "an extended resource the policy allows", policy: "resources: {max: {nvidia.com/gpu: 1}, allowed: [cpu, memory, nvidia.com/gpu]}",
			tweak: func(p *corev1.Pod) {
				set(&first(p).Limits, "nvidia.com/gpu", "1")
				set(&first(p).Limits, corev1.ResourceEphemeralStorage, "1Gi")
			},
			want: []string{"spec.containers[0].resources.limits[ephemeral-storage] | 1Gi | unset; the policy allows cpu, memory, nvidia.com/gpu"},
		},
		{
			name: "a policy that names nothing allows cpu, memory and ephemeral-storage, unbounded", policy: "resources: {}",
			tweak: func(p *corev1.Pod) {
				set(&first(p).Limits, corev1.ResourceCPU, "64")
				set(&first(p).Limits, corev1.ResourceEphemeralStorage, "1Ti")
				set(&first(p).Limits, "hugepages-1Gi", "1Gi")
			},
			want: []string{"spec.containers[0].resources.limits[hugepages-1Gi] | 1Gi | unset; the policy allows cpu, ephemeral-storage, memory"},
		},
	}
	runCheckCases(t, checkResources, cases)
}

// TestParseResources: a malformed resources section is refused with every error at once, each at its path;
// a misspelled resource name would otherwise bound nothing.
func TestParseResources(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []string
	}{
		{
			name: "misspelled names",
			spec: "resources: {max: {CPU: '4', memroy: 8Gi, kubernetes.io/gpu: '1', hugepages-x: 1Gi, 'nvidia.com/': '1'}}",
			want: []string{
				`spec.resources.max[CPU]: Invalid value: "CPU": not a resource a container can request`,
				`spec.resources.max[hugepages-x]: Invalid value: "hugepages-x": hugepages-<page size>`,
				`spec.resources.max[kubernetes.io/gpu]: Invalid value: "kubernetes.io/gpu": the kubernetes.io domain`,
				`spec.resources.max[memroy]: Invalid value: "memroy": not a resource a container can request`,
				`spec.resources.max[nvidia.com/]: Invalid value: "nvidia.com/": an extended resource is a qualified name`,
			},
		},
		{
			name: "a misspelled default: one error",
			spec: "resources: {defaults: {limits: {CPU: '1'}}}",
			want: []string{`spec.resources.defaults.limits[CPU]: Invalid value: "CPU": not a resource a container can request`},
		},
		{
			name: "zero and negative ceilings",
			spec: "resources: {max: {cpu: '0'}, maxPerPod: {memory: -1Gi}}",
			want: []string{
				`spec.resources.max[cpu]: Invalid value: "0": must be greater than zero`,
				`spec.resources.maxPerPod[memory]: Invalid value: "-1Gi": must be greater than zero`,
			},
		},
		{
			name: "defaults the ceilings would deny",
			spec: "resources: {defaults: {limits: {cpu: '2'}}, max: {cpu: '4'}, maxPerPod: {cpu: '1'}}",
			want: []string{`spec.resources.defaults.limits[cpu]: Invalid value: "2": exceeds spec.resources.maxPerPod.cpu (1)`},
		},
		{
			name: "a default of an extended resource",
			spec: "resources: {defaults: {requests: {nvidia.com/gpu: '1'}, limits: {hugepages-2Mi: 1Gi}}}",
			want: []string{
				`spec.resources.defaults.requests[nvidia.com/gpu]: Unsupported value: "nvidia.com/gpu": supported values: "cpu", "memory", "ephemeral-storage"`,
				`spec.resources.defaults.limits[hugepages-2Mi]: Unsupported value: "hugepages-2Mi": supported values: "cpu", "memory", "ephemeral-storage"`,
			},
		},
		{
			name: "a ceiling for a resource not allowed by default",
			spec: "resources: {max: {nvidia.com/gpu: '1'}, maxPerPod: {hugepages-2Mi: 1Gi}}",
			want: []string{
				`spec.resources.max[nvidia.com/gpu]: Invalid value: "nvidia.com/gpu": not in spec.resources.allowed (unset: cpu, memory, ephemeral-storage)`,
				`spec.resources.maxPerPod[hugepages-2Mi]: Invalid value: "hugepages-2Mi": not in spec.resources.allowed (unset: cpu, memory, ephemeral-storage)`,
			},
		},
		{
			name: "allowed misses a name with a ceiling, repeats one, misspells one",
			spec: "resources: {max: {cpu: '4', nvidia.com/gpu: '1'}, allowed: [cpu, cpu, Memory]}",
			want: []string{
				`spec.resources.allowed[1]: Duplicate value: "cpu"`,
				`spec.resources.allowed[2]: Invalid value: "Memory": not a resource a container can request`,
				`spec.resources.max[nvidia.com/gpu]: Invalid value: "nvidia.com/gpu": not in spec.resources.allowed`,
			},
		},
		{
			name: "a field name misspelled",
			spec: "resources: {maxPerpod: {cpu: '4'}}",
			want: []string{`spec.resources.maxPerpod: Forbidden: unknown field`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := Parse([]byte(policyHead + "spec:\n  " + tc.spec + "\n"))
			got := errorStrings(errs)
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if len(got) != len(want) {
				t.Fatalf("errors:\n got %q\nwant %q", got, want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("error %q\n want prefix %q", got[i], want[i])
				}
			}
		})
	}
}
