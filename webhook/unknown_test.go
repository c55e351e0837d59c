package webhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/policy"
)

// Cluster upgrades (README): reviews from an API server newer than agentgate's k8s.io/api v0.37 carry fields
// it does not know. None of the field names below exists in v0.37 (TestNewerFieldsAreUnknown proves it).

// member is one field to add: where (a JSON pointer to an object, created when absent) and what.
type member struct{ at, name, value string }

// withMembers marshals obj and adds the members, creating missing parent objects.
func withMembers(t *testing.T, obj any, ms ...member) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw(t, obj), &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		var cur any = doc
		for _, tok := range strings.Split(strings.TrimPrefix(m.at, "/"), "/") {
			if tok == "" {
				continue
			}
			switch c := cur.(type) {
			case map[string]any:
				if c[tok] == nil {
					c[tok] = map[string]any{}
				}
				cur = c[tok]
			case []any:
				i := 0
				for _, ch := range tok {
					i = i*10 + int(ch-'0')
				}
				cur = c[i]
			}
		}
		var v any
		if err := json.Unmarshal([]byte(m.value), &v); err != nil {
			t.Fatal(err)
		}
		cur.(map[string]any)[m.name] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	inStatus    = []member{{"/status", "futureStatusField", `{"since":"2031-01-01T00:00:00Z"}`}, {"/status", "phase", `"Running"`}}
	inMetadata  = []member{{"/metadata", "futureMetadataField", `"x"`}}
	inContainer = []member{{"/spec/containers/0", "futureContainerField", `[1,{"a":true}]`}}
	inContSC    = []member{{"/spec/containers/0/securityContext", "futureEscapeHatch", `true`}}
	inPodSpec   = []member{{"/spec", "futurePodField", `{"mode":"host"}`}}
)

// unknownOf decodes a pod as the webhook does and returns its unknown fields, path → value as written.
func unknownOf(t *testing.T, pod []byte) map[string]string {
	t.Helper()
	w, err := policy.DecodeWorkload(schema.GroupKind{Kind: "Pod"}, pod)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range w.Unknown {
		out[f.Path] = string(f.Value)
	}
	return out
}

