package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckProcMount(t *testing.T) {
	pm := func(t corev1.ProcMountType) *corev1.ProcMountType { return &t }
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "Default", tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ProcMount = pm(corev1.DefaultProcMount) }},
		{
			name:  "Unmasked",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ProcMount = pm(corev1.UnmaskedProcMount) },
			want:  []string{"spec.containers[0].securityContext.procMount | Unmasked | Default, unset"},
			msgs: []string{"[procMount] an unmasked /proc exposes kernel and node information: remove procMount or write procMount: Default " +
				"(found Unmasked; allowed: Default, unset)"},
		},
		{
			// Restricted v1.35+ keeps denying it in a user namespace, where baseline relaxes.
			name: "Unmasked in a user namespace",
			tweak: func(p *corev1.Pod) {
				p.Spec.HostUsers = ptrTo(false)
				p.Spec.Containers[0].SecurityContext.ProcMount = pm(corev1.UnmaskedProcMount)
			},
			want: []string{"spec.containers[0].securityContext.procMount | Unmasked | Default, unset"},
		},
		{
			name: "every kind", allKinds: true,
			tweak: func(p *corev1.Pod) {
				for _, k := range containerKinds {
					sc(k.get(p)).ProcMount = pm("Other")
				}
			},
			want: []string{
				"spec.initContainers[0].securityContext.procMount | Other | Default, unset",
				"spec.containers[0].securityContext.procMount | Other | Default, unset",
				"spec.ephemeralContainers[0].securityContext.procMount | Other | Default, unset",
			},
		},
	}
	cases = append(cases, kindCases("Unmasked", "", func(c *corev1.Container) { sc(c).ProcMount = pm(corev1.UnmaskedProcMount) },
		func(path string) []string {
			return []string{path + ".securityContext.procMount | Unmasked | Default, unset"}
		})...)
	runCheckCases(t, checkProcMount, cases)
}
