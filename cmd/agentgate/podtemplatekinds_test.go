package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"agentgate.io/agentgate/policy"
)

const sandboxManifest = `apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: {name: sb, namespace: agents}
spec:
  podTemplate:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - name: agent
        image: registry.corp.example/agents/runner:1.0
        command: [/agent]
`

const agentJobManifest = `apiVersion: example.agentgate.io/v1
kind: AgentJob
metadata: {name: job, namespace: agents}
spec:
  runner:
    template:
      spec:
        hostPID: true
        containers: [{name: a, image: registry.corp.example/agents/runner:1.0}]
`

const agentJobKind = "example.agentgate.io/v1/AgentJob=spec.runner.template"

// TestCheckSandboxes: agentgate check judges Sandboxes and declared kinds by their template, with the
// webhook's paths, and never proposes a patch for them.
func TestCheckSandboxes(t *testing.T) {
	out := checkJSON(t, sandboxManifest, 0, "-")
	if len(out) != 1 || out[0]["kind"] != "Sandbox" || out[0]["allowed"] != true || len(out[0]["patches"].([]any)) != 0 {
		t.Errorf("good Sandbox: %v", out)
	}

	bad := strings.Replace(sandboxManifest, "command: [/agent]", "command: [/agent]\n        securityContext: {privileged: true}", 1)
	out = checkJSON(t, bad, 1, "-")
	if fields := violationFields(out[0]); !fields["spec.podTemplate.spec.containers[0].securityContext.privileged"] {
		t.Errorf("privileged Sandbox: fields %v", fields)
	}
	v1alpha1 := strings.Replace(bad, "v1beta1", "v1alpha1", 1)
	checkJSON(t, v1alpha1, 1, "-")

	// Undeclared, AgentJob is not a kind agentgate judges: skipped. Declared, it is judged at its path.
	out = checkJSON(t, agentJobManifest, 0, "-")
	if out[0]["skipped"] != true {
		t.Errorf("undeclared AgentJob: %v", out[0])
	}
	out = checkJSON(t, agentJobManifest, 1, "--pod-template-kind", agentJobKind, "-")
	if fields := violationFields(out[0]); !fields["spec.runner.template.spec.hostPID"] {
		t.Errorf("declared AgentJob: fields %v", fields)
	}

	// With --fix, the template is hardened in place; the rest of the document is left as written.
	code, stdout, stderr := checkRun(t, sandboxManifest, "--fix", "-")
	wantCode(t, code, 0, stdout, stderr)
	for _, want := range []string{"kind: Sandbox", "readOnlyRootFilesystem: true", "automountServiceAccountToken: false"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--fix output lacks %q:\n%s", want, stdout)
		}
	}
}

func violationFields(r map[string]any) map[string]bool {
	out := map[string]bool{}
	vs, _ := r["violations"].([]any)
	for _, v := range vs {
		out[v.(map[string]any)["field"].(string)] = true
	}
	return out
}

// TestCheckPodTemplateKindBadInput: a malformed declaration is a usage error naming the value and the syntax;
// an object whose template cannot be judged is an error naming its field and line, never a pass.
func TestCheckPodTemplateKindBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pod-template-kind", "example.agentgate.io/v1/AgentJob"}, `"example.agentgate.io/v1/AgentJob": no "=" between the kind and the path of its pod template (expected ` + policy.PodTemplateKindSyntax + ")"},
		{[]string{"--pod-template-kind", "example.agentgate.io/v1/AgentJob=spec.runners[0].template"}, `path segment "runners[0]"`},
		{[]string{"--pod-template-kind", agentJobKind, "--pod-template-kind", "example.agentgate.io/v1/AgentJob=spec.template"}, "declared twice"},
		{[]string{"--pod-template-kind", "agents.x-k8s.io/v1beta1/Sandbox=spec.template"}, "is judged already, by its pod template at spec.podTemplate"},
	} {
		code, stdout, stderr := checkRun(t, sandboxManifest, append(tc.args, "-")...)
		wantCode(t, code, 2, stdout, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr does not say %q:\n%s", tc.args, tc.want, stderr)
		}
	}

	for _, tc := range []struct {
		name, doc string
		args      []string
		want      string
	}{
		{"no template", "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: s}\nspec:\n  operatingMode: Running\n", nil,
			"<stdin>:4: document 1 (Sandbox/s): spec.podTemplate: Required value"},
		{"pod spec where the template belongs", agentJobManifest, []string{"--pod-template-kind", "example.agentgate.io/v1/AgentJob=spec.runner.template.spec"},
			"<stdin>:9: document 1 (AgentJob/job): spec.runner.template.spec.containers: Forbidden: spec.runner.template.spec holds a pod spec, not a pod template"},
		{"unknown field", strings.Replace(sandboxManifest, "command: [/agent]", "command: [/agent]\n        securityContex: {privileged: true}", 1), nil,
			"<stdin>:12: document 1 (Sandbox/sb): spec.podTemplate.spec.containers[0].securityContex: Forbidden: unknown field"},
		{"another version", strings.Replace(sandboxManifest, "v1beta1", "v1", 1), nil,
			"agentgate judges Sandbox.agents.x-k8s.io in v1alpha1, v1beta1, not agents.x-k8s.io/v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := checkRun(t, tc.doc, append(tc.args, "-")...)
			wantCode(t, code, 2, stdout, stderr)
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
}

// TestServePodTemplateKindUsageErrors: serve stops at start, exit 2, on a malformed or conflicting
// declaration, saying which value and what is expected; nothing is contacted first.
func TestServePodTemplateKindUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pod-template-kind", "AgentJob=spec.template"}, `"AgentJob=spec.template": "AgentJob" is not GROUP/VERSION/KIND (expected ` + policy.PodTemplateKindSyntax + ")"},
		{[]string{"--pod-template-kind", "example.agentgate.io/v1/AgentJob=status.template"}, "status is written by controllers"},
		{[]string{"--pod-template-kind", agentJobKind, "--pod-template-kind", agentJobKind}, "declared twice"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--kubeconfig", "/does/not/exist"}, tc.args...)
		if code := serve(context.Background(), args, &stdout, &stderr, nil); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "pod-template-kind") {
			t.Errorf("%v: stderr does not name the flag and say %q:\n%s", tc.args, tc.want, stderr.String())
		}
	}
}

// TestServeDeclaredKindWithoutCluster: a declared kind serves; without a cluster the log says it was not
// checked against an API server.
func TestServeDeclaredKindWithoutCluster(t *testing.T) {
	r := startServe(t, "--addr", "127.0.0.1:0", "--metrics-addr", "0", "--pod-template-kind", agentJobKind)
	if s := r.stdout.String(); !strings.Contains(s, `"event":"kinds.declared"`) || !strings.Contains(s, `"event":"kinds.unchecked"`) {
		t.Errorf("log:\n%s", s)
	}
}
