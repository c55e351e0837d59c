package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"agentgate.io/agentgate/internal/testutil"
)

// The local control plane has no nodes: admission runs for a CONNECT before the API server looks for the pod's
// node, so an admitted session then fails with this, and a refused one with agentgate's message instead.
const noNode = "does not have a host assigned"

// runningAgentPod creates an agent pod and marks it Running (no kubelet will): kubectl attach and
// port-forward refuse a pod that is not running before they ask the API server.
func runningAgentPod(t *testing.T, ns string) {
	t.Helper()
	pod := agentPod("agent")
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: allowedImage, Command: []string{"/sidecar"}})
	created, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Phase = corev1.PodRunning
	if _, err := env.client.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// sessionEvents returns the events of one kind in agentgate's log for sessions into namespace ns.
func sessionEvents(t *testing.T, name, ns string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(env.server.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range testutil.Events(data, name) {
		if ev["namespace"] == ns {
			out = append(out, ev)
		}
	}
	return out
}

// attempt runs one kubectl session command and checks how it failed: for lack of a node (admitted), or with
// agentgate's refusal naming every string in refusal.
func attempt(t *testing.T, refusal []string, args ...string) {
	t.Helper()
	out, err := kubectl(t, nil, args...)
	if err == nil {
		t.Fatalf("kubectl %s succeeded on a control plane without nodes:\n%s", strings.Join(args, " "), out)
	}
	if len(refusal) == 0 {
		if !strings.Contains(out, noNode) || strings.Contains(out, "agentgate") {
			t.Fatalf("kubectl %s: want admission passed and the API server failing for lack of a node, got:\n%s", strings.Join(args, " "), out)
		}
		return
	}
	for _, want := range append([]string{`admission webhook "exec.pods.agentgate.io" denied the request`}, refusal...) {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl %s: the refusal lacks %q:\n%s", strings.Join(args, " "), want, out)
		}
	}
	t.Logf("kubectl %s: %s", strings.Join(args, " "), strings.TrimSpace(out))
}

// requireOneEvent checks that the session left exactly one event of that name, with that decision and command.
func requireOneEvent(t *testing.T, name, ns, decision string, command []string) map[string]any {
	t.Helper()
	var match []map[string]any
	for _, ev := range sessionEvents(t, name, ns) {
		got, _ := ev["command"].([]any)
		var gotStrings []string
		for _, g := range got {
			s, _ := g.(string)
			gotStrings = append(gotStrings, s)
		}
		if command == nil || slices.Equal(gotStrings, command) {
			match = append(match, ev)
		}
	}
	if len(match) != 1 {
		t.Fatalf("%d %s events for %q in %s, want exactly 1: %v", len(match), name, command, ns, match)
	}
	if match[0]["decision"] != decision {
		t.Errorf("%s decision %v, want %s: %v", name, match[0]["decision"], decision, match[0])
	}
	return match[0]
}

// TestExecThroughTheAPIServer: real kubectl exec, attach and port-forward against the real API server under
// the default policy (exec.mode audit): a blocked command is refused with the command and the rule, everything
// else passes admission; every attempt leaves exactly one event, though kubectl may ask twice (WebSocket, then
// SPDY).
func TestExecThroughTheAPIServer(t *testing.T) {
	requireServer(t)
	ns := agentNamespace(t)
	runningAgentPod(t, ns)

	attempt(t, nil, "-n", ns, "exec", "agent", "-c", "runner", "--", "ls", "/")
	requireOneEvent(t, "exec.command", ns, "allowed", []string{"ls", "/"})

	attempt(t, []string{`exec into pod "agent" (container "runner")`, `spec.commands.blocked[0]`, `blocked command "rm -rf /"`},
		"-n", ns, "exec", "agent", "-c", "runner", "--", "rm", "-rf", "/")
	ev := requireOneEvent(t, "exec.blocked", ns, "blocked", []string{"rm", "-rf", "/"})
	if ev["container"] != "runner" || ev["pod"] != "agent" || ev["user"] == "" {
		t.Errorf("event %v", ev)
	}

	// Other spellings of the same command, and a blocked command inside a shell script: the commands rule.
	attempt(t, []string{`spec.commands.blocked[0]`}, "-n", ns, "exec", "agent", "-c", "sidecar", "--", "/bin/rm", "-fr", "/tmp/..")
	requireOneEvent(t, "exec.blocked", ns, "blocked", []string{"/bin/rm", "-fr", "/tmp/.."})
	attempt(t, []string{`spec.commands.blocked[5]`, `blocked command "reboot"`}, "-n", ns, "exec", "agent", "-c", "runner", "--", "sh", "-c", "sleep 1 && reboot")
	requireOneEvent(t, "exec.blocked", ns, "blocked", []string{"sh", "-c", "sleep 1 && reboot"})

	// An interactive shell passes (stdin from the test, no TTY: kubectl needs a terminal for one).
	attempt(t, nil, "-n", ns, "exec", "-i", "agent", "-c", "runner", "--", "sh")
	if ev := requireOneEvent(t, "exec.command", ns, "allowed", []string{"sh"}); ev["stdin"] != true {
		t.Errorf("interactive exec recorded without stdin: %v", ev)
	}

	attempt(t, nil, "-n", ns, "attach", "agent", "-c", "runner", "--pod-running-timeout=5s")
	requireOneEvent(t, "exec.attach", ns, "allowed", nil)

	attempt(t, nil, "-n", ns, "port-forward", "pod/agent", "--pod-running-timeout=5s", "0:8080")
	// kubectl names the ports in the stream, not the URL: the options the API server hands to admission have
	// none, so the event has none either (docs/operating.md).
	requireOneEvent(t, "exec.portforward", ns, "allowed", nil)
	if got := env.server.metric(t, "agentgate_exec_total", `decision="blocked"`); got < 3 {
		t.Errorf("agentgate_exec_total{decision=blocked} = %v, want at least this test's 3", got)
	}
}

