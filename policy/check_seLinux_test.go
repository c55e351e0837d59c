package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckSELinux(t *testing.T) {
	const allowed = `type "", container_t, container_init_t, container_kvm_t or container_engine_t; user and role unset`
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name: "allowed types and a level", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Level: "s0:c123,c456"}
				sc(&p.Spec.InitContainers[0]).SELinuxOptions = &corev1.SELinuxOptions{Type: "container_init_t"}
				sc(&p.Spec.Containers[0]).SELinuxOptions = &corev1.SELinuxOptions{Type: "container_t", Level: "s0"}
				sc((*corev1.Container)(&p.Spec.EphemeralContainers[0].EphemeralContainerCommon)).SELinuxOptions = &corev1.SELinuxOptions{Type: "container_engine_t"}
			},
		},
		{name: "container_kvm_t", tweak: func(p *corev1.Pod) {
			p.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "container_kvm_t"}
		}},
		{
			name:  "pod type spc_t",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"} },
			want:  []string{`spec.securityContext.seLinuxOptions | type "spc_t" | ` + allowed},
			msgs: []string{`[seLinux] agent containers must keep the runtime's SELinux confinement: remove the custom type, user and role ` +
				`(found type "spc_t"; allowed: ` + allowed + `)`},
		},
		{
			name: "pod user and role",
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{User: "system_u", Role: "system_r", Type: "container_t"}
			},
			want: []string{`spec.securityContext.seLinuxOptions | user "system_u", role "system_r" | ` + allowed},
		},
		{
			name: "pod and every container", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "unconfined_t", User: "root", Role: "sysadm_r"}
				for _, k := range containerKinds {
					sc(k.get(p)).SELinuxOptions = &corev1.SELinuxOptions{Role: "r"}
				}
			},
			want: []string{
				`spec.securityContext.seLinuxOptions | type "unconfined_t", user "root", role "sysadm_r" | ` + allowed,
				`spec.initContainers[0].securityContext.seLinuxOptions | role "r" | ` + allowed,
				`spec.containers[0].securityContext.seLinuxOptions | role "r" | ` + allowed,
				`spec.ephemeralContainers[0].securityContext.seLinuxOptions | role "r" | ` + allowed,
			},
		},
	}
	cases = append(cases, kindCases("container type", "", func(c *corev1.Container) {
		sc(c).SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"}
	}, func(path string) []string {
		return []string{path + `.securityContext.seLinuxOptions | type "spc_t" | ` + allowed}
	})...)
	runCheckCases(t, checkSELinux, cases)
}
