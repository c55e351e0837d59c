package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/internal/testutil"
)

type checklistItem struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Evidence []string `json:"evidence"`
	Remedy   string   `json:"remedy"`
}

type checklistReport struct {
	Items   []checklistItem `json:"items"`
	Summary struct{ Pass, Fail, Unknown int }
}

func runChecklist(t *testing.T, args ...string) (int, checklistReport, string) {
	t.Helper()
	code, out, stderr := runAgentgate(t, append([]string{"checklist", "-o", "json"}, args...)...)
	var r checklistReport
	if code != 2 {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("checklist -o json: %v\n%s\nstderr: %s", err, out, stderr)
		}
	}
	return code, r, stderr
}

func statuses(r checklistReport) map[string]string {
	m := map[string]string{}
	for _, it := range r.Items {
		m[it.ID] = it.Status
	}
	return m
}

func itemOf(r checklistReport, id string) checklistItem {
	for _, it := range r.Items {
		if it.ID == id {
			return it
		}
	}
	return checklistItem{}
}

// checklistSetup is a full setup the way manifests/base makes one, in a namespace of its own (so that what other
// tests leave in the shared cluster is not judged): a copy of the default policy selecting only this test's
// agent namespace, agentgate's Deployment and Secret (read for their flags and certificate, never run), and the
// suite's webhook configurations (served by the child process on loopback).
type checklistSetup struct {
	system, agents, policyYAML string
	args                       []string
	savedValidating            *admissionregistrationv1.ValidatingWebhookConfiguration
}

func (c *checklistSetup) run(t *testing.T) (int, checklistReport) {
	t.Helper()
	code, r, stderr := runChecklist(t, "--kubeconfig", env.kubeconfig, "--namespace", c.system, "--webhook-configuration", e2eWebhookName)
	if code == 2 {
		t.Fatalf("checklist could not run: %s", stderr)
	}
	return code, r
}

