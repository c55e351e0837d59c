package webhook

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/policy"
)

var npGVK = metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}

// presence is NetworkPolicyReader for namespaces whose agentgate-egress is in place (true) or not, holding no
// other NetworkPolicy; e2e TestNetworkEgress reads the real cache.
type presence map[string]bool

func (p presence) Present(ns string) bool                      { return p[ns] }
func (p presence) Others(string) []*networkingv1.NetworkPolicy { return nil }

func npObj(t *testing.T, name string, labels map[string]string, spec string) *networkingv1.NetworkPolicy {
	t.Helper()
	np := &networkingv1.NetworkPolicy{}
	if err := yaml.UnmarshalStrict([]byte("spec: "+spec), np); err != nil {
		t.Fatal(err)
	}
	np.TypeMeta = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
	np.Name, np.Namespace, np.Labels = name, agentsNS, labels
	return np
}

// Every attempt at the network sandbox through the webhook, with the verdict and the field path.
func TestNetworkAdmission(t *testing.T) {
	opts := staticPolicy(t, "  windows: deny\n", "  windows: deny\n  network:\n    manage: true\n    egress:\n      allow: [{cidr: 10.0.0.0/8, ports: [{port: 443}]}]\n")
	opts.NetworkPolicies = presence{"with-egress": true}
	opts.ControllerUsers = []string{"system:serviceaccount:agentgate-system:agentgate"}
	ts := startServer(t, opts)
	managed := map[string]string{policy.ManagedByLabel: policy.ManagedByValue}
	egress := func() *networkingv1.NetworkPolicy {
		return npObj(t, policy.NetworkPolicyName, managed, `{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: 443}]}]}`)
	}
	opened := egress()
	opened.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	narrowed := egress()
	narrowed.Spec.Egress = nil
	unlabelled := egress()
	unlabelled.Labels = nil
	relabelled := egress()
	relabelled.Labels = map[string]string{"team": "a"}
	withUser := func(r rv, user string, groups ...string) []byte { return asUser(t, r.body(t), user, groups...) }

	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		denied bool
		want   string // a cause field, or a fragment of the message
	}{
		{"allow-all CREATE", "/validate", rv{gvk: npGVK, namespace: agentsNS, name: "x", obj: npObj(t, "x", nil, `{podSelector: {}, egress: [{}]}`)}.body(t), true, "spec.egress[0].to"},
		{"allow-all by UPDATE", "/validate", rv{gvk: npGVK, op: admissionv1.Update, namespace: agentsNS, name: "x", obj: npObj(t, "x", nil, `{podSelector: {}, egress: [{}]}`), old: npObj(t, "x", nil, `{podSelector: {}, policyTypes: [Egress]}`)}.body(t), true, "spec.egress[0].to"},
		{"metadata API", "/validate", rv{gvk: npGVK, namespace: agentsNS, name: "x", obj: npObj(t, "x", nil, `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 169.254.169.254/32}}], ports: [{port: 80}]}]}`)}.body(t), true, "spec.egress[0].to[0].ipBlock.cidr"},
		{"within the allowed set", "/validate", rv{gvk: npGVK, namespace: agentsNS, name: "x", obj: npObj(t, "x", nil, `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}], ports: [{port: 443}]}]}`)}.body(t), false, ""},
		{"v1beta1 spelling", "/validate", rv{gvk: metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1beta1", Kind: "NetworkPolicy"}, namespace: agentsNS, name: "x", obj: npObj(t, "x", nil, `{podSelector: {}, egress: [{}]}`)}.body(t), true, "matchPolicy: Equivalent"},
		{"unknown field smuggled", "/validate", rv{gvk: npGVK, namespace: agentsNS, name: "x", obj: []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"x","namespace":"agents"},"spec":{"podSelector":{},"egres":[{}]}}`)}.body(t), true, "cannot decode"},
		{"duplicate key smuggled", "/validate", rv{gvk: npGVK, namespace: agentsNS, name: "x", obj: []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"x","namespace":"agents"},"spec":{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8"}}],"ports":[{"port":443}]}],"egress":[{}]}}`)}.body(t), true, "duplicate field"},
		{"object in another namespace", "/validate", rv{gvk: npGVK, namespace: "other", name: "x", obj: npObj(t, "x", nil, `{podSelector: {}, egress: [{}]}`)}.body(t), true, "namespace"},
		// The guard.
		{"namespace admin deletes agentgate-egress", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Delete, namespace: agentsNS, name: policy.NetworkPolicyName, old: egress()}, "nadia", "team-a"), true, "deleting agentgate's default-deny"},
		{"namespace admin opens it", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Update, namespace: agentsNS, name: policy.NetworkPolicyName, obj: opened, old: egress()}, "nadia", "team-a"), true, "spec"},
		{"namespace admin narrows it", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Update, namespace: agentsNS, name: policy.NetworkPolicyName, obj: narrowed, old: egress()}, "nadia", "team-a"), true, "spec"},
		{"namespace admin removes the label", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Update, namespace: agentsNS, name: policy.NetworkPolicyName, obj: unlabelled, old: egress()}, "nadia", "team-a"), true, "metadata.labels[app.kubernetes.io/managed-by]"},
		{"namespace admin replaces the labels", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Update, namespace: agentsNS, name: policy.NetworkPolicyName, obj: relabelled, old: egress()}, "nadia", "team-a"), true, "metadata.labels[app.kubernetes.io/managed-by]"},
		{"a service account of the namespace deletes it", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Delete, namespace: agentsNS, name: policy.NetworkPolicyName, old: egress()}, "system:serviceaccount:agents:default", "system:serviceaccounts"), true, "deleting"},
		{"namespace controller edits it", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Update, namespace: agentsNS, name: policy.NetworkPolicyName, obj: opened, old: egress()}, "system:serviceaccount:kube-system:namespace-controller"), true, "spec"},
		{"namespace controller deletes it", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Delete, namespace: agentsNS, name: policy.NetworkPolicyName, old: egress()}, "system:serviceaccount:kube-system:namespace-controller"), false, ""},
		{"agentgate restores it", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Update, namespace: agentsNS, name: policy.NetworkPolicyName, obj: egress(), old: opened}, "system:serviceaccount:agentgate-system:agentgate"), false, ""},
		{"an admin deletes it", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Delete, namespace: agentsNS, name: policy.NetworkPolicyName, old: egress()}, "root", "system:masters"), false, ""},
		{"someone else's agentgate-egress (unlabelled)", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Delete, namespace: agentsNS, name: policy.NetworkPolicyName, old: unlabelled}, "nadia", "team-a"), false, ""},
		{"another NetworkPolicy with agentgate's label", "/validate-guard", withUser(rv{gvk: npGVK, op: admissionv1.Delete, namespace: agentsNS, name: "other", old: npObj(t, "other", managed, `{podSelector: {}}`)}, "nadia", "team-a"), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, rev, raw := ts.post(tc.path, tc.body)
			if rev == nil || rev.Response == nil {
				if code == 400 && tc.denied && strings.Contains(string(raw), tc.want) {
					return // refused before any decision: never admitted
				}
				t.Fatalf("no answer: %s", raw)
			}
			resp := rev.Response
			if resp.Allowed == tc.denied {
				t.Fatalf("allowed=%v, want %v: %+v", resp.Allowed, !tc.denied, resp.Result)
			}
			if tc.want != "" && !causes(resp)[tc.want] && !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("neither a cause at %s nor the message says it: %s (causes %v)", tc.want, resp.Result.Message, causes(resp))
			}
		})
	}

	// Defence in depth: an agent pod where agentgate-egress is missing is denied, saying a retry will succeed.
	pod := compliantPod("runner")
	resp := ts.answer("/validate", podReview(pod))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "agentgate-egress is not in place yet") || !strings.Contains(resp.Result.Message, "retry") {
		t.Errorf("pod without agentgate-egress: %+v", resp.Result)
	}
	pod.Namespace = "with-egress"
	if resp := ts.answer("/validate", podReview(pod)); !resp.Allowed {
		t.Errorf("pod where agentgate-egress is in place: %+v", resp.Result)
	}
	pod.Namespace = agentsNS
	if resp := ts.answer("/validate", rv{gvk: podGVK, op: admissionv1.Update, namespace: agentsNS, name: pod.Name, obj: pod, old: pod}); !resp.Allowed {
		t.Errorf("an UPDATE of a running pod is not held back: %+v", resp.Result)
	}
}
