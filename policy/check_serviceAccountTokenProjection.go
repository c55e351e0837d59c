package policy

import corev1 "k8s.io/api/core/v1"

// serviceAccountTokenProjection: a projected serviceAccountToken source mounts a token as surely as
// automountServiceAccountToken: true does; forcing automount off means nothing if a volume brings it back.
//
// Restricted fields:
//
//	spec.volumes[*].projected.sources[*].serviceAccountToken
//
// Allowed values: unset, when the policy's serviceAccountToken.automount is false (the default); anything when it
// is true. The one exception: a volume that only exempt containers mount (and at least one does), such as a
// service mesh sidecar's token, reaches no judged container. The kube-api-access-* volume that the
// ServiceAccount admission plugin adds is never seen here: the plugin adds none when automount is false.
var checkTokenProjection = check{id: "serviceAccountTokenProjection", run: func(p *Policy, pod *podView, r *report) {
	if pod.mayMountToken {
		return
	}
	for i := range pod.spec.Volumes {
		v := &pod.spec.Volumes[i]
		if v.Projected == nil {
			continue
		}
		for j, src := range v.Projected.Sources {
			if src.ServiceAccountToken == nil || mountedOnlyByExempt(pod, v.Name) {
				continue
			}
			r.add("serviceAccountTokenProjection",
				pod.specPath.Child("volumes").Index(i).Child("projected", "sources").Index(j).Child("serviceAccountToken"),
				"a serviceAccountToken source (path "+quote(src.ServiceAccountToken.Path)+")",
				"projected sources other than serviceAccountToken",
				"a projected token hands tasks the pod's Kubernetes identity and bypasses automountServiceAccountToken: false")
		}
	}
}}

// mountedOnlyByExempt reports whether at least one container mounts the volume and every one that does is
// exempt (left out of pod.containers).
func mountedOnlyByExempt(pod *podView, volume string) bool {
	for _, ca := range pod.containers {
		if mounts(ca.c, volume) {
			return false
		}
	}
	s := pod.spec
	for i := range s.InitContainers {
		if mounts(&s.InitContainers[i], volume) {
			return true
		}
	}
	for i := range s.Containers {
		if mounts(&s.Containers[i], volume) {
			return true
		}
	}
	for i := range s.EphemeralContainers {
		if mounts((*corev1.Container)(&s.EphemeralContainers[i].EphemeralContainerCommon), volume) {
			return true
		}
	}
	return false
}

func mounts(c *corev1.Container, volume string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return true
		}
	}
	return false
}
