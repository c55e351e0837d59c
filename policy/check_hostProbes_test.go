package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestCheckHostProbes(t *testing.T) {
	httpGet := func(host string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: host, Path: "/healthz", Port: intstr.FromInt32(8080)}}
	}
	tcp := func(host string) corev1.ProbeHandler {
		return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: host, Port: intstr.FromInt32(8080)}}
	}
	const allowed = `"", unset`
	cases := []checkCase{
		{name: "valid"},
		{
			name: "probes and handlers without host",
			tweak: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.LivenessProbe = &corev1.Probe{ProbeHandler: httpGet("")}
				c.ReadinessProbe = &corev1.Probe{ProbeHandler: tcp("")}
				c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
				c.Lifecycle = &corev1.Lifecycle{
					PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}},
					PreStop:   &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}},
				}
			},
		},
		{
			name: "liveness httpGet host",
			tweak: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: httpGet("169.254.169.254")}
			},
			want: []string{`spec.containers[0].livenessProbe.httpGet.host | "169.254.169.254" | ` + allowed},
			msgs: []string{`[hostProbes] probes and lifecycle handlers must target the pod itself: the kubelet would connect to this host from the node ` +
				`(found "169.254.169.254"; allowed: "", unset)`},
		},
		{
			name: "every probe and handler at once",
			tweak: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.StartupProbe = &corev1.Probe{ProbeHandler: tcp("d")}
				c.ReadinessProbe = &corev1.Probe{ProbeHandler: httpGet("c")}
				c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet:   &corev1.HTTPGetAction{Host: "a", Port: intstr.FromInt32(1)},
					TCPSocket: &corev1.TCPSocketAction{Host: "b", Port: intstr.FromInt32(1)},
				}}
				c.Lifecycle = &corev1.Lifecycle{
					PreStop:   &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Host: "f", Port: intstr.FromInt32(1)}},
					PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "e", Port: intstr.FromInt32(1)}},
				}
			},
			want: []string{
				`spec.containers[0].livenessProbe.httpGet.host | "a" | ` + allowed,
				`spec.containers[0].livenessProbe.tcpSocket.host | "b" | ` + allowed,
				`spec.containers[0].readinessProbe.httpGet.host | "c" | ` + allowed,
				`spec.containers[0].startupProbe.tcpSocket.host | "d" | ` + allowed,
				`spec.containers[0].lifecycle.postStart.httpGet.host | "e" | ` + allowed,
				`spec.containers[0].lifecycle.preStop.tcpSocket.host | "f" | ` + allowed,
			},
		},
	}
	cases = append(cases, kindCases("readiness tcpSocket host", "", func(c *corev1.Container) {
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: tcp("node.local")}
	}, func(path string) []string {
		return []string{path + `.readinessProbe.tcpSocket.host | "node.local" | ` + allowed}
	})...)
	cases = append(cases, kindCases("postStart httpGet host", "", func(c *corev1.Container) {
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "10.0.0.1", Port: intstr.FromInt32(80)}}}
	}, func(path string) []string {
		return []string{path + `.lifecycle.postStart.httpGet.host | "10.0.0.1" | ` + allowed}
	})...)
	runCheckCases(t, checkHostProbes, cases)
}
