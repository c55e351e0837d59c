package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// alice is a normal user: RBAC lets her edit namespaces and the policy ConfigMaps, and agentgate's guard
// still refuses her the changes that would switch the sandbox off.
func aliceClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	rbac := env.client.RbacV1()
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-guard-alice"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces", "namespaces/status", "namespaces/finalize"}, Verbs: []string{"get", "list", "update", "patch"}},
	}}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-guard-alice"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "alice"}}}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "e2e-guard-alice", Namespace: systemNamespace}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create", "update", "patch", "delete"}},
	}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-guard-alice", Namespace: systemNamespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: crb.Subjects}
	for _, create := range []func() error{
		func() error { _, err := rbac.ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); return err },
		func() error {
			_, err := rbac.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := rbac.Roles(systemNamespace).Create(ctx, role, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := rbac.RoleBindings(systemNamespace).Create(ctx, rb, metav1.CreateOptions{})
			return err
		},
	} {
		if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = rbac.ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{})
		_ = rbac.ClusterRoles().Delete(ctx, cr.Name, metav1.DeleteOptions{})
		_ = rbac.RoleBindings(systemNamespace).Delete(ctx, rb.Name, metav1.DeleteOptions{})
		_ = rbac.Roles(systemNamespace).Delete(ctx, role.Name, metav1.DeleteOptions{})
	})
	cfg := rest.CopyConfig(env.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"system:authenticated", "dev"}}
	return kubernetes.NewForConfigOrDie(cfg)
}