func TestNewerFieldsAreUnknown(t *testing.T) {
	var all []member
	for _, ms := range [][]member{inStatus, inMetadata, inContainer, inContSC, inPodSpec} {
		all = append(all, ms...)
	}
	got := unknownOf(t, withMembers(t, compliantPod("p"), all...))
	want := []string{"status.futureStatusField", "metadata.futureMetadataField", "spec.containers[0].futureContainerField",
		"spec.containers[0].securityContext.futureEscapeHatch", "spec.futurePodField"}
	for _, p := range want {
		if _, ok := got[p]; !ok {
			t.Errorf("%s is not unknown: %v", p, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("unknown fields %v, want %v", got, want)
	}
}

// keepsUnknownFields applies a /mutate patch to the pod exactly as sent, with a JSON-patch library, and
// requires every unknown field to be there afterwards, byte for byte.
func keepsUnknownFields(t *testing.T, sent []byte, resp *admissionv1.AdmissionResponse) []byte {
	t.Helper()
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("patch does not decode: %v\n%s", err, resp.Patch)
	}
	patched, err := p.Apply(sent)
	if err != nil {
		t.Fatalf("patch does not apply to the pod as sent: %v\n%s", err, resp.Patch)
	}
	before, after := unknownOf(t, sent), unknownOf(t, patched)
	if len(before) == 0 {
		t.Fatal("test setup: no unknown field in the pod")
	}
	for path, v := range before {
		if after[path] != v {
			t.Errorf("%s: %q after the patch, was %q\npatch: %s", path, after[path], v, resp.Patch)
		}
	}
	if len(after) != len(before) {
		t.Errorf("unknown fields after the patch %v, before %v", after, before)
	}
	return patched
}

func TestUnknownFieldsVerdicts(t *testing.T) {
	deny := startServer(t, staticPolicy(t))
	warn := startServer(t, staticPolicy(t, "unknownFields: deny", "unknownFields: warn"))
	ignored := append(append([]member{}, inStatus...), inMetadata...)
	judged := []struct {
		name   string
		ms     []member
		fields []string
	}{
		{"a container", inContainer, []string{"spec.containers[0].futureContainerField"}},
		{"a container's securityContext", inContSC, []string{"spec.containers[0].securityContext.futureEscapeHatch"}},
		{"the pod spec", inPodSpec, []string{"spec.futurePodField"}},
		{"all of them, with status and metadata", append(append(append(append([]member{}, inContainer...), inContSC...), inPodSpec...), ignored...),
			// In document order (withMembers writes members sorted).
			[]string{"spec.containers[0].futureContainerField", "spec.containers[0].securityContext.futureEscapeHatch", "spec.futurePodField"}},
	}
	older := policy.KubernetesAPIModule
	changedImage := compliantPod("p")
	changedImage.Spec.Containers[0].Image = "registry.corp.example/agents/runner:1.4.1"

	for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
		review := func(obj []byte) rv {
			r := rv{gvk: podGVK, namespace: agentsNS, name: "p", op: op, obj: obj}
			if op == admissionv1.Update {
				r.old = changedImage // the spec changes: the pod is judged again
			}
			return r
		}
		t.Run(string(op)+"/status and metadata: ignored", func(t *testing.T) {
			for _, ts := range []*testServer{deny, warn} {
				resp := ts.answer("/validate", review(withMembers(t, compliantPod("p"), ignored...)))
				requireAllowed(t, resp)
				if len(resp.Warnings) > 0 {
					t.Errorf("warnings %q", resp.Warnings)
				}
				sent := withMembers(t, minimalPod("p"), ignored...)
				resp = ts.answer("/mutate", review(sent))
				requireAllowed(t, resp)
				if op == admissionv1.Update {
					if resp.Patch != nil {
						t.Errorf("UPDATE patched: %s", resp.Patch)
					}
					continue
				}
				patched := keepsUnknownFields(t, sent, resp)
				requireAllowed(t, ts.answer("/validate", review(patched)))
			}
		})
		for _, c := range judged {
			t.Run(string(op)+"/"+c.name+"/deny", func(t *testing.T) {
				resp := deny.answer("/validate", review(withMembers(t, compliantPod("p"), c.ms...)))
				requireDenied(t, resp, c.fields...)
				if n := strings.Count(resp.Result.Message, "[unknownFields]"); n != len(c.fields) {
					t.Errorf("%d unknownFields violations in %s", n, resp.Result.Message)
				}
				if !strings.Contains(resp.Result.Message, "agentgate's Kubernetes API (k8s.io/api "+older+") does not know this field: the cluster's API server is newer than agentgate (upgrade agentgate first)") {
					t.Errorf("message does not say why: %s", resp.Result.Message)
				}
				// /mutate leaves a pod that will be denied alone; /validate says why.
				resp = deny.answer("/mutate", review(withMembers(t, minimalPod("p"), c.ms...)))
				requireAllowed(t, resp)
				if resp.Patch != nil {
					t.Errorf("a pod to be denied was patched: %s", resp.Patch)
				}
			})
			t.Run(string(op)+"/"+c.name+"/warn", func(t *testing.T) {
				resp := warn.answer("/validate", review(withMembers(t, compliantPod("p"), c.ms...)))
				requireAllowed(t, resp)
				if len(resp.Warnings) != len(c.fields) {
					t.Fatalf("warnings %q, want one per field %v", resp.Warnings, c.fields)
				}
				for i, f := range c.fields {
					if !strings.HasPrefix(resp.Warnings[i], "agentgate[agents]: "+f+": [unknownFields] ") {
						t.Errorf("warning %d %q, want one for %s", i, resp.Warnings[i], f)
					}
				}
				sent := withMembers(t, minimalPod("p"), c.ms...)
				resp = warn.answer("/mutate", review(sent))
				requireAllowed(t, resp)
				if op == admissionv1.Update {
					return
				}
				patched := keepsUnknownFields(t, sent, resp)
				after := warn.answer("/validate", review(patched))
				requireAllowed(t, after)
				if len(after.Warnings) != len(c.fields) {
					t.Errorf("hardened pod: warnings %q", after.Warnings)
				}
			})
		}
	}

	t.Run("oldObject: ignored wherever it is", func(t *testing.T) {
		var all []member
		for _, c := range judged {
			all = append(all, c.ms...)
		}
		before := deny.metric("agentgate_unknown_fields_total", `area="oldObject"`)
		old := withMembers(t, changedImage, all...)
		requireAllowed(t, deny.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "p", op: admissionv1.Update, obj: compliantPod("p"), old: old}))
		if got := deny.metric("agentgate_unknown_fields_total", `area="oldObject"`) - before; got != float64(len(unknownOf(t, old))) {
			t.Errorf("oldObject fields counted %v, want %d", got, len(unknownOf(t, old)))
		}
	})

	t.Run("UPDATE leaving the spec with its unknown fields as it was: not judged again", func(t *testing.T) {
		old := withMembers(t, compliantPod("p"), inContSC...)
		relabelled := compliantPod("p")
		relabelled.Labels["new"] = "label"
		cur := withMembers(t, relabelled, inContSC...)
		requireAllowed(t, deny.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "p", op: admissionv1.Update, obj: cur, old: old}))
		// A change of the unknown field alone is a change of the spec: judged, denied.
		changed := withMembers(t, relabelled, member{"/spec/containers/0/securityContext", "futureEscapeHatch", `false`})
		requireDenied(t, deny.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "p", op: admissionv1.Update, obj: changed, old: old}),
			"spec.containers[0].securityContext.futureEscapeHatch")
	})

	t.Run("controllers: the template's pod spec is judged, the rest ignored", func(t *testing.T) {
		for kind, c := range controllers(compliantPod("x").Spec) {
			tmpl := "/" + strings.ReplaceAll(c.specPath, ".", "/")
			outside := strings.TrimSuffix(tmpl, "/template/spec") // the controller's own spec
			r := rv{gvk: c.gvk, namespace: agentsNS, name: strings.ToLower(kind), obj: withMembers(t, c.obj,
				member{outside, "futureRolloutField", `1`}, member{"/metadata", "futureMeta", `1`}, member{"/status", "futureStatus", `1`},
				member{strings.TrimSuffix(tmpl, "/spec") + "/metadata", "futureTemplateMeta", `1`})}
			requireAllowed(t, deny.answer("/validate", r))
			r.obj = withMembers(t, c.obj, member{tmpl, "futurePodField", `true`})
			requireDenied(t, deny.answer("/validate", r), c.specPath+".futurePodField")
		}
	})

	t.Run("counted by area, logged once per field", func(t *testing.T) {
		for _, area := range []string{"metadata", "status", "spec", "oldObject"} {
			if deny.metric("agentgate_unknown_fields_total", `area="`+area+`"`) == 0 {
				t.Errorf("area %s not counted", area)
			}
		}
		logged := map[string]int{}
		for _, ev := range deny.logs.Events("admission.unknown_field") {
			logged[ev["kind"].(string)+" "+ev["area"].(string)+" "+ev["field"].(string)]++
		}
		for k, n := range logged {
			if n != 1 {
				t.Errorf("%s logged %d times", k, n)
			}
		}
		if logged["Pod status status.futureStatusField"] != 1 || logged["Deployment spec spec.futureRolloutField"] != 1 ||
			logged["Deployment metadata spec.template.metadata.futureTemplateMeta"] != 1 {
			t.Errorf("logged fields: %v", logged)
		}
	})
}

