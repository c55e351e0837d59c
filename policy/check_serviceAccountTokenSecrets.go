package policy

import (
	"github.com/go-json-experiment/json"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

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

// JudgeTokenSecret judges a Secret that rq writes in namespace ns: one of type kubernetes.io/service-account-token
// violates serviceAccountTokenSecrets under every policy that selects the namespace, unless that policy lets rq's
// pods carry a token (serviceAccountToken.automount, allowServiceAccounts) or exempts rq. The pod check alone
// cannot close it: a pod that names a Secret before it exists (or before the watch has seen it) is admitted
// while the name means nothing, and the tokens controller then fills the Secret with a token that never
// expires. Refusing the Secret closes that order. A policy's podSelector does not narrow it: any pod of the
// namespace may name the Secret.
func (s *Set) JudgeTokenSecret(secret *corev1.Secret, ns Namespace, rq Requester) Result {
	var res Result
	if secret.Type != corev1.SecretTypeServiceAccountToken {
		return res
	}
	for _, p := range s.Policies {
		if !p.selectsNamespace(ns) {
			continue
		}
		if p.exemptNS[ns.Name] {
			res.Exemptions = append(res.Exemptions, Exemption{Policy: p.Name, Reason: "namespace", Field: "metadata.namespace", Detail: "namespace " + ns.Name + " is exempt"})
			continue
		}
		if ex := p.requesterExemption(rq); ex != nil {
			res.Exemptions = append(res.Exemptions, *ex)
			continue
		}
		res.Matched = append(res.Matched, p.Name)
		if _, allowed := p.tokenBy.match(rq); allowed || *p.Spec.ServiceAccountToken.Automount {
			continue
		}
		sa := secret.Annotations[corev1.ServiceAccountNameKey]
		r := &report{policy: p}
		r.add("serviceAccountTokenSecrets", field.NewPath("type"), string(secret.Type)+" (for service account "+quote(sa)+")",
			"Secrets of other types; token Secrets only from serviceAccountToken.allowServiceAccounts",
			"the tokens controller fills this Secret with a token that never expires, and a pod that named it before it existed was admitted: agent namespaces hold no token Secrets")
		res.Violations = append(res.Violations, r.out...)
	}
	return res
}

// secretHeader is all of a Secret that JudgeTokenSecret reads.
type secretHeader struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Type              corev1.SecretType `json:"type,omitempty"`
}

// DecodeSecretHeader decodes a Secret's apiVersion, kind, metadata and type: what JudgeTokenSecret reads. Its
// data and stringData are skipped by the decoder, never decoded or kept; other members unknown here are
// skipped too (none changes the type). Duplicated members are refused, as everywhere.
func DecodeSecretHeader(raw []byte) (*corev1.Secret, error) {
	var h secretHeader
	if err := UnmarshalStrict(raw, &h, json.RejectUnknownMembers(false)); err != nil {
		return nil, err
	}
	return &corev1.Secret{TypeMeta: h.TypeMeta, ObjectMeta: h.ObjectMeta, Type: h.Type}, nil
}
