package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

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

// decision is what a decider returns: the answer and how to count it.
type decision struct {
	resp   *admissionv1.AdmissionResponse
	result string
	// bad is the agentgate_bad_requests_total reason when the object could not be judged.
	bad string
}

func allow() decision {
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: true}, result: resultAllowed}
}

// refuse is a decision that the request cannot be judged: never an admission.
func refuse(reason string, code int32, format string, args ...any) decision {
	return decision{resp: refusal(code, "agentgate: "+fmt.Sprintf(format, args...)), result: resultError, bad: reason}
}

type decider func(ctx context.Context, req *admissionv1.AdmissionRequest, ev *event) decision

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
		ev := newEvent(endpoint, req)
		ctx, cancel := requestContext(r.Context(), r.URL.Query().Get("timeout"))
		d := decide(ctx, req, ev)
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
		ev.emit(s.log, d, elapsed)
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
func (s *Server) validate(ctx context.Context, req *admissionv1.AdmissionRequest, ev *event) decision {
	if d, judged := createOrUpdate(req, ev); !judged {
		return d
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if gk == networkPolicyGK {
		return s.validateNetworkPolicy(ctx, req, ev)
	}
	tk, templated := s.podTemplateKind(req)
	if !policy.Supported(gk) && !templated {
		// Only a misconfigured webhook sends another kind. Fail closed, and say what to fix.
		return s.unsupportedKind(req)
	}
	if !judgedSubResource(gk, req.SubResource) {
		ev.note = "subresource not judged"
		return allow()
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
	ev.setObject(w.Meta)
	s.metrics.unknown.note(s.log, w.Kind, w.PodMetaPath.String(), false, w.Unknown)
	if req.Operation == admissionv1.Update && req.SubResource == "" && (templated && unchangedTemplate(req, tk, w) || !templated && s.unchangedJudgedFields(req, gk, w)) {
		// Updates of what no check reads (finalizers, owner references, a Pod's labels, a controller's own
		// metadata, a scale through the main resource) of an object admitted earlier: judging them again could
		// block a pod's deletion after a policy change. What agentgate judges did not change. Not for
		// pods/resize and pods/ephemeralcontainers: they exist to change the spec, so they are always judged,
		// whole.
		ev.note = "judged fields unchanged"
		return allow()
	}
	snap := s.store.Snapshot()
	ns := s.namespace(ctx, req.Namespace, snap.Set, ev)
	if d, missing := s.missingEgress(req, gk, w, snap.Set, ns); missing {
		return d
	}
	res := snap.Set.Judge(w, ns, requester(req))
	ev.generation = snap.Generation
	ev.result = &res
	for _, ex := range res.Exemptions {
		s.metrics.exemptions.WithLabelValues(ex.Policy, ex.Reason).Inc()
		ev.exempted(s.log, ex)
	}
	for _, v := range res.Violations {
		s.metrics.violations.WithLabelValues(v.Policy, v.Check, string(v.Mode), w.Kind).Inc()
	}
	enforce, warn := res.ByMode(policy.ModeEnforce), res.ByMode(policy.ModeWarn)
	warnings := make([]string, 0, min(len(warn), maxListed+1))
	for i, v := range warn {
		if i == maxListed {
			warnings = append(warnings, fmt.Sprintf("agentgate: %d more warnings not shown", len(warn)-maxListed))
			break
		}
		warnings = append(warnings, "agentgate["+v.Policy+"]: "+v.Field+": "+v.Message)
	}
	if len(enforce) > 0 {
		st := invalidStatus(gk, displayName(w.Meta), enforce.FieldErrors(), denialMessage(w.Kind, displayName(w.Meta), enforce))
		return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: st, Warnings: nilIfEmpty(warnings)}, result: resultDenied}
	}
	if len(warnings) > 0 {
		return decision{resp: &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}, result: resultWarned}
	}
	return allow()
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

// unchangedJudgedFields reports whether an UPDATE leaves everything the checks read as it was: the pod spec,
// and for a controller its pod template's labels (podSelector) and annotations (AppArmor's per-container form,
// and whatever a check reads next). A template's metadata becomes every new pod's, so a Deployment update that
// only adds an AppArmor "unconfined" annotation to its template is judged like its CREATE. A running Pod's own
// labels and annotations change nothing that runs (the API server refuses changes to its AppArmor annotations),
// so relabelling an old pod stays possible after a policy change. An oldObject that does not decode counts as
// changed: the new object is judged. Fields of the pod spec that agentgate's k8s.io/api does not know are
// compared too (by value); those of the oldObject are counted, never judged.
func (s *Server) unchangedJudgedFields(req *admissionv1.AdmissionRequest, gk schema.GroupKind, w *policy.Workload) bool {
	old := decodeOldWorkload(req, gk)
	if old == nil {
		return false
	}
	s.metrics.unknown.note(s.log, old.Kind, old.PodMetaPath.String(), true, old.Unknown)
	return judgedFieldsUnchanged(old, w)
}

