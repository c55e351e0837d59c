package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckHostPath(t *testing.T) {
	hostPath := func(name, path string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}}
	}
	const allowed = "unset (emptyDir, configMap, secret, persistentVolumeClaim)"
	runCheckCases(t, checkHostPath, []checkCase{
		{name: "valid"},
		{name: "no volumes", tweak: func(p *corev1.Pod) { p.Spec.Volumes = nil }},
		{
			name: "hostPath",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, hostPath("docker", "/var/run/docker.sock"))
			},
			want: []string{`spec.volumes[1].hostPath | path "/var/run/docker.sock" | ` + allowed},
			msgs: []string{`[hostPath] hostPath volumes expose the node's filesystem (found path "/var/run/docker.sock"; allowed: ` + allowed + `)`},
		},
		{
			name: "two hostPaths",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{hostPath("root", "/"), p.Spec.Volumes[0], hostPath("etc", "/etc")}
			},
			want: []string{`spec.volumes[0].hostPath | path "/" | ` + allowed, `spec.volumes[2].hostPath | path "/etc" | ` + allowed},
		},
	})
}
