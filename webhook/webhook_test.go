package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psa "k8s.io/pod-security-admission/policy"

	"agentgate.io/agentgate/policy"
)

func TestWebhookValidateAllowsCompliantPod(t *testing.T) {
	ts := startServer(t, Options{}) // the embedded default policy
	resp := ts.answer("/validate", podReview(compliantPod("good")))
	requireAllowed(t, resp)
	if len(resp.Warnings) > 0 {
		t.Errorf("unexpected warnings: %v", resp.Warnings)
	}
	if evs := ts.logs.Events("admission.allowed"); len(evs) != 1 || evs[0]["uid"] != "uid-good" || evs[0]["kind"] != "Pod" {
		t.Errorf("admission.allowed events: %v", evs)
	}
	if got := ts.metric("agentgate_admission_requests_total", `endpoint="validate"`, `kind="Pod"`, `operation="CREATE"`, `result="allowed"`); got != 1 {
		t.Errorf("requests_total{allowed} = %v, want 1", got)
	}
}

// The example that `make run` sends is a compliant CREATE: admitted, and nothing to patch.
func TestWebhookExampleReview(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "examples", "review-pod.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{})
	for _, path := range []string{"/validate", "/mutate"} {
		code, rev, raw := ts.post(path, body)
		if code != http.StatusOK || rev == nil {
			t.Fatalf("%s: HTTP %d: %s", path, code, raw)
		}
		requireAllowed(t, rev.Response)
		if rev.Response.Patch != nil {
			t.Errorf("%s: the example is already hardened, yet patched: %s", path, rev.Response.Patch)
		}
	}
}

func TestWebhookValidateDeniesWithEveryFieldPath(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	resp := ts.answer("/validate", podReview(badPod("bad")))
	requireDenied(t, resp, badPodFields...)
	if want := `agentgate: Pod "bad" denied by policy "agents": `; !strings.HasPrefix(resp.Result.Message, want) {
		t.Errorf("message %q does not start with %q", resp.Result.Message, want)
	}
	d := resp.Result.Details
	if d.Kind != "Pod" || d.Name != "bad" {
		t.Errorf("details name the wrong object: %+v", d)
	}
	for _, c := range d.Causes {
		if c.Message == "" || c.Type == "" {
			t.Errorf("cause without type or message: %+v", c)
		}
	}
	evs := ts.logs.Events("admission.denied")
	if len(evs) != 1 {
		t.Fatalf("admission.denied events: %d", len(evs))
	}
	checks, _ := evs[0]["checks"].([]any)
	for _, want := range []string{"hostNamespaces", "privileged", "images"} {
		if !slices.Contains(checks, any(want)) {
			t.Errorf("denied event checks %v lack %s", checks, want)
		}
	}
	if got := ts.metric("agentgate_violations_total", `check="privileged"`, `mode="enforce"`, `kind="Pod"`, `policy="agents"`); got != 1 {
		t.Errorf("violations_total{privileged} = %v", got)
	}
	if got := ts.metric("agentgate_admission_requests_total", `result="denied"`); got != 1 {
		t.Errorf("requests_total{denied} = %v", got)
	}
}

func TestWebhookWarnMode(t *testing.T) {
	ts := startServer(t, staticPolicy(t, "mode: enforce", "mode: warn"))
	resp := ts.answer("/validate", podReview(badPod("warned")))
	requireAllowed(t, resp)
	if len(resp.Warnings) < len(badPodFields) {
		t.Fatalf("want a warning per violation, got %v", resp.Warnings)
	}
	joined := strings.Join(resp.Warnings, "\n")
	for _, w := range resp.Warnings {
		if !strings.HasPrefix(w, "agentgate[agents]: spec.") {
			t.Errorf("warning %q is not agentgate[policy]: field: message", w)
		}
	}
	for _, f := range badPodFields {
		if !strings.Contains(joined, f) {
			t.Errorf("no warning for %s", f)
		}
	}
	if evs := ts.logs.Events("admission.warned"); len(evs) != 1 {
		t.Errorf("admission.warned events: %d", len(evs))
	}
	if got := ts.metric("agentgate_admission_requests_total", `result="warned"`); got != 1 {
		t.Errorf("requests_total{warned} = %v", got)
	}
}