// TestExecDenyMode: a policy with exec.mode deny refuses a user outside allowGroups (exec, attach and
// port-forward alike) and admits a member, whose blocked commands are still refused.
func TestExecDenyMode(t *testing.T) {
	requireServer(t)
	ns := agentNamespace(t)
	label := []byte(`{"metadata":{"labels":{"e2e.agentgate.io/exec":"deny"}}}`)
	if _, err := env.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, label, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	runningAgentPod(t, ns)
	grantSessions(t, ns, "alice", "bob")

	doc, err := os.ReadFile(env.root + "/manifests/base/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policyDoc := strings.NewReplacer(
		"name: agents", "name: exec-deny",
		`        agentgate.io/agents: "true"`, `        agentgate.io/agents: "true"`+"\n        e2e.agentgate.io/exec: deny",
		"    mode: audit\n    allowGroups: []", "    mode: deny\n    allowGroups: [sre]",
	).Replace(string(doc))
	if !strings.Contains(policyDoc, "allowGroups: [sre]") || !strings.Contains(policyDoc, "e2e.agentgate.io/exec: deny") {
		t.Fatalf("policy edit did not apply:\n%s", policyDoc)
	}
	cm := policyConfigMap("e2e-exec-deny", policyDoc)
	if _, err := env.client.CoreV1().ConfigMaps(systemNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.client.CoreV1().ConfigMaps(systemNamespace).Delete(ctx, cm.Name, metav1.DeleteOptions{})
	})
	testutil.Eventually(t, 20*time.Second, "policy exec-deny loaded", func() error {
		data, err := os.ReadFile(env.server.logPath)
		if err != nil {
			return err
		}
		for _, ev := range testutil.Events(data, "policy.loaded") {
			if ev["policy"] == "exec-deny" {
				return nil
			}
		}
		return os.ErrNotExist
	})

	alice := []string{"--as", "alice", "--as-group", "dev", "-n", ns}
	bob := []string{"--as", "bob", "--as-group", "sre", "-n", ns}
	modeRule := []string{`refused by policy "exec-deny"`, `spec.exec.mode`, `user "alice" is in none of them`}

	attempt(t, modeRule, append(alice, "exec", "agent", "-c", "runner", "--", "date")...)
	requireOneEvent(t, "exec.blocked", ns, "denied", []string{"date"})
	attempt(t, modeRule, append(alice, "attach", "agent", "-c", "runner", "--pod-running-timeout=5s")...)
	requireOneEvent(t, "exec.attach", ns, "denied", nil)
	attempt(t, modeRule, append(alice, "port-forward", "pod/agent", "--pod-running-timeout=5s", "0:9090")...)
	requireOneEvent(t, "exec.portforward", ns, "denied", nil)

	attempt(t, nil, append(bob, "exec", "agent", "-c", "runner", "--", "date")...)
	if ev := requireOneEvent(t, "exec.command", ns, "allowed", []string{"date"}); ev["user"] != "bob" {
		t.Errorf("event user %v, want bob", ev["user"])
	}
	attempt(t, []string{`spec.commands.blocked[4]`, `blocked command "shutdown"`}, append(bob, "exec", "agent", "-c", "runner", "--", "shutdown", "-h", "now")...)
	requireOneEvent(t, "exec.blocked", ns, "blocked", []string{"shutdown", "-h", "now"})
}

// grantSessions gives users what kubectl exec, attach and port-forward need in namespace ns, so that only
// agentgate stands between them and the pod.
func grantSessions(t *testing.T, ns string, users ...string) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "e2e-sessions", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/attach", "pods/portforward"}, Verbs: []string{"get", "create"}},
	}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-sessions", Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name}}
	for _, u := range users {
		rb.Subjects = append(rb.Subjects, rbacv1.Subject{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: u})
	}
	if _, err := env.client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