// judgedFieldsUnchanged is unchangedJudgedFields once the oldObject is decoded.
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
func (s *Server) mutate(ctx context.Context, req *admissionv1.AdmissionRequest, ev *event) decision {
	if operationLabel(req.Operation) == "other" {
		return refuse("operation", 400, "unsupported operation %q", req.Operation)
	}
	if req.Kind.Kind == "" || req.Kind.Version == "" {
		return refuse("unsupported_kind", 400, "request.kind is empty")
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if gk != podGK || req.Operation != admissionv1.Create || req.SubResource != "" {
		ev.note = "only Pod CREATE is mutated"
		return allow()
	}
	w, d, ok := s.decodeWorkload(req, gk)
	if !ok {
		return d
	}
	ev.setObject(w.Meta)
	snap := s.store.Snapshot()
	ev.generation = snap.Generation
	ns, rq := s.namespace(ctx, req.Namespace, snap.Set, ev), requester(req)
	// Pin first: whether hardening is worth doing depends on the verdict, and requireDigest judges the pins.
	pinnedPod, pinned := s.pinDigests(ctx, snap.Set, w, ns, rq)
	hardened, changed := snap.Set.Mutate(pinnedPod, ns, rq)
	changed = changed || pinned
	if !changed {
		return allow()
	}
	ops, err := policy.CreatePatch(req.Object.Raw, w.Object, hardened.Object)
	if err != nil {
		return refuse("patch", 500, "computing the hardening patch: %v", err)
	}
	if len(ops) == 0 {
		return allow()
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return refuse("patch", 500, "encoding the hardening patch: %v", err)
	}
	ev.patched = make([]string, len(ops))
	for i, op := range ops {
		ev.patched[i] = op.Operation + " " + op.Path
	}
	pt := admissionv1.PatchTypeJSONPatch
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}, result: resultAllowed}
}

// validatePolicy refuses a policy ConfigMap whose document does not parse, with every field error at once,
// so that an invalid policy never reaches the server's watch.
func (s *Server) validatePolicy(ctx context.Context, req *admissionv1.AdmissionRequest, ev *event) decision {
	if d, judged := createOrUpdate(req, ev); !judged {
		return d
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if gk != configMapGK || req.Kind.Version != "v1" {
		return refuse("unsupported_kind", 400, "/validate-policy judges v1 ConfigMaps, not %s: fix the webhook configuration", gvkString(req.Kind))
	}
	if req.SubResource != "" {
		ev.note = "subresource not judged"
		return allow()
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
	ev.setObject(&cm.ObjectMeta)
	if !policy.IsPolicyConfigMap(&cm, s.opts.PolicyNamespace) {
		if v, ok := cm.Labels[policy.ConfigMapLabel]; ok {
			warning := fmt.Sprintf("agentgate: label %s=%q does not make this ConfigMap a policy: only %q does", policy.ConfigMapLabel, v, policy.ConfigMapLabelValue)
			ev.note = "label value is not " + policy.ConfigMapLabelValue
			if v == policy.ConfigMapLabelValue {
				warning = fmt.Sprintf("agentgate: a ConfigMap in namespace %q is no policy: agentgate reads policies in %q only", cm.Namespace, s.opts.PolicyNamespace)
				ev.note = "outside the policy namespace"
			}
			return decision{resp: &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{warning}}, result: resultWarned}
		}
		ev.note = "not a policy ConfigMap"
		return allow()
	}
	p, errs := policy.ParseConfigMap(&cm)
	if len(errs) == 0 {
		ev.note = "valid policy " + strconv.Quote(p.Name)
		d := allow()
		d.resp.Warnings = s.previewPolicy(ctx, p, ev)
		return d
	}
	st := invalidStatus(configMapGK, cm.Name, errs, policyDenialMessage(cm.Name, errs))
	ev.policyErrors = errorStrings(errs)
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: st}, result: resultDenied}
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
// matched; unknown, the strict side, when that read fails) and its service-account token Secrets.
func (s *Server) namespace(ctx context.Context, name string, set *policy.Set, ev *event) policy.Namespace {
	ns := policy.Namespace{Name: name}
	if s.opts.TokenSecrets != nil {
		ns.IsTokenSecret = func(secret string) bool { return s.opts.TokenSecrets.IsTokenSecret(name, secret) }
	}
	if s.opts.Namespaces == nil {
		return ns
	}
	ns.Labels = s.opts.Namespaces.Labels(name)
	if !set.NamespaceExcludes(ns) {
		return ns
	}
	live, ok := s.opts.Namespaces.(LiveNamespaceReader)
	if !ok {
		ns.Labels = nil
		ev.note = "namespace labels may be stale: judged with labels unknown"
		return ns
	}
	labels, err := live.LiveLabels(ctx, name)
	if err != nil {
		s.log.Warn("namespace labels could not be read live: judged with labels unknown (the strict side)", append(ev.common(),
			"event", "namespace.live_read_failed", "error", err.Error())...)
		ns.Labels = nil
		return ns
	}
	ns.Labels = labels
	return ns
}

