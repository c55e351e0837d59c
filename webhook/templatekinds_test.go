package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"agentgate.io/agentgate/policy"
)

// sandboxObject is an agent-sandbox object (Sandbox or SandboxTemplate) with spec as its pod template's spec,
// as its author writes it.
func sandboxObject(gvk metav1.GroupVersionKind, name string, spec corev1.PodSpec, annotations map[string]string) map[string]any {
	return map[string]any{
		"apiVersion": gvk.Group + "/" + gvk.Version, "kind": gvk.Kind,
		"metadata": map[string]any{"name": name, "namespace": agentsNS},
		"spec": map[string]any{
			"podTemplate": map[string]any{"metadata": map[string]any{"labels": map[string]string{"app": "agent"}, "annotations": annotations}, "spec": spec},
		},
	}
}

var sandboxGVKs = []metav1.GroupVersionKind{
	{Group: "agents.x-k8s.io", Version: "v1alpha1", Kind: "Sandbox"},
	{Group: "agents.x-k8s.io", Version: "v1beta1", Kind: "Sandbox"},
	{Group: "extensions.agents.x-k8s.io", Version: "v1alpha1", Kind: "SandboxTemplate"},
	{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Kind: "SandboxTemplate"},
}

// TestWebhookSandboxes: agent-sandbox's kinds are judged by their pod template, on CREATE and UPDATE, with
// paths from the object's root; a good one is admitted as sent (never patched).
func TestWebhookSandboxes(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	bad := minimalPod("x").Spec
	bad.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	bad.Containers[0].Image = "docker.io/library/nginx:1.27"
	for _, gvk := range sandboxGVKs {
		t.Run(gvk.Version+"/"+gvk.Kind, func(t *testing.T) {
			for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
				r := rv{gvk: gvk, namespace: agentsNS, name: "sb", op: op, obj: sandboxObject(gvk, "sb", bad, nil)}
				if op == admissionv1.Update {
					r.old = sandboxObject(gvk, "sb", minimalPod("x").Spec, nil)
				}
				resp := ts.answer("/validate", r)
				requireDenied(t, resp, "spec.podTemplate.spec.containers[0].securityContext.privileged", "spec.podTemplate.spec.containers[0].image")
				if resp.Result.Details.Kind != gvk.Kind || resp.Result.Details.Group != gvk.Group {
					t.Errorf("details %s %s", resp.Result.Details.Group, resp.Result.Details.Kind)
				}
			}
			good := rv{gvk: gvk, namespace: agentsNS, name: "sb", obj: sandboxObject(gvk, "sb", minimalPod("x").Spec, nil)}
			requireAllowed(t, ts.answer("/validate", good))
			m := ts.answer("/mutate", good)
			requireAllowed(t, m)
			if m.Patch != nil {
				t.Errorf("/mutate patched a %s: %s", gvk.Kind, m.Patch)
			}
		})
	}
	if got := ts.metric("agentgate_admission_requests_total", `kind="Sandbox"`, `endpoint="validate"`); got != 6 {
		t.Errorf("requests_total{kind=Sandbox,validate} = %v, want 6", got)
	}
	if got := ts.metric("agentgate_violations_total", `kind="SandboxTemplate"`, `check="privileged"`); got != 4 {
		t.Errorf("violations_total{kind=SandboxTemplate,check=privileged} = %v, want 4", got)
	}
}

// TestWebhookSandboxUpdates: an UPDATE that leaves the pod template as it was (a finalizer, a label, the
// operating mode) is not judged again, so a policy change never blocks a Sandbox's deletion; one that
// changes the template, its annotations included, is.
func TestWebhookSandboxUpdates(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	gvk := sandboxGVKs[1]
	bad := minimalPod("x").Spec
	bad.HostPID = true
	old := sandboxObject(gvk, "sb", bad, nil)
	finalizing := sandboxObject(gvk, "sb", bad, nil)
	finalizing["metadata"].(map[string]any)["finalizers"] = []string{}
	finalizing["spec"].(map[string]any)["operatingMode"] = "Suspended"
	requireAllowed(t, ts.answer("/validate", rv{gvk: gvk, namespace: agentsNS, name: "sb", op: admissionv1.Update, obj: finalizing, old: old}))

	good := sandboxObject(gvk, "sb", minimalPod("x").Spec, nil)
	unconfined := sandboxObject(gvk, "sb", minimalPod("x").Spec, map[string]string{"container.apparmor.security.beta.kubernetes.io/runner": "unconfined"})
	requireDenied(t, ts.answer("/validate", rv{gvk: gvk, namespace: agentsNS, name: "sb", op: admissionv1.Update, obj: unconfined, old: good}),
		"spec.podTemplate.metadata.annotations[container.apparmor.security.beta.kubernetes.io/runner]")

	// Subresources (status, and v1alpha1's scale) never change the template.
	requireAllowed(t, ts.answer("/validate", rv{gvk: gvk, namespace: agentsNS, name: "sb", op: admissionv1.Update, sub: "status", obj: old, old: old}))
}

