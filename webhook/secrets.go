package webhook

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/policy"
)

// Secrets are judged in /validate, like NetworkPolicies, for one rule: no service-account token Secret in an
// agent namespace (policy.Set.JudgeTokenSecret). The pod check reads which Secrets are tokens from a watch; a
// pod that names a Secret before it exists is admitted while the name means nothing, so the Secret's own
// CREATE is where that order is closed. Only CREATE: a Secret's type is immutable.

var secretGK = schema.GroupKind{Kind: "Secret"}

// validateSecret judges a Secret CREATE in an agent namespace.
func (s *Server) validateSecret(ctx context.Context, rv review) decision {
	req := rv.req
	if req.Kind.Version != "v1" {
		return refuse("unsupported_version", 400, "agentgate judges v1 Secrets, not %s: set matchPolicy: Equivalent in the webhook configuration", gvkString(req.Kind))
	}
	if req.Operation != admissionv1.Create || req.SubResource != "" {
		return allow().noted("only a Secret's CREATE is judged (its type is immutable)")
	}
	if len(req.Object.Raw) == 0 {
		return refuse("null_object", 400, "request.object is null for %s of %s", req.Operation, gvkString(req.Kind))
	}
	// Its type and metadata only: the data is never decoded, kept or logged.
	secret, err := policy.DecodeSecretHeader(req.Object.Raw)
	if err != nil {
		return refuse("object_decode", 400, "cannot decode request.object as v1 Secret: %v", err)
	}
	if d, ok := checkTypeAndNamespace(req, &secret.TypeMeta, &secret.ObjectMeta); !ok {
		return d
	}
	about := audit{object: displayName(&secret.ObjectMeta)}
	if secret.Type != corev1.SecretTypeServiceAccountToken {
		about.note = "not a service-account token Secret"
		return allow().with(about)
	}
	snap := s.store.Snapshot()
	ns, nsNote := s.namespace(ctx, rv, about.object, snap.Set)
	about.note, about.generation = nsNote, snap.Generation
	return s.answerJudged(rv, secretGK, secretGK.Kind, snap.Set.JudgeTokenSecret(secret, ns, requester(req)), about)
}
