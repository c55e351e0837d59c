package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/policy"
)

// Results, the result label of agentgate_admission_requests_total.
const (
	resultAllowed = "allowed"
	resultDenied  = "denied"
	resultWarned  = "warned"
	resultError   = "error"
)

var (
	podGK       = schema.GroupKind{Kind: "Pod"}
	configMapGK = schema.GroupKind{Kind: "ConfigMap"}
)

// decision is what a decider returns: the answer, how to count it, and what the review's event says.
type decision struct {
	resp   *admissionv1.AdmissionResponse
	result string
	// bad is the agentgate_bad_requests_total reason when the object could not be judged.
	bad string
	audit
}

// with is the decision carrying a.
func (d decision) with(a audit) decision {
	d.audit = a
	return d
}

// noted is the decision with its event's note.
func (d decision) noted(note string) decision {
	d.note = note
	return d
}

func allow() decision {
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: true}, result: resultAllowed}
}

// refuse is a decision that the request cannot be judged: never an admission.
func refuse(reason string, code int32, format string, args ...any) decision {
	return decision{resp: refusal(code, "agentgate: "+fmt.Sprintf(format, args...)), result: resultError, bad: reason}
}

type decider func(ctx context.Context, rv review) decision

// serveReview is the pipeline shared by the three review endpoints: method, content type, size, strict
// decoding, the decision, the answer in the version asked, metrics.
func (s *Server) serveReview(endpoint string, decide decider) http.HandlerFunc {
	// The series of this endpoint, looked up once rather than per request.
	bodyBytes, duration := s.metrics.bodyBytes.WithLabelValues(endpoint), s.metrics.duration.WithLabelValues(endpoint)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, bad := s.readBody(w, r)
		if bad == nil {
			bodyBytes.Observe(float64(len(body)))
		}
		var apiVersion string
		var req *admissionv1.AdmissionRequest
		if bad == nil {
			apiVersion, req, bad = decodeReviewObjects(body)
		}
		if bad != nil {
			s.metrics.badRequests.WithLabelValues(endpoint, bad.reason).Inc()
			s.log.Warn("bad request refused", "event", "admission.bad_request", "endpoint", endpoint, "reason", bad.reason,
				"code", bad.code, "error", bad.msg, "remote", r.RemoteAddr)
			writeStatus(w, bad.code, bad.msg)
			return
		}
		rv := review{endpoint: endpoint, req: req}
		ctx, cancel := requestContext(r.Context(), r.URL.Query().Get("timeout"))
		d := decide(ctx, rv)
		cancel()
		d.resp.UID = req.UID
		if d.bad != "" {
			s.metrics.badRequests.WithLabelValues(endpoint, d.bad).Inc()
		}
		answer, err := encodeReview(apiVersion, d.resp)
		if err != nil { // unreachable with these types; never admit on a failure
			d = refuse("encode", 500, "encoding the answer: %v", err)
			d.resp.UID = req.UID
			answer, _ = encodeReview(apiVersion, d.resp)
		}
		// Counted and logged before the answer leaves: whoever reads the answer finds the event and metric.
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(endpoint, s.kindLabel(req), operationLabel(req.Operation), d.result).Inc()
		duration.Observe(elapsed.Seconds())
		rv.emit(s.log, d, elapsed)
		if err := writeJSON(w, answer); err != nil {
			s.log.Warn("writing answer failed", "event", "http.write_failed", "endpoint", endpoint, "uid", string(req.UID), "error", err.Error())
		}
	}
}

// operationLabel, like kindLabel, keeps metric labels to bounded sets whatever a client sends.
func operationLabel(op admissionv1.Operation) string {
	switch op {
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		return string(op)
	}
	return "other"
}