// TestWebhookDeclaredPodTemplateKind: a kind declared with --pod-template-kind is judged the same way at its
// own path; undeclared kinds and versions are refused with what to fix.
func TestWebhookDeclaredPodTemplateKind(t *testing.T) {
	k, err := policy.ParsePodTemplateKind("example.agentgate.io/v1/AgentJob=spec.runner.template")
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := policy.NewPodTemplateKinds(k)
	if err != nil {
		t.Fatal(err)
	}
	opts := staticPolicy(t)
	opts.PodTemplateKinds = kinds
	ts := startServer(t, opts)
	jobGVK := metav1.GroupVersionKind{Group: "example.agentgate.io", Version: "v1", Kind: "AgentJob"}
	job := func(spec corev1.PodSpec) map[string]any {
		return map[string]any{
			"apiVersion": "example.agentgate.io/v1", "kind": "AgentJob", "metadata": map[string]any{"name": "j"},
			"spec": map[string]any{"parallelism": 2, "runner": map[string]any{"retries": 1, "template": map[string]any{"spec": spec}}},
		}
	}
	bad := minimalPod("x").Spec
	bad.HostNetwork = true
	bad.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(0))}
	requireDenied(t, ts.answer("/validate", rv{gvk: jobGVK, namespace: agentsNS, name: "j", obj: job(bad)}),
		"spec.runner.template.spec.hostNetwork", "spec.runner.template.spec.containers[0].securityContext.runAsUser")
	requireAllowed(t, ts.answer("/validate", rv{gvk: jobGVK, namespace: agentsNS, name: "j", obj: job(minimalPod("x").Spec)}))

	for _, tc := range []struct {
		name string
		gvk  metav1.GroupVersionKind
		want string
	}{
		{"undeclared version", metav1.GroupVersionKind{Group: "example.agentgate.io", Version: "v2", Kind: "AgentJob"},
			"agentgate judges AgentJob.example.agentgate.io in v1, not example.agentgate.io/v2 AgentJob"},
		{"undeclared kind", metav1.GroupVersionKind{Group: "example.agentgate.io", Version: "v1", Kind: "AgentTask"},
			"example.agentgate.io/v1 AgentTask is not a kind agentgate judges"},
		{"a Sandbox version agentgate does not know", metav1.GroupVersionKind{Group: "agents.x-k8s.io", Version: "v1", Kind: "Sandbox"},
			"agentgate judges Sandbox.agents.x-k8s.io in v1alpha1, v1beta1, not agents.x-k8s.io/v1 Sandbox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := job(bad)
			obj["apiVersion"], obj["kind"] = tc.gvk.Group+"/"+tc.gvk.Version, tc.gvk.Kind
			resp := ts.answer("/validate", rv{gvk: tc.gvk, namespace: agentsNS, name: "j", obj: obj})
			if resp.Allowed || resp.Result == nil || resp.Result.Code != 400 || !strings.Contains(resp.Result.Message, tc.want) {
				t.Fatalf("want a 400 refusal saying %q, got %+v", tc.want, resp.Result)
			}
		})
	}
}

