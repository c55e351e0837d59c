package webhook

// Fuzz targets of the review path. Their seed corpora (testdata/fuzz/<FuzzName>/) run with every `go test`;
// to fuzz one (make fuzz runs them all):
//
//	go test ./webhook/ -run '^$' -fuzz '^FuzzReview$' -fuzztime 5m
//
// Regenerate the seeds from the samples below with: go test ./webhook/ -run TestFuzzSeeds -update-fuzz-seeds

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/policy"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz from the samples in fuzz_test.go")

// reviewEndpoints is every endpoint of the table: a new endpoint is fuzzed without touching this file.
var reviewEndpoints = func() []string {
	var names []string
	for _, e := range endpoints {
		names = append(names, e.name)
	}
	return names
}()

// fuzzServer is one server per fuzzing process, with the embedded default policy and logs written (so that
// the logging code runs too) to nowhere.
func fuzzServer(t testing.TB) http.Handler {
	t.Helper()
	srv, err := New(Options{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, fmt.Errorf("no TLS in fuzzing") },
		Logger:         slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

// FuzzReview posts arbitrary bytes to every review endpoint: never a panic, never a 5xx, never an admission
// of an object that does not decode (checkAnswer has the oracle).
func FuzzReview(f *testing.F) {
	for _, s := range reviewSamples(f) {
		f.Add(s)
	}
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ep := range reviewEndpoints {
			checkAnswer(t, h, ep, body)
		}
	})
}

// FuzzReviewObject keeps the review envelope valid and fuzzes what it carries: kind, operation, subresource,
// requester and both objects. Most inputs then reach the decisions, which raw bytes rarely do.
func FuzzReviewObject(f *testing.F) {
	for _, s := range objectSamples(f) {
		f.Add(s.kind, s.op, s.sub, s.admin, s.obj, s.old)
	}
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, kind, op, sub uint8, admin bool, obj, old []byte) {
		body := envelope(kind, op, sub, admin, obj, old)
		for _, ep := range reviewEndpoints {
			checkAnswer(t, h, ep, body)
		}
	})
}

// FuzzReviewUnknownFields inserts a member (any name, any value) into any object of a Pod, as a newer API
// server would send fields agentgate's k8s.io/api does not know, and posts it to /validate and /mutate on
// CREATE and UPDATE: never a panic, never an admission of a pod whose known fields the default policy
// denies, nor of one with an unknown pod-spec field (unknownFields: deny), and a patch never loses an
// unknown field (checkAnswer has the oracles).
func FuzzReviewUnknownFields(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint16(0), "futureField", []byte(`true`))
	f.Add(uint8(1), uint8(1), uint16(3), "futureEscapeHatch", []byte(`{"host":true}`))
	f.Add(uint8(2), uint8(0), uint16(7), "privileged", []byte(`true`))
	f.Add(uint8(0), uint8(0), uint16(5), "futureStatus", []byte(`[1,{"a":null}]`))
	f.Add(uint8(1), uint8(0), uint16(1), "a/b~c", []byte(`"x"`))
	h := fuzzServer(f)
	pods := [][]byte{mustMarshal(f, minimalPod("p")), mustMarshal(f, compliantPod("p")), mustMarshal(f, badPod("p"))}
	old := compliantPod("p")
	old.Spec.Containers[0].Image = "registry.corp.example/agents/runner:0.9"
	oldJSON := mustMarshal(f, old)
	f.Fuzz(func(t *testing.T, base, op uint8, where uint16, name string, value []byte) {
		var doc map[string]any
		if err := json.Unmarshal(pods[int(base)%len(pods)], &doc); err != nil {
			t.Fatal(err)
		}
		doc["status"] = map[string]any{"phase": "Pending"}
		objects := objectsOf(doc, nil)
		var v any
		if json.Unmarshal(value, &v) != nil {
			v = string(value)
		}
		objects[int(where)%len(objects)][name] = v
		pod, err := json.Marshal(doc)
		if err != nil {
			return // a value encoding/json cannot write back (NaN…): nothing to post
		}
		var body []byte
		if op%2 == 0 {
			body = envelope(0, 0, 0, false, pod, nil)
		} else {
			body = envelope(0, 1, 0, false, pod, oldJSON)
		}
		for _, ep := range []string{EndpointValidate, EndpointMutate} {
			checkAnswer(t, h, ep, body)
		}
		// The pod's known fields alone: if the policy denies them, /validate must not admit the pod.
		w, err := policy.DecodeWorkload(podGK, pod)
		if err != nil {
			return
		}
		w.Unknown = nil
		if res := policy.NewSet(policy.Default()).Judge(w, policy.Namespace{Name: agentsNS}, policy.Requester{}); res.Allowed() {
			return
		}
		r := httptest.NewRequest(http.MethodPost, "/"+EndpointValidate, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var out admissionv1.AdmissionReview
		// (An UPDATE is checked by checkAnswer, which knows when an unchanged spec is not judged again.)
		if json.Unmarshal(rec.Body.Bytes(), &out) == nil && out.Response != nil && out.Response.Allowed && op%2 == 0 {
			t.Fatalf("validate: admitted a pod whose known fields the policy denies:\n%s", pod)
		}
	})
}

