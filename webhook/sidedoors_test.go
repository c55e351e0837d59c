package webhook

import (
	"context"
	"errors"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Side doors around the checks that the webhook itself must close (DESIGN.md, "The sandbox has no side doors").

const meshOperator = "system:serviceaccount:mesh:operator"

// Exemptions are keyed on request.userInfo, never on what the pod says about itself.
func TestWebhookExemptionsFollowTheRequester(t *testing.T) {
	ts := startServer(t, staticPolicy(t, "    serviceAccounts: []", "    serviceAccounts: [mesh/operator]"))
	pod := badPod("hostile")
	pod.Spec.ServiceAccountName = "operator" // names the exempt account: claims nothing
	requireDenied(t, ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: pod.Name, obj: pod, user: "system:serviceaccount:agents:default"}),
		"spec.hostNetwork", "spec.containers[0].securityContext.privileged")
	requireAllowed(t, ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: pod.Name, obj: pod, user: meshOperator}))
	if got := ts.metric("agentgate_exemptions_total", `reason="serviceAccount"`); got != 1 {
		t.Errorf("exemptions_total{reason=serviceAccount} = %v, want 1", got)
	}
}

// A container exemption relaxes what it names for the requester it names, and nothing else.
func TestWebhookContainerExemptionRelaxesOnlyItsChecks(t *testing.T) {
	ts := startServer(t, staticPolicy(t, "    containers: []",
		"    containers: [{name: istio-proxy, image: \"docker.io/istio/proxyv2:*\", checks: [images, runAsNonRoot], serviceAccounts: [mesh/operator]}]"))
	pod := compliantPod("meshed")
	proxy := pod.Spec.Containers[0]
	proxy.Name, proxy.Image = "istio-proxy", "docker.io/istio/proxyv2:1.24.0"
	proxy.SecurityContext = proxy.SecurityContext.DeepCopy()
	proxy.SecurityContext.RunAsNonRoot = ptr(false)
	pod.Spec.Containers = append(pod.Spec.Containers, proxy)
	requireAllowed(t, ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: pod.Name, obj: pod, user: meshOperator}))

	// The same container made privileged, with SYS_ADMIN: the exemption never covers baseline checks.
	hostile := pod.DeepCopy()
	hostile.Spec.Containers[1].SecurityContext.Privileged = ptr(true)
	hostile.Spec.Containers[1].SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
	requireDenied(t, ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: pod.Name, obj: hostile, user: meshOperator}),
		"spec.containers[1].securityContext.privileged", "spec.containers[1].securityContext.capabilities.add[0]")
	// The agent's author sends the sidecar-shaped container itself: judged like any container.
	requireDenied(t, ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: pod.Name, obj: pod, user: "system:serviceaccount:agents:default"}),
		"spec.containers[1].image", "spec.containers[1].securityContext.runAsNonRoot")
}

// A Deployment UPDATE that only changes its template's annotations is judged like the same CREATE.
func TestWebhookTemplateAnnotationUpdateJudged(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	old := controllers(minimalPod("x").Spec)["Deployment"]
	upd := controllers(minimalPod("x").Spec)["Deployment"]
	dep := deploymentOf(t, upd.obj)
	dep.Spec.Template.Annotations = map[string]string{corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix + "agent": "unconfined"}
	resp := ts.answer("/validate", rv{gvk: upd.gvk, namespace: agentsNS, name: "deployment", op: admissionv1.Update, obj: dep, old: old.obj})
	requireDenied(t, resp, "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent]")

	// A change to the Deployment's own labels is not judged again.
	badOld := deploymentOf(t, controllers(badPod("x").Spec)["Deployment"].obj)
	badNew := badOld.DeepCopy()
	badNew.Labels = map[string]string{"team": "a"}
	requireAllowed(t, ts.answer("/validate", rv{gvk: upd.gvk, namespace: agentsNS, name: "deployment", op: admissionv1.Update, obj: badNew, old: badOld}))
}

// staleNamespaces is a namespace cache that has not seen the agent label yet.
type staleNamespaces struct {
	cached, live map[string]string
	liveErr      error
	reads        int
}

func (n *staleNamespaces) Labels(string) map[string]string { return n.cached }

func (n *staleNamespaces) LiveLabels(context.Context, string) (map[string]string, error) {
	n.reads++
	return n.live, n.liveErr
}

// onlyCached is a NamespaceLister that cannot read live.
type onlyCached map[string]string

func (n onlyCached) Labels(string) map[string]string { return n }

// A stale cache never makes a pod unselected silently: labels that leave a policy out are read again live,
// and, when that fails or cannot be done, the pod is judged with labels unknown (every policy selects it).
func TestWebhookStaleNamespaceCache(t *testing.T) {
	agents := map[string]string{"agentgate.io/agents": "true"}
	for _, tc := range []struct {
		name string
		ns   NamespaceLister
	}{
		{"live read sees the new label", &staleNamespaces{cached: map[string]string{}, live: agents}},
		{"live read fails: strict side", &staleNamespaces{cached: map[string]string{}, liveErr: errors.New("apiserver unreachable")}},
		{"no live read: strict side", onlyCached{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := staticPolicy(t)
			opts.Namespaces = tc.ns
			ts := startServer(t, opts)
			requireDenied(t, ts.answer("/validate", podReview(badPod("p"))), "spec.hostNetwork")
			if resp := ts.answer("/mutate", podReview(minimalPod("m"))); resp.Patch == nil {
				t.Error("/mutate did not harden a pod in a namespace the cache does not know as an agent namespace yet")
			}
		})
	}
	// Labels that a live read confirms are believed: a namespace really outside the policy.
	plain := &staleNamespaces{cached: map[string]string{}, live: map[string]string{}}
	opts := staticPolicy(t)
	opts.Namespaces = plain
	ts := startServer(t, opts)
	requireAllowed(t, ts.answer("/validate", podReview(badPod("p"))))
	if plain.reads != 1 {
		t.Errorf("live reads = %d, want 1", plain.reads)
	}
	// A cache that already has the label costs no read.
	fresh := &staleNamespaces{cached: agents}
	opts.Namespaces = fresh
	ts = startServer(t, opts)
	requireDenied(t, ts.answer("/validate", podReview(badPod("p"))), "spec.hostNetwork")
	if fresh.reads != 0 {
		t.Errorf("live reads with a fresh cache = %d, want 0", fresh.reads)
	}
}

// tokenSecrets is a TokenSecretLister over a fixed set of "namespace/name".
type tokenSecrets map[string]bool

func (s tokenSecrets) IsTokenSecret(namespace, name string) bool { return s[namespace+"/"+name] }

func TestWebhookServiceAccountTokenSecret(t *testing.T) {
	opts := staticPolicy(t)
	opts.TokenSecrets = tokenSecrets{agentsNS + "/build-bot": true}
	ts := startServer(t, opts)
	pod := compliantPod("p")
	pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, corev1.EnvVar{Name: "T", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "build-bot"}, Key: "token"}}})
	requireDenied(t, ts.answer("/validate", podReview(pod)), "spec.containers[0].env[0].valueFrom.secretKeyRef.name")
	pod.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name = "db-credentials"
	requireAllowed(t, ts.answer("/validate", podReview(pod)))
}

func deploymentOf(t *testing.T, obj any) *appsv1.Deployment {
	t.Helper()
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("not a Deployment: %T", obj)
	}
	return d.DeepCopy()
}