func TestWebhookAuditMode(t *testing.T) {
	ts := startServer(t, staticPolicy(t, "mode: enforce", "mode: audit"))
	resp := ts.answer("/validate", podReview(badPod("audited")))
	requireAllowed(t, resp)
	if len(resp.Warnings) > 0 {
		t.Errorf("audit mode must not warn the client: %v", resp.Warnings)
	}
	evs := ts.logs.Events("admission.allowed")
	if len(evs) != 1 {
		t.Fatalf("admission.allowed events: %d\n%s", len(evs), ts.logs.String())
	}
	vs, _ := evs[0]["violations"].([]any)
	fields := map[string]bool{}
	for _, v := range vs {
		m := v.(map[string]any)
		if m["mode"] != "audit" || m["policy"] != "agents" {
			t.Errorf("logged violation %v", m)
		}
		fields[m["field"].(string)] = true
	}
	for _, f := range badPodFields {
		if !fields[f] {
			t.Errorf("audit log lacks %s: %v", f, fields)
		}
	}
	if got := ts.metric("agentgate_violations_total", `mode="audit"`, `check="privileged"`); got != 1 {
		t.Errorf("violations_total{audit,privileged} = %v", got)
	}
}

func TestWebhookExemptNamespace(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	p := badPod("system")
	p.Namespace = "kube-system"
	resp := ts.answer("/validate", podReview(p))
	requireAllowed(t, resp)
	evs := ts.logs.Events("admission.exempted")
	if len(evs) != 1 || evs[0]["reason"] != "namespace" || evs[0]["policy"] != "agents" || evs[0]["namespace"] != "kube-system" {
		t.Errorf("admission.exempted events: %v", evs)
	}
	if got := ts.metric("agentgate_exemptions_total", `policy="agents"`, `reason="namespace"`); got != 1 {
		t.Errorf("exemptions_total = %v", got)
	}
	// And the mutating webhook leaves it alone.
	if resp := ts.answer("/mutate", podReview(p)); resp.Patch != nil {
		t.Errorf("exempt pod patched: %s", resp.Patch)
	}
}

// The whole path of a pod through the API server: /mutate's patch applied, then /validate admits the result,
// Pod Security "restricted" passes it (an independent oracle), and a second /mutate has nothing to add.
func TestWebhookMutateThenValidate(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	pod := minimalPod("agent")
	original, _ := json.Marshal(pod)

	resp := ts.answer("/mutate", podReview(pod))
	requireAllowed(t, resp)
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch || len(resp.Patch) == 0 {
		t.Fatalf("want a JSONPatch, got type %v patch %s", resp.PatchType, resp.Patch)
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("patch does not decode: %v\n%s", err, resp.Patch)
	}
	mutated, err := patch.Apply(original)
	if err != nil {
		t.Fatalf("patch does not apply: %v\n%s", err, resp.Patch)
	}
	var hardened corev1.Pod
	if err := json.Unmarshal(mutated, &hardened); err != nil {
		t.Fatal(err)
	}
	if evs := ts.logs.Events("admission.mutated"); len(evs) != 1 {
		t.Errorf("admission.mutated events: %d", len(evs))
	}

	requireAllowed(t, ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "agent", uid: "v2", obj: mutated}))

	eval, err := psa.NewEvaluator(psa.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := psa.AggregateCheckResults(eval.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &hardened.ObjectMeta, &hardened.Spec))
	if !res.Allowed {
		t.Errorf("Pod Security restricted refuses the hardened pod: %s: %s", res.ForbiddenReason(), res.ForbiddenDetail())
	}

	again := ts.answer("/mutate", rv{gvk: podGVK, namespace: agentsNS, name: "agent", uid: "m2", obj: mutated})
	requireAllowed(t, again)
	if again.Patch != nil || again.PatchType != nil {
		t.Errorf("second /mutate is not a no-op: %s", again.Patch)
	}
}

func TestWebhookMutateOnlyPodCreate(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	for name, c := range controllers(minimalPod("x").Spec) {
		resp := ts.answer("/mutate", rv{gvk: c.gvk, namespace: agentsNS, name: strings.ToLower(name), obj: c.obj})
		requireAllowed(t, resp)
		if resp.Patch != nil {
			t.Errorf("%s mutated: controllers are never patched", name)
		}
	}
	p := minimalPod("upd")
	resp := ts.answer("/mutate", rv{gvk: podGVK, namespace: agentsNS, name: "upd", op: admissionv1.Update, obj: p, old: p})
	if !resp.Allowed || resp.Patch != nil {
		t.Errorf("pod UPDATE: allowed %v, patch %s", resp.Allowed, resp.Patch)
	}
	// A pod the policy will deny is left as sent: /validate explains why.
	if resp := ts.answer("/mutate", podReview(badPod("bad"))); !resp.Allowed || resp.Patch != nil {
		t.Errorf("pod to be denied: allowed %v, patch %s", resp.Allowed, resp.Patch)
	}
}

func TestWebhookEphemeralContainerUpdateDenied(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	old := compliantPod("debugged")
	upd := old.DeepCopy()
	upd.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger", Image: allowedImage,
		SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)},
	}}}
	resp := ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "debugged", op: admissionv1.Update, sub: "ephemeralcontainers", obj: upd, old: old})
	requireDenied(t, resp, "spec.ephemeralContainers[0].securityContext.privileged")
}