// objectsOf lists every JSON object of v, parents first, members in name order: the places to insert into.
func objectsOf(v any, out []map[string]any) []map[string]any {
	switch x := v.(type) {
	case map[string]any:
		out = append(out, x)
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out = objectsOf(x[k], out)
		}
	case []any:
		for _, e := range x {
			out = objectsOf(e, out)
		}
	}
	return out
}

// FuzzDecodeReview: decodeReview never panics; what it accepts has a uid and a known version, decodes to the
// same request with the lenient encoding/json (strictness only ever refuses), and survives a round trip.
func FuzzDecodeReview(f *testing.F) {
	for _, s := range reviewSamples(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		version, req, bad := decodeReview(body)
		if bad != nil {
			if bad.code < 400 || bad.code > 499 || bad.reason == "" || bad.msg == "" {
				t.Fatalf("refusal %+v", bad)
			}
			if req != nil {
				t.Fatal("a refusal with a request")
			}
			return
		}
		if req == nil || req.UID == "" || (version != reviewV1 && version != reviewV1beta1) {
			t.Fatalf("accepted a review with version %q, request %+v", version, req)
		}
		var lenient admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &lenient); err != nil {
			t.Fatalf("strictly accepted, leniently refused: %v", err)
		}
		if !reflect.DeepEqual(lenient.Request, req) {
			t.Fatalf("strict and lenient decodes differ:\n%+v\n%+v", req, lenient.Request)
		}
		again, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: lenient.TypeMeta, Request: req})
		if err != nil {
			t.Fatalf("re-encoding an accepted review: %v", err)
		}
		v2, req2, bad := decodeReview(again)
		if bad != nil || v2 != version || !reflect.DeepEqual(req2, req) {
			t.Fatalf("round trip: %v, %q, %+v\n%s", bad, v2, req2, again)
		}
	})
}

