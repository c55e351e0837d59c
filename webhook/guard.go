package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"agentgate.io/agentgate/policy"
)

// The guard (/validate-guard) keeps agentgate's own off switches out of reach of everyone but its admins:
//
//   - a Namespace UPDATE that removes AgentNamespaceLabel, or sets it to anything but "true", takes the
//     namespace out of the sandbox (the webhook configurations select agent namespaces by that label);
//   - a policy ConfigMap UPDATE or DELETE that weakens the policy, as policy.ConfigMapWeakenings defines it
//     (deleting it, removing its label or its key, a version that no longer parses, and every change of the
//     document after which some pod could be admitted that was denied before, or be hardened less).
//
// Each is refused (403 Forbidden, a cause per weakening naming its field, old and new value) unless
// request.userInfo.groups holds one of Options.AdminGroups. Allowed or refused, a guarded change is logged as
// admission.guarded (with the requester) and counted in agentgate_guarded_changes_total. Everything else sent
// to the endpoint is allowed: the guard does not judge content (/validate-policy does) and never blocks an
// ordinary edit or a tightening.
//
// The guard decides from the request alone (the old and new objects and the requester), not from the policy
// set in force, so it answers the same on every replica at every moment. It compares the two versions as the
// server parses them (policy.ParseConfigMap): what it measures is what would be in force.

// AgentNamespaceLabel marks agent namespaces: the webhook configurations select namespaces labelled
// AgentNamespaceLabel=AgentNamespaceLabelValue.
const (
	AgentNamespaceLabel      = "agentgate.io/agents"
	AgentNamespaceLabelValue = "true"
)

// DefaultAdminGroups are the groups that may make guarded changes when Options.AdminGroups is empty.
var DefaultAdminGroups = []string{"system:masters"}

var namespaceGK = schema.GroupKind{Kind: "Namespace"}

// Guarded changes, the change label of agentgate_guarded_changes_total.
const (
	changeAgentsLabel    = "agents_label"
	changePolicyLabel    = "policy_label"
	changePolicyMode     = "policy_mode"
	changePolicyDelete   = "policy_delete"
	changePolicyDocument = "policy_document" // the key removed, a version that does not parse, or one that cannot be measured
	changePolicySpec     = "policy_spec"     // any other weakening of the policy document
	changeNetworkPolicy  = "networkpolicy"   // agentgate-egress edited or deleted
	changePodLabels      = "pod_labels"      // a running agent pod relabelled out of a policy's podSelector
)

var guardedChangeLabels = []string{changeAgentsLabel, changePolicyLabel, changePolicyMode, changePolicyDelete, changePolicyDocument, changePolicySpec, changeNetworkPolicy, changePodLabels}

// weakeningChange is the metric label of a policy weakening: its rule, for the few with their own label.
func weakeningChange(w policy.Weakening) string {
	switch w.Rule {
	case policy.RuleDelete:
		return changePolicyDelete
	case policy.RuleLabel:
		return changePolicyLabel
	case policy.RuleDocument:
		return changePolicyDocument
	case "mode":
		return changePolicyMode
	}
	return changePolicySpec
}

// guardMetrics is agentgate_guarded_changes_total: change is one of the constants above, result "refused"
// or "admin" (made by a member of an admin group).
type guardMetrics struct {
	changes *prometheus.CounterVec
}

func newGuardMetrics(reg prometheus.Registerer) (*guardMetrics, error) {
	m := &guardMetrics{changes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentgate_guarded_changes_total",
		Help: "Changes that take a namespace or a running pod out of the agent sandbox or weaken a policy (agents_label, policy_label, policy_mode, policy_delete, policy_document, policy_spec, networkpolicy, pod_labels), by result: refused, or admin (made by a member of --admin-groups).",
	}, []string{"change", "result"})}
	if err := reg.Register(m.changes); err != nil {
		return nil, err
	}
	for _, c := range guardedChangeLabels {
		m.changes.WithLabelValues(c, "refused")
		m.changes.WithLabelValues(c, "admin")
	}
	return m, nil
}