// TestWebhookTemplateKindBadInput: an object whose template cannot be judged is denied (422) with a cause at
// the field, never admitted; an ambiguous or mismatched object is refused as malformed.
func TestWebhookTemplateKindBadInput(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	gvk := sandboxGVKs[1]
	obj := func(spec string) string {
		return `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"sb","namespace":"agents"},"spec":` + spec + `}`
	}
	for _, tc := range []struct {
		name, obj, field, msg string
	}{
		{"no podTemplate", obj(`{"operatingMode":"Running"}`), "spec.podTemplate", "Required value"},
		{"podTemplate null", obj(`{"podTemplate":null}`), "spec.podTemplate", "Required value"},
		{"podTemplate a list", obj(`{"podTemplate":[]}`), "spec.podTemplate", "not an object"},
		{"spec a string", obj(`"x"`), "spec", "not an object"},
		{"pod spec where the template belongs", obj(`{"podTemplate":{"containers":[{"name":"a","image":"x","securityContext":{"privileged":true}}]}}`), "spec.podTemplate.containers", "holds a pod spec, not a pod template"},
		{"template without spec", obj(`{"podTemplate":{"metadata":{"labels":{"a":"b"}}}}`), "spec.podTemplate.spec", "Required value"},
		{"unknown field in a container", obj(`{"podTemplate":{"spec":{"containers":[{"name":"a","image":"x","securityContex":{"privileged":true}}]}}}`),
			"spec.podTemplate.spec.containers[0].securityContex", "unknown field"},
		{"wrong type", obj(`{"podTemplate":{"spec":{"hostPID":"true","containers":[]}}}`), "spec.podTemplate.spec.hostPID", "cannot decode"},
		{"unknown metadata field", `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"sb","labelz":{}},"spec":{"podTemplate":{"spec":{"containers":[]}}}}`,
			"metadata.labelz", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.answer("/validate", rv{gvk: gvk, namespace: agentsNS, name: "sb", obj: []byte(tc.obj)})
			requireDenied(t, resp, tc.field)
			if !strings.Contains(resp.Result.Message, tc.msg) {
				t.Errorf("message %q does not say %q", resp.Result.Message, tc.msg)
			}
		})
	}
	for _, tc := range []struct {
		name, obj, want string
	}{
		{"kind mismatch", strings.Replace(obj(`{"podTemplate":{"spec":{"containers":[]}}}`), `"kind":"Sandbox"`, `"kind":"SandboxClaim"`, 1), "request.kind is agents.x-k8s.io/v1beta1 Sandbox"},
		{"version mismatch", strings.Replace(obj(`{"podTemplate":{"spec":{"containers":[]}}}`), "v1beta1", "v1alpha1", 1), "request.kind is agents.x-k8s.io/v1beta1 Sandbox"},
		{"namespace mismatch", strings.Replace(obj(`{"podTemplate":{"spec":{"containers":[]}}}`), `"namespace":"agents"`, `"namespace":"other"`, 1), "request.namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.answer("/validate", rv{gvk: gvk, namespace: agentsNS, name: "sb", obj: []byte(tc.obj)})
			if resp.Allowed || resp.Result == nil || resp.Result.Code != 400 || !strings.Contains(resp.Result.Message, tc.want) {
				t.Fatalf("want a 400 refusal saying %q, got %+v", tc.want, resp.Result)
			}
		})
	}
	// A duplicated member anywhere in the object makes the review ambiguous: refused before any decision.
	dup := obj(`{"podTemplate":{"spec":{"hostPID":false,"hostPID":true,"containers":[]}}}`)
	code, _, _ := ts.post("/validate", rv{gvk: gvk, namespace: agentsNS, name: "sb", obj: []byte(dup)}.body(t))
	if code != 400 {
		t.Errorf("duplicate member: HTTP %d, want 400", code)
	}
}

// TestWebhookRuntimeHardening: with spec.runtime, /mutate fills runtimeClassName and hostUsers: false, and
// /validate admits the result and denies a pod that says otherwise, with the field paths.
func TestWebhookRuntimeHardening(t *testing.T) {
	ts := startServer(t, staticPolicy(t, "  windows: deny", "  windows: deny\n  runtime: {runtimeClassNames: [gvisor, kata], defaultRuntimeClassName: gvisor, hostUsers: false}"))
	pod := minimalPod("agent")
	original, _ := json.Marshal(pod)
	resp := ts.answer("/mutate", podReview(pod))
	requireAllowed(t, resp)
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("patch: %v\n%s", err, resp.Patch)
	}
	mutated, err := patch.Apply(original)
	if err != nil {
		t.Fatal(err)
	}
	var hardened corev1.Pod
	if err := json.Unmarshal(mutated, &hardened); err != nil {
		t.Fatal(err)
	}
	if hardened.Spec.RuntimeClassName == nil || *hardened.Spec.RuntimeClassName != "gvisor" || hardened.Spec.HostUsers == nil || *hardened.Spec.HostUsers {
		t.Errorf("runtimeClassName %v hostUsers %v; want gvisor, false", hardened.Spec.RuntimeClassName, hardened.Spec.HostUsers)
	}
	requireAllowed(t, ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "agent", uid: "v2", obj: mutated}))

	runc := minimalPod("runc")
	runc.Spec.RuntimeClassName, runc.Spec.HostUsers = ptr("runc"), ptr(true)
	m := ts.answer("/mutate", podReview(runc))
	if m.Patch != nil {
		t.Errorf("a pod that will be denied was patched: %s", m.Patch)
	}
	requireDenied(t, ts.answer("/validate", podReview(runc)), "spec.runtimeClassName", "spec.hostUsers")
}