// checkAnswer posts body to endpoint and checks the answer against an oracle that decodes on its own.
func checkAnswer(t *testing.T, h http.Handler, endpoint string, body []byte) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/"+endpoint, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	switch w.Code {
	case http.StatusOK:
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		var st metav1.Status
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Kind != "Status" || st.Code != int32(w.Code) || st.Message == "" {
			t.Fatalf("%s: HTTP %d without a Status body: %s", endpoint, w.Code, w.Body.Bytes())
		}
		return
	default:
		t.Fatalf("%s: HTTP %d: %s", endpoint, w.Code, w.Body.Bytes())
	}

	// A 200 answers a review, so the body must be one; the lenient decoder accepts what the strict one did.
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
		t.Fatalf("%s: answered 200 to a body that is no review (%v): %q", endpoint, err, body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("%s: 200 without an AdmissionReview response: %s", endpoint, w.Body.Bytes())
	}
	resp, req := out.Response, in.Request
	if resp.UID != req.UID || out.APIVersion != in.APIVersion || out.Kind != "AdmissionReview" {
		t.Fatalf("%s: answered uid %q as %s %s to uid %q of %s", endpoint, resp.UID, out.APIVersion, out.Kind, req.UID, in.APIVersion)
	}
	if !resp.Allowed {
		if resp.Result == nil || resp.Result.Code < 400 || resp.Result.Code > 499 || resp.Result.Message == "" {
			t.Fatalf("%s: a refusal without a 4xx status and message: %+v", endpoint, resp.Result)
		}
		if resp.Patch != nil {
			t.Fatalf("%s: a refusal with a patch", endpoint)
		}
		return
	}

	// Allowed: the object must be one the endpoint could judge, or one it is meant to let through unjudged.
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	judged := req.Operation == admissionv1.Create || req.Operation == admissionv1.Update
	switch endpoint {
	case EndpointValidate:
		if !judged {
			if req.Operation != admissionv1.Delete && req.Operation != admissionv1.Connect {
				t.Fatalf("validate: allowed operation %q", req.Operation)
			}
			return // DELETE and CONNECT are not judged, whatever the kind
		}
		if !policy.Supported(gk) {
			t.Fatalf("validate: allowed unsupported kind %s", gk)
		}
		if !(req.SubResource == "" || (gk == podGK && (req.SubResource == "ephemeralcontainers" || req.SubResource == "resize"))) {
			return // status, scale…: not judged
		}
		if req.Kind.Version != "v1" {
			t.Fatalf("validate: allowed %s", gvkString(req.Kind))
		}
		w, err := policy.DecodeWorkload(gk, req.Object.Raw)
		if err != nil {
			t.Fatalf("validate: allowed an object that does not decode as %s: %v\n%q", gk, err, req.Object.Raw)
		}
		if res := policy.NewSet(policy.Default()).Judge(w, policy.Namespace{Name: req.Namespace}, policy.Requester{}); !res.Allowed() && !unchangedSpec(gk, req, w) {
			t.Fatalf("validate: allowed a %s the default policy denies: %v", gk.Kind, res.Violations)
		}
	case EndpointMutate:
		if gk != podGK || req.Operation != admissionv1.Create || req.SubResource != "" {
			if resp.Patch != nil {
				t.Fatalf("mutate: patched %s %s/%s", req.Operation, gk, req.SubResource)
			}
			return
		}
		if _, err := policy.DecodeWorkload(gk, req.Object.Raw); err != nil || req.Kind.Version != "v1" {
			t.Fatalf("mutate: allowed a Pod that does not decode (%v): %q", err, req.Object.Raw)
		}
		if resp.Patch == nil {
			return
		}
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatal("mutate: a patch without patchType JSONPatch")
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("mutate: the patch does not decode: %v", err)
		}
		patched, err := p.Apply(req.Object.Raw)
		if err != nil {
			t.Fatalf("mutate: the patch does not apply to the object sent: %v\n%s", err, resp.Patch)
		}
		after, err := policy.DecodeWorkload(gk, patched)
		if err != nil {
			t.Fatalf("mutate: the patched Pod does not decode: %v\n%s", err, patched)
		}
		// The patch never removes or changes a field agentgate does not know.
		before, _ := policy.DecodeWorkload(gk, req.Object.Raw)
		if len(before.Unknown) != len(after.Unknown) {
			t.Fatalf("mutate: unknown fields %v before the patch, %v after\n%s", before.Unknown, after.Unknown, resp.Patch)
		}
		for i := range before.Unknown {
			if b, a := before.Unknown[i], after.Unknown[i]; b.Path != a.Path || !bytes.Equal(b.Value, a.Value) {
				t.Fatalf("mutate: unknown field %s = %s before the patch, %s = %s after\n%s", b.Path, b.Value, a.Path, a.Value, resp.Patch)
			}
		}
	case EndpointValidatePolicy:
		if !judged || req.SubResource != "" {
			return
		}
		var cm corev1.ConfigMap
		if decodeKnown(req.Object.Raw, &cm) != nil || gk != configMapGK || req.Kind.Version != "v1" {
			t.Fatalf("validate-policy: allowed an object that does not decode as a v1 ConfigMap: %q", req.Object.Raw)
		}
		if policy.IsPolicyConfigMap(&cm, "") {
			if _, errs := policy.Parse([]byte(cm.Data[policy.ConfigMapDataKey])); len(errs) > 0 {
				t.Fatalf("validate-policy: allowed an invalid policy: %v", errs.ToAggregate())
			}
		}
	case EndpointValidateGuard:
		checkGuardAllowed(t, req, gk)
	case EndpointValidateExec:
		checkSessionAllowed(t, req)
	}
}