// TestWebhookResizeJudged: an in-place resize (pods/resize, the whole pod in request.object) is judged like
// the pod itself, and never skipped as an update "that does not change the spec".
func TestWebhookResizeJudged(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	old := compliantPod("resized")
	resize := func(cpu, memory string) *corev1.Pod {
		upd := old.DeepCopy()
		upd.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
		return upd
	}
	review := func(obj, old *corev1.Pod) *admissionv1.AdmissionResponse {
		return ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "resized", op: admissionv1.Update, sub: "resize", obj: obj, old: old})
	}
	resp := review(resize("64", "256Gi"), old)
	requireDenied(t, resp, "spec.containers[0].resources.limits[cpu]", "spec.containers[0].resources.limits[memory]")
	requireAllowed(t, review(resize("2", "1Gi"), old))

	// A pod admitted before a stricter policy, resized to what it already has: judged all the same.
	legacy := resize("64", "256Gi")
	requireDenied(t, review(legacy, legacy.DeepCopy()), "spec.containers[0].resources.limits[cpu]")
}

func TestWebhookUpdateChangingImageDenied(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	old := compliantPod("runner")
	upd := old.DeepCopy()
	upd.Spec.Containers[0].Image = "docker.io/library/nginx:1.27"
	resp := ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "runner", op: admissionv1.Update, obj: upd, old: old})
	requireDenied(t, resp, "spec.containers[0].image")

	// A metadata-only update of a pod admitted earlier (a finalizer removed, a label added) is not judged
	// again, so that a policy change cannot block deleting old pods.
	legacy := badPod("legacy")
	relabelled := legacy.DeepCopy()
	relabelled.Labels["tier"] = "batch"
	resp = ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "legacy", op: admissionv1.Update, obj: relabelled, old: legacy})
	requireAllowed(t, resp)
}

func TestWebhookControllerTemplates(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	bad := minimalPod("x").Spec
	bad.HostNetwork = true
	bad.Containers[0].Image = "docker.io/library/nginx:latest"
	for name, c := range controllers(bad) {
		t.Run(name, func(t *testing.T) {
			for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
				r := rv{gvk: c.gvk, namespace: agentsNS, name: strings.ToLower(name), op: op, obj: c.obj}
				if op == admissionv1.Update {
					r.old = controllers(minimalPod("x").Spec)[name].obj
				}
				resp := ts.answer("/validate", r)
				requireDenied(t, resp, c.specPath+".hostNetwork", c.specPath+".containers[0].image")
				if resp.Result.Details.Kind != name {
					t.Errorf("details.kind %q", resp.Result.Details.Kind)
				}
			}
		})
	}
	// Templates are judged as their pods will be after hardening: a minimal template passes.
	for name, c := range controllers(minimalPod("x").Spec) {
		requireAllowed(t, ts.answer("/validate", rv{gvk: c.gvk, namespace: agentsNS, name: strings.ToLower(name), obj: c.obj}))
	}
}

func TestWebhookOperationsAndSubresourcesNotJudged(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	bad := badPod("bad")
	for _, r := range []rv{
		{gvk: podGVK, namespace: agentsNS, name: "bad", op: admissionv1.Delete, old: bad},
		{gvk: podGVK, namespace: agentsNS, name: "bad", op: admissionv1.Connect, sub: "exec"},
		{gvk: podGVK, namespace: agentsNS, name: "bad", op: admissionv1.Update, sub: "status", obj: bad, old: bad},
	} {
		requireAllowed(t, ts.answer("/validate", r))
	}
}

func TestWebhookUnknownKindFailsClosed(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	svc := map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "s", "namespace": agentsNS}}
	resp := ts.answer("/validate", rv{gvk: metav1.GroupVersionKind{Version: "v1", Kind: "Service"}, namespace: agentsNS, name: "s", obj: svc})
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "v1 Service") {
		t.Fatalf("unknown kind: %+v", resp)
	}
	if got := ts.metric("agentgate_admission_requests_total", `kind="other"`, `result="error"`); got != 1 {
		t.Errorf("requests_total{kind=other,error} = %v", got)
	}
}

func policyConfigMap(name string, labels map[string]string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "agentgate-system", Labels: labels},
		Data:       data,
	}
}