func displayName(m *metav1.ObjectMeta) string {
	if m.Name == "" && m.GenerateName != "" {
		return m.GenerateName
	}
	return m.Name
}

// maxListed bounds the violations spelled out in a message, the warnings and a log line; details.causes
// carries up to maxCauses. A pathological pod (thousands of containers) must not produce megabytes of text,
// nor the quadratic cost of apierrors.NewInvalid's aggregated message.
const (
	maxListed = 50
	maxCauses = 1000
)

// invalidStatus is apierrors.NewInvalid's Status (422, reason Invalid, a cause per field error) with agentgate's
// own message.
func invalidStatus(gk schema.GroupKind, name string, errs field.ErrorList, msg string) *metav1.Status {
	causes := make([]metav1.StatusCause, 0, min(len(errs), maxCauses+1))
	for i, e := range errs {
		if i == maxCauses {
			causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeTooMany, Message: fmt.Sprintf("%d more causes not shown", len(errs)-maxCauses)})
			break
		}
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(e.Type), Message: e.ErrorBody(), Field: e.Field})
	}
	return &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnprocessableEntity,
		Reason:  metav1.StatusReasonInvalid,
		Message: msg,
		Details: &metav1.StatusDetails{Group: gk.Group, Kind: gk.Kind, Name: name, Causes: causes},
	}
}

// denialMessage lists the violations in one readable line; the causes carry them one by one.
func denialMessage(kind, name string, vs policy.Violations) string {
	var b strings.Builder
	fmt.Fprintf(&b, "agentgate: %s %q denied by ", kind, name)
	listByPolicy(&b, len(vs), func(i int) string { return vs[i].Policy }, func(i int) string { return vs[i].Field + ": " + vs[i].Message },
		"; and %d more violations (every one is in details.causes)")
	return b.String()
}