// checkSessionAllowed: an admitted session is a CONNECT on pods/exec, attach or portforward whose options
// decode strictly as that subresource's kind, and an exec's command passes the default policy (the fuzz
// server has no pod lookup, so the pod is unknown and judged strictly).
func checkSessionAllowed(t *testing.T, req *admissionv1.AdmissionRequest) {
	t.Helper()
	want, ok := execKinds[req.SubResource]
	if req.Operation != admissionv1.Connect || !ok || req.Resource.Resource != "pods" || req.Resource.Group != "" ||
		req.Kind.Kind != want || req.Kind.Version != "v1" || req.Kind.Group != "" || req.Name == "" {
		t.Fatalf("validate-exec: allowed %s %s/%s as %s", req.Operation, req.Resource.Resource, req.SubResource, gvkString(req.Kind))
	}
	var exec corev1.PodExecOptions
	var typ metav1.TypeMeta
	var err error
	switch req.SubResource {
	case "exec":
		err = policy.UnmarshalStrict(req.Object.Raw, &exec)
		typ = exec.TypeMeta
	case "attach":
		var o corev1.PodAttachOptions
		err = policy.UnmarshalStrict(req.Object.Raw, &o)
		typ = o.TypeMeta
	default:
		var o corev1.PodPortForwardOptions
		err = policy.UnmarshalStrict(req.Object.Raw, &o)
		typ = o.TypeMeta
	}
	if err != nil || typ.Kind != want || typ.APIVersion != "v1" {
		t.Fatalf("validate-exec: allowed options that do not decode as v1 %s (%v): %q", want, err, req.Object.Raw)
	}
	if req.SubResource == "exec" {
		r := policy.ExecRequest{Subresource: "exec", Container: exec.Container, Command: exec.Command, TTY: exec.TTY, Stdin: exec.Stdin,
			User: req.UserInfo.Username, Groups: req.UserInfo.Groups}
		if len(exec.Command) == 0 {
			t.Fatal("validate-exec: allowed an exec without a command")
		}
		if res := policy.NewSet(policy.Default()).JudgeExec(nil, policy.Namespace{Name: req.Namespace}, r); !res.Allowed() {
			t.Fatalf("validate-exec: allowed an exec the default policy refuses: %+v", res.Denials)
		}
	}
}

