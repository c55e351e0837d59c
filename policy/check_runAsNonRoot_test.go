package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckRunAsNonRoot(t *testing.T) {
	const containerAllowed = "true, unset when the pod sets true"
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name: "every container true, pod unset", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.RunAsNonRoot = nil
				for _, k := range containerKinds {
					sc(k.get(p)).RunAsNonRoot = ptrTo(true)
				}
			},
		},
		{
			name:  "pod false",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = ptrTo(false) },
			want:  []string{"spec.securityContext.runAsNonRoot | false | true"},
			msgs: []string{"[runAsNonRoot] agent containers must not run as root: write runAsNonRoot: true and run the image as a non-zero user " +
				"(found false; allowed: true)"},
		},
		{
			name: "pod false, one container true", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.RunAsNonRoot = ptrTo(false)
				sc(&p.Spec.Containers[0]).RunAsNonRoot = ptrTo(true)
			},
			want: []string{"spec.securityContext.runAsNonRoot | false | true"},
		},
		{
			name: "pod unset, every container unset", allKinds: true,
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext = nil },
			want: []string{
				"spec.initContainers[0].securityContext.runAsNonRoot | unset | " + containerAllowed,
				"spec.containers[0].securityContext.runAsNonRoot | unset | " + containerAllowed,
				"spec.ephemeralContainers[0].securityContext.runAsNonRoot | unset | " + containerAllowed,
			},
		},
		{
			name: "pod unset, one container true", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.RunAsNonRoot = nil
				sc(&p.Spec.Containers[0]).RunAsNonRoot = ptrTo(true)
			},
			want: []string{
				"spec.initContainers[0].securityContext.runAsNonRoot | unset | " + containerAllowed,
				"spec.ephemeralContainers[0].securityContext.runAsNonRoot | unset | " + containerAllowed,
			},
		},
		{
			name: "false under a policy that allows root", policy: "securityContext: {runAsNonRoot: false}",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = ptrTo(false) },
		},
	}
	cases = append(cases, kindCases("container false under pod true", "", func(c *corev1.Container) { sc(c).RunAsNonRoot = ptrTo(false) },
		func(path string) []string {
			return []string{path + ".securityContext.runAsNonRoot | false | " + containerAllowed}
		})...)
	runCheckCases(t, checkRunAsNonRoot, cases)
}
