package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"agentgate.io/agentgate/policy"
)

var nsGVK = metav1.GroupVersionKind{Version: "v1", Kind: "Namespace"}

// asUser sets request.userInfo of a review body; everything else is kept byte for byte (raw messages), so
// that a duplicated key in an object survives.
func asUser(t testing.TB, body []byte, user string, groups ...string) []byte {
	t.Helper()
	var rev, req map[string]json.RawMessage
	if err := json.Unmarshal(body, &rev); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rev["request"], &req); err != nil {
		t.Fatal(err)
	}
	ui := map[string]any{"username": user}
	if groups != nil {
		ui["groups"] = groups
	}
	var err error
	if req["userInfo"], err = json.Marshal(ui); err != nil {
		t.Fatal(err)
	}
	if rev["request"], err = json.Marshal(req); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func namespaceObj(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func policyCM(name string, labels map[string]string, doc string) *corev1.ConfigMap {
	return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "agentgate-system", Labels: labels},
		Data:       map[string]string{policy.ConfigMapDataKey: doc}}
}

var (
	agentLabels  = map[string]string{AgentNamespaceLabel: "true", "team": "a"}
	policyLabels = map[string]string{policy.ConfigMapLabel: "true"}
)

// withMode returns the default policy document with spec.mode set (or removed when mode is "").
func withMode(t *testing.T, mode string) string {
	t.Helper()
	if mode == "" {
		return string(policyDoc(t, "  mode: enforce\n", ""))
	}
	return string(policyDoc(t, "mode: enforce", "mode: "+mode))
}