// checkGuardAllowed: an allowed guarded request decoded, and for a requester outside the admin groups made no
// guarded change. The label checks decode on their own; the document checks parse both versions.
func checkGuardAllowed(t *testing.T, req *admissionv1.AdmissionRequest, gk schema.GroupKind) {
	t.Helper()
	if (gk != namespaceGK && gk != configMapGK) || req.Kind.Version != "v1" {
		t.Fatalf("validate-guard: allowed %s", gvkString(req.Kind))
	}
	guarded := req.Operation == admissionv1.Update || (req.Operation == admissionv1.Delete && gk == configMapGK)
	if !guarded {
		return
	}
	admin := slices.Contains(req.UserInfo.Groups, DefaultAdminGroups[0])
	if gk == namespaceGK {
		var old, cur corev1.Namespace
		if decodeKnown(req.OldObject.Raw, &old) != nil || decodeKnown(req.Object.Raw, &cur) != nil {
			t.Fatalf("validate-guard: allowed a Namespace UPDATE that does not decode:\n%q\n%q", req.OldObject.Raw, req.Object.Raw)
		}
		if !admin && labelOf(req.OldObject.Raw, AgentNamespaceLabel) == "true" && labelOf(req.Object.Raw, AgentNamespaceLabel) != "true" {
			t.Fatalf("validate-guard: allowed groups %v to remove %s", req.UserInfo.Groups, AgentNamespaceLabel)
		}
		return
	}
	var old, cur corev1.ConfigMap
	if decodeKnown(req.OldObject.Raw, &old) != nil {
		t.Fatalf("validate-guard: allowed a ConfigMap %s whose oldObject does not decode: %q", req.Operation, req.OldObject.Raw)
	}
	if admin || labelOf(req.OldObject.Raw, policy.ConfigMapLabel) != "true" {
		return
	}
	if req.Operation == admissionv1.Delete {
		t.Fatalf("validate-guard: allowed groups %v to delete a policy", req.UserInfo.Groups)
	}
	if decodeKnown(req.Object.Raw, &cur) != nil {
		t.Fatalf("validate-guard: allowed a ConfigMap UPDATE whose object does not decode: %q", req.Object.Raw)
	}
	if labelOf(req.Object.Raw, policy.ConfigMapLabel) != "true" {
		t.Fatalf("validate-guard: allowed groups %v to remove %s", req.UserInfo.Groups, policy.ConfigMapLabel)
	}
	// Judged from the documents by policy.Parse alone, not by the guard's own comparison: a valid policy may
	// not become invalid, nor drop out of enforce.
	oldDoc, oldHas := old.Data[policy.ConfigMapDataKey]
	if !oldHas {
		return
	}
	from, errs := policy.Parse([]byte(oldDoc))
	if len(errs) > 0 {
		return
	}
	to, errs := policy.Parse([]byte(cur.Data[policy.ConfigMapDataKey]))
	if _, has := cur.Data[policy.ConfigMapDataKey]; !has || len(errs) > 0 {
		t.Fatalf("validate-guard: allowed groups %v to replace a valid policy by one that does not parse", req.UserInfo.Groups)
	}
	if from.Spec.Mode == policy.ModeEnforce && to.Spec.Mode != policy.ModeEnforce {
		t.Fatalf("validate-guard: allowed groups %v to change the mode from %s to %s", req.UserInfo.Groups, from.Spec.Mode, to.Spec.Mode)
	}
}

// unchangedSpec mirrors /validate's rule that an UPDATE of the main resource leaving the pod spec as it was
// is not judged again (pods/resize and pods/ephemeralcontainers always are).
func unchangedSpec(gk schema.GroupKind, req *admissionv1.AdmissionRequest, w *policy.Workload) bool {
	if req.Operation != admissionv1.Update || req.SubResource != "" {
		return false
	}
	old := decodeOldWorkload(req, gk)
	return old != nil && judgedFieldsUnchanged(old, w)
}

func decodeKnown(raw []byte, v any) error {
	if len(raw) == 0 {
		return fmt.Errorf("null")
	}
	_, err := policy.UnmarshalKnown(raw, v)
	return err
}

// labelOf reads one label with the lenient encoding/json.
func labelOf(raw []byte, key string) string {
	var m struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Metadata.Labels[key]
}

// Envelope choices of FuzzReviewObject: an index picks one, so the fuzzer explores them all.
var (
	fuzzKinds = []metav1.GroupVersionKind{
		{Version: "v1", Kind: "Pod"}, {Group: "apps", Version: "v1", Kind: "Deployment"}, {Group: "batch", Version: "v1", Kind: "CronJob"},
		{Version: "v1", Kind: "ConfigMap"}, {Version: "v1", Kind: "Namespace"}, {Version: "v1", Kind: "ReplicationController"},
		{Group: "apps", Version: "v1beta1", Kind: "Deployment"}, {Version: "v1", Kind: "Secret"}, {},
	}
	fuzzOps  = []string{"CREATE", "UPDATE", "DELETE", "CONNECT", "", "PATCH"}
	fuzzSubs = []string{"", "ephemeralcontainers", "status", "resize", "finalize", "scale"}
)