func (c *checklistSetup) putPolicy(t *testing.T, doc string) {
	t.Helper()
	cm := policyConfigMap("agentgate-policy-checklist", doc)
	cm.Namespace = c.system
	ctx := context.Background()
	if _, err := env.client.CoreV1().ConfigMaps(c.system).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		if _, err := env.client.CoreV1().ConfigMaps(c.system).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *checklistSetup) putDeployment(t *testing.T, args []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	d.Namespace = c.system
	d.Spec.Template.Spec.Containers[0].Args = args
	ctx := context.Background()
	if old, err := env.client.AppsV1().Deployments(c.system).Get(ctx, d.Name, metav1.GetOptions{}); err == nil {
		old.Spec.Template.Spec.Containers[0].Args = args
		if _, err := env.client.AppsV1().Deployments(c.system).Update(ctx, old, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := env.client.AppsV1().Deployments(c.system).Create(ctx, &d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func newChecklistSetup(t *testing.T) *checklistSetup {
	t.Helper()
	ctx := context.Background()
	system, err := env.createNamespace(ctx, "checklist-system", false)
	if err != nil {
		t.Fatal(err)
	}
	agents := agentNamespace(t)
	runLabel := "checklist.agentgate.io/run"
	ns, err := env.client.CoreV1().Namespaces().Get(ctx, agents, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels[runLabel] = agents
	if _, err := env.client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := &checklistSetup{system: system, agents: agents}
	c.policyYAML = strings.Replace(string(base), `agentgate.io/agents: "true"`, fmt.Sprintf("%s: %s", runLabel, agents), 1)
	c.putPolicy(t, c.policyYAML)

	deploy, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(deploy, &d); err != nil {
		t.Fatal(err)
	}
	c.args = d.Spec.Template.Spec.Containers[0].Args
	c.putDeployment(t, c.args)

	crt, err := os.ReadFile(filepath.Join(env.server.certDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "agentgate-tls", Namespace: system}, Data: map[string][]byte{"tls.crt": crt}}
	if _, err := env.client.CoreV1().Secrets(system).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "agentgate-egress", Namespace: agents},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
				CIDR: "0.0.0.0/0", Except: []string{"169.254.0.0/16", "10.0.0.0/8"},
			}}}}},
		},
	}
	if _, err := env.client.NetworkingV1().NetworkPolicies(agents).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A running agent pod, stored as agentgate hardened it.
	if _, err := env.client.CoreV1().Pods(agents).Create(ctx, agentPod("runner"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChecklistFullSetupPasses: every item the checklist can judge on this cluster passes (alerts is unknown:
// no Prometheus Operator CRD here), the outside-the-cluster lines are unknown with their command; exit 0.
func TestChecklistFullSetupPasses(t *testing.T) {
	c := newChecklistSetup(t)
	code, r := c.run(t)
	// alerts: unknown until TestChecklistAlerts has installed the PrometheusRule CRD, and then pass (it leaves
	// agentgate's rule in place).
	alerts, wantPass, wantUnknown := "unknown", 8, 5
	if served, err := env.serves("monitoring.coreos.com/v1", "PrometheusRule"); err != nil {
		t.Fatal(err)
	} else if served {
		alerts, wantPass, wantUnknown = "pass", 9, 4
	}
	want := map[string]string{
		"tls": "pass", "token": "pass", "sandbox": "pass", "resources": "pass", "commands": "pass", "network": "pass",
		"audit-logs": "pass", "alerts": alerts, "rotation": "pass",
		"kube-bench": "unknown", "anonymous-auth": "unknown", "dashboard": "unknown", "bastion": "unknown",
	}
	got := statuses(r)
	for id, s := range want {
		if got[id] != s {
			t.Errorf("%s: %s, want %s: %q", id, got[id], s, itemOf(r, id).Evidence)
		}
	}
	if len(got) != len(want) {
		t.Errorf("items %v, want %v", got, want)
	}
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if it := itemOf(r, "tls"); !strings.Contains(strings.Join(it.Evidence, "\n"), "TLS 1.3") {
		t.Errorf("tls evidence does not say TLS 1.3: %q", it.Evidence)
	}
	if it := itemOf(r, "kube-bench"); !strings.Contains(it.Remedy, "kube-bench run") {
		t.Errorf("kube-bench remedy %q", it.Remedy)
	}
	if r.Summary.Pass != wantPass || r.Summary.Fail != 0 || r.Summary.Unknown != wantUnknown {
		t.Errorf("summary %+v", r.Summary)
	}
}

// TestChecklistEachItemFailsOnItsOwn breaks one part at a time and restores it: that item fails with evidence
// naming the object, every other item keeps its status, exit 1.
func TestChecklistEachItemFailsOnItsOwn(t *testing.T) {
	c := newChecklistSetup(t)
	ctx := context.Background()
	_, baseline := c.run(t)
	before := statuses(baseline)
	blocked := regexp.MustCompile(`(?s)    blocked: \[.*?\]\n    allowed`)
	for _, tc := range []struct {
		item, evidence string
		breakIt        func(t *testing.T)
		restore        func(t *testing.T)
	}{
		{"sandbox", "policy agents: spec.mode is warn",
			func(t *testing.T) {
				c.putPolicy(t, strings.Replace(c.policyYAML, "  mode: enforce", "  mode: warn", 1))
			},
			func(t *testing.T) { c.putPolicy(t, c.policyYAML) }},
		{"tls", "ValidatingWebhookConfiguration " + e2eWebhookName + ", webhook validate.workloads.agentgate.io: https://",
			func(t *testing.T) { c.trustOtherCA(t, true) },
			func(t *testing.T) { c.trustOtherCA(t, false) }},
		{"sandbox", "no webhook with failurePolicy Fail sees UPDATE pods/resize in agent namespace " + c.agents,
			func(t *testing.T) { c.editValidating(t, "pods/resize") },
			func(t *testing.T) { c.editValidating(t, "") }},
		{"sandbox", "Node windows-untainted runs Windows without the taint node.kubernetes.io/os=windows:NoSchedule",
			func(t *testing.T) {
				node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "windows-untainted", Labels: map[string]string{corev1.LabelOSStable: "windows"}}}
				if _, err := env.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T) {
				if err := env.client.CoreV1().Nodes().Delete(ctx, "windows-untainted", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
		{"token", "ServiceAccount " + c.agents + "/default may create pods/binding",
			func(t *testing.T) {
				role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "binder"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/binding"}, Verbs: []string{"create"}}}}
				if _, err := env.client.RbacV1().Roles(c.agents).Create(ctx, role, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "binder"},
					RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "binder"},
					Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: c.agents}}}
				if _, err := env.client.RbacV1().RoleBindings(c.agents).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T) {
				if err := env.client.RbacV1().RoleBindings(c.agents).Delete(ctx, "binder", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
		{"token", "holds a service-account token that never expires",
			func(t *testing.T) {
				// Written while the namespace was outside the sandbox (agentgate refuses it in an agent namespace):
				// the label off (an admin may), the Secret created, the label back.
				setNamespaceLabel(t, c.agents, agentLabel, nil)
				secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "legacy-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
					Type: corev1.SecretTypeServiceAccountToken}
				// Refused until the API server's namespace cache sees the label gone.
				testutil.Eventually(t, 30*time.Second, "the token Secret created outside the sandbox", func() error {
					_, err := env.client.CoreV1().Secrets(c.agents).Create(ctx, secret, metav1.CreateOptions{})
					return err
				})
				setNamespaceLabel(t, c.agents, agentLabel, on())
			},
			func(t *testing.T) {
				if err := env.client.CoreV1().Secrets(c.agents).Delete(ctx, "legacy-token", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
		{"resources", "policy agents: spec.resources.max.cpu is not set",
			func(t *testing.T) {
				c.putPolicy(t, strings.Replace(c.policyYAML, "    max: {cpu: \"4\", memory: 8Gi}\n", "", 1))
			},
			func(t *testing.T) { c.putPolicy(t, c.policyYAML) }},
		{"commands", "policy agents: spec.commands.blocked is empty",
			func(t *testing.T) {
				c.putPolicy(t, blocked.ReplaceAllString(c.policyYAML, "    blocked: []\n    allowed"))
			},
			func(t *testing.T) { c.putPolicy(t, c.policyYAML) }},
		{"network", "NetworkPolicy " + c.agents + "/open-metadata: spec.egress[0].to[0].ipBlock 169.254.169.254/32",
			func(t *testing.T) {
				np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "open-metadata"}, Spec: networkingv1.NetworkPolicySpec{
					PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
					PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
					Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "169.254.169.254/32"}}}}},
				}}
				if _, err := env.client.NetworkingV1().NetworkPolicies(c.agents).Create(ctx, np, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T) {
				if err := env.client.NetworkingV1().NetworkPolicies(c.agents).Delete(ctx, "open-metadata", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
		{"token", "ServiceAccount " + c.agents + "/default may get secrets, list secrets",
			func(t *testing.T) {
				role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "leaky"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}}}
				if _, err := env.client.RbacV1().Roles(c.agents).Create(ctx, role, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				// Bound to the group, not the account: the same grant spelled another way.
				rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "leaky"},
					RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "leaky"},
					Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "system:serviceaccounts:" + c.agents}}}
				if _, err := env.client.RbacV1().RoleBindings(c.agents).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T) {
				if err := env.client.RbacV1().RoleBindings(c.agents).Delete(ctx, "leaky", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
		{"audit-logs", "Deployment " + c.system + "/agentgate: --log-level=error",
			func(t *testing.T) { c.putDeployment(t, append(append([]string{}, c.args...), "--log-level", "error")) },
			func(t *testing.T) { c.putDeployment(t, c.args) }},
		{"rotation", "Deployment " + c.system + "/agentgate: no --cert-secret",
			func(t *testing.T) {
				var args []string
				for _, a := range c.args {
					if !strings.HasPrefix(a, "--cert-secret") {
						args = append(args, a)
					}
				}
				c.putDeployment(t, append(args, "--cert-dir=/certs"))
			},
			func(t *testing.T) { c.putDeployment(t, c.args) }},
	} {
		t.Run(tc.item, func(t *testing.T) {
			tc.breakIt(t)
			code, r := c.run(t)
			tc.restore(t)
			it := itemOf(r, tc.item)
			if it.Status != "fail" || !strings.Contains(strings.Join(it.Evidence, "\n"), tc.evidence) || it.Remedy == "" {
				t.Errorf("%s: %s, want fail with evidence %q: %q (remedy %q)", tc.item, it.Status, tc.evidence, it.Evidence, it.Remedy)
			}
			for id, s := range statuses(r) {
				if id != tc.item && s != before[id] {
					t.Errorf("%s changed from %s to %s: %q", id, before[id], s, itemOf(r, id).Evidence)
				}
			}
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
		})
	}
	if _, r := c.run(t); fmt.Sprint(statuses(r)) != fmt.Sprint(before) {
		t.Errorf("after restoring: %v, want %v", statuses(r), before)
	}
}