// validate judges Pods (CREATE, UPDATE, and the ephemeralcontainers and resize subresources, whose object is
// the whole Pod) and the pod templates of controllers, as they will be after hardening.
func (s *Server) validate(ctx context.Context, rv review) decision {
	req := rv.req
	if d, judged := createOrUpdate(req); !judged {
		return d
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	switch gk {
	case networkPolicyGK:
		return s.validateNetworkPolicy(ctx, rv)
	case secretGK:
		return s.validateSecret(ctx, rv)
	}
	tk, templated := s.podTemplateKind(req)
	if !policy.Supported(gk) && !templated {
		// Only a misconfigured webhook sends another kind. Fail closed, and say what to fix.
		return s.unsupportedKind(req)
	}
	if gk == podGK && req.SubResource == "status" {
		return s.validatePodStatus(ctx, rv)
	}
	if !judgedSubResource(gk, req.SubResource) {
		return allow().noted("subresource not judged")
	}
	var w *policy.Workload
	var d decision
	var ok bool
	if templated {
		w, d, ok = s.decodeTemplateWorkload(req, tk)
	} else {
		w, d, ok = s.decodeWorkload(req, gk)
	}
	if !ok {
		return d
	}
	about := audit{object: displayName(w.Meta)}
	s.metrics.unknown.note(s.log, w.Kind, w.PodMetaPath.String(), false, w.Unknown)
	// The oldObject of a main-resource UPDATE of a kind judged by its type, decoded once for both uses below (a
	// cluster newer than agentgate sends fields that make each decode a slow one).
	var old *policy.Workload
	if req.Operation == admissionv1.Update && req.SubResource == "" && !templated {
		if old = decodeOldWorkload(req, gk); old != nil {
			s.metrics.unknown.note(s.log, old.Kind, old.PodMetaPath.String(), true, old.Unknown)
		}
	}
	if gk == podGK && old != nil {
		if d, refused := s.relabelledOut(ctx, rv, old, w, about.object); refused {
			return d
		}
	}
	if req.Operation == admissionv1.Update && req.SubResource == "" && (templated && unchangedTemplate(req, tk, w) || old != nil && judgedFieldsUnchanged(old, w)) {
		// Updates of what no check reads (finalizers, owner references, a Pod's labels, a controller's own
		// metadata, a scale through the main resource) of an object admitted earlier: judging them again could
		// block a pod's deletion after a policy change. What agentgate judges did not change. Not for
		// pods/resize and pods/ephemeralcontainers: they exist to change the spec, so they are always judged,
		// whole.
		about.note = "judged fields unchanged"
		return allow().with(about)
	}
	snap := s.store.Snapshot()
	ns, nsNote := s.namespace(ctx, rv, about.object, snap.Set)
	about.note = nsNote
	if d, missing := s.egressNotInPlace(req, gk, w, snap.Set, ns); missing {
		return d.with(about)
	}
	about.generation = snap.Generation
	return s.answerJudged(rv, gk, w.Kind, snap.Set.Judge(w, ns, requester(req)), about)
}

// answerJudged counts a judged object's exemptions (each logged as admission.exempted) and violations, and
// answers with its verdict; the decision carries the result for the review's event.
func (s *Server) answerJudged(rv review, gk schema.GroupKind, kind string, res policy.Result, about audit) decision {
	about.judged = &res
	for _, ex := range res.Exemptions {
		s.metrics.exemptions.WithLabelValues(ex.Policy, ex.Reason).Inc()
		rv.exempted(s.log, about.object, ex)
	}
	for _, v := range res.Violations {
		s.metrics.violations.WithLabelValues(v.Policy, v.Check, string(v.Mode), kind).Inc()
	}
	return verdict(gk, kind, about.object, res).with(about)
}

// judgedSubResource: the main resource, and the Pod subresources that change containers. Others (status,
// scale, binding, eviction…) do not change what agentgate judges.
func judgedSubResource(gk schema.GroupKind, sub string) bool {
	switch sub {
	case "":
		return true
	case "ephemeralcontainers", "resize":
		return gk == podGK
	}
	return false
}

// judgedFieldsUnchanged reports whether an UPDATE leaves everything the checks read as it was: the pod spec,
// and for a controller its pod template's labels (podSelector) and annotations (AppArmor's per-container form,
// and whatever a check reads next). A template's metadata becomes every new pod's, so a Deployment update that
// only adds an AppArmor "unconfined" annotation to its template is judged like its CREATE. A running Pod's own
// labels and annotations change nothing that runs (the API server refuses changes to its AppArmor annotations),
// so relabelling an old pod stays possible after a policy change, unless it leaves a policy (relabelledOut).
// An oldObject that does not decode counts as changed: the new object is judged. Fields of the pod spec that
// agentgate's k8s.io/api does not know are compared too (by value); those of the oldObject are counted, never
// judged.
func judgedFieldsUnchanged(old, w *policy.Workload) bool {
	if !equality.Semantic.DeepEqual(old.Spec, w.Spec) || !samePodSpecUnknown(old, w) {
		return false
	}
	return w.IsPod() || maps.Equal(old.PodMeta.Labels, w.PodMeta.Labels) && maps.Equal(old.PodMeta.Annotations, w.PodMeta.Annotations)
}

// decodeOldWorkload decodes request.oldObject by its kind; nil when there is none or it does not decode.
func decodeOldWorkload(req *admissionv1.AdmissionRequest, gk schema.GroupKind) *policy.Workload {
	if len(req.OldObject.Raw) == 0 {
		return nil
	}
	var old *policy.Workload
	var err error
	if req.OldObject.Object != nil { // decoded by its kind in decodeReview's single pass
		old, err = policy.NewWorkload(req.OldObject.Object)
	} else {
		old, err = policy.DecodeWorkload(gk, req.OldObject.Raw)
	}
	if err != nil {
		return nil
	}
	return old
}

// samePodSpecUnknown compares the pod-spec fields agentgate's k8s.io/api does not know, by path and value.
func samePodSpecUnknown(old, w *policy.Workload) bool {
	oldUnknown, unknown := old.PodSpecUnknown(), w.PodSpecUnknown()
	if len(oldUnknown) != len(unknown) {
		return false
	}
	for i := range unknown {
		if oldUnknown[i].Path != unknown[i].Path || !sameJSON(oldUnknown[i].Value, unknown[i].Value) {
			return false
		}
	}
	return true
}

// sameJSON compares two JSON values as the API server would write them: whitespace aside.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// requester is who sent the request, for the exemptions and token allowances anchored to it.
func requester(req *admissionv1.AdmissionRequest) policy.Requester {
	return policy.Requester{Username: req.UserInfo.Username, Groups: req.UserInfo.Groups}
}

// mutate hardens Pods at CREATE with a JSON patch computed by diff against the object exactly as sent.
// Everything else is admitted unchanged: controllers are never mutated (DESIGN.md), and /validate judges.
func (s *Server) mutate(ctx context.Context, rv review) decision {
	req := rv.req
	if operationLabel(req.Operation) == "other" {
		return refuse("operation", 400, "unsupported operation %q", req.Operation)
	}
	if req.Kind.Kind == "" || req.Kind.Version == "" {
		return refuse("unsupported_kind", 400, "request.kind is empty")
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if gk != podGK || req.Operation != admissionv1.Create || req.SubResource != "" {
		return allow().noted("only Pod CREATE is mutated")
	}
	w, d, ok := s.decodeWorkload(req, gk)
	if !ok {
		return d
	}
	about := audit{object: displayName(w.Meta)}
	snap := s.store.Snapshot()
	about.generation = snap.Generation
	ns, nsNote := s.namespace(ctx, rv, about.object, snap.Set)
	about.note = nsNote
	rq := requester(req)
	// Pin first: whether hardening is worth doing depends on the verdict, and requireDigest judges the pins.
	pinnedPod, pinned := s.pinDigests(ctx, snap.Set, w, ns, rq)
	hardened, changed := snap.Set.Mutate(pinnedPod, ns, rq)
	changed = changed || pinned
	if !changed {
		return allow().with(about)
	}
	ops, err := policy.CreatePatch(req.Object.Raw, w.Object, hardened.Object)
	if err != nil {
		return refuse("patch", 500, "computing the hardening patch: %v", err).with(about)
	}
	if len(ops) == 0 {
		return allow().with(about)
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return refuse("patch", 500, "encoding the hardening patch: %v", err).with(about)
	}
	about.patched = make([]string, len(ops))
	for i, op := range ops {
		about.patched[i] = op.Operation + " " + op.Path
	}
	pt := admissionv1.PatchTypeJSONPatch
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}, result: resultAllowed}.with(about)
}