func TestGuard(t *testing.T) {
	ts := startServer(t, Options{PolicyNamespace: "agentgate-system"})
	alice := []string{"system:authenticated", "dev"}
	admin := []string{"system:authenticated", "system:masters"}
	nsUpdate := func(oldLabels, newLabels map[string]string) rv {
		return rv{gvk: nsGVK, name: "team-a", op: admissionv1.Update,
			obj: namespaceObj("team-a", newLabels), old: namespaceObj("team-a", oldLabels)}
	}
	cmUpdate := func(oldLabels map[string]string, oldDoc string, newLabels map[string]string, newDoc string) rv {
		return rv{gvk: cmGVK, namespace: "agentgate-system", name: "agentgate-policy-agents", op: admissionv1.Update,
			obj: policyCM("agentgate-policy-agents", newLabels, newDoc), old: policyCM("agentgate-policy-agents", oldLabels, oldDoc)}
	}
	enforce := withMode(t, "enforce")
	without := func(m map[string]string, key string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if k != key {
				out[k] = v
			}
		}
		return out
	}
	with := func(m map[string]string, key, value string) map[string]string {
		out := without(m, key)
		out[key] = value
		return out
	}

	cases := []struct {
		name   string
		review rv
		groups []string
		// refused lists the fields of the causes of a 403; nil: allowed.
		refused []string
		change  string // the guarded change logged and counted, "" for none
	}{
		{name: "namespace: label removed", review: nsUpdate(agentLabels, without(agentLabels, AgentNamespaceLabel)), groups: alice,
			refused: []string{"metadata.labels[agentgate.io/agents]"}, change: changeAgentsLabel},
		{name: "namespace: label set to false", review: nsUpdate(agentLabels, with(agentLabels, AgentNamespaceLabel, "false")), groups: alice,
			refused: []string{"metadata.labels[agentgate.io/agents]"}, change: changeAgentsLabel},
		{name: "namespace: all labels removed", review: nsUpdate(agentLabels, nil), groups: nil,
			refused: []string{"metadata.labels[agentgate.io/agents]"}, change: changeAgentsLabel},
		{name: "namespace: label removed by an admin", review: nsUpdate(agentLabels, without(agentLabels, AgentNamespaceLabel)), groups: admin,
			change: changeAgentsLabel},
		{name: "namespace: status subresource", review: func() rv {
			r := nsUpdate(agentLabels, without(agentLabels, AgentNamespaceLabel))
			r.sub = "status"
			return r
		}(), groups: alice, refused: []string{"metadata.labels[agentgate.io/agents]"}, change: changeAgentsLabel},
		{name: "namespace: another label changed", review: nsUpdate(agentLabels, with(agentLabels, "team", "b")), groups: alice},
		{name: "namespace: label added", review: nsUpdate(without(agentLabels, AgentNamespaceLabel), agentLabels), groups: alice},
		{name: "namespace: label value was not true", review: nsUpdate(with(agentLabels, AgentNamespaceLabel, "yes"), nil), groups: alice},
		{name: "namespace: delete", review: rv{gvk: nsGVK, name: "team-a", op: admissionv1.Delete, old: namespaceObj("team-a", agentLabels)}, groups: alice},
		{name: "namespace: create", review: rv{gvk: nsGVK, name: "team-a", op: admissionv1.Create, obj: namespaceObj("team-a", agentLabels)}, groups: alice},

		{name: "policy: enforce to audit", review: cmUpdate(policyLabels, enforce, policyLabels, withMode(t, "audit")), groups: alice,
			refused: []string{"data[policy.yaml].spec.mode"}, change: changePolicyMode},
		{name: "policy: enforce to warn", review: cmUpdate(policyLabels, enforce, policyLabels, withMode(t, "warn")), groups: alice,
			refused: []string{"data[policy.yaml].spec.mode"}, change: changePolicyMode},
		{name: "policy: default mode to audit", review: cmUpdate(policyLabels, withMode(t, ""), policyLabels, withMode(t, "audit")), groups: alice,
			refused: []string{"data[policy.yaml].spec.mode"}, change: changePolicyMode},
		// The guard compares the versions as the server parses them: an invalid one is measured as what it
		// is, a document that would put no policy in force on a replica that starts from it.
		{name: "policy: enforce to audit in an invalid document", review: cmUpdate(policyLabels, enforce, policyLabels, withMode(t, "audit")+"  bogus: 1\n"), groups: alice,
			refused: []string{"data[policy.yaml].spec.bogus"}, change: changePolicyDocument},
		{name: "policy: enforce to audit by an admin", review: cmUpdate(policyLabels, enforce, policyLabels, withMode(t, "audit")), groups: admin,
			change: changePolicyMode},
		{name: "policy: warn to audit", review: cmUpdate(policyLabels, withMode(t, "warn"), policyLabels, withMode(t, "audit")), groups: alice},
		{name: "policy: audit to enforce", review: cmUpdate(policyLabels, withMode(t, "audit"), policyLabels, enforce), groups: alice},
		{name: "policy: mode removed (enforce)", review: cmUpdate(policyLabels, enforce, policyLabels, withMode(t, "")), groups: alice},
		{name: "policy: other edit", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, "denyTags: [latest]", "denyTags: [latest, dev]"))), groups: alice},
		{name: "policy: label removed", review: cmUpdate(policyLabels, enforce, map[string]string{"app": "x"}, enforce), groups: alice,
			refused: []string{"metadata.labels[agentgate.io/policy]"}, change: changePolicyLabel},
		{name: "policy: label set to false and mode downgraded", review: cmUpdate(policyLabels, enforce, map[string]string{policy.ConfigMapLabel: "false"}, withMode(t, "audit")), groups: alice,
			refused: []string{"metadata.labels[agentgate.io/policy]", "data[policy.yaml].spec.mode"}, change: changePolicyLabel},
		{name: "policy: unreadable new document", review: cmUpdate(policyLabels, enforce, policyLabels, "spec: {mode: audit"), groups: alice,
			refused: []string{"data[policy.yaml]"}, change: changePolicyDocument},
		{name: "policy: unreadable new document by an admin", review: cmUpdate(policyLabels, enforce, policyLabels, "spec: {mode: audit"), groups: admin,
			change: changePolicyDocument},
		{name: "policy: key removed", review: rv{gvk: cmGVK, namespace: "agentgate-system", name: "agentgate-policy-agents", op: admissionv1.Update,
			obj: func() *corev1.ConfigMap {
				c := policyCM("agentgate-policy-agents", policyLabels, "")
				c.Data = map[string]string{"policy.yml": enforce}
				return c
			}(), old: policyCM("agentgate-policy-agents", policyLabels, enforce)}, groups: alice,
			refused: []string{"data[policy.yaml]"}, change: changePolicyDocument},
		{name: "policy: broken document made valid", review: cmUpdate(policyLabels, "spec: {mode: audit", policyLabels, withMode(t, "audit")), groups: alice,
			refused: []string{"data[policy.yaml]"}, change: changePolicyDocument},
		{name: "policy: broken document edited, still broken", review: cmUpdate(policyLabels, "spec: {mode: audit", policyLabels, "spec: ["), groups: alice},
		{name: "policy: namespace exempted", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, "namespaces: [kube-system]", "namespaces: [kube-system, team-a]"))),
			groups: alice, refused: []string{"data[policy.yaml].spec.exempt.namespaces[1]"}, change: changePolicySpec},
		{name: "policy: namespace selector matching nothing", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, `agentgate.io/agents: "true"`, `agentgate.io/agents: "never"`))),
			groups: alice, refused: []string{"data[policy.yaml].spec.match.namespaceSelector"}, change: changePolicySpec},
		{name: "policy: opt-in pod selector", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, "podSelector: {}", "podSelector: {matchLabels: {sandbox: \"on\"}}"))),
			groups: alice, refused: []string{"data[policy.yaml].spec.match.podSelector"}, change: changePolicySpec},
		{name: "policy: images.allow emptied", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, `allow: ["registry.corp.example/agents/**"]`, "allow: []"))),
			groups: alice, refused: []string{"data[policy.yaml].spec.images.allow"}, change: changePolicySpec},
		{name: "policy: a blocked command removed", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, `"shutdown", `, ""))),
			groups: alice, refused: []string{"data[policy.yaml].spec.commands.blocked[4]"}, change: changePolicySpec},
		{name: "policy: every weakening at once", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, "mode: enforce", "mode: warn",
			"namespaces: [kube-system]", "namespaces: [kube-system, team-a]", `allow: ["registry.corp.example/agents/**"]`, "allow: []", `"shutdown", `, ""))),
			groups: alice, refused: []string{"data[policy.yaml].spec.mode", "data[policy.yaml].spec.exempt.namespaces[1]", "data[policy.yaml].spec.images.allow",
				"data[policy.yaml].spec.commands.blocked[4]"}, change: changePolicyMode},
		{name: "policy: namespace exempted by an admin", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, "namespaces: [kube-system]", "namespaces: [kube-system, team-a]"))),
			groups: admin, change: changePolicySpec},
		{name: "policy: tightened", review: cmUpdate(policyLabels, enforce, policyLabels, string(policyDoc(t, "namespaces: [kube-system]", "namespaces: []",
			`max: {cpu: "4", memory: 8Gi}`, `max: {cpu: "2", memory: 8Gi}`, `"ip6tables"]`, `"ip6tables", "nft"]`))), groups: alice},
		{name: "not a policy before", review: cmUpdate(map[string]string{"app": "x"}, enforce, policyLabels, withMode(t, "audit")), groups: alice},
		{name: "policy: delete", review: rv{gvk: cmGVK, namespace: "agentgate-system", name: "agentgate-policy-agents", op: admissionv1.Delete,
			old: policyCM("agentgate-policy-agents", policyLabels, enforce)}, groups: alice, refused: []string{""}, change: changePolicyDelete},
		{name: "policy: delete by an admin", review: rv{gvk: cmGVK, namespace: "agentgate-system", name: "agentgate-policy-agents", op: admissionv1.Delete,
			old: policyCM("agentgate-policy-agents", policyLabels, enforce)}, groups: admin, change: changePolicyDelete},
		{name: "policy: delete of a ConfigMap that is no policy", review: rv{gvk: cmGVK, namespace: "agentgate-system", name: "other", op: admissionv1.Delete,
			old: policyCM("other", map[string]string{policy.ConfigMapLabel: "false"}, enforce)}, groups: alice},
		{name: "policy: create", review: rv{gvk: cmGVK, namespace: "agentgate-system", name: "p", op: admissionv1.Create,
			obj: policyCM("p", policyLabels, withMode(t, "audit"))}, groups: alice},
		{name: "ConfigMap outside the policy namespace", review: rv{gvk: cmGVK, namespace: "team-a", name: "p", op: admissionv1.Delete,
			old: func() *corev1.ConfigMap { c := policyCM("p", policyLabels, enforce); c.Namespace = "team-a"; return c }()}, groups: alice},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := ts.metric("agentgate_guarded_changes_total")
			beforeEvents := len(ts.logs.Events("admission.guarded"))
			code, rev, raw := ts.post("/"+EndpointValidateGuard, asUser(t, c.review.body(t), "alice", c.groups...))
			if code != http.StatusOK || rev == nil {
				t.Fatalf("HTTP %d: %s", code, raw)
			}
			resp := rev.Response
			if c.refused == nil {
				if !resp.Allowed {
					t.Fatalf("refused: %+v", resp.Result)
				}
			} else {
				if resp.Allowed {
					t.Fatal("allowed; want a refusal")
				}
				st := resp.Result
				if st == nil || st.Code != http.StatusForbidden || st.Reason != metav1.StatusReasonForbidden || st.Details == nil {
					t.Fatalf("refusal is not a 403 Forbidden with details: %+v", st)
				}
				var fields []string
				for _, cause := range st.Details.Causes {
					fields = append(fields, cause.Field)
					// A policy weakening says what it was and what it becomes.
					if c.review.gvk == cmGVK && cause.Field != "" && !strings.Contains(cause.Message, " -> ") {
						t.Errorf("cause %s does not say old -> new: %s", cause.Field, cause.Message)
					}
				}
				if strings.Join(fields, ",") != strings.Join(c.refused, ",") {
					t.Errorf("causes %q, want %q", fields, c.refused)
				}
				for _, f := range c.refused {
					if !strings.Contains(st.Message, f) {
						t.Errorf("message does not name %s: %s", f, st.Message)
					}
				}
				for _, want := range []string{"system:masters", `user "alice"`, "--admin-groups"} {
					if !strings.Contains(st.Message, want) {
						t.Errorf("message does not say %q: %s", want, st.Message)
					}
				}
				t.Logf("%s", st.Message)
			}
			counted := ts.metric("agentgate_guarded_changes_total") - before
			events := ts.logs.Events("admission.guarded")[beforeEvents:]
			if c.change == "" {
				if counted != 0 || len(events) != 0 {
					t.Errorf("no guarded change, but %v counted and %d events logged", counted, len(events))
				}
				return
			}
			if len(events) == 0 || counted != float64(len(events)) {
				t.Fatalf("%d admission.guarded events, %v counted", len(events), counted)
			}
			ev := events[0]
			if ev["change"] != c.change || ev["allowed"] != resp.Allowed || ev["user"] != "alice" {
				t.Errorf("event %v: want change %s, allowed %v, user alice", ev, c.change, resp.Allowed)
			}
			result := "refused"
			if resp.Allowed {
				result = "admin"
			}
			if ts.metric("agentgate_guarded_changes_total", `change="`+c.change+`"`, `result="`+result+`"`) == 0 {
				t.Errorf("agentgate_guarded_changes_total{change=%q,result=%q} not counted", c.change, result)
			}
		})
	}
}

