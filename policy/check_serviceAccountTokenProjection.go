package policy

import corev1 "k8s.io/api/core/v1"

// serviceAccountTokenProjection: a projected serviceAccountToken source mounts a token as surely as
// automountServiceAccountToken: true does, and a projected podCertificate source mounts a key and certificate
// that prove the pod's identity; forcing automount off means nothing if a volume brings either back.
//
// Restricted fields:
//
//	spec.volumes[*].projected.sources[*].serviceAccountToken
//	spec.volumes[*].projected.sources[*].podCertificate
//
// Allowed values: unset, when the pod may not carry a token (the policy's serviceAccountToken.automount is false,
// the default, and the requester is not in allowServiceAccounts); anything when it may. The one exception: a
// volume that no judged container can read (credentialReachable: only exempt containers mount it, the pod does
// not share its process namespace, and no judged ephemeral container targets one of them). The
// kube-api-access-* volume that the ServiceAccount admission plugin adds is never seen here: the plugin adds
// none when automount is false.
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
			var found, kind string
			switch {
			case src.ServiceAccountToken != nil:
				found, kind = "a serviceAccountToken source (path "+quote(src.ServiceAccountToken.Path)+")", "serviceAccountToken"
			case src.PodCertificate != nil:
				found, kind = "a podCertificate source (signer "+quote(src.PodCertificate.SignerName)+")", "podCertificate"
			default:
				continue
			}
			if !credentialReachable(pod, func(c *corev1.Container) bool { return mounts(c, v.Name) }) {
				continue
			}
			r.add("serviceAccountTokenProjection",
				pod.specPath.Child("volumes").Index(i).Child("projected", "sources").Index(j).Child(kind),
				found, "projected sources other than serviceAccountToken and podCertificate",
				"a projected token or pod certificate hands tasks the pod's identity and bypasses automountServiceAccountToken: false")
		}
	}
}}

// credentialReachable reports whether a judged (not exempt) container can read a credential that the
// containers for which uses is true hold. Only exempt containers' own credentials are out of reach, and only
// while nothing judged can look into their processes: a shared process namespace (shareProcessNamespace) or an
// ephemeral container targeting one of them (kubectl debug --target) reads /proc/<pid>/root and environ. A
// credential no container uses yet is reachable: a container added later (kubectl debug) could mount it.
func credentialReachable(pod *podView, uses func(*corev1.Container) bool) bool {
	exemptUsers := map[string]bool{}
	judged := false
	for _, ca := range pod.containers {
		if !ca.exempt() {
			judged = true
			if uses(ca.c) {
				return true
			}
			continue
		}
		if uses(ca.c) {
			exemptUsers[ca.c.Name] = true
		}
	}
	if len(exemptUsers) == 0 {
		return true
	}
	if judged && pod.spec.ShareProcessNamespace != nil && *pod.spec.ShareProcessNamespace {
		return true
	}
	for _, ca := range pod.containers {
		if ca.field != "ephemeralContainers" || ca.exempt() {
			continue
		}
		if t := pod.spec.EphemeralContainers[ca.index].TargetContainerName; t != "" && exemptUsers[t] {
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