// validatePolicy refuses a policy ConfigMap whose document does not parse, with every field error at once,
// so that an invalid policy never reaches the server's watch.
func (s *Server) validatePolicy(ctx context.Context, rv review) decision {
	req := rv.req
	if d, judged := createOrUpdate(req); !judged {
		return d
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if gk != configMapGK || req.Kind.Version != "v1" {
		return refuse("unsupported_kind", 400, "/validate-policy judges v1 ConfigMaps, not %s: fix the webhook configuration", gvkString(req.Kind))
	}
	if req.SubResource != "" {
		return allow().noted("subresource not judged")
	}
	if len(req.Object.Raw) == 0 {
		return refuse("null_object", 400, "request.object is null for %s", req.Operation)
	}
	// A field of the ConfigMap that agentgate's k8s.io/api does not know cannot change the policy it holds
	// (data does): it is counted and otherwise ignored, so that a newer API server does not block policies.
	var cm corev1.ConfigMap
	unknown, err := policy.UnmarshalKnown(req.Object.Raw, &cm)
	if err != nil {
		return refuse("object_decode", 400, "cannot decode request.object as v1 ConfigMap: %v", err)
	}
	s.metrics.unknown.note(s.log, "ConfigMap", "", false, unknown)
	if d, ok := checkTypeAndNamespace(req, &cm.TypeMeta, &cm.ObjectMeta); !ok {
		return d
	}
	about := audit{object: displayName(&cm.ObjectMeta)}
	if !policy.IsPolicyConfigMap(&cm, s.opts.PolicyNamespace) {
		if v, ok := cm.Labels[policy.ConfigMapLabel]; ok {
			warning := fmt.Sprintf("agentgate: label %s=%q does not make this ConfigMap a policy: only %q does", policy.ConfigMapLabel, v, policy.ConfigMapLabelValue)
			about.note = "label value is not " + policy.ConfigMapLabelValue
			if v == policy.ConfigMapLabelValue {
				warning = fmt.Sprintf("agentgate: a ConfigMap in namespace %q is no policy: agentgate reads policies in %q only", cm.Namespace, s.opts.PolicyNamespace)
				about.note = "outside the policy namespace"
			}
			return decision{resp: &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{warning}}, result: resultWarned}.with(about)
		}
		about.note = "not a policy ConfigMap"
		return allow().with(about)
	}
	p, errs := policy.ParseConfigMap(&cm)
	if len(errs) == 0 {
		warnings, previewNote := s.previewPolicy(ctx, p)
		about.note = "valid policy " + strconv.Quote(p.Name) + previewNote
		d := allow().with(about)
		d.resp.Warnings = warnings
		return d
	}
	st := invalidStatus(configMapGK, cm.Name, errs, policyDenialMessage(cm.Name, errs))
	about.policyErrors = errorStrings(errs)
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: st}, result: resultDenied}.with(about)
}

