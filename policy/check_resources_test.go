package policy

import (
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
			msgs:  []string{"[resources] agent containers must declare a cpu limit (found unset; allowed: a limit of at most 4)"},
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