// envelope builds a review around raw objects by concatenation: the objects go in byte for byte, even when
// they are not JSON (then the whole review is refused, which is also checked).
func envelope(kind, op, sub uint8, admin bool, obj, old []byte) []byte {
	gvk := fuzzKinds[int(kind)%len(fuzzKinds)]
	kindJSON, _ := json.Marshal(gvk)
	groups := `["system:authenticated","dev"]`
	if admin {
		groups = `["system:authenticated","system:masters"]`
	}
	ns := "agents"
	switch gvk.Kind {
	case "Namespace":
		ns = ""
	case "ConfigMap":
		ns = "agentgate-system"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"fuzz","kind":%s,`+
		`"resource":{"group":%q,"version":%q,"resource":"x"},"namespace":%q,"operation":%q,"subResource":%q,`+
		`"userInfo":{"username":"fuzzer","groups":%s}`,
		kindJSON, gvk.Group, gvk.Version, ns, fuzzOps[int(op)%len(fuzzOps)], fuzzSubs[int(sub)%len(fuzzSubs)], groups)
	if len(obj) > 0 {
		b.WriteString(`,"object":`)
		b.Write(obj)
	}
	if len(old) > 0 {
		b.WriteString(`,"oldObject":`)
		b.Write(old)
	}
	b.WriteString("}}")
	return b.Bytes()
}

type objectSample struct {
	kind, op, sub uint8
	admin         bool
	obj, old      []byte
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func objectSamples(t testing.TB) []objectSample {
	pod := mustMarshal(t, minimalPod("p"))
	compliant := mustMarshal(t, compliantPod("p"))
	bad := mustMarshal(t, badPod("p"))
	deploy := mustMarshal(t, controllers(minimalPod("x").Spec)["Deployment"].obj)
	cron := mustMarshal(t, controllers(badPod("x").Spec)["CronJob"].obj)
	agentNS := mustMarshal(t, namespaceObj("team-a", map[string]string{AgentNamespaceLabel: "true"}))
	plainNS := mustMarshal(t, namespaceObj("team-a", map[string]string{"team": "a"}))
	doc := string(policy.DefaultPolicyYAML())
	enforce := mustMarshal(t, policyCM("agentgate-policy-agents", map[string]string{policy.ConfigMapLabel: "true"}, doc))
	audit := mustMarshal(t, policyCM("agentgate-policy-agents", map[string]string{policy.ConfigMapLabel: "true"}, strings.Replace(doc, "mode: enforce", "mode: audit", 1)))
	unlabelled := mustMarshal(t, policyCM("agentgate-policy-agents", nil, doc))
	invalid := mustMarshal(t, policyCM("agentgate-policy-agents", map[string]string{policy.ConfigMapLabel: "true"}, "spec: {mode: sometimes}"))
	return []objectSample{
		{kind: 0, op: 0, obj: pod},
		{kind: 0, op: 0, obj: compliant},
		{kind: 0, op: 0, obj: bad},
		{kind: 0, op: 1, obj: bad, old: bad},
		{kind: 0, op: 1, sub: 1, obj: bad, old: pod},
		{kind: 0, op: 2, old: pod},
		{kind: 1, op: 0, obj: deploy},
		{kind: 2, op: 1, obj: cron, old: cron},
		{kind: 3, op: 0, obj: invalid},
		{kind: 3, op: 1, obj: audit, old: enforce},
		{kind: 3, op: 1, obj: unlabelled, old: enforce},
		{kind: 3, op: 1, admin: true, obj: audit, old: enforce},
		{kind: 3, op: 2, old: enforce},
		{kind: 4, op: 1, obj: plainNS, old: agentNS},
		{kind: 4, op: 1, sub: 2, obj: plainNS, old: agentNS},
		{kind: 4, op: 1, admin: true, obj: plainNS, old: agentNS},
		{kind: 4, op: 1, obj: agentNS, old: plainNS},
		{kind: 0, op: 0, obj: []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d"},"spec":{"hostPID":true,"hostPID":false,"containers":[{"name":"a","image":"x"}]}}`)},
		{kind: 4, op: 1, obj: []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a","labels":{"agentgate.io/agents":"true"},"labels":{}}}`), old: agentNS},
		{kind: 0, op: 0, obj: []byte(`null`)},
		{kind: 0, op: 0, obj: []byte(`{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"x","securityContext":{"privileged":"true"}}]}}`)},
		// Fields agentgate's k8s.io/api does not know (README "Cluster upgrades").
		{kind: 0, op: 0, obj: unknownIn(compliant, `"metadata":{`, `"status":{"futureStatus":1},"metadata":{"futureMeta":"x",`)},
		{kind: 0, op: 0, obj: unknownIn(pod, `"name":"runner",`, `"name":"runner","futureContainerField":{"a":[1]},`)},
		{kind: 0, op: 1, obj: unknownIn(bad, `"spec":{`, `"spec":{"futurePodField":true,`), old: unknownIn(pod, `"spec":{`, `"spec":{"futurePodField":false,`)},
		{kind: 1, op: 0, obj: unknownIn(deploy, `"spec":{`, `"spec":{"futureRollout":1,`)},
	}
}