// listByPolicy writes `policy "p": ` (or `policies "a", "b": `) and then the n items, "; "-separated, each
// prefixed with "(its policy) " when there are several policies; after maxListed it writes more with the
// count left. Denials of pods and of exec sessions read alike.
func listByPolicy(b *strings.Builder, n int, policyOf, itemOf func(int) string, more string) {
	var policies []string
	for i := range n {
		if p := policyOf(i); !slices.Contains(policies, p) {
			policies = append(policies, p)
		}
	}
	if len(policies) == 1 {
		fmt.Fprintf(b, "policy %q: ", policies[0])
	} else {
		q := make([]string, len(policies))
		for i, p := range policies {
			q[i] = strconv.Quote(p)
		}
		fmt.Fprintf(b, "policies %s: ", strings.Join(q, ", "))
	}
	for i := range n {
		if i == maxListed {
			fmt.Fprintf(b, more, n-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if len(policies) > 1 {
			b.WriteString("(" + policyOf(i) + ") ")
		}
		b.WriteString(itemOf(i))
	}
}

func policyDenialMessage(name string, errs field.ErrorList) string {
	return fmt.Sprintf("agentgate: ConfigMap %q holds an invalid policy: %s", name, strings.Join(errorStrings(errs), "; "))
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// event is the audit log line of one answered review.
type event struct {
	endpoint     string
	req          *admissionv1.AdmissionRequest
	name         string
	namespace    string
	note         string
	generation   uint64
	result       *policy.Result
	patched      []string
	policyErrors []string
	// sessionRecorded: the review has its own exec.* event (validate-exec), so this line is detail (debug).
	sessionRecorded bool
}

func newEvent(endpoint string, req *admissionv1.AdmissionRequest) *event {
	return &event{endpoint: endpoint, req: req, name: req.Name, namespace: req.Namespace}
}

func (e *event) setObject(m *metav1.ObjectMeta) {
	if e.name == "" {
		e.name = displayName(m)
	}
}

// common is commonAttrs for slog's key-value form (other events of a review: admission.guarded).
func (e *event) common() []any {
	attrs := e.commonAttrs(nil)
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

// commonAttrs appends the attributes every event of this review carries. The admission events are built as
// slog.Attr and written with LogAttrs: no []any boxing, and those of an allowed review fit in a stack array.
func (e *event) commonAttrs(attrs []slog.Attr) []slog.Attr {
	attrs = append(attrs,
		slog.String("uid", string(e.req.UID)), slog.String("endpoint", e.endpoint), slog.String("kind", e.req.Kind.Kind),
		slog.String("namespace", e.namespace), slog.String("name", e.name), slog.String("operation", string(e.req.Operation)))
	if e.req.SubResource != "" {
		attrs = append(attrs, slog.String("subresource", e.req.SubResource))
	}
	if e.req.DryRun != nil && *e.req.DryRun {
		attrs = append(attrs, slog.Bool("dry_run", true))
	}
	if e.req.UserInfo.Username != "" {
		attrs = append(attrs, slog.String("user", e.req.UserInfo.Username))
	}
	return attrs
}

func (e *event) exempted(log *slog.Logger, ex policy.Exemption) {
	var buf [16]slog.Attr
	attrs := append(e.commonAttrs(buf[:0]), slog.String("event", "admission.exempted"), slog.String("policy", ex.Policy),
		slog.String("reason", ex.Reason), slog.String("field", ex.Field), slog.String("detail", ex.Detail))
	log.LogAttrs(context.Background(), slog.LevelInfo, "exemption applied", attrs...)
}

// loggedViolation is one violation in a log line.
type loggedViolation struct {
	Policy string `json:"policy"`
	Mode   string `json:"mode"`
	Check  string `json:"check"`
	Field  string `json:"field"`
	Found  string `json:"found"`
}

// emit writes the decision's event: admission.denied, admission.warned, admission.mutated or
// admission.allowed (which also carries audit-mode violations).
func (e *event) emit(log *slog.Logger, d decision, elapsed time.Duration) {
	name, level, msg := "admission.allowed", slog.LevelInfo, "admitted"
	switch {
	case d.result == resultError:
		name, level, msg = "admission.refused", slog.LevelWarn, "refused: request cannot be judged"
	case d.result == resultDenied:
		name, msg = "admission.denied", "denied"
	case d.result == resultWarned:
		name, msg = "admission.warned", "admitted with warnings"
	case len(e.patched) > 0:
		name, msg = "admission.mutated", "hardened"
	}
	if e.sessionRecorded && d.result != resultError {
		level = slog.LevelDebug
	}
	if !log.Enabled(context.Background(), level) {
		return
	}
	var buf [20]slog.Attr
	attrs := append(e.commonAttrs(buf[:0]), slog.String("event", name), slog.Bool("allowed", d.resp.Allowed), slog.Float64("duration", elapsed.Seconds()))
	if e.generation != 0 {
		attrs = append(attrs, slog.Uint64("generation", e.generation))
	}
	if e.note != "" {
		attrs = append(attrs, slog.String("note", e.note))
	}
	if r := e.result; r != nil {
		attrs = append(attrs, slog.Any("policy", r.Matched))
		checks := []string{}
		vs := make([]loggedViolation, 0, min(len(r.Violations), maxListed))
		for _, v := range r.Violations {
			if !slices.Contains(checks, v.Check) {
				checks = append(checks, v.Check)
			}
			if len(vs) < maxListed {
				vs = append(vs, loggedViolation{Policy: v.Policy, Mode: string(v.Mode), Check: v.Check, Field: v.Field, Found: v.Found})
			}
		}
		attrs = append(attrs, slog.Any("checks", checks))
		if len(vs) > 0 {
			attrs = append(attrs, slog.Any("violations", vs), slog.Int("violation_count", len(r.Violations)))
		}
	}
	if len(e.patched) > 0 {
		attrs = append(attrs, slog.Any("patch", e.patched))
	}
	if len(e.policyErrors) > 0 {
		attrs = append(attrs, slog.Any("errors", e.policyErrors))
	}
	if d.result == resultError && d.resp.Result != nil {
		attrs = append(attrs, slog.String("reason", d.bad), slog.String("error", d.resp.Result.Message))
	}
	log.LogAttrs(context.Background(), level, msg, attrs...)
}

// createOrUpdate says whether the review is a CREATE or UPDATE, the operations that are judged. DELETE and
// CONNECT are allowed (nothing new is admitted); anything else is refused as malformed.
func createOrUpdate(req *admissionv1.AdmissionRequest, ev *event) (decision, bool) {
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
		return decision{}, true
	case admissionv1.Delete, admissionv1.Connect:
		ev.note = "operation not judged"
		return allow(), false
	}
	return refuse("operation", 400, "unsupported operation %q", req.Operation), false
}