// decodeWorkload decodes request.object once, strictly, by request.kind, and checks that the object says the
// same kind and namespace as the request.
func (s *Server) decodeWorkload(req *admissionv1.AdmissionRequest, gk schema.GroupKind) (*policy.Workload, decision, bool) {
	if req.Kind.Version != "v1" {
		return nil, refuse("unsupported_version", 400, "agentgate judges %s/v1, not %s: set matchPolicy: Equivalent in the webhook configuration", gk.String(), gvkString(req.Kind)), false
	}
	if len(req.Object.Raw) == 0 {
		return nil, refuse("null_object", 400, "request.object is null for %s of %s", req.Operation, gvkString(req.Kind)), false
	}
	var w *policy.Workload
	var err error
	if req.Object.Object != nil { // decoded by its kind in decodeReview's single pass
		w, err = policy.NewWorkload(req.Object.Object)
	} else {
		w, err = policy.DecodeWorkload(gk, req.Object.Raw)
	}
	if err != nil {
		// Name the mismatch when there is one: clearer than the unknown fields it causes.
		var tm metav1.TypeMeta
		if json.Unmarshal(req.Object.Raw, &tm) == nil && tm.Kind != "" && (tm.Kind != req.Kind.Kind || tm.APIVersion != apiVersionOf(req.Kind)) {
			return nil, refuse("kind_mismatch", 400, "request.kind is %s but request.object is %s %s", gvkString(req.Kind), tm.APIVersion, tm.Kind), false
		}
		return nil, refuse("object_decode", 400, "cannot decode request.object as %s: %v", gvkString(req.Kind), err), false
	}
	tm := metav1.TypeMeta{}
	gvk := w.Object.GetObjectKind().GroupVersionKind()
	tm.APIVersion, tm.Kind = gvk.ToAPIVersionAndKind()
	if d, ok := checkTypeAndNamespace(req, &tm, w.Meta); !ok {
		return nil, d, false
	}
	return w, decision{}, true
}