// guardedChange is one guarded change a request makes.
type guardedChange struct {
	change   string
	field    string // "" for a DELETE
	old, new string // the field's value before and after ("" for a namespace label: detail says it)
	detail   string // what the change does, for the message
}

// validateGuard judges Namespace UPDATEs and policy ConfigMap UPDATEs and DELETEs; see the top of this file.
func (s *Server) validateGuard(ctx context.Context, rv review) decision {
	req := rv.req
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if (gk != namespaceGK && gk != configMapGK && gk != networkPolicyGK) || req.Kind.Version != "v1" {
		return refuse("unsupported_kind", 400, "/%s judges v1 Namespaces, ConfigMaps and networking.k8s.io NetworkPolicies, not %s: fix the webhook configuration", EndpointValidateGuard, gvkString(req.Kind))
	}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Connect:
		return allow().noted("operation not guarded")
	case admissionv1.Update:
	case admissionv1.Delete:
		if gk == namespaceGK {
			// Deleting an agent namespace deletes its pods too: nothing escapes the sandbox.
			return allow().noted("operation not guarded")
		}
	default:
		return refuse("operation", 400, "unsupported operation %q", req.Operation)
	}
	var changes []guardedChange
	var name string
	var about audit
	if gk == networkPolicyGK {
		old, d, ok := decodeNetworkPolicy(req, "oldObject", req.OldObject.Raw)
		if !ok {
			return d
		}
		var cur *networkingv1.NetworkPolicy
		if req.Operation == admissionv1.Update {
			if cur, d, ok = decodeNetworkPolicy(req, "object", req.Object.Raw); !ok {
				return d
			}
		}
		name = old.Name
		about.object = displayName(&old.ObjectMeta)
		changes = s.egressChanges(req, old, cur)
	} else if gk == namespaceGK {
		// Every subresource is judged alike: whatever the path, a label that disappears is guarded.
		old, cur, d, ok := decodePair[corev1.Namespace](s, req, true)
		if !ok {
			return d
		}
		name = cur.Name
		about.object = displayName(&cur.ObjectMeta)
		changes = namespaceChanges(old, cur)
	} else {
		if s.opts.PolicyNamespace != "" && req.Namespace != s.opts.PolicyNamespace {
			return allow().noted("not agentgate's policy namespace") // policy.IsPolicyConfigMap says so too; no need to decode
		}
		old, cur, d, ok := decodePair[corev1.ConfigMap](s, req, req.Operation == admissionv1.Update)
		if !ok {
			return d
		}
		name = old.Name
		about.object = displayName(&old.ObjectMeta)
		if cur != nil {
			about.object = displayName(&cur.ObjectMeta)
		}
		for _, w := range policy.ConfigMapWeakenings(old, cur, s.opts.PolicyNamespace) {
			detail := w.Old + " -> " + w.New + ": " + w.Detail
			if w.Rule == policy.RuleDelete {
				detail = w.Detail // the whole object: no field to show a value of
			}
			changes = append(changes, guardedChange{change: weakeningChange(w), field: w.Field, old: w.Old, new: w.New, detail: detail})
		}
	}
	if len(changes) == 0 {
		about.note = "no guarded change"
		return allow().with(about)
	}
	admin := s.isAdmin(req.UserInfo.Groups)
	s.logGuarded(ctx, rv, about.object, changes, admin)
	if admin {
		about.note = "guarded change made by an admin"
		return allow().with(about)
	}
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: s.guardStatus(gk, name, req, changes)}, result: resultDenied}.with(about)
}

