package webhook

import (
	"encoding/base64"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestValidateTokenSecret: a service-account token Secret is refused in an agent namespace whatever its name
// (the pod that names it may already exist); other Secrets pass; the Secret's data is never decoded into a
// log line or an answer.
func TestValidateTokenSecret(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	secretGVK := metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}
	const plaintext = "s3cr3t-value-never-logged"
	secret := func(name string, typ corev1.SecretType) *corev1.Secret {
		return &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: agentsNS, Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
			Type:       typ,
			Data:       map[string][]byte{"token": []byte(plaintext)},
		}
	}

	resp := ts.answer("/validate", rv{gvk: secretGVK, namespace: agentsNS, name: "db-credentials", obj: secret("db-credentials", corev1.SecretTypeServiceAccountToken)})
	requireDenied(t, resp, "type")
	if !strings.Contains(resp.Result.Message, `Secret "db-credentials" denied by policy "agents"`) || !strings.Contains(resp.Result.Message, "serviceAccountTokenSecrets") {
		t.Errorf("message %q does not name the Secret, the policy and the check", resp.Result.Message)
	}
	if got := ts.metric("agentgate_violations_total", `check="serviceAccountTokenSecrets"`, `kind="Secret"`); got != 1 {
		t.Errorf("violations_total{Secret} = %v", got)
	}

	requireAllowed(t, ts.answer("/validate", rv{gvk: secretGVK, namespace: agentsNS, name: "plain", obj: secret("plain", corev1.SecretTypeOpaque)}))
	requireAllowed(t, ts.answer("/validate", rv{gvk: secretGVK, namespace: agentsNS, name: "unset", obj: secret("unset", "")}))
	// A Secret's type cannot change (the API server refuses it), so an UPDATE has nothing to judge.
	requireAllowed(t, ts.answer("/validate", rv{gvk: secretGVK, namespace: agentsNS, name: "old", op: admissionv1.Update,
		obj: secret("old", corev1.SecretTypeServiceAccountToken), old: secret("old", corev1.SecretTypeServiceAccountToken)}))

	// Two "type" members: which one the API server kept is ambiguous, so the review is refused, never admitted.
	dup := []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"dup","namespace":"agents"},"type":"Opaque","type":"kubernetes.io/service-account-token"}`)
	if code, _, body := ts.post("/validate", rv{gvk: secretGVK, namespace: agentsNS, name: "dup", obj: dup}.body(t)); code != 400 || !strings.Contains(string(body), "duplicate") {
		t.Errorf("a Secret with two types: HTTP %d %s, want 400 naming the duplicate", code, body)
	}
	// Another namespace in the object than in the request.
	elsewhere := secret("x", corev1.SecretTypeServiceAccountToken)
	elsewhere.Namespace = "kube-system"
	if resp := ts.answer("/validate", rv{gvk: secretGVK, namespace: agentsNS, name: "x", obj: elsewhere}); resp.Allowed {
		t.Errorf("a Secret whose namespace differs from the request's was admitted")
	}

	logs := ts.logs.String()
	for _, leaked := range []string{plaintext, base64.StdEncoding.EncodeToString([]byte(plaintext))} {
		if strings.Contains(logs, leaked) {
			t.Errorf("the log carries Secret data %q", leaked)
		}
	}
}
