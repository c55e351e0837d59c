package policy

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// hostProbes: a probe or lifecycle handler with a host makes the kubelet connect, from the node, to any
// address the pod names: a request the agent controls, sent with the node's network identity.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].{livenessProbe,readinessProbe,startupProbe}.httpGet.host
//	spec.{initContainers,containers,ephemeralContainers}[*].{livenessProbe,readinessProbe,startupProbe}.tcpSocket.host
//	spec.{initContainers,containers,ephemeralContainers}[*].lifecycle.{postStart,preStop}.httpGet.host
//	spec.{initContainers,containers,ephemeralContainers}[*].lifecycle.{postStart,preStop}.tcpSocket.host
//
// Allowed values: "", unset. Not configurable. As Pod Security baseline/restricted v1.34+ (hostProbesAndHostLifecycle),
// which also lists the deprecated lifecycle tcpSocket handler.
var checkHostProbes = check{id: "hostProbes", run: func(_ *Policy, pod *podView, r *report) {
	for _, ca := range pod.containers {
		c := ca.c
		for _, pr := range [...]struct {
			name  string
			probe *corev1.Probe
		}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
			if pr.probe != nil {
				hostProbeHandler(pod, ca, r, pr.probe.HTTPGet, pr.probe.TCPSocket, pr.name)
			}
		}
		if lc := c.Lifecycle; lc != nil {
			if lc.PostStart != nil {
				hostProbeHandler(pod, ca, r, lc.PostStart.HTTPGet, lc.PostStart.TCPSocket, "lifecycle", "postStart")
			}
			if lc.PreStop != nil {
				hostProbeHandler(pod, ca, r, lc.PreStop.HTTPGet, lc.PreStop.TCPSocket, "lifecycle", "preStop")
			}
		}
	}
}}

func hostProbeHandler(pod *podView, ca containerAt, r *report, h *corev1.HTTPGetAction, t *corev1.TCPSocketAction, at ...string) {
	if h != nil && h.Host != "" {
		reportHostProbe(pod, ca, r, h.Host, "httpGet", at)
	}
	if t != nil && t.Host != "" {
		reportHostProbe(pod, ca, r, t.Host, "tcpSocket", at)
	}
}

func reportHostProbe(pod *podView, ca containerAt, r *report, host, action string, at []string) {
	var fp *field.Path = pod.path(ca)
	for _, a := range at {
		fp = fp.Child(a)
	}
	r.add("hostProbes", fp.Child(action, "host"), quote(host), `"", unset`,
		"probes and lifecycle handlers must target the pod itself: the kubelet would connect to this host from the node")
}
