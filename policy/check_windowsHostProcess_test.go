package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckWindowsHostProcess(t *testing.T) {
	hp := func(b bool) *corev1.WindowsSecurityContextOptions {
		return &corev1.WindowsSecurityContextOptions{HostProcess: ptrTo(b)}
	}
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name: "false everywhere", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.WindowsOptions = hp(false)
				for _, k := range containerKinds {
					sc(k.get(p)).WindowsOptions = hp(false)
				}
			},
		},
		{
			name: "windowsOptions without hostProcess",
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.WindowsOptions = &corev1.WindowsSecurityContextOptions{RunAsUserName: ptrTo("agent")}
			},
		},
		{
			name:  "pod",
			tweak: func(p *corev1.Pod) { p.Spec.SecurityContext.WindowsOptions = hp(true) },
			want:  []string{"spec.securityContext.windowsOptions.hostProcess | true | false, unset"},
			msgs:  []string{"[windowsHostProcess] HostProcess containers run on the node itself, outside any sandbox (found true; allowed: false, unset)"},
		},
		{
			name: "pod and every container, on a Windows pod", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
				p.Spec.SecurityContext.WindowsOptions = hp(true)
				for _, k := range containerKinds {
					sc(k.get(p)).WindowsOptions = hp(true)
				}
			},
			want: []string{
				"spec.securityContext.windowsOptions.hostProcess | true | false, unset",
				"spec.initContainers[0].securityContext.windowsOptions.hostProcess | true | false, unset",
				"spec.containers[0].securityContext.windowsOptions.hostProcess | true | false, unset",
				"spec.ephemeralContainers[0].securityContext.windowsOptions.hostProcess | true | false, unset",
			},
		},
	}
	cases = append(cases, kindCases("container", "", func(c *corev1.Container) { sc(c).WindowsOptions = hp(true) },
		func(path string) []string {
			return []string{path + ".securityContext.windowsOptions.hostProcess | true | false, unset"}
		})...)
	runCheckCases(t, checkWindowsHostProcess, cases)
	if checkWindowsHostProcess.linuxOnly {
		t.Error("windowsHostProcess must judge Windows pods: it cannot be linuxOnly")
	}
}