// decodePair decodes request.oldObject and request.object as T (policy.UnmarshalKnown). The old object is required (it is
// what a guarded change is measured against); the new one only when withNew (a DELETE has none).
func decodePair[T corev1.Namespace | corev1.ConfigMap](s *Server, req *admissionv1.AdmissionRequest, withNew bool) (*T, *T, decision, bool) {
	decodeOne := func(what string, raw []byte) (*T, decision, bool) {
		if len(raw) == 0 {
			return nil, refuse("null_object", 400, "request.%s is null for %s of %s", what, req.Operation, gvkString(req.Kind)), false
		}
		obj := new(T)
		// The guard reads labels and the policy document: a field agentgate's k8s.io/api does not know
		// changes neither, so it is counted and otherwise ignored.
		unknown, err := policy.UnmarshalKnown(raw, obj)
		if err != nil {
			return nil, refuse("object_decode", 400, "cannot decode request.%s as %s: %v", what, gvkString(req.Kind), err), false
		}
		s.metrics.unknown.note(s.log, req.Kind.Kind, "", what == "oldObject", unknown)
		tm, meta := typeAndMeta(obj)
		if d, ok := checkTypeAndNamespace(req, tm, meta); !ok {
			return nil, d, false
		}
		return obj, decision{}, true
	}
	old, d, ok := decodeOne("oldObject", req.OldObject.Raw)
	if !ok {
		return nil, nil, d, false
	}
	if !withNew {
		return old, nil, decision{}, true
	}
	cur, d, ok := decodeOne("object", req.Object.Raw)
	if !ok {
		return nil, nil, d, false
	}
	return old, cur, decision{}, true
}

func typeAndMeta(obj any) (*metav1.TypeMeta, *metav1.ObjectMeta) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return &o.TypeMeta, &o.ObjectMeta
	case *corev1.ConfigMap:
		return &o.TypeMeta, &o.ObjectMeta
	}
	panic(fmt.Sprintf("typeAndMeta: %T", obj)) // unreachable: decodePair's type set
}

var agentsLabelPath = field.NewPath("metadata", "labels").Key(AgentNamespaceLabel)

// namespaceChanges: an agent namespace that stops being one.
func namespaceChanges(old, cur *corev1.Namespace) []guardedChange {
	if old.Labels[AgentNamespaceLabel] != AgentNamespaceLabelValue || cur.Labels[AgentNamespaceLabel] == AgentNamespaceLabelValue {
		return nil
	}
	return []guardedChange{{change: changeAgentsLabel, field: agentsLabelPath.String(),
		detail: labelChange(cur.Labels, AgentNamespaceLabel) + " takes namespace " + strconv.Quote(cur.Name) + " out of the agent sandbox"}}
}

func labelChange(labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return fmt.Sprintf("setting the label to %q", v)
	}
	return "removing the label"
}

func (s *Server) adminGroups() []string {
	if len(s.opts.AdminGroups) == 0 {
		return DefaultAdminGroups
	}
	return s.opts.AdminGroups
}

func (s *Server) isAdmin(groups []string) bool {
	for _, g := range s.adminGroups() {
		if slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// relabelledOut guards a Pod UPDATE (judged in /validate) whose new labels take the running pod out of a
// policy that selected it: its later updates (an image, a toleration) would be judged without that policy, and
// the NetworkPolicy of a policy that manages the network would no longer restrict it. Nobody but an admin may;
// the pod can always be deleted instead. Logged and counted like the guard's other changes (pod_labels).
func (s *Server) relabelledOut(ctx context.Context, rv review, old, w *policy.Workload, object string) (decision, bool) {
	req := rv.req
	if maps.Equal(old.PodMeta.Labels, w.PodMeta.Labels) {
		return decision{}, false
	}
	snap := s.store.Snapshot()
	ns, _ := s.namespace(ctx, rv, object, snap.Set)
	left := snap.Set.Unselects(old, w, ns, requester(req))
	if len(left) == 0 {
		return decision{}, false
	}
	changes := make([]guardedChange, len(left))
	from, to := labelsString(old.PodMeta.Labels), labelsString(w.PodMeta.Labels)
	for i, p := range left {
		changes[i] = guardedChange{change: changePodLabels, field: "metadata.labels", old: from, new: to,
			detail: fmt.Sprintf("{%s} -> {%s} takes the running pod out of policy %q (its podSelector): its updates would be judged without it, and a NetworkPolicy it keeps would no longer restrict the pod; delete the pod instead", from, to, p)}
	}
	admin := s.isAdmin(req.UserInfo.Groups)
	s.logGuarded(ctx, rv, object, changes, admin)
	if admin {
		return decision{}, false
	}
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: s.guardStatus(podGK, object, req, changes)}, result: resultDenied}.
		with(audit{object: object, generation: snap.Generation, note: "relabelled out of " + strings.Join(left, ", ")}), true
}

