package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/internal/testutil"
)

// TestDryRunOfAStricterPolicyPreviewsItsEffect: agent pods admitted under the default policy are running; a
// stricter policy ConfigMap (digests required) applied with kubectl apply --dry-run=server is answered with the
// preview: how many of the running agent pods it would deny, then the pods, and nothing is stored.
func TestDryRunOfAStricterPolicyPreviewsItsEffect(t *testing.T) {
	requireServer(t)
	ns := agentNamespace(t)
	pods := env.client.CoreV1().Pods(ns)
	for _, name := range []string{"runner-b", "runner-a"} {
		if _, err := pods.Create(ctx, agentPod(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pinned := agentPod("runner-pinned")
	pinned.Spec.Containers[0].Image = allowedImage + "@sha256:" + strings.Repeat("ab", 32)
	if _, err := pods.Create(ctx, pinned, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The default policy with digests required, selecting this test's namespace only, so that the count does
	// not depend on what other tests left running.
	raw, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, r := range [][2]string{
		{"name: agents", "name: digests"},
		{"requireDigest: false", "requireDigest: true"},
		{"agentgate.io/agents: \"true\"", "kubernetes.io/metadata.name: " + ns},
	} {
		if !strings.Contains(doc, r[0]) {
			t.Fatalf("manifests/base/policy.yaml has no %q", r[0])
		}
		doc = strings.Replace(doc, r[0], r[1], 1)
	}
	cm := policyConfigMap("agentgate-policy-digests-preview", doc)
	cm.APIVersion, cm.Kind = "v1", "ConfigMap"
	manifest, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{
		`Warning: policy "digests" would deny 2 of 3 running agent pods`,
		"Warning: " + ns + "/runner-a (and 1 other pod): images",
	}
	var out string
	// The server's pod cache learns of the pods through its watch: repeat the dry run until it has.
	testutil.Eventually(t, 30*time.Second, "the preview counts the three pods", func() error {
		var err error
		out, err = kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
		}
		if !strings.Contains(out, want[0]) {
			return fmt.Errorf("no preview of the three pods yet; kubectl said: %s", out)
		}
		return nil
	})
	t.Logf("kubectl said:\n%s", out)
	var warnings []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Warning: ") {
			warnings = append(warnings, l)
		}
	}
	if !slices.Equal(warnings, want) || !strings.Contains(out, "configmap/"+cm.Name+" created (server dry run)") {
		t.Errorf("kubectl output:\n%s\nwant exactly the warnings\n%s\nand the dry-run confirmation", out, strings.Join(want, "\n"))
	}
	if _, err := env.client.CoreV1().ConfigMaps(systemNamespace).Get(ctx, cm.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run stored the policy ConfigMap (err %v)", err)
	}
}

// TestBackgroundAuditCountsWhatRunsAgainstThePolicy: a pod created while its namespace was outside the sandbox
// runs on once the namespace is labelled; the next policy change makes the background audit (the suite's
// agentgate holds the lease agentgate-audit) log it as audit.violation and count it in
// agentgate_audit_violations{policy,check}.
func TestBackgroundAuditCountsWhatRunsAgainstThePolicy(t *testing.T) {
	requireServer(t)
	ns := plainNamespace(t)
	bad := agentPod("host-pid")
	bad.Spec.HostPID = true
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"metadata":{"labels":{"` + agentLabel + `":"true"}}}`)
	if _, err := env.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// PolicyReports are written once their CRD is served.
	installCRDFiles(t, "cluster/testdata/policyreport-crd.yaml")
	// A policy change: a second policy that selects no namespace, so that it changes no verdict.
	cms := env.client.CoreV1().ConfigMaps(systemNamespace)
	trigger := policyConfigMap("agentgate-policy-audit-trigger", "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: audit-trigger}\nspec:\n  match:\n    namespaceSelector: {matchLabels: {e2e.agentgate.io/none: \"true\"}}\n")
	if _, err := cms.Create(ctx, trigger, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cms.Delete(ctx, trigger.Name, metav1.DeleteOptions{}) })

	testutil.Eventually(t, 60*time.Second, "audit.violation for the pod", func() error {
		logs, err := os.ReadFile(env.server.logPath)
		if err != nil {
			return err
		}
		for _, e := range testutil.Events(logs, "audit.violation") {
			if e["namespace"] == ns && e["pod"] == bad.Name {
				checks, _ := e["checks"].([]any)
				if !slices.Contains(checks, any("agents/hostNamespaces")) {
					return fmt.Errorf("audit.violation without agents/hostNamespaces: %v", e)
				}
				return nil
			}
		}
		return fmt.Errorf("no audit.violation for %s/%s yet", ns, bad.Name)
	})
	if v := env.server.metric(t, "agentgate_audit_violations", `policy="agents"`, `check="hostNamespaces"`); v < 1 {
		t.Errorf("agentgate_audit_violations{policy=agents,check=hostNamespaces} = %v, want at least this test's pod", v)
	}
	if v := env.server.metric(t, "agentgate_audit_last_run_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("agentgate_audit_last_run_timestamp_seconds = %v", v)
	}
	// The namespace's PolicyReport, written by the same run, names the pod, the check and the field.
	reports := dynamic.NewForConfigOrDie(env.cfg).Resource(schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"})
	testutil.Eventually(t, 30*time.Second, "the PolicyReport of "+ns, func() error {
		r, err := reports.Namespace(ns).Get(ctx, "agentgate", metav1.GetOptions{})
		if err != nil {
			return err
		}
		results, _, _ := unstructured.NestedSlice(r.Object, "results")
		for _, res := range results {
			m, _ := res.(map[string]any)
			props, _ := m["properties"].(map[string]any)
			resources, _ := m["resources"].([]any)
			if m["rule"] == "hostNamespaces" && m["result"] == "fail" && props["field"] == "spec.hostPID" && len(resources) == 1 &&
				resources[0].(map[string]any)["name"] == bad.Name {
				return nil
			}
		}
		return fmt.Errorf("no hostNamespaces result for %s in %v", bad.Name, results)
	})
}
