package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckSeccomp(t *testing.T) {
	prof := func(t corev1.SeccompProfileType) *corev1.SeccompProfile {
		p := &corev1.SeccompProfile{Type: t}
		if t == corev1.SeccompProfileTypeLocalhost {
			p.LocalhostProfile = ptrTo("agents.json")
		}
		return p
	}
	const (
		allowed          = "RuntimeDefault, Localhost"
		podUnsetAllowed  = "type RuntimeDefault or Localhost, at pod level or on every container"
		contUnsetAllowed = "type RuntimeDefault or Localhost here, or at pod level"
	)
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "pod Localhost", tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.SeccompProfile = prof(corev1.SeccompProfileTypeLocalhost) }},
		{
			name: "pod unset, every container sets one", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SeccompProfile = nil
				sc(&p.Spec.InitContainers[0]).SeccompProfile = prof(corev1.SeccompProfileTypeRuntimeDefault)
				sc(&p.Spec.Containers[0]).SeccompProfile = prof(corev1.SeccompProfileTypeLocalhost)
				sc((*corev1.Container)(&p.Spec.EphemeralContainers[0].EphemeralContainerCommon)).SeccompProfile = prof(corev1.SeccompProfileTypeRuntimeDefault)
			},
		},
		{
			name: "a policy that fills Localhost still allows RuntimeDefault", policy: "securityContext: {seccompProfile: Localhost}",
			tweak: func(p *corev1.Pod) {
				sc(&p.Spec.Containers[0]).SeccompProfile = prof(corev1.SeccompProfileTypeRuntimeDefault)
			},
		},
		{
			name:  "pod Unconfined",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.SeccompProfile = prof(corev1.SeccompProfileTypeUnconfined) },
			want:  []string{"spec.securityContext.seccompProfile.type | Unconfined | " + allowed},
			msgs: []string{"[seccomp] agent containers must run under a seccomp profile: Unconfined allows every system call " +
				"(found Unconfined; allowed: RuntimeDefault, Localhost)"},
		},
		{
			// The pod-level value is wrong whatever the containers say, as in Pod Security.
			name: "pod Unconfined, containers RuntimeDefault",
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SeccompProfile = prof(corev1.SeccompProfileTypeUnconfined)
				sc(&p.Spec.Containers[0]).SeccompProfile = prof(corev1.SeccompProfileTypeRuntimeDefault)
			},
			want: []string{"spec.securityContext.seccompProfile.type | Unconfined | " + allowed},
		},
		{
			name:  "empty type",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.SeccompProfile = prof("") },
			want:  []string{`spec.securityContext.seccompProfile.type | "" | ` + allowed},
		},
		{
			name: "pod and every container unset: once, at pod level", allKinds: true,
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.SeccompProfile = nil },
			want:  []string{"spec.securityContext.seccompProfile | unset | " + podUnsetAllowed},
			msgs: []string{"[seccomp] agent containers must run under a seccomp profile: write seccompProfile: {type: RuntimeDefault} in the pod's securityContext " +
				"(found unset; allowed: " + podUnsetAllowed + ")"},
		},
		{
			name:  "no pod securityContext",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext = nil },
			want:  []string{"spec.securityContext.seccompProfile | unset | " + podUnsetAllowed},
		},
		{
			name: "pod unset, one container sets one: each other container", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SeccompProfile = nil
				sc(&p.Spec.Containers[0]).SeccompProfile = prof(corev1.SeccompProfileTypeRuntimeDefault)
			},
			want: []string{
				"spec.initContainers[0].securityContext.seccompProfile | unset | " + contUnsetAllowed,
				"spec.ephemeralContainers[0].securityContext.seccompProfile | unset | " + contUnsetAllowed,
			},
		},
		{
			name: "pod unset, one container Unconfined, the others unset", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SeccompProfile = nil
				sc(&p.Spec.InitContainers[0]).SeccompProfile = prof(corev1.SeccompProfileTypeUnconfined)
			},
			want: []string{
				"spec.initContainers[0].securityContext.seccompProfile.type | Unconfined | " + allowed,
				"spec.containers[0].securityContext.seccompProfile | unset | " + contUnsetAllowed,
				"spec.ephemeralContainers[0].securityContext.seccompProfile | unset | " + contUnsetAllowed,
			},
		},
		{
			name: "no containers at all",
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext = nil
				p.Spec.Containers = nil
			},
		},
	}
	cases = append(cases, kindCases("container Unconfined under pod RuntimeDefault", "", func(c *corev1.Container) {
		sc(c).SeccompProfile = prof(corev1.SeccompProfileTypeUnconfined)
	}, func(path string) []string {
		return []string{path + ".securityContext.seccompProfile.type | Unconfined | " + allowed}
	})...)
	runCheckCases(t, checkSeccomp, cases)
}