// A policy ConfigMap and a Namespace with fields agentgate does not know are judged on what it knows: the
// guard still refuses a guarded change, /validate-policy still validates the policy.
func TestUnknownFieldsInConfigMapsAndNamespaces(t *testing.T) {
	ts := startServer(t, Options{})
	future := []member{{"/metadata", "futureMeta", `1`}, {"", "futureTopLevel", `{"a":1}`}, {"/status", "futurePhase", `"x"`}}
	agentNS := withMembers(t, namespaceObj("team-a", map[string]string{AgentNamespaceLabel: "true"}), future...)
	plainNS := withMembers(t, namespaceObj("team-a", map[string]string{"team": "a"}), future...)
	nsGVK := metav1.GroupVersionKind{Version: "v1", Kind: "Namespace"}
	resp := ts.answer("/"+EndpointValidateGuard, rv{gvk: nsGVK, name: "team-a", op: admissionv1.Update, obj: plainNS, old: agentNS})
	if resp.Allowed {
		t.Error("guard: label removal allowed because of unknown fields")
	}
	requireAllowed(t, ts.answer("/"+EndpointValidateGuard, rv{gvk: nsGVK, name: "team-a", uid: "u2", op: admissionv1.Update, obj: agentNS, old: agentNS}))

	cm := withMembers(t, policyCM("agentgate-policy-agents", map[string]string{policy.ConfigMapLabel: "true"}, string(policy.DefaultPolicyYAML())), future[:2]...)
	requireAllowed(t, ts.answer("/"+EndpointValidatePolicy, rv{gvk: cmGVK, namespace: "agentgate-system", name: "agentgate-policy-agents", obj: cm}))
	bad := withMembers(t, policyCM("agentgate-policy-agents", map[string]string{policy.ConfigMapLabel: "true"}, "spec: {unknownFields: allow}"), future[:2]...)
	resp = ts.answer("/"+EndpointValidatePolicy, rv{gvk: cmGVK, namespace: "agentgate-system", name: "agentgate-policy-agents", obj: bad})
	if resp.Allowed || !bytes.Contains([]byte(resp.Result.Message), []byte("spec.unknownFields")) {
		t.Errorf("invalid policy: %+v", resp.Result)
	}
	// A duplicate stays ambiguous, wherever it is: the whole review is refused.
	dup := bytes.Replace(cm, []byte(`"futureMeta":1`), []byte(`"futureMeta":1,"futureMeta":2`), 1)
	code, _, body := ts.post("/"+EndpointValidatePolicy, rv{gvk: cmGVK, namespace: "agentgate-system", name: "agentgate-policy-agents", obj: dup}.body(t))
	if code != 400 || !bytes.Contains(body, []byte(`duplicate field \"request.object.metadata.futureMeta\"`)) {
		t.Errorf("duplicate inside an unknown field: HTTP %d %s", code, body)
	}
}
