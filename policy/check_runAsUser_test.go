package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckRunAsUser(t *testing.T) {
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name: "non-zero users", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.RunAsUser = ptrTo(int64(1000))
				for _, k := range containerKinds {
					sc(k.get(p)).RunAsUser = ptrTo(int64(65532))
				}
			},
		},
		{
			name:  "pod 0",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptrTo(int64(0)) },
			want:  []string{"spec.securityContext.runAsUser | 0 | non-zero, unset"},
			msgs:  []string{"[runAsUser] agent containers must not run as root (user 0): choose a non-zero UID (found 0; allowed: non-zero, unset)"},
		},
		{
			name: "pod and containers 0", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.RunAsUser = ptrTo(int64(0))
				for _, k := range containerKinds {
					sc(k.get(p)).RunAsUser = ptrTo(int64(0))
				}
			},
			want: []string{
				"spec.securityContext.runAsUser | 0 | non-zero, unset",
				"spec.initContainers[0].securityContext.runAsUser | 0 | non-zero, unset",
				"spec.containers[0].securityContext.runAsUser | 0 | non-zero, unset",
				"spec.ephemeralContainers[0].securityContext.runAsUser | 0 | non-zero, unset",
			},
		},
		{
			name: "0 under a policy that allows root", policy: "securityContext: {runAsNonRoot: false}",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptrTo(int64(0)) },
		},
	}
	cases = append(cases, kindCases("container 0", "", func(c *corev1.Container) { sc(c).RunAsUser = ptrTo(int64(0)) },
		func(path string) []string { return []string{path + ".securityContext.runAsUser | 0 | non-zero, unset"} })...)
	runCheckCases(t, checkRunAsUser, cases)
}
