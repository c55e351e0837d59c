package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckHostPorts(t *testing.T) {
	cases := []checkCase{
		{name: "valid"},
		{name: "container port only", tweak: func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}} }},
		{
			name: "host ports",
			tweak: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 80}, {ContainerPort: 9090}, {ContainerPort: 53, HostPort: 53, Protocol: corev1.ProtocolUDP}}
			},
			want: []string{"spec.containers[0].ports[0].hostPort | 80 | 0, unset", "spec.containers[0].ports[2].hostPort | 53 | 0, unset"},
			msgs: []string{
				"[hostPorts] host ports bind the node's network interface (found 80; allowed: 0, unset)",
				"[hostPorts] host ports bind the node's network interface (found 53; allowed: 0, unset)",
			},
		},
	}
	cases = append(cases, kindCases("host port", "", func(c *corev1.Container) {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080}}
	}, func(path string) []string { return []string{path + ".ports[0].hostPort | 8080 | 0, unset"} })...)
	runCheckCases(t, checkHostPorts, cases)
}
