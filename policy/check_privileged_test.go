package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckPrivileged(t *testing.T) {
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "false", tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Privileged = ptrTo(false) }},
		{name: "no securityContext", tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext = nil }},
		{
			name:  "true",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Privileged = ptrTo(true) },
			want:  []string{"spec.containers[0].securityContext.privileged | true | false, unset"},
			msgs:  []string{"[privileged] privileged containers have full access to the node (found true; allowed: false, unset)"},
		},
		{
			name: "every kind at once", allKinds: true,
			tweak: func(p *corev1.Pod) {
				for _, k := range containerKinds {
					sc(k.get(p)).Privileged = ptrTo(true)
				}
			},
			want: []string{
				"spec.initContainers[0].securityContext.privileged | true | false, unset",
				"spec.containers[0].securityContext.privileged | true | false, unset",
				"spec.ephemeralContainers[0].securityContext.privileged | true | false, unset",
			},
		},
	}
	cases = append(cases, kindCases("true", "", func(c *corev1.Container) { sc(c).Privileged = ptrTo(true) },
		func(path string) []string {
			return []string{path + ".securityContext.privileged | true | false, unset"}
		})...)
	runCheckCases(t, checkPrivileged, cases)
}
