package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"agentgate.io/agentgate/policy"
)

// NetworkPolicies are judged in /validate, dispatched by kind, rather than at an endpoint of their own: they
// are judged where pods are (agent namespaces, failurePolicy Fail, the same namespaceSelector), against the
// same policy set, with the same answer shape; one more rule in validate.workloads.agentgate.io.

var networkPolicyGK = schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}

// NetworkPolicyReader is what the webhook knows of a namespace's NetworkPolicies (cluster.NetworkPolicyCache).
type NetworkPolicyReader interface {
	// Present reports whether the namespace holds agentgate's agentgate-egress.
	Present(namespace string) bool
	// Others lists its other NetworkPolicies, read only: each adds to what agentgate-egress allows.
	Others(namespace string) []*networkingv1.NetworkPolicy
}

// namespaceDeleters delete every object of a namespace being deleted (kube-controller-manager's namespace
// controller, with and without --use-service-account-credentials): the guard lets them delete agentgate-egress,
// nothing else.
var namespaceDeleters = []string{"system:serviceaccount:kube-system:namespace-controller", "system:kube-controller-manager"}

// validateNetworkPolicy judges a NetworkPolicy CREATE or UPDATE in an agent namespace: it must not let the pods
// of a policy with network.manage reach more than the policy's network.egress (policy.JudgeNetworkPolicy).
func (s *Server) validateNetworkPolicy(ctx context.Context, rv review) decision {
	req := rv.req
	if req.Kind.Version != "v1" {
		return refuse("unsupported_version", 400, "agentgate judges networking.k8s.io/v1 NetworkPolicies, not %s: set matchPolicy: Equivalent in the webhook configuration", gvkString(req.Kind))
	}
	if req.SubResource != "" {
		return allow().noted("subresource not judged")
	}
	np, d, ok := decodeNetworkPolicy(req, "object", req.Object.Raw)
	if !ok {
		return d
	}
	about := audit{object: displayName(&np.ObjectMeta)}
	if req.Operation == admissionv1.Update {
		if old, _, ok := decodeNetworkPolicy(req, "oldObject", req.OldObject.Raw); ok && equality.Semantic.DeepEqual(old.Spec, np.Spec) {
			about.note = "spec unchanged"
			return allow().with(about)
		}
	}
	snap := s.store.Snapshot()
	ns, nsNote := s.namespace(ctx, rv, about.object, snap.Set)
	res := snap.Set.JudgeNetworkPolicy(np, ns)
	about.note, about.generation = nsNote, snap.Generation
	d = s.answerJudged(rv, networkPolicyGK, networkPolicyGK.Kind, res, about)
	if d.result == resultDenied {
		s.log.Warn("NetworkPolicy denied: it would let agent pods reach more than the policy allows", "event", "network.denied",
			"namespace", req.Namespace, "name", about.object, "user", req.UserInfo.Username, "policies", res.Matched,
			"violations", len(res.ByMode(policy.ModeEnforce)))
	}
	return d
}

func decodeNetworkPolicy(req *admissionv1.AdmissionRequest, what string, raw []byte) (*networkingv1.NetworkPolicy, decision, bool) {
	if len(raw) == 0 {
		return nil, refuse("null_object", 400, "request.%s is null for %s of %s", what, req.Operation, gvkString(req.Kind)), false
	}
	np := &networkingv1.NetworkPolicy{}
	if err := policy.UnmarshalStrict(raw, np); err != nil {
		return nil, refuse("object_decode", 400, "cannot decode request.%s as %s: %v", what, gvkString(req.Kind), err), false
	}
	if d, ok := checkTypeAndNamespace(req, &np.TypeMeta, &np.ObjectMeta); !ok {
		return nil, d, false
	}
	return np, decision{}, true
}

// egressNotInPlace is the defence in depth: a pod that a policy with network.manage selects is not admitted
// while its egress would not be what the policy allows. Either its namespace lacks agentgate-egress (just
// labelled, or the NetworkPolicy deleted a moment ago: the owner creates it within seconds, and the pod's
// controller retries by itself), or another NetworkPolicy selecting the pod lets it reach more (NetworkPolicies
// add up; one written before the namespace was managed was never judged, nor one written while agentgate was
// not called).
func (s *Server) egressNotInPlace(req *admissionv1.AdmissionRequest, gk schema.GroupKind, w *policy.Workload, set *policy.Set, ns policy.Namespace) (decision, bool) {
	if s.opts.NetworkPolicies == nil || gk != podGK || req.Operation != admissionv1.Create || req.SubResource != "" {
		return decision{}, false
	}
	manager := set.NetworkManager(ns)
	if manager == nil || !manager.SelectsPod(w, ns, requester(req)) {
		return decision{}, false
	}
	name := displayName(w.Meta)
	if s.opts.NetworkPolicies.Present(ns.Name) {
		return s.widenedEgress(manager, w, ns, name)
	}
	msg := fmt.Sprintf("agentgate: Pod %q denied: namespace %q is managed by policy %q (spec.network.manage) but its NetworkPolicy %s is not in place yet, and without it the pod could reach any address; agentgate creates or restores it within seconds: retry (controllers retry by themselves)",
		name, ns.Name, manager.Name, policy.NetworkPolicyName)
	s.log.Warn("pod denied: agentgate-egress missing", "event", "network.denied", "namespace", ns.Name, "name", name, "policy", manager.Name, "reason", "egress_missing")
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg,
		Details: &metav1.StatusDetails{Kind: "Pod", Name: name, RetryAfterSeconds: 2},
	}}, result: resultDenied}, true
}

