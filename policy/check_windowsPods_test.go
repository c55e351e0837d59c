package policy

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckWindows(t *testing.T) {
	osName := func(n corev1.OSName) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: n} }
	}
	const allowed = "linux, unset (or a policy with windows: skipLinuxChecks)"
	runCheckCases(t, checkWindows, []checkCase{
		{name: "valid"},
		{name: "linux", tweak: osName(corev1.Linux)},
		{
			name:  "windows",
			tweak: osName(corev1.Windows),
			want:  []string{"spec.os.name | windows | " + allowed},
			msgs:  []string{"[windows] the agent sandbox relies on Linux-only security fields (found windows; allowed: " + allowed + ")"},
		},
		{name: "windows under skipLinuxChecks", policy: "windows: skipLinuxChecks", tweak: osName(corev1.Windows)},
	})
}

// Linux-only checks are skipped for Windows pods; the others still run.
func TestLinuxOnlyChecksSkipWindowsPods(t *testing.T) {
	linuxOnly := map[string]bool{}
	for _, c := range checks {
		linuxOnly[c.id] = c.linuxOnly
	}
	for id, want := range map[string]bool{
		"seccomp": true, "appArmor": true, "seLinux": true, "procMount": true, "sysctls": true,
		"capabilities": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": true, "runAsUser": true,
		"hostProbes": false, "windowsHostProcess": false, "volumeTypes": false, "serviceAccountTokenProjection": false,
		"commands": false, "envSecrets": false, "images": false, "windows": false,
	} {
		if linuxOnly[id] != want {
			t.Errorf("check %s: linuxOnly = %v, want %v", id, linuxOnly[id], want)
		}
	}

	pod := validPod()
	pod.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"},
		Sysctls:        []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}},
		RunAsNonRoot:   ptrTo(true),
		WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptrTo(true)},
	}
	pod.Spec.Containers[0].SecurityContext = nil
	pod.Spec.Containers[0].Image = "mcr.microsoft.com/windows/nanoserver:ltsc2022"
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"windows: skipLinuxChecks", []string{"windowsHostProcess", "images"}},
		{"windows: deny", []string{"windowsHostProcess", "images", "windows"}},
	} {
		p := testPolicy(t, tc.policy+"\nimages: {allow: [registry.corp.example/**]}")
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range p.check(newPodView(p, w, nil)) {
			if len(got) == 0 || got[len(got)-1] != v.Check {
				got = append(got, v.Check)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: checks %v, want %v", tc.policy, got, tc.want)
		}
	}
}
