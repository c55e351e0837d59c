package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckAllowPrivilegeEscalation(t *testing.T) {
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name:  "true",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptrTo(true) },
			want:  []string{"spec.containers[0].securityContext.allowPrivilegeEscalation | true | false"},
			msgs:  []string{"[allowPrivilegeEscalation] privilege escalation must be disabled: write allowPrivilegeEscalation: false (found true; allowed: false)"},
		},
		{
			// As in Pod Security restricted: unset is not enough, the runtime's default is true.
			name:  "unset",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext = nil },
			want:  []string{"spec.containers[0].securityContext.allowPrivilegeEscalation | unset | false"},
		},
		{
			name: "true under a policy that allows it", policy: "securityContext: {allowPrivilegeEscalation: true}",
			tweak: func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptrTo(true) },
		},
		{
			name: "unset on every kind", allKinds: true,
			tweak: func(p *corev1.Pod) {
				for _, k := range containerKinds {
					sc(k.get(p)).AllowPrivilegeEscalation = nil
				}
			},
			want: []string{
				"spec.initContainers[0].securityContext.allowPrivilegeEscalation | unset | false",
				"spec.containers[0].securityContext.allowPrivilegeEscalation | unset | false",
				"spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation | unset | false",
			},
		},
	}
	cases = append(cases, kindCases("true", "", func(c *corev1.Container) { sc(c).AllowPrivilegeEscalation = ptrTo(true) },
		func(path string) []string {
			return []string{path + ".securityContext.allowPrivilegeEscalation | true | false"}
		})...)
	runCheckCases(t, checkAllowPrivilegeEscalation, cases)
}

func TestCheckAllowPrivilegeEscalationBesideDeniedPrivilege(t *testing.T) {
	unset := func(c *corev1.Container) { c.SecurityContext.AllowPrivilegeEscalation = nil }
	runCheckCases(t, checkAllowPrivilegeEscalation, []checkCase{
		{
			// The API server refuses false beside privileged: true; the privileged check denies the pod.
			name: "unset beside privileged",
			tweak: func(p *corev1.Pod) {
				unset(&p.Spec.Containers[0])
				p.Spec.Containers[0].SecurityContext.Privileged = ptrTo(true)
			},
		},
		{
			name: "unset beside an added CAP_SYS_ADMIN",
			tweak: func(p *corev1.Pod) {
				unset(&p.Spec.Containers[0])
				p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"CAP_SYS_ADMIN"}
			},
		},
		{
			name: "true beside privileged is still reported",
			tweak: func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext.Privileged = ptrTo(true)
				p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptrTo(true)
			},
			want: []string{"spec.containers[0].securityContext.allowPrivilegeEscalation | true | false"},
		},
		{
			// A policy that allows SYS_ADMIN: nothing else denies the pod, so unset is reported (and the API
			// server accepts false beside "SYS_ADMIN").
			name: "unset beside an allowed SYS_ADMIN", policy: "securityContext: {allowedCapabilities: [SYS_ADMIN]}",
			tweak: func(p *corev1.Pod) {
				unset(&p.Spec.Containers[0])
				p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
			},
			want: []string{"spec.containers[0].securityContext.allowPrivilegeEscalation | unset | false"},
		},
	})
}
