package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckHostUsers(t *testing.T) {
	const forced = "runtime: {hostUsers: false}"
	hostUsers := func(v bool) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.HostUsers = &v }
	}
	const why = "agent pods run in a user namespace, so that root in the container is nobody on the node"
	runCheckCases(t, checkHostUsers, []checkCase{
		{name: "not forced: unset passes"},
		{name: "not forced: true passes", tweak: hostUsers(true)},
		{name: "forced: false passes", policy: forced, tweak: hostUsers(false)},
		{
			name: "forced: explicit true", policy: forced, tweak: hostUsers(true),
			want: []string{"spec.hostUsers | true | false"},
			msgs: []string{"[hostUsers] " + why + "; remove hostUsers or set it to false (found true; allowed: false)"},
		},
		{
			name: "forced: unset (mutation bypassed)", policy: forced,
			want: []string{"spec.hostUsers | unset | false"},
			msgs: []string{"[hostUsers] " + why + "; set hostUsers: false (mutation fills it where unset) (found unset; allowed: false)"},
		},
		// What the API server refuses beside hostUsers: false is named, so the user knows what to change.
		{
			name: "forced: unset beside hostPID", policy: forced, tweak: func(p *corev1.Pod) { p.Spec.HostPID = true },
			want: []string{"spec.hostUsers | unset | false"},
			msgs: []string{"[hostUsers] agent pods run in a user namespace, and the API server refuses hostUsers: false beside spec.hostPID: remove spec.hostPID (found unset; allowed: false)"},
		},
		{
			name: "forced: unset beside volumeDevices of an init container", policy: forced, allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.InitContainers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "raw", DevicePath: "/dev/xvda"}}
			},
			want: []string{"spec.hostUsers | unset | false"},
			msgs: []string{"[hostUsers] agent pods run in a user namespace, and the API server refuses hostUsers: false beside spec.initContainers[0].volumeDevices: remove spec.initContainers[0].volumeDevices (found unset; allowed: false)"},
		},
		// An explicit false beside a conflict is the API server's to refuse; agentgate has nothing to add.
		{name: "forced: false beside hostNetwork", policy: forced, tweak: func(p *corev1.Pod) { p.Spec.HostNetwork = true; hostUsers(false)(p) }},
	})
}
