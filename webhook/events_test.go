package webhook

import (
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"agentgate.io/agentgate/policy"
)

// TestReviewEventCarriesItsDecision: every review is logged once, after it is answered, from what its decision
// carries: the object's name when the request has none, the note saying why nothing was judged, the policy
// generation, the violations, the patch, the policy errors. A decider that learnt something and did not put it
// in its decision fails here.
func TestReviewEventCarriesItsDecision(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	generated := compliantPod("")
	generated.GenerateName = "runner-"
	unhardened := minimalPod("")
	unhardened.GenerateName = "runner-"
	label := map[string]string{policy.ConfigMapLabel: "true"}
	invalidPolicy := policyConfigMap("broken", label, map[string]string{"policy.yaml": "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nspec:\n  mode: sometimes\n"})
	unchanged := compliantPod("relabelled")
	relabelled := compliantPod("relabelled")
	relabelled.Labels["team"] = "b"

	cases := []struct {
		name, path string
		review     rv
		event      string
		want       map[string]any // event fields that must be equal
		has        []string       // event fields that must be present
	}{
		{name: "generateName: the event names the object", path: "/validate",
			review: rv{uid: "u-generated", gvk: podGVK, namespace: agentsNS, obj: generated},
			event:  "admission.allowed", want: map[string]any{"name": "runner-"}, has: []string{"generation", "policy", "checks"}},
		{name: "denied: violations and their checks", path: "/validate", review: podReview(badPod("bad")),
			event: "admission.denied", want: map[string]any{"name": "bad"}, has: []string{"generation", "violations", "violation_count"}},
		{name: "hardened: the patch", path: "/mutate",
			review: rv{uid: "u-mutated", gvk: podGVK, namespace: agentsNS, obj: unhardened},
			event:  "admission.mutated", want: map[string]any{"name": "runner-"}, has: []string{"generation", "patch"}},
		{name: "update of what no check reads", path: "/validate",
			review: rv{gvk: podGVK, namespace: agentsNS, name: "relabelled", op: admissionv1.Update, obj: relabelled, old: unchanged},
			event:  "admission.allowed", want: map[string]any{"note": "judged fields unchanged"}},
		{name: "subresource not judged", path: "/validate",
			review: rv{gvk: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, namespace: agentsNS, name: "scaled", sub: "scale", op: admissionv1.Update, obj: map[string]any{}},
			event:  "admission.allowed", want: map[string]any{"note": "subresource not judged", "subresource": "scale"}},
		{name: "delete not judged", path: "/validate",
			review: rv{gvk: podGVK, namespace: agentsNS, name: "gone", op: admissionv1.Delete, old: compliantPod("gone")},
			event:  "admission.allowed", want: map[string]any{"note": "operation not judged"}},
		{name: "only pods are hardened", path: "/mutate",
			review: rv{gvk: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, namespace: agentsNS, name: "d", obj: map[string]any{}},
			event:  "admission.allowed", want: map[string]any{"note": "only Pod CREATE is mutated"}},
		{name: "invalid policy: its errors", path: "/validate-policy",
			review: rv{gvk: cmGVK, namespace: "agentgate-system", name: "broken", obj: invalidPolicy},
			event:  "admission.denied", has: []string{"errors"}},
		{name: "a ConfigMap that is no policy", path: "/validate-policy",
			review: rv{gvk: cmGVK, namespace: "agentgate-system", name: "plain", obj: policyConfigMap("plain", nil, nil)},
			event:  "admission.allowed", want: map[string]any{"note": "not a policy ConfigMap"}},
		{name: "a Secret that is no token", path: "/validate",
			review: rv{gvk: metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}, namespace: agentsNS, name: "plain-secret",
				obj: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "plain-secret", "namespace": agentsNS}, "stringData": map[string]string{"k": "v"}}},
			event: "admission.allowed", want: map[string]any{"note": "not a service-account token Secret", "kind": "Secret"}},
		{name: "a token Secret: the verdict", path: "/validate",
			review: rv{gvk: metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}, namespace: agentsNS, name: "tok",
				obj: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "tok", "namespace": agentsNS}, "type": "kubernetes.io/service-account-token"}},
			event: "admission.denied", has: []string{"generation", "violations"}},
		{name: "malformed: the reason", path: "/validate",
			review: rv{gvk: podGVK, namespace: agentsNS, name: "null"},
			event:  "admission.refused", want: map[string]any{"reason": "null_object"}, has: []string{"error"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts.answer(c.path, c.review)
			uid := c.review.uidOr()
			var mine []map[string]any
			for _, ev := range ts.logs.Events(c.event) {
				if ev["uid"] == uid {
					mine = append(mine, ev)
				}
			}
			if len(mine) != 1 {
				t.Fatalf("%d %s events for uid %s, want 1\n%s", len(mine), c.event, uid, ts.logs.String())
			}
			ev := mine[0]
			if ev["endpoint"] != strings.TrimPrefix(c.path, "/") {
				t.Errorf("endpoint %v, want %s", ev["endpoint"], c.path)
			}
			for k, v := range c.want {
				if ev[k] != v {
					t.Errorf("%s = %v, want %v\nevent: %v", k, ev[k], v, ev)
				}
			}
			for _, k := range c.has {
				if _, ok := ev[k]; !ok {
					t.Errorf("event lacks %s: %v", k, ev)
				}
			}
			if _, noted := c.want["note"]; !noted && !slices.Contains(c.has, "note") && ev["note"] != nil {
				t.Errorf("unexpected note %v", ev["note"])
			}
		})
	}
}