func TestWebhookValidatePolicy(t *testing.T) {
	ts := startServer(t, Options{})
	label := map[string]string{policy.ConfigMapLabel: "true"}
	review := func(cm *corev1.ConfigMap) rv {
		return rv{gvk: cmGVK, namespace: cm.Namespace, name: cm.Name, obj: cm}
	}

	good := policyConfigMap("good", label, map[string]string{"policy.yaml": string(policyDoc(t))})
	requireAllowed(t, ts.answer("/validate-policy", review(good)))

	bad := policyConfigMap("bad", label, map[string]string{"policy.yaml": string(policyDoc(t,
		"mode: enforce", "mode: sometimes",
		"windows: deny", "windows: maybe",
		"max: {cpu: \"4\", memory: 8Gi}", "max: {cpu: \"-1\", memory: 8Gi}",
	))})
	resp := ts.answer("/validate-policy", review(bad))
	requireDenied(t, resp, "data[policy.yaml].spec.mode", "data[policy.yaml].spec.windows", "data[policy.yaml].spec.resources.max[cpu]")
	if !strings.HasPrefix(resp.Result.Message, `agentgate: ConfigMap "bad" holds an invalid policy: `) {
		t.Errorf("message: %s", resp.Result.Message)
	}

	unknownField := policyConfigMap("typo", label, map[string]string{"policy.yaml": string(policyDoc(t, "windows: deny", "windos: deny"))})
	resp = ts.answer("/validate-policy", review(unknownField))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "windos") {
		t.Errorf("unknown policy field: %+v", resp.Result)
	}

	missing := policyConfigMap("empty", label, map[string]string{"other.yaml": "x"})
	requireDenied(t, ts.answer("/validate-policy", review(missing)), "data[policy.yaml]")

	plain := policyConfigMap("plain", nil, map[string]string{"policy.yaml": "not a policy"})
	requireAllowed(t, ts.answer("/validate-policy", review(plain)))

	typo := policyConfigMap("typo-label", map[string]string{policy.ConfigMapLabel: "True"}, map[string]string{"policy.yaml": "x"})
	resp = ts.answer("/validate-policy", review(typo))
	requireAllowed(t, resp)
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], policy.ConfigMapLabel) {
		t.Errorf("want a warning about the label value, got %v", resp.Warnings)
	}

	requireAllowed(t, ts.answer("/validate-policy", rv{gvk: cmGVK, namespace: bad.Namespace, name: "bad", op: admissionv1.Delete, old: bad}))

	// The server's own policy is unaffected by what /validate-policy saw.
	if _, st := ts.readyStatus(); !st.Policy.Default || st.Policy.Generation != 1 {
		t.Errorf("policy changed: %+v", st.Policy)
	}
}

func TestWebhookV1beta1AnsweredAsV1beta1(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	r := podReview(badPod("old-apiserver"))
	r.apiVersion = reviewV1beta1
	resp := ts.answer("/validate", r) // checks the version of the answer
	requireDenied(t, resp, badPodFields...)
	r = podReview(minimalPod("old-apiserver"))
	r.apiVersion = reviewV1beta1
	if resp := ts.answer("/mutate", r); resp.Patch == nil {
		t.Error("v1beta1 /mutate returned no patch")
	}
}

// The test client offers both protocols, as the API server does for a loopback URL: HTTP/2 is negotiated only
// when Options.HTTP2 asks for it.
func TestWebhookHTTP2(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		ts := startServer(t, Options{HTTP2: h2})
		resp, err := ts.client.Get(ts.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
			t.Errorf("HTTP2=%v: negotiated %s, want HTTP/%d", h2, resp.Proto, want)
		}
	}
}

func TestWebhookReadyzDetail(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	code, st := ts.readyStatus()
	if code != http.StatusOK || !st.Ready || st.TLS != "ok" {
		t.Fatalf("readyz %d: %+v", code, st)
	}
	if st.Policy.Default || len(st.Policy.Policies) != 1 || st.Policy.Policies[0].Name != "agents" || st.Policy.Policies[0].Source != "test:agents" {
		t.Errorf("policies: %+v", st.Policy)
	}
	if st.Policy.Generation < 2 {
		t.Errorf("generation %d: the default (1) then the static policy", st.Policy.Generation)
	}
	if got := ts.metric("agentgate_policy_generation"); got != float64(st.Policy.Generation) {
		t.Errorf("agentgate_policy_generation %v, readyz %d", got, st.Policy.Generation)
	}
}

func TestWebhookMetricsExposition(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	ts.answer("/validate", podReview(compliantPod("a")))
	resp, err := http.Get(ts.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	_, _ = io.Copy(body, resp.Body)
	for _, want := range []string{
		`agentgate_admission_duration_seconds_bucket{endpoint="validate",le="30"} 1`,
		`agentgate_admission_duration_seconds_bucket{endpoint="validate",le="0.0001"}`,
		`agentgate_request_body_bytes_bucket{endpoint="validate"`,
		`agentgate_policy_reload_total{result="error"} 0`,
		`agentgate_policy_reload_total{result="success"} 1`,
		`agentgate_policy_source_valid{source="test:agents"} 1`,
		`agentgate_policy_info{policy="agents",source="test:agents"} 1`,
		"go_goroutines", "process_open_fds",
	} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
