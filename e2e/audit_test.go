package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// runAgentgate runs the suite's agentgate binary with args and returns its exit code, stdout and stderr.
func runAgentgate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	requireServer(t)
	cmd := exec.Command(env.server.bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

func runAudit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runAgentgate(t, append([]string{"audit"}, args...)...)
}

type auditEntry struct {
	Kind, Namespace, Name string
	Allowed               bool
	Violations            []auditViolation
}

type auditViolation struct{ Check, Field, Message string }

// TestAuditFindsWhatRunsAgainstThePolicy: pods created before their namespace was labelled (never judged at
// admission) are listed by `agentgate audit` with their violations (exit 1); a compliant pod is admitted; a
// candidate policy given with --policy is judged against the same live pods.
func TestAuditFindsWhatRunsAgainstThePolicy(t *testing.T) {
	ctx := context.Background()
	ns := plainNamespace(t)
	bad := agentPod("bad")
	bad.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	bad.Spec.HostPID = true
	good := agentPod("good")
	hardened, err := env.client.CoreV1().Pods(agentNamespace(t)).Create(ctx, agentPod("template"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	good.Spec = hardened.Spec // exactly what agentgate would have stored
	for _, p := range []*corev1.Pod{bad, good} {
		if _, err := env.client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A service-account token Secret, and a pod that reads it, both there before the label: the Secret is
	// reported (its CREATE would be refused now) and the pod for reading it.
	tokenSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ci-settings", Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type: corev1.SecretTypeServiceAccountToken}
	if _, err := env.client.CoreV1().Secrets(ns).Create(ctx, tokenSecret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reader := agentPod("reader")
	reader.Spec = hardened.Spec
	reader.Spec.Volumes = append(reader.Spec.Volumes, corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "ci-settings"}}})
	reader.Spec.Containers[0].VolumeMounts = append(reader.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "cfg", MountPath: "/cfg"})
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// An agent-sandbox Sandbox whose template was never judged either: audit lists it by its template.
	installCRDs(t)
	sandbox := object(t, sandboxDoc("agents.x-k8s.io/v1beta1", "Sandbox", "privileged-sandbox", allowedImage, "        securityContext: {privileged: true}\n"))
	if _, err := dynamic.NewForConfigOrDie(env.cfg).Resource(sandboxV1beta1).Namespace(ns).Create(ctx, sandbox, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The namespace joins the sandbox after the fact: what already runs there was never judged.
	patch := []byte(`{"metadata":{"labels":{"` + agentLabel + `":"true"}}}`)
	if _, err := env.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := runAudit(t, "--kubeconfig", env.kubeconfig, "--namespace", ns, "-o", "json")
	if code != 1 {
		t.Fatalf("audit exit %d, want 1; stderr:\n%s\nstdout:\n%s", code, stderr, out)
	}
	var entries []auditEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("audit -o json: %v\n%s", err, out)
	}
	byName := map[string]auditEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	if e, ok := byName["bad"]; !ok || e.Allowed || e.Namespace != ns {
		t.Fatalf("bad pod: %+v (all: %s)", e, out)
	}
	fields := map[string]bool{}
	for _, v := range byName["bad"].Violations {
		fields[v.Field] = true
	}
	for _, f := range []string{"spec.hostPID", "spec.containers[0].securityContext.privileged"} {
		if !fields[f] {
			t.Errorf("bad pod: no violation at %s: %+v", f, byName["bad"].Violations)
		}
	}
	if e, ok := byName["good"]; !ok || !e.Allowed {
		t.Errorf("good pod: %+v", e)
	}
	if e, ok := byName["ci-settings"]; !ok || e.Allowed || e.Kind != "Secret" ||
		!slices.ContainsFunc(e.Violations, func(v auditViolation) bool { return v.Field == "type" }) {
		t.Errorf("token Secret: %+v (all: %s)", e, out)
	}
	if e, ok := byName["reader"]; !ok || e.Allowed ||
		!slices.ContainsFunc(e.Violations, func(v auditViolation) bool { return v.Field == "spec.volumes[0].secret.secretName" }) {
		t.Errorf("pod reading the token Secret: %+v (all: %s)", e, out)
	}
	if e, ok := byName["privileged-sandbox"]; !ok || e.Allowed || e.Kind != "Sandbox" ||
		!slices.ContainsFunc(e.Violations, func(v auditViolation) bool {
			return v.Field == "spec.podTemplate.spec.containers[0].securityContext.privileged"
		}) {
		t.Errorf("Sandbox: %+v (all: %s)", e, out)
	}

	// A candidate policy that no longer allows the agents' registry: the good pod would now be denied.
	policyYAML, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	candidate := strings.Replace(string(policyYAML), "registry.corp.example/agents/**", "registry.corp.example/other/**", 1)
	if candidate == string(policyYAML) {
		t.Fatal("the default policy no longer allows registry.corp.example/agents/**: update the test")
	}
	file := filepath.Join(t.TempDir(), "stricter.yaml")
	if err := os.WriteFile(file, []byte(candidate), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runAudit(t, "--kubeconfig", env.kubeconfig, "--namespace", ns, "--policy", file)
	if code != 1 || !strings.Contains(out, "Pod/good") || !strings.Contains(out, "spec.containers[0].image") {
		t.Errorf("candidate policy: exit %d, want 1 with Pod/good's image denied; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

// TestAuditUnusableInputExits2: an unreachable API server and a policy that does not parse are clear errors
// with exit 2, never a crash or a pass.
func TestAuditUnusableInputExits2(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "unreachable")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: x}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runAudit(t, "--kubeconfig", kubeconfig)
	if code != 2 || !strings.Contains(stderr, "agentgate audit:") || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("unreachable API server: exit %d, stderr %q", code, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: x}\nspec: {mode: sometimes}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runAudit(t, "--kubeconfig", env.kubeconfig, "--policy", bad)
	if code != 2 || !strings.Contains(stderr, "spec.mode") {
		t.Errorf("invalid policy: exit %d, stderr %q", code, stderr)
	}
}