// requireGuarded checks that the API server refused a change with agentgate's guard message naming field.
func requireGuarded(t *testing.T, what string, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: allowed for a user outside the admin groups", what)
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: not a 403 Forbidden: %v", what, err)
	}
	for _, want := range []string{"agentgate", field, "system:masters", `user "alice"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: the refusal does not say %q: %v", what, want, err)
		}
	}
	t.Logf("%s: %v", what, err)
}

func labelPatch(key string, value *string) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: value}}})
	return b
}

func TestNamespaceLabelRemovalIsGuarded(t *testing.T) {
	alice := aliceClient(t)
	ns := agentNamespace(t)
	var refusedBefore float64
	if !env.external {
		refusedBefore = env.server.metric(t, "agentgate_guarded_changes_total", `change="agents_label"`, `result="refused"`)
	}
	nss := alice.CoreV1().Namespaces()

	// Alice may edit an agent namespace in every other way.
	if _, err := nss.Patch(ctx, ns, types.MergePatchType, labelPatch("team", ptr("a")), metav1.PatchOptions{}); err != nil {
		t.Fatalf("an ordinary label change was refused: %v", err)
	}
	_, err := nss.Patch(ctx, ns, types.MergePatchType, labelPatch(agentLabel, nil), metav1.PatchOptions{})
	requireGuarded(t, "removing the label", err, "metadata.labels[agentgate.io/agents]")
	_, err = nss.Patch(ctx, ns, types.MergePatchType, labelPatch(agentLabel, ptr("false")), metav1.PatchOptions{})
	requireGuarded(t, "setting the label to false", err, "metadata.labels[agentgate.io/agents]")
	// The status and finalize subresources can rewrite labels too (seen on this API server): guarded alike.
	cur, err := nss.Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(cur.Labels, agentLabel)
	_, err = nss.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	requireGuarded(t, "removing the label through namespaces/status", err, "metadata.labels[agentgate.io/agents]")
	_, err = nss.Finalize(ctx, cur, metav1.UpdateOptions{})
	requireGuarded(t, "removing the label through namespaces/finalize", err, "metadata.labels[agentgate.io/agents]")

	stored, err := env.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stored.Labels[agentLabel] != "true" || stored.Labels["team"] != "a" {
		t.Fatalf("labels after the refusals: %v", stored.Labels)
	}
	if !env.external {
		// At least the four refusals: the API server calls a webhook again when a call's connection drops before
		// the answer (seen once under load: 5), and each call is counted.
		if got := env.server.metric(t, "agentgate_guarded_changes_total", `change="agents_label"`, `result="refused"`); got-refusedBefore < 4 {
			t.Errorf("agentgate_guarded_changes_total{change=agents_label,result=refused} rose by %v, want 4", got-refusedBefore)
		} else if got-refusedBefore > 4 {
			t.Logf("agentgate_guarded_changes_total{change=agents_label,result=refused} rose by %v: the API server retried a call", got-refusedBefore)
		}
	}

	// The admin (the suite's client is in system:masters) may.
	if _, err := env.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, labelPatch(agentLabel, nil), metav1.PatchOptions{}); err != nil {
		t.Fatalf("the admin could not remove the label: %v", err)
	}
	stored, err = env.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stored.Labels[agentLabel]; ok {
		t.Fatalf("label still there after the admin removed it: %v", stored.Labels)
	}
	// Putting it back is no guarded change: anyone with RBAC may.
	if _, err := nss.Patch(ctx, ns, types.MergePatchType, labelPatch(agentLabel, ptr("true")), metav1.PatchOptions{}); err != nil {
		t.Fatalf("alice could not put the label back: %v", err)
	}
}

func TestPolicySwitchOffIsGuarded(t *testing.T) {
	alice := aliceClient(t)
	base, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A policy of its own, selecting no pod of the other tests, so that switching it off changes nothing else.
	doc := strings.NewReplacer("name: agents", "name: guard-e2e", "podSelector: {}", "podSelector: {matchLabels: {e2e-guard: never}}").Replace(string(base))
	if !strings.Contains(doc, "guard-e2e") || !strings.Contains(doc, "e2e-guard: never") {
		t.Fatal("test setup: the default policy changed; update this test")
	}
	const name = "agentgate-policy-guard-e2e"
	admin := env.client.CoreV1().ConfigMaps(systemNamespace)
	if _, err := admin.Create(ctx, policyConfigMap(name, doc), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(ctx, name, metav1.DeleteOptions{}) })
	cms := alice.CoreV1().ConfigMaps(systemNamespace)
	edit := func(client kubernetes.Interface, f func(*corev1.ConfigMap)) error {
		cm, err := client.CoreV1().ConfigMaps(systemNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f(cm)
		_, err = client.CoreV1().ConfigMaps(systemNamespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	}
	setMode := func(mode string) func(*corev1.ConfigMap) {
		return func(cm *corev1.ConfigMap) {
			cm.Data["policy.yaml"] = strings.Replace(cm.Data["policy.yaml"], "mode: enforce", "mode: "+mode, 1)
		}
	}

	// Tuning the policy is alice's job.
	if err := edit(alice, func(cm *corev1.ConfigMap) {
		cm.Data["policy.yaml"] = strings.Replace(cm.Data["policy.yaml"], "denyTags: [latest]", "denyTags: [latest, dev]", 1)
	}); err != nil {
		t.Fatalf("an ordinary policy edit was refused: %v", err)
	}
	// Switching it off is not.
	requireGuarded(t, "mode enforce -> audit", edit(alice, setMode("audit")), "data[policy.yaml].spec.mode")
	requireGuarded(t, "mode enforce -> warn", edit(alice, setMode("warn")), "data[policy.yaml].spec.mode")
	requireGuarded(t, "removing the policy label", edit(alice, func(cm *corev1.ConfigMap) { delete(cm.Labels, policyLabel) }),
		"metadata.labels[agentgate.io/policy]")
	err = cms.Delete(ctx, name, metav1.DeleteOptions{})
	requireGuarded(t, "deleting the policy", err, "deleting policy ConfigMap")

	stored, err := admin.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the policy ConfigMap is gone: %v", err)
	}
	if !strings.Contains(stored.Data["policy.yaml"], "mode: enforce") || stored.Labels[policyLabel] != "true" {
		t.Fatalf("the policy changed despite the refusals:\n%v\n%s", stored.Labels, stored.Data["policy.yaml"])
	}

	// The admin may do all of it.
	if err := edit(env.client, setMode("audit")); err != nil {
		t.Fatalf("the admin could not switch the policy to audit: %v", err)
	}
	if err := admin.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("the admin could not delete the policy: %v", err)
	}
}

// impersonate is a client acting as user in groups, through the API server's impersonation (the suite's
// client is in system:masters and may impersonate anyone).
func impersonate(user string, groups ...string) kubernetes.Interface {
	cfg := rest.CopyConfig(env.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return kubernetes.NewForConfigOrDie(cfg)
}

// Edits that switch a policy off as completely as mode: audit, without touching the mode or the label. Alice
// has RBAC to edit policy ConfigMaps; the guard refuses her each one, naming the field. A member of the admin
// groups may make each, and undoing it is a tightening that alice may make herself where the guard can tell.
func TestPolicyWeakeningIsGuarded(t *testing.T) {
	alice := aliceClient(t)
	carol := impersonate("carol", "system:authenticated", "system:masters")
	base, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A policy of its own, selecting no pod of the other tests (and none of these edits makes it select one).
	doc := strings.NewReplacer("name: agents", "name: guard-weaken-e2e", "podSelector: {}", "podSelector: {matchLabels: {e2e-guard: never}}").Replace(string(base))
	const name = "agentgate-policy-guard-weaken-e2e"
	admin := env.client.CoreV1().ConfigMaps(systemNamespace)
	if _, err := admin.Create(ctx, policyConfigMap(name, doc), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(ctx, name, metav1.DeleteOptions{}) })
	setDoc := func(client kubernetes.Interface, d string) error {
		cm, err := client.CoreV1().ConfigMaps(systemNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["policy.yaml"] = d
		_, err = client.CoreV1().ConfigMaps(systemNamespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	}
	replace := func(from, to string) string {
		if !strings.Contains(doc, from) {
			t.Fatalf("test setup: the default policy has no %q; update this test", from)
		}
		return strings.Replace(doc, from, to, 1)
	}
	var adminBefore float64
	if !env.external {
		adminBefore = env.server.metric(t, "agentgate_guarded_changes_total", `change="policy_spec"`, `result="admin"`)
	}
	cases := []struct {
		name        string
		weakened    string
		field       string
		aliceUndoes bool // undoing it is a tightening
	}{
		{"the namespace added to exempt.namespaces", replace("namespaces: [kube-system]", "namespaces: [kube-system, team-a]"),
			"data[policy.yaml].spec.exempt.namespaces[1]", true},
		{"a namespace selector that matches nothing", replace(`agentgate.io/agents: "true"`, `agentgate.io/agents: "never"`),
			"data[policy.yaml].spec.match.namespaceSelector", false},
		// Dropping the requirement again selects more: a tightening alice may make.
		{"an opt-in pod selector", replace("podSelector: {matchLabels: {e2e-guard: never}}", "podSelector: {matchLabels: {e2e-guard: never, sandbox: opt-in}}"),
			"data[policy.yaml].spec.match.podSelector", true},
		{"images.allow emptied", replace(`allow: ["registry.corp.example/agents/**"]`, "allow: []"),
			"data[policy.yaml].spec.images.allow", true},
		{"a commands.blocked entry removed", replace(`"reboot", `, ""),
			"data[policy.yaml].spec.commands.blocked[5]", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireGuarded(t, c.name, setDoc(alice, c.weakened), c.field)
			stored, err := admin.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if stored.Data["policy.yaml"] != doc {
				t.Fatalf("the policy changed despite the refusal:\n%s", stored.Data["policy.yaml"])
			}
			if err := setDoc(carol, c.weakened); err != nil {
				t.Fatalf("a member of system:masters could not make the change: %v", err)
			}
			undoer := carol
			if c.aliceUndoes {
				undoer = alice
			}
			if err := setDoc(undoer, doc); err != nil {
				t.Fatalf("undoing the change: %v", err)
			}
		})
	}
	if !env.external {
		// Carol's weakenings are counted as admin changes (and logged as admission.guarded): one per case, and
		// one more for putting the namespace selector's value back, which is a change of the selector too.
		if got := env.server.metric(t, "agentgate_guarded_changes_total", `change="policy_spec"`, `result="admin"`) - adminBefore; got != float64(len(cases)+1) {
			t.Errorf("agentgate_guarded_changes_total{change=policy_spec,result=admin} rose by %v, want %d", got, len(cases)+1)
		}
	}
}
