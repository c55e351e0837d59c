package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/internal/testutil"
)

const (
	networkLabel    = "e2e.agentgate.io/network"
	networkPolicyCM = "agentgate-policy-network"
	egressName      = "agentgate-egress"
)

// networkPolicyDoc manages agent namespaces that also carry networkLabel (the other tests' namespaces stay
// unmanaged); allow is the YAML of spec.network.egress.allow.
func networkPolicyDoc(allow string) string {
	return `apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: network}
spec:
  match:
    namespaceSelector: {matchLabels: {agentgate.io/agents: "true", ` + networkLabel + `: "true"}}
    podSelector: {matchLabels: {app: agent}}
  network:
    manage: true
    egress:
      dnsResolvers: [169.254.20.10]
      allow: ` + allow + "\n"
}

// wantEgress is the exact spec agentgate-egress must have for the policy above.
func wantEgress(t *testing.T, allow string) networkingv1.NetworkPolicySpec {
	t.Helper()
	var spec networkingv1.NetworkPolicySpec
	doc := `
podSelector: {matchLabels: {app: agent}}
policyTypes: [Egress]
egress:
  - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
    to:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
        podSelector: {matchLabels: {k8s-app: kube-dns}}
      - ipBlock: {cidr: 169.254.20.10/32}
` + allow
	if err := yaml.UnmarshalStrict([]byte(doc), &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

const (
	allowTen  = "[{cidr: 10.0.0.0/8, ports: [{port: 443, protocol: TCP}]}]"
	egressTen = `  - ports: [{port: 443, protocol: TCP}]
    to: [{ipBlock: {cidr: 10.0.0.0/8}}]
`
	allowAll  = "[{cidr: 0.0.0.0/0, ports: [{port: 443}]}, {cidr: \"::/0\", ports: [{port: 443}]}]"
	egressAll = `  - ports: [{port: 443, protocol: TCP}]
    to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.0.0/16, 0.0.0.0/8]}}]
  - ports: [{port: 443, protocol: TCP}]
    to: [{ipBlock: {cidr: "::/0", except: ["fe80::/10", "fd00:ec2::254/128"]}}]
`
)

func putNetworkPolicy(t *testing.T, allow string) {
	t.Helper()
	cms := env.client.CoreV1().ConfigMaps(systemNamespace)
	cm := policyConfigMap(networkPolicyCM, networkPolicyDoc(allow))
	_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
	if err == nil {
		t.Cleanup(func() { _ = cms.Delete(ctx, networkPolicyCM, metav1.DeleteOptions{}) })
	}
	if apierrors.IsAlreadyExists(err) {
		cur, err := cms.Get(ctx, networkPolicyCM, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Data = cm.Data
		if _, err := cms.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
}

func setNamespaceLabel(t *testing.T, ns, key string, value *string) {
	t.Helper()
	if _, err := env.client.CoreV1().Namespaces().Patch(ctx, ns, types.StrategicMergePatchType, labelPatch(key, value), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func on() *string { v := "true"; return &v }

// waitEgress waits until ns holds agentgate-egress with exactly spec, labelled managed-by agentgate.
func waitEgress(t *testing.T, ns string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	t.Helper()
	var got *networkingv1.NetworkPolicy
	testutil.Eventually(t, 30*time.Second, ns+"/"+egressName+" in place", func() error {
		np, err := env.client.NetworkingV1().NetworkPolicies(ns).Get(ctx, egressName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if np.Labels["app.kubernetes.io/managed-by"] != "agentgate" || np.Annotations["agentgate.io/policy"] != "network" {
			return fmt.Errorf("labels %v, annotations %v", np.Labels, np.Annotations)
		}
		if !equality.Semantic.DeepEqual(np.Spec, spec) {
			g, _ := yaml.Marshal(np.Spec)
			w, _ := yaml.Marshal(spec)
			return fmt.Errorf("spec\n%s\nwant\n%s", g, w)
		}
		got = np
		return nil
	})
	return got
}

func waitNoEgress(t *testing.T, ns string) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, ns+"/"+egressName+" removed", func() error {
		_, err := env.client.NetworkingV1().NetworkPolicies(ns).Get(ctx, egressName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

// nadia administers one namespace: every verb on its NetworkPolicies (what the built-in admin ClusterRole
// grants; here without kube-controller-manager that aggregated role stays empty), nothing cluster-wide.
func namespaceAdmin(t *testing.T, ns string) kubernetes.Interface {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "nadia-admin", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"*"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "pods/status"}, Verbs: []string{"get", "list", "patch", "update"}},
	}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "nadia-admin", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "nadia"}}}
	if _, err := env.client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return impersonate("nadia", "system:authenticated", "team-a")
}

func networkPolicy(ns, name, spec string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{}
	if err := yaml.UnmarshalStrict([]byte("spec: "+spec), np); err != nil {
		panic(err)
	}
	np.Name, np.Namespace = name, ns
	return np
}

func causeFields(err error) []string {
	var out []string
	if st, ok := err.(apierrors.APIStatus); ok && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			out = append(out, c.Field)
		}
	}
	return out
}

// TestNetworkEgress: the network sandbox through the real API server, agentgate as a child process leading the
// agentgate-network lease.
func TestNetworkEgress(t *testing.T) {
	requireServer(t)
	putNetworkPolicy(t, allowTen)

	// Labelling a namespace: agentgate-egress appears, exactly.
	nsA, nsB := agentNamespace(t), agentNamespace(t)
	setNamespaceLabel(t, nsA, networkLabel, on())
	setNamespaceLabel(t, nsB, networkLabel, on())
	waitEgress(t, nsA, wantEgress(t, egressTen))
	waitEgress(t, nsB, wantEgress(t, egressTen))

	// An allow-all egress NetworkPolicy is denied, with its field path; so is one to the metadata API, and one to
	// every pod of the cluster.
	npA := env.client.NetworkingV1().NetworkPolicies(nsA)
	for _, c := range []struct{ name, spec, field string }{
		{"allow-all", `{podSelector: {}, policyTypes: [Egress], egress: [{}]}`, "spec.egress[0].to"},
		{"metadata", `{podSelector: {matchLabels: {app: agent}}, egress: [{to: [{ipBlock: {cidr: 169.254.169.254/32}}], ports: [{port: 80}]}]}`, "spec.egress[0].to[0].ipBlock.cidr"},
		{"everywhere-443", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: 443}]}]}`, "spec.egress[0].to[0].ipBlock.cidr"},
		{"all-pods", `{podSelector: {}, egress: [{to: [{namespaceSelector: {}}]}]}`, "spec.egress[0].to[0].namespaceSelector"},
	} {
		_, err := npA.Create(ctx, networkPolicy(nsA, c.name, c.spec), metav1.CreateOptions{})
		if err == nil {
			t.Errorf("%s: admitted", c.name)
			continue
		}
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "networkEgress") || !strings.Contains(err.Error(), "allowed: DNS") {
			t.Errorf("%s: want a 422 naming the check and what is allowed, got %v", c.name, err)
		}
		if f := causeFields(err); len(f) == 0 || f[0] != c.field {
			t.Errorf("%s: causes at %v, want %s first", c.name, f, c.field)
		}
		t.Logf("%s: %v", c.name, err)
	}
	// Within the allowed set: admitted; made broader by an UPDATE: denied.
	inside, err := npA.Create(ctx, networkPolicy(nsA, "api-only", `{podSelector: {matchLabels: {app: agent}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.20.0.0/16}}], ports: [{port: 443, protocol: TCP}]}]}`), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a NetworkPolicy within the allowed set was denied: %v", err)
	}
	inside.Spec.Egress[0].Ports = nil
	if _, err := npA.Update(ctx, inside, metav1.UpdateOptions{}); err == nil || !slices.Contains(causeFields(err), "spec.egress[0].ports") {
		t.Errorf("an UPDATE opening every port: want denied at spec.egress[0].ports, got %v", err)
	}

	// A namespace admin may not delete or edit agentgate-egress; an admin may, and it comes back.
	nadia := namespaceAdmin(t, nsA)
	testutil.Eventually(t, 30*time.Second, "nadia's RBAC in force", func() error { // the authorizer's cache follows the binding
		_, err := nadia.NetworkingV1().NetworkPolicies(nsA).List(ctx, metav1.ListOptions{})
		return err
	})
	err = nadia.NetworkingV1().NetworkPolicies(nsA).Delete(ctx, egressName, metav1.DeleteOptions{})
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "agentgate") || !strings.Contains(err.Error(), `user "nadia"`) {
		t.Fatalf("nadia deleting agentgate-egress: want agentgate's 403, got %v", err)
	}
	t.Logf("namespace admin delete: %v", err)
	// Even an edit that narrows it (no rules: no DNS either) is agentgate's to make: the guard refuses it.
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"egress": []any{}}})
	if _, err := nadia.NetworkingV1().NetworkPolicies(nsA).Patch(ctx, egressName, types.MergePatchType, patch, metav1.PatchOptions{}); err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "guard.networkpolicies") {
		t.Errorf("nadia editing agentgate-egress: want the guard's 403, got %v", err)
	}
	unlabel, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/managed-by": nil}}})
	if _, err := nadia.NetworkingV1().NetworkPolicies(nsA).Patch(ctx, egressName, types.MergePatchType, unlabel, metav1.PatchOptions{}); err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("nadia removing agentgate's label: want agentgate's 403, got %v", err)
	}
	before, err := npA.Get(ctx, egressName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := npA.Delete(ctx, egressName, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("the admin could not delete agentgate-egress: %v", err)
	}
	after := waitEgress(t, nsA, wantEgress(t, egressTen))
	if after.UID == before.UID {
		t.Error("agentgate-egress was never deleted")
	}

	// A policy change reaches every managed namespace.
	putNetworkPolicy(t, allowAll)
	waitEgress(t, nsA, wantEgress(t, egressAll))
	waitEgress(t, nsB, wantEgress(t, egressAll))

	// An agentgate-egress that agentgate does not own (no managed-by label) is neither rewritten nor deleted;
	// while it holds the name, agent pods of that namespace are denied, saying why and that a retry succeeds.
	nsC := agentNamespace(t)
	foreign, err := env.client.NetworkingV1().NetworkPolicies(nsC).Create(ctx, networkPolicy(nsC, egressName, `{podSelector: {}, policyTypes: [Ingress]}`), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setNamespaceLabel(t, nsC, networkLabel, on())
	testutil.Eventually(t, 30*time.Second, "an agent pod denied while agentgate-egress is missing", func() error {
		_, err := env.client.CoreV1().Pods(nsC).Create(ctx, agentPod("runner"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			return fmt.Errorf("admitted")
		}
		if !strings.Contains(err.Error(), "agentgate-egress is not in place yet") || !strings.Contains(err.Error(), "retry") {
			return fmt.Errorf("denied for another reason: %v", err)
		}
		t.Logf("pod in a namespace without agentgate-egress: %v", err)
		return nil
	})
	// The same pod in a namespace whose agentgate-egress is in place: admitted.
	if _, err := env.client.CoreV1().Pods(nsB).Create(ctx, agentPod("runner"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("an agent pod where agentgate-egress is in place: %v", err)
	}

	// Unlabelling removes agentgate-egress where agentgate owns it, and only there.
	setNamespaceLabel(t, nsA, networkLabel, nil)
	setNamespaceLabel(t, nsC, networkLabel, nil)
	waitNoEgress(t, nsA)
	waitEgress(t, nsB, wantEgress(t, egressAll))
	got, err := env.client.NetworkingV1().NetworkPolicies(nsC).Get(ctx, egressName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("agentgate deleted a NetworkPolicy it does not own: %v", err)
	}
	if got.ResourceVersion != foreign.ResourceVersion || got.Labels["app.kubernetes.io/managed-by"] != "" {
		t.Errorf("agentgate rewrote a NetworkPolicy it does not own: %+v", got.ObjectMeta)
	}
	// Outside the managed namespaces, NetworkPolicies are not judged.
	if _, err := npA.Create(ctx, networkPolicy(nsA, "allow-all", `{podSelector: {}, policyTypes: [Egress], egress: [{}]}`), metav1.CreateOptions{}); err != nil {
		t.Errorf("after unlabelling, an allow-all NetworkPolicy: %v", err)
	}
}

// A NetworkPolicy written before its namespace was managed was never judged, and NetworkPolicies add up: one
// that lets agent pods reach everything undoes agentgate-egress. Agent pods it selects are denied until it is
// removed; one that selects other pods changes nothing for them.
func TestNetworkEgressPredatingNetworkPolicy(t *testing.T) {
	requireServer(t)
	putNetworkPolicy(t, allowTen)
	// Written while the namespace is outside the sandbox (agentgate is not even called), then labelled.
	ns := plainNamespace(t)
	nps := env.client.NetworkingV1().NetworkPolicies(ns)
	for name, spec := range map[string]string{
		"legacy-open":  `{podSelector: {}, policyTypes: [Egress], egress: [{}]}`,
		"legacy-other": `{podSelector: {matchLabels: {app: other}}, policyTypes: [Egress], egress: [{}]}`,
	} {
		if _, err := nps.Create(ctx, networkPolicy(ns, name, spec), metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s, before the namespace is managed: %v", name, err)
		}
	}
	setNamespaceLabel(t, ns, agentLabel, on())
	setNamespaceLabel(t, ns, networkLabel, on())
	waitEgress(t, ns, wantEgress(t, egressTen))

	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	testutil.Eventually(t, 30*time.Second, "an agent pod denied while legacy-open widens its egress", func() error {
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, agentPod("runner"), dryRun)
		if err == nil {
			return fmt.Errorf("admitted")
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `NetworkPolicy "legacy-open"`) || strings.Contains(err.Error(), "legacy-other") ||
			!slices.Contains(causeFields(err), "spec.egress[0].to") {
			return fmt.Errorf("denied otherwise: %v", err)
		}
		t.Logf("pod beside a widening NetworkPolicy: %v", err)
		return nil
	})
	// agentgate audit reports it too, by its field, and leaves the NetworkPolicy that selects other pods alone.
	code, out, stderr := runAudit(t, "--kubeconfig", env.kubeconfig, "--namespace", ns, "-o", "json")
	var entries []auditEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("audit -o json: %v\n%s\n%s", err, out, stderr)
	}
	verdicts := map[string]auditEntry{}
	for _, e := range entries {
		verdicts[e.Kind+"/"+e.Name] = e
	}
	if e := verdicts["NetworkPolicy/legacy-open"]; code != 1 || e.Allowed || len(e.Violations) == 0 || e.Violations[0].Field != "spec.egress[0].to" {
		t.Errorf("audit: exit %d, legacy-open %+v; all: %s", code, e, out)
	}
	if e, ok := verdicts["NetworkPolicy/legacy-other"]; !ok || !e.Allowed {
		t.Errorf("audit: legacy-other %+v", e)
	}
	if err := nps.Delete(ctx, "legacy-open", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the agent pod admitted once legacy-open is gone", func() error {
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, agentPod("runner"), dryRun)
		return err
	})

	// Relabelling the running pod out of the policy's podSelector would leave it outside agentgate-egress
	// (and its later updates unjudged): a namespace admin is refused, an admin may.
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, agentPod("runner"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nadia := namespaceAdmin(t, ns)
	quarantine := labelPatch("app", ptr("quarantined"))
	testutil.Eventually(t, 30*time.Second, "nadia's RBAC in force", func() error {
		_, err := nadia.CoreV1().Pods(ns).Get(ctx, "runner", metav1.GetOptions{})
		return err
	})
	_, err := nadia.CoreV1().Pods(ns).Patch(ctx, "runner", types.MergePatchType, quarantine, metav1.PatchOptions{})
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `out of policy "network"`) {
		t.Fatalf("nadia relabelling the running pod out of the network policy: want agentgate's 403, got %v", err)
	}
	// pods/status writes the labels it is sent: the same relabelling through it is refused alike, and a status
	// write that leaves the labels alone is not even sent to agentgate (matchConditions).
	_, err = nadia.CoreV1().Pods(ns).Patch(ctx, "runner", types.MergePatchType, quarantine, metav1.PatchOptions{}, "status")
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "relabel.pods.agentgate.io") {
		t.Fatalf("nadia relabelling through pods/status: want agentgate's 403 from relabel.pods, got %v", err)
	}
	if _, err := nadia.CoreV1().Pods(ns).Patch(ctx, "runner", types.MergePatchType, []byte(`{"status":{"message":"quarantine pending"}}`), metav1.PatchOptions{}, "status"); err != nil {
		t.Errorf("a status write that keeps the labels: %v", err)
	}
	if got, err := env.client.CoreV1().Pods(ns).Get(ctx, "runner", metav1.GetOptions{}); err != nil || got.Labels["app"] != "agent" {
		t.Fatalf("labels after the refusals: %v (%v)", got.Labels, err)
	}
	logs, err := os.ReadFile(env.server.logPath)
	if err != nil {
		t.Fatal(err)
	}
	statusReviews := func(event string) (n int) {
		for _, e := range testutil.Events(logs, event) {
			if e["namespace"] == ns && e["name"] == "runner" && e["subresource"] == "status" {
				n++
			}
		}
		return n
	}
	if denied, allowed := statusReviews("admission.denied"), statusReviews("admission.allowed"); denied == 0 || allowed != 0 {
		t.Errorf("pods/status reviews reaching agentgate: %d denied, %d allowed; want the relabelling denied and the status write never sent (matchConditions)", denied, allowed)
	}
	if _, err := env.client.CoreV1().Pods(ns).Patch(ctx, "runner", types.MergePatchType, quarantine, metav1.PatchOptions{}); err != nil {
		t.Errorf("an admin relabelling the pod out was refused: %v", err)
	}
}