// The guard refuses what it cannot judge (fail closed) and never answers another kind.
func TestGuardRefusesWhatItCannotJudge(t *testing.T) {
	ts := startServer(t, Options{})
	ns := namespaceObj("team-a", agentLabels)
	cases := []struct {
		name string
		r    rv
	}{
		{"namespace update without oldObject", rv{gvk: nsGVK, name: "team-a", op: admissionv1.Update, obj: ns}},
		{"namespace update without object", rv{gvk: nsGVK, name: "team-a", op: admissionv1.Update, old: ns}},
		{"namespace with duplicate labels key", rv{gvk: nsGVK, name: "team-a", op: admissionv1.Update, old: ns,
			obj: []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a","labels":{"agentgate.io/agents":"true"},"labels":{}}}`)}},
		{"object is a ConfigMap", rv{gvk: nsGVK, name: "team-a", op: admissionv1.Update, old: ns, obj: policyCM("team-a", nil, "")}},
		{"policy delete without oldObject", rv{gvk: cmGVK, namespace: "agentgate-system", name: "p", op: admissionv1.Delete}},
		{"ConfigMap in another namespace than the request", rv{gvk: cmGVK, namespace: "other", name: "p", op: admissionv1.Delete,
			old: policyCM("p", policyLabels, "")}},
		{"a Pod", rv{gvk: podGVK, namespace: agentsNS, name: "p", op: admissionv1.Update, obj: minimalPod("p"), old: minimalPod("p")}},
		{"Namespace v1beta1", rv{gvk: metav1.GroupVersionKind{Version: "v1beta1", Kind: "Namespace"}, name: "team-a", op: admissionv1.Update, obj: ns, old: ns}},
		{"unknown operation", rv{gvk: nsGVK, name: "team-a", op: "PATCH", obj: ns, old: ns}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, groups := range [][]string{{"dev"}, {"system:masters"}} {
				code, rev, raw := ts.post("/"+EndpointValidateGuard, asUser(t, c.r.body(t), "alice", groups...))
				if code >= 500 {
					t.Fatalf("HTTP %d: %s", code, raw)
				}
				if code == http.StatusOK && (rev == nil || rev.Response.Allowed) {
					t.Fatalf("groups %v: allowed: %s", groups, raw)
				}
			}
		})
	}
	ts.healthy()
}

func TestGuardAdminGroups(t *testing.T) {
	ts := startServer(t, Options{AdminGroups: []string{"platform-admins", "sre"}})
	r := rv{gvk: nsGVK, name: "team-a", op: admissionv1.Update,
		obj: namespaceObj("team-a", nil), old: namespaceObj("team-a", agentLabels)}
	for _, c := range []struct {
		groups []string
		allow  bool
	}{
		{[]string{"system:authenticated", "sre"}, true},
		{[]string{"platform-admins"}, true},
		// Configured groups replace the default: a system:masters user breaks glass instead (docs/operating.md).
		{[]string{"system:masters"}, false},
		{nil, false},
	} {
		code, rev, raw := ts.post("/"+EndpointValidateGuard, asUser(t, r.body(t), "bob", c.groups...))
		if code != http.StatusOK || rev == nil {
			t.Fatalf("HTTP %d: %s", code, raw)
		}
		if rev.Response.Allowed != c.allow {
			t.Errorf("groups %v: allowed %v, want %v", c.groups, rev.Response.Allowed, c.allow)
		}
		if !c.allow && !strings.Contains(rev.Response.Result.Message, "(platform-admins, sre)") {
			t.Errorf("message does not list the admin groups: %s", rev.Response.Result.Message)
		}
	}
}

// TestRelabelOutIsGuarded: a running pod's labels may not change so that a policy that selected it no longer
// does, except by an admin; other label changes, and relabelling into a policy, pass.
func TestRelabelOutIsGuarded(t *testing.T) {
	ts := startServer(t, staticPolicy(t, "    podSelector: {}\n", "    podSelector: {matchLabels: {app: agent}}\n"))
	relabel := func(from, to map[string]string, user string, groups ...string) *admissionv1.AdmissionResponse {
		t.Helper()
		old, cur := compliantPod("runner"), compliantPod("runner")
		old.Labels, cur.Labels = from, to
		body := asUser(t, rv{gvk: podGVK, namespace: agentsNS, name: "runner", op: admissionv1.Update, obj: cur, old: old}.body(t), user, groups...)
		code, rev, raw := ts.post("/validate", body)
		if code != 200 || rev == nil {
			t.Fatalf("HTTP %d: %s", code, raw)
		}
		return rev.Response
	}
	agent := map[string]string{"app": "agent"}
	resp := relabel(agent, map[string]string{"app": "quarantined"}, "bob", "team-a")
	if resp.Allowed || resp.Result == nil || resp.Result.Code != 403 || !strings.Contains(resp.Result.Message, `out of policy "agents"`) ||
		!strings.Contains(resp.Result.Message, "{app=agent} -> {app=quarantined}") {
		t.Fatalf("relabelled out by bob: %+v", resp.Result)
	}
	if c := causes(resp); !c["metadata.labels"] {
		t.Errorf("causes %v, want metadata.labels", c)
	}
	if resp := relabel(agent, map[string]string{"app": "quarantined"}, "root", "system:masters"); !resp.Allowed {
		t.Errorf("an admin relabelling out was refused: %+v", resp.Result)
	}
	if resp := relabel(agent, map[string]string{"app": "agent", "team": "a"}, "bob"); !resp.Allowed {
		t.Errorf("a label added that keeps the pod selected was refused: %+v", resp.Result)
	}
	if resp := relabel(map[string]string{"app": "other"}, agent, "bob"); !resp.Allowed {
		t.Errorf("relabelling into the policy was refused: %+v", resp.Result)
	}
	if got := ts.metric("agentgate_guarded_changes_total", `change="pod_labels"`, `result="refused"`); got != 1 {
		t.Errorf("guarded_changes_total{pod_labels,refused} = %v", got)
	}
	if got := ts.metric("agentgate_guarded_changes_total", `change="pod_labels"`, `result="admin"`); got != 1 {
		t.Errorf("guarded_changes_total{pod_labels,admin} = %v", got)
	}
}

// TestRelabelThroughStatusIsGuarded: pods/status keeps the stored spec but writes the labels it is sent, so a
// relabelling through it is judged like one through pods; a status write that keeps the labels passes.
func TestRelabelThroughStatusIsGuarded(t *testing.T) {
	ts := startServer(t, staticPolicy(t, "    podSelector: {}\n", "    podSelector: {matchLabels: {app: agent}}\n"))
	status := func(to map[string]string, user string, groups ...string) *admissionv1.AdmissionResponse {
		t.Helper()
		old, cur := compliantPod("runner"), compliantPod("runner")
		old.Labels, cur.Labels = map[string]string{"app": "agent"}, to
		cur.Status.Phase = corev1.PodRunning
		body := asUser(t, rv{gvk: podGVK, namespace: agentsNS, name: "runner", sub: "status", op: admissionv1.Update, obj: cur, old: old}.body(t), user, groups...)
		code, rev, raw := ts.post("/validate", body)
		if code != 200 || rev == nil {
			t.Fatalf("HTTP %d: %s", code, raw)
		}
		return rev.Response
	}
	if resp := status(map[string]string{"app": "quarantined"}, "bob"); resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, `out of policy "agents"`) {
		t.Fatalf("relabelled out through pods/status by bob: %+v", resp)
	}
	if resp := status(map[string]string{"app": "quarantined"}, "root", "system:masters"); !resp.Allowed {
		t.Errorf("an admin relabelling out through pods/status was refused: %+v", resp.Result)
	}
	if resp := status(map[string]string{"app": "agent"}, "system:node:n1"); !resp.Allowed {
		t.Errorf("a status write that keeps the labels was refused: %+v", resp.Result)
	}
	// The old object is what the labels are measured against: without it nothing is admitted.
	cur := compliantPod("runner")
	if resp := ts.answer("/validate", rv{gvk: podGVK, namespace: agentsNS, name: "runner", sub: "status", op: admissionv1.Update, obj: cur}); resp.Allowed {
		t.Error("a pods/status UPDATE without oldObject was admitted")
	}
}