// unknownIn inserts members into a marshalled object by replacing old (which must be there) with new.
func unknownIn(obj []byte, old, new string) []byte {
	if !bytes.Contains(obj, []byte(old)) {
		panic("unknownIn: " + old + " not in " + string(obj))
	}
	return bytes.Replace(obj, []byte(old), []byte(new), 1)
}

// reviewSamples: whole bodies, valid and not, for FuzzReview and FuzzDecodeReview.
func reviewSamples(t testing.TB) [][]byte {
	out := [][]byte{
		nil, []byte("null"), []byte("{}"), []byte(`[]`), []byte(`"x"`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{}}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","uid":"v"}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","Request":{"uid":"u"}}`),
		[]byte("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"\xff\"}}"),
	}
	for _, s := range objectSamples(t) {
		out = append(out, envelope(s.kind, s.op, s.sub, s.admin, s.obj, s.old))
	}
	out = append(out, podReview(badPod("p")).body(t), rv{apiVersion: reviewV1beta1, gvk: podGVK, namespace: agentsNS, name: "p", obj: compliantPod("p")}.body(t))
	out = append(out,
		sessionReview{sub: "exec", obj: execOpts("runner", true, true, "sh")}.body(t),
		sessionReview{sub: "exec", obj: execOpts("", false, false, "sh", "-c", "ls; rm -rf /")}.body(t),
		sessionReview{sub: "attach", obj: attachOpts("runner", false, true)}.body(t),
		sessionReview{sub: "portforward", obj: portForwardOpts(8080, 9090)}.body(t),
		sessionReview{sub: "exec", kind: "PodAttachOptions", obj: execOpts("runner", false, false, "ls")}.body(t))
	return out
}

// TestFuzzSeeds keeps testdata/fuzz in step with the samples above (rewritten with -update-fuzz-seeds), so
// that every `go test` replays them through the fuzz targets' checks.
func TestFuzzSeeds(t *testing.T) {
	seeds := map[string][]string{}
	for _, b := range reviewSamples(t) {
		seeds["FuzzReview"] = append(seeds["FuzzReview"], fmt.Sprintf("[]byte(%s)", strconv.Quote(string(b))))
	}
	seeds["FuzzDecodeReview"] = seeds["FuzzReview"]
	for _, s := range objectSamples(t) {
		seeds["FuzzReviewObject"] = append(seeds["FuzzReviewObject"], fmt.Sprintf("byte(%d)\nbyte(%d)\nbyte(%d)\nbool(%v)\n[]byte(%s)\n[]byte(%s)",
			s.kind, s.op, s.sub, s.admin, strconv.Quote(string(s.obj)), strconv.Quote(string(s.old))))
	}
	for name, ss := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		for i, s := range ss {
			path := filepath.Join(dir, fmt.Sprintf("seed%02d", i))
			want := "go test fuzz v1\n" + s + "\n"
			if *updateFuzzSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s is missing or stale (regenerate: go test ./webhook/ -run TestFuzzSeeds -update-fuzz-seeds)", path)
			}
		}
	}
}
