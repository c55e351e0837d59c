package policy

import corev1 "k8s.io/api/core/v1"

// serviceAccountTokenSecrets: a Secret of type kubernetes.io/service-account-token holds a token that the
// tokens controller fills and that never expires; mounting it, or reading it into the environment, hands tasks
// that account's identity whatever automountServiceAccountToken says. The pod spec names the Secret, not its
// type: the webhook learns which Secrets of the namespace have that type (Namespace.IsTokenSecret, from a watch
// of those Secrets' metadata only).
//
// Restricted fields:
//
//	spec.volumes[*].secret.secretName
//	spec.volumes[*].projected.sources[*].secret.name
//	spec.{initContainers,containers,ephemeralContainers}[*].env[*].valueFrom.secretKeyRef.name
//	spec.{initContainers,containers,ephemeralContainers}[*].envFrom[*].secretRef.name
//
// Allowed values: the name of a Secret that is not a service-account token; any Secret when the pod may carry a token (as for
// serviceAccountTokenProjection), or when no judged container can read it (credentialReachable). Not judged
// when the namespace's Secrets are unknown (agentgate check, offline; serve without a cluster).
var checkTokenSecrets = check{id: "serviceAccountTokenSecrets", run: func(p *Policy, pod *podView, r *report) {
	isToken := pod.isTokenSecret
	if pod.mayMountToken || isToken == nil {
		return
	}
	const allowed = "Secrets of other types"
	const why = "a service-account token Secret hands tasks that account's Kubernetes identity, and never expires: agent pods must not read one"
	vp := pod.specPath.Child("volumes")
	for i := range pod.spec.Volumes {
		v := &pod.spec.Volumes[i]
		mountsIt := func(c *corev1.Container) bool { return mounts(c, v.Name) }
		if v.Secret != nil && isToken(v.Secret.SecretName) && credentialReachable(pod, mountsIt) {
			r.add("serviceAccountTokenSecrets", vp.Index(i).Child("secret", "secretName"), "service-account token Secret "+quote(v.Secret.SecretName), allowed, why)
		}
		if v.Projected == nil {
			continue
		}
		for j, src := range v.Projected.Sources {
			if src.Secret != nil && isToken(src.Secret.Name) && credentialReachable(pod, mountsIt) {
				r.add("serviceAccountTokenSecrets", vp.Index(i).Child("projected", "sources").Index(j).Child("secret", "name"),
					"service-account token Secret "+quote(src.Secret.Name), allowed, why)
			}
		}
	}
	for _, ca := range pod.containers {
		self := func(c *corev1.Container) bool { return c == ca.c }
		for k, e := range ca.c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && isToken(e.ValueFrom.SecretKeyRef.Name) && credentialReachable(pod, self) {
				r.add("serviceAccountTokenSecrets", pod.path(ca).Child("env").Index(k).Child("valueFrom", "secretKeyRef", "name"),
					"service-account token Secret "+quote(e.ValueFrom.SecretKeyRef.Name), allowed, why)
			}
		}
		for k, e := range ca.c.EnvFrom {
			if e.SecretRef != nil && isToken(e.SecretRef.Name) && credentialReachable(pod, self) {
				r.add("serviceAccountTokenSecrets", pod.path(ca).Child("envFrom").Index(k).Child("secretRef", "name"),
					"service-account token Secret "+quote(e.SecretRef.Name), allowed, why)
			}
		}
	}
}}