// validatePodStatus judges a pods/status UPDATE for the one thing in it agentgate judges: pods/status keeps the
// stored spec but writes the labels it is sent (tried on this API server), so it is another way to relabel a
// running pod out of a policy. Its webhook entry sends only the updates that change labels (matchConditions):
// the kubelet's status writes never reach agentgate.
func (s *Server) validatePodStatus(ctx context.Context, rv review) decision {
	req := rv.req
	w, d, ok := s.decodeWorkload(req, podGK)
	if !ok {
		return d
	}
	about := audit{object: displayName(w.Meta), note: "pods/status: only a relabelling is judged"}
	old := decodeOldWorkload(req, podGK)
	if old == nil {
		return refuse("null_object", 400, "request.oldObject is null or does not decode for an UPDATE of pods/status: the labels it changes cannot be judged")
	}
	if d, refused := s.relabelledOut(ctx, rv, old, w, about.object); refused {
		return d
	}
	return allow().with(about)
}

// labelsString renders labels for a message: sorted key=value pairs.
func labelsString(l map[string]string) string {
	return labels.Set(l).String()
}

// guardStatus is the refusal: 403 Forbidden, a cause per guarded change, and a message that names the field
// and says who may make the change.
func (s *Server) guardStatus(gk schema.GroupKind, name string, req *admissionv1.AdmissionRequest, changes []guardedChange) *metav1.Status {
	who := fmt.Sprintf("only members of the admin groups (%s) may do it, and user %q", strings.Join(s.adminGroups(), ", "), req.UserInfo.Username)
	if len(req.UserInfo.Groups) == 0 {
		who += " is in no group"
	} else {
		who += " (groups " + strings.Join(req.UserInfo.Groups, ", ") + ") is not one of them"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agentgate: %s %q: ", gk.Kind, name)
	causes := make([]metav1.StatusCause, 0, len(changes))
	for i, c := range changes {
		if i > 0 {
			b.WriteString("; ")
		}
		if c.field != "" {
			b.WriteString(c.field + ": ")
		}
		b.WriteString(c.detail)
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(field.ErrorTypeForbidden), Field: c.field, Message: c.detail})
	}
	fmt.Fprintf(&b, "; %s (agentgate serve --admin-groups; break-glass: docs/operating.md)", who)
	return &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusForbidden,
		Reason:  metav1.StatusReasonForbidden,
		Message: b.String(),
		Details: &metav1.StatusDetails{Group: gk.Group, Kind: gk.Kind, Name: name, Causes: causes},
	}
}

// logGuarded writes one admission.guarded event per change and counts it.
func (s *Server) logGuarded(ctx context.Context, rv review, object string, changes []guardedChange, admin bool) {
	result, level, msg := "refused", slog.LevelWarn, "guarded change refused"
	if admin {
		result, level, msg = "admin", slog.LevelInfo, "guarded change made by an admin"
	}
	for _, c := range changes {
		s.guardMetrics.changes.WithLabelValues(c.change, result).Inc()
		attrs := append(rv.common(object), "event", "admission.guarded", "allowed", admin, "change", c.change, "field", c.field,
			"old", c.old, "new", c.new, "detail", c.detail, "groups", rv.req.UserInfo.Groups, "admin_groups", s.adminGroups())
		s.log.Log(ctx, level, msg, attrs...)
	}
}