// checkTypeAndNamespace refuses an object whose apiVersion/kind differ from request.kind, or whose namespace
// differs from request.namespace: such a review is ambiguous about what is admitted.
func checkTypeAndNamespace(req *admissionv1.AdmissionRequest, tm *metav1.TypeMeta, meta *metav1.ObjectMeta) (decision, bool) {
	if tm.Kind != req.Kind.Kind || tm.APIVersion != apiVersionOf(req.Kind) {
		return refuse("kind_mismatch", 400, "request.kind is %s but request.object is %q %q", gvkString(req.Kind), tm.APIVersion, tm.Kind), false
	}
	if meta.Namespace != "" && meta.Namespace != req.Namespace {
		return refuse("namespace_mismatch", 400, "request.namespace is %q but request.object.metadata.namespace is %q", req.Namespace, meta.Namespace), false
	}
	return decision{}, true
}

func apiVersionOf(gvk metav1.GroupVersionKind) string {
	return schema.GroupVersion{Group: gvk.Group, Version: gvk.Version}.String()
}

func gvkString(gvk metav1.GroupVersionKind) string {
	if gvk.Kind == "" {
		return "an empty kind"
	}
	return apiVersionOf(gvk) + " " + gvk.Kind
}

// namespace is what the policies know of the request's namespace: its labels (cached; read live when the
// cached ones leave a policy out, since the request reaching the webhook proves the API server's selector
// matched; unknown, the strict side, when that read fails) and its service-account token Secrets. The note is
// for the review's event when the labels could not be trusted; object names the object in a failure's event.
func (s *Server) namespace(ctx context.Context, rv review, object string, set *policy.Set) (ns policy.Namespace, note string) {
	name := rv.req.Namespace
	ns = policy.Namespace{Name: name}
	if s.opts.TokenSecrets != nil {
		ns.IsTokenSecret = func(secret string) bool { return s.opts.TokenSecrets.IsTokenSecret(name, secret) }
	}
	if s.opts.Namespaces == nil {
		return ns, ""
	}
	ns.Labels = s.opts.Namespaces.Labels(name)
	if !set.NamespaceExcludes(ns) {
		return ns, ""
	}
	live, ok := s.opts.Namespaces.(LiveNamespaceReader)
	if !ok {
		ns.Labels = nil
		return ns, "namespace labels may be stale: judged with labels unknown"
	}
	labels, err := live.LiveLabels(ctx, name)
	if err != nil {
		s.log.Warn("namespace labels could not be read live: judged with labels unknown (the strict side)", append(rv.common(object),
			"event", "namespace.live_read_failed", "error", err.Error())...)
		ns.Labels = nil
		return ns, ""
	}
	ns.Labels = labels
	return ns, ""
}

func displayName(m *metav1.ObjectMeta) string {
	if m.Name == "" && m.GenerateName != "" {
		return m.GenerateName
	}
	return m.Name
}

// createOrUpdate says whether the review is a CREATE or UPDATE, the operations that are judged. DELETE and
// CONNECT are allowed (nothing new is admitted); anything else is refused as malformed.
func createOrUpdate(req *admissionv1.AdmissionRequest) (decision, bool) {
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
		return decision{}, true
	case admissionv1.Delete, admissionv1.Connect:
		return allow().noted("operation not judged"), false
	}
	return refuse("operation", 400, "unsupported operation %q", req.Operation), false
}
