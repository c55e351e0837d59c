package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func kubectl(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(env.root, "bin", "kubectl")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kubectl not found at %s: run make test (it builds bin/)", bin)
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String() + errb.String(), err
}

// TestManifestsBuildAndApply renders every kustomization and applies the ones whose CRDs a bare API server has
// with server-side dry-run, so that schema and validation errors in manifests/ fail here, not on a cluster.
func TestManifestsBuildAndApply(t *testing.T) {
	for _, dir := range []string{"manifests", "manifests/overlays/kind", "manifests/overlays/cert-manager"} {
		out, err := kubectl(t, nil, "kustomize", filepath.Join(env.root, dir))
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		if dir == "manifests/overlays/cert-manager" {
			if !strings.Contains(out, "cert-manager.io/inject-ca-from: agentgate-system/agentgate-serving") {
				t.Errorf("%s: caBundle injection annotation missing", dir)
			}
			continue // cert-manager's CRDs are not installed here
		}
		res, err := kubectl(t, []byte(out), "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			t.Fatalf("server-side dry-run of %s: %v\n%s", dir, err, res)
		}
	}
	// The monitoring component needs the Prometheus Operator's CRDs: render it on top of the base.
	tmp := t.TempDir()
	base, _ := filepath.Rel(tmp, filepath.Join(env.root, "manifests", "base"))
	comp, _ := filepath.Rel(tmp, filepath.Join(env.root, "manifests", "components", "monitoring"))
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + base + "]\ncomponents: [" + comp + "]\n"
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := kubectl(t, nil, "kustomize", "--load-restrictor=LoadRestrictionsNone", tmp)
	if err != nil {
		t.Fatalf("monitoring component: %v\n%s", err, out)
	}
	for _, alert := range []string{"AgentgateWebhookErrors", "AgentgateDenialSpike", "AgentgatePolicyReloadFailed", "AgentgateCertificateExpiresSoon", "AgentgateExecBlockedCommand", "AgentgateExecByNonAdmin"} {
		if !strings.Contains(out, alert) {
			t.Errorf("PrometheusRule lacks alert %s", alert)
		}
	}
}

// TestServiceAccountHasLeastPrivilege applies the RBAC of manifests/base for real and asks the API server's
// authorizer what agentgate's ServiceAccount may do.
func TestServiceAccountHasLeastPrivilege(t *testing.T) {
	rbac, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sa := `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"agentgate","namespace":"agentgate-system"}}`
	if out, err := kubectl(t, append([]byte(sa+"\n---\n"), rbac...), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying RBAC: %v\n%s", err, out)
	}
	user := "system:serviceaccount:agentgate-system:agentgate"
	cases := []struct {
		attr authorizationv1.ResourceAttributes
		want bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "namespaces"}, true},
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "pods", Namespace: "default"}, true},
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: systemNamespace}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Resource: "secrets", Namespace: systemNamespace, Name: "agentgate-tls"}, true},
		{authorizationv1.ResourceAttributes{Verb: "patch", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "agentgate"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Name: "agentgate"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace, Name: "agentgate-audit"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace, Name: "agentgate-audit"}, true},
		// The NetworkPolicy owner: agentgate-egress in any namespace, and its Lease.
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "team-a"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "team-a", Name: "agentgate-egress"}, true},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "team-a", Name: "agentgate-egress"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Group: "networking.k8s.io", Resource: "networkpolicies"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace, Name: "agentgate-network"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace, Name: "agentgate-network"}, true},
		// The background audit's PolicyReports: list everywhere, create, and update or delete its own by name.
		{authorizationv1.ResourceAttributes{Verb: "list", Group: "wgpolicyk8s.io", Resource: "policyreports"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "wgpolicyk8s.io", Resource: "policyreports", Namespace: "team-a"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "wgpolicyk8s.io", Resource: "policyreports", Namespace: "team-a", Name: "agentgate"}, true},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "wgpolicyk8s.io", Resource: "policyreports", Namespace: "team-a", Name: "agentgate"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Group: "wgpolicyk8s.io", Resource: "policyreports", Namespace: "team-a", Name: "agentgate"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Group: "wgpolicyk8s.io", Resource: "policyreports", Namespace: "team-a", Name: "kyverno-report"}, false},
		// and nothing more:
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "wgpolicyk8s.io", Resource: "policyreports", Namespace: "team-a", Name: "kyverno-report"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "wgpolicyk8s.io", Resource: "policyreports", Namespace: "team-a", Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "wgpolicyk8s.io", Resource: "clusterpolicyreports"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "log", Namespace: "default", Name: "x"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace, Name: "someone-elses"}, false},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace, Name: "agentgate-audit"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "agentgate-audit"}, false},
		{authorizationv1.ResourceAttributes{Verb: "list", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace}, false},
		{authorizationv1.ResourceAttributes{Verb: "patch", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "team-a", Name: "agentgate-egress"}, false},
		{authorizationv1.ResourceAttributes{Verb: "deletecollection", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "team-a"}, false},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace, Name: "agentgate-network"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "networking.k8s.io", Resource: "adminnetworkpolicies"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "default", Name: "anything"}, false},
		// Listing and watching secrets is what the service-account token Secret informer needs (its requests ask
		// for metadata only, with a type field selector, which RBAC cannot express); reading one is not granted.
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: "agents"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "anything"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Resource: "secrets", Namespace: "default", Name: "anything"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: systemNamespace, Name: "someone-elses"}, false},
		{authorizationv1.ResourceAttributes{Verb: "patch", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "other-webhook"}, false},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: "agentgate"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: systemNamespace, Name: defaultPolicyCM}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Resource: "namespaces", Name: "default"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Namespace: "default"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "default", Name: "x"}, false},
		{authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods", Namespace: "default", Name: "x"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Resource: "pods", Namespace: "default", Name: "x"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "default", Name: "x"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "exec", Namespace: "default", Name: "x"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "default", Name: "x"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "proxy", Name: "node-1"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "default"}, false},
	}
	for _, c := range cases {
		attr := c.attr
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:agentgate-system", "system:authenticated"},
			ResourceAttributes: &attr,
		}}
		res, err := env.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status.Allowed != c.want {
			t.Errorf("%s %s %s/%s in %q: allowed=%v, want %v (%s)", attr.Verb, attr.Group, attr.Resource, attr.Name, attr.Namespace, res.Status.Allowed, c.want, res.Status.Reason)
		}
	}
}