// widenedEgress denies the pod while another NetworkPolicy of its namespace that selects it lets it reach more
// than the managing policy's network.egress allows (enforce mode; the same judgement as its CREATE would get).
// A cause per violation, named by NetworkPolicy and field, so the namespace's owner knows what to remove.
func (s *Server) widenedEgress(manager *policy.Policy, w *policy.Workload, ns policy.Namespace, name string) (decision, bool) {
	var causes []metav1.StatusCause
	var widening []string
	for _, np := range s.opts.NetworkPolicies.Others(ns.Name) {
		if !npSelectsPod(np, w.PodMeta.Labels) {
			continue
		}
		found := false
		for _, v := range manager.JudgeNetworkPolicy(np) {
			if v.Mode != policy.ModeEnforce {
				continue
			}
			found = true
			causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeForbidden, Field: v.Field,
				Message: "NetworkPolicy " + strconv.Quote(np.Name) + ": " + v.Message})
		}
		if found {
			widening = append(widening, np.Name)
		}
	}
	if len(widening) == 0 {
		return decision{}, false
	}
	q := make([]string, len(widening))
	for i, n := range widening {
		q[i] = strconv.Quote(n)
	}
	msg := fmt.Sprintf("agentgate: Pod %q denied: namespace %q is managed by policy %q (spec.network.manage), but NetworkPolicy %s would let the pod reach more than the policy's network.egress allows (NetworkPolicies add up); it was never judged (written before the namespace was managed, or without agentgate): remove or narrow it. %s",
		name, ns.Name, manager.Name, strings.Join(q, ", "), causes[0].Message)
	s.log.Warn("pod denied: a NetworkPolicy widens its egress", "event", "network.denied", "namespace", ns.Name, "name", name,
		"policy", manager.Name, "reason", "egress_widened", "networkpolicies", widening)
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg,
		Details: &metav1.StatusDetails{Kind: "Pod", Name: name, Causes: causes},
	}}, result: resultDenied}, true
}

// npSelectsPod: the NetworkPolicy's podSelector matches the pod's labels. One that does not parse selects it
// (the strict side; the API server refuses such selectors anyway).
func npSelectsPod(np *networkingv1.NetworkPolicy, podLabels map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	return err != nil || sel.Matches(labels.Set(podLabels))
}

// egressChanges: anyone but agentgate's own controller, an admin or a namespace deleter touching agentgate's
// agentgate-egress (UPDATE or DELETE of the NetworkPolicy of that name labelled managed-by agentgate).
func (s *Server) egressChanges(req *admissionv1.AdmissionRequest, old, cur *networkingv1.NetworkPolicy) []guardedChange {
	if old.Name != policy.NetworkPolicyName || old.Labels[policy.ManagedByLabel] != policy.ManagedByValue {
		return nil
	}
	user := req.UserInfo.Username
	if slices.Contains(s.opts.ControllerUsers, user) || (cur == nil && slices.Contains(namespaceDeleters, user)) {
		return nil
	}
	if cur == nil {
		return []guardedChange{{change: changeNetworkPolicy, detail: "deleting agentgate's default-deny egress NetworkPolicy lets agent pods reach any address until agentgate restores it"}}
	}
	var changes []guardedChange
	if !equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
		changes = append(changes, guardedChange{change: changeNetworkPolicy, field: "spec",
			detail: "agentgate keeps this NetworkPolicy as the policy says (spec.network); edit the policy instead"})
	}
	for _, key := range []string{policy.ManagedByLabel} {
		if cur.Labels[key] != old.Labels[key] {
			changes = append(changes, guardedChange{change: changeNetworkPolicy, field: field.NewPath("metadata", "labels").Key(key).String(),
				detail: labelChange(cur.Labels, key) + " takes the NetworkPolicy from agentgate"})
		}
	}
	return changes
}