// trustOtherCA makes the e2e ValidatingWebhookConfiguration's caBundle a CA that did not sign agentgate's
// certificate (the API server could no longer call it), or puts the saved configuration back.
func (c *checklistSetup) trustOtherCA(t *testing.T, other bool) {
	t.Helper()
	if !other {
		c.editValidating(t, "")
		return
	}
	ca, err := certs.GenerateCA("not-agentgate", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	vwcs := env.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cur, err := vwcs.Get(context.Background(), e2eWebhookName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.savedValidating = cur.DeepCopy()
	for i := range cur.Webhooks {
		cur.Webhooks[i].ClientConfig.CABundle = ca.CertPEM
	}
	if _, err := vwcs.Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// editValidating removes resource from every rule of agentgate's e2e ValidatingWebhookConfiguration, or with
// "" puts back what it removed.
func (c *checklistSetup) editValidating(t *testing.T, resource string) {
	t.Helper()
	ctx := context.Background()
	vwcs := env.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cur, err := vwcs.Get(ctx, e2eWebhookName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if resource == "" {
		c.savedValidating.ResourceVersion = cur.ResourceVersion
		if _, err := vwcs.Update(ctx, c.savedValidating, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	c.savedValidating = cur.DeepCopy()
	for i := range cur.Webhooks {
		for j := range cur.Webhooks[i].Rules {
			r := &cur.Webhooks[i].Rules[j]
			r.Resources = slices.DeleteFunc(r.Resources, func(s string) bool { return s == resource })
		}
	}
	if _, err := vwcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestChecklistAlerts: with the Prometheus Operator's CRD served, alerts fails while agentgate has no
// PrometheusRule, fails naming the alerts an older or edited rule lacks, and passes with this release's rule.
func TestChecklistAlerts(t *testing.T) {
	c := newChecklistSetup(t)
	installCRDFiles(t, "e2e/testdata/prometheusrule-crd.yaml")
	rules := dynamic.NewForConfigOrDie(env.cfg).Resource(schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"})
	raw, err := os.ReadFile(filepath.Join(env.root, "manifests", "components", "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rule := object(t, string(raw))
	rule.SetNamespace(c.system)
	// A previous run's rule (another setup namespace) would answer for this one: start with none.
	previous, err := rules.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range previous.Items {
		if err := rules.Namespace(p.GetNamespace()).Delete(ctx, p.GetName(), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	alertsItem := func() checklistItem {
		t.Helper()
		_, r := c.run(t)
		return itemOf(r, "alerts")
	}
	if it := alertsItem(); it.Status != "fail" || !strings.Contains(strings.Join(it.Evidence, "\n"), "no PrometheusRule for agentgate") {
		t.Errorf("no rule: %s %q", it.Status, it.Evidence)
	}

	older := rule.DeepCopy()
	groups, _, _ := unstructured.NestedSlice(older.Object, "spec", "groups")
	group := groups[0].(map[string]any)
	group["rules"] = slices.DeleteFunc(group["rules"].([]any), func(r any) bool { return r.(map[string]any)["alert"] == "AgentgateAuditStale" })
	if err := unstructured.SetNestedSlice(older.Object, groups, "spec", "groups"); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Namespace(c.system).Create(ctx, older, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if it := alertsItem(); it.Status != "fail" || !strings.Contains(strings.Join(it.Evidence, "\n"), "lacks AgentgateAuditStale") {
		t.Errorf("a rule without AgentgateAuditStale: %s %q", it.Status, it.Evidence)
	}

	cur, err := rules.Namespace(c.system).Get(ctx, rule.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rule.SetResourceVersion(cur.GetResourceVersion())
	if _, err := rules.Namespace(c.system).Update(ctx, rule, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if it := alertsItem(); it.Status != "pass" {
		t.Errorf("this release's rule: %s %q", it.Status, it.Evidence)
	}
}

// TestChecklistCannotRun: no cluster configuration, or an API server that does not answer, is exit 2 with the
// reason, not a report of unknowns.
func TestChecklistCannotRun(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n" +
		"users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
	if err := os.WriteFile(dead, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kubeconfig", dead}, "API server unreachable"},
		{[]string{"--kubeconfig", filepath.Join(dir, "missing")}, "no cluster configuration"},
		{[]string{"--kubeconfig", env.kubeconfig, "-o", "yaml"}, `-o "yaml"`},
	} {
		code, _, stderr := runChecklist(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestChecklistForbiddenIsUnknown: a caller who may read nothing gets unknown items with the reason (Forbidden),
// never a pass and never a crash; unknown alone exits 0.
func TestChecklistForbiddenIsUnknown(t *testing.T) {
	newChecklistSetup(t) // something to hide
	cfg, err := clientcmd.LoadFromFile(env.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		u.Impersonate = "checklist-nobody"
	}
	nobody := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, nobody); err != nil {
		t.Fatal(err)
	}
	code, r, stderr := runChecklist(t, "--kubeconfig", nobody, "--webhook-configuration", e2eWebhookName)
	if code != 0 {
		t.Fatalf("exit %d, want 0 (unknown does not fail): %s", code, stderr)
	}
	for _, it := range r.Items {
		if it.Status != "unknown" {
			t.Errorf("%s: %s, want unknown: %q", it.ID, it.Status, it.Evidence)
		}
	}
	for _, id := range []string{"tls", "token", "sandbox", "network", "rotation"} {
		if ev := strings.Join(itemOf(r, id).Evidence, "\n"); !strings.Contains(ev, "forbidden") {
			t.Errorf("%s: evidence does not name the Forbidden: %q", id, ev)
		}
	}
}
