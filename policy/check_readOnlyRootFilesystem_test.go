package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckReadOnlyRootFilesystem(t *testing.T) {
	const why = "the root filesystem must be read-only; mount an emptyDir volume where the agent must write"
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name:  "unset",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil },
			want:  []string{"spec.containers[0].securityContext.readOnlyRootFilesystem | unset | true"},
			msgs:  []string{"[readOnlyRootFilesystem] " + why + " (found unset; allowed: true)"},
		},
		{
			name:  "no securityContext",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext = nil },
			want:  []string{"spec.containers[0].securityContext.readOnlyRootFilesystem | unset | true"},
		},
		{
			name: "false, under a policy that does not force it", policy: "securityContext: {readOnlyRootFilesystem: false}",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptrTo(false) },
		},
		{
			name: "false on every kind", allKinds: true,
			tweak: func(p *corev1.Pod) {
				for _, k := range containerKinds {
					sc(k.get(p)).ReadOnlyRootFilesystem = ptrTo(false)
				}
			},
			want: []string{
				"spec.initContainers[0].securityContext.readOnlyRootFilesystem | false | true",
				"spec.containers[0].securityContext.readOnlyRootFilesystem | false | true",
				"spec.ephemeralContainers[0].securityContext.readOnlyRootFilesystem | false | true",
			},
		},
	}
	cases = append(cases, kindCases("false", "", func(c *corev1.Container) { sc(c).ReadOnlyRootFilesystem = ptrTo(false) },
		func(path string) []string {
			return []string{path + ".securityContext.readOnlyRootFilesystem | false | true"}
		})...)
	runCheckCases(t, checkReadOnlyRootFilesystem, cases)
}
