package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// agentgate check judges fields its k8s.io/api does not know as the webhook does (README "Cluster
// upgrades"): in a pod spec a denial with the path (exit 1, not 2), under unknownFields: warn a warning,
// under metadata and status nothing.
func TestCheckUnknownFields(t *testing.T) {
	dir := t.TempDir()
	warnPolicy := filepath.Join(dir, "warn.yaml")
	if err := os.WriteFile(warnPolicy, []byte("apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: agents}\nspec:\n  unknownFields: warn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: agents, futureMetadataField: x}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: runner
    image: registry.corp.example/agents/runner:1.4.2
    command: [/agent]
    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: "1", memory: 512Mi}}
    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
status: {futureStatusField: 1}
`
	withSpec := strings.Replace(pod, "    command: [/agent]\n", "    command: [/agent]\n    futureContainerField: {a: 1}\n", 1)
	deployment := `apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: agents}
spec:
  futureRolloutField: 1
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      futurePodField: true
      containers: [{name: c, image: registry.corp.example/agents/runner:1.4.2, command: [/agent]}]
`
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		want        []string // in stdout
	}{
		{"metadata and status: ignored", pod, nil, 0, []string{"1 admitted"}},
		{"a container field: denied with its path", withSpec, nil, 1,
			[]string{"<stdin>: Pod/p: spec.containers[0].futureContainerField: [unknownFields] agentgate's Kubernetes API (k8s.io/api v0.37.2) does not know this field: the cluster's API server is newer than agentgate"}},
		{"unknownFields: warn", withSpec, []string{"--policy", warnPolicy}, 0,
			[]string{"warning: <stdin>: Pod/p: spec.containers[0].futureContainerField: [unknownFields]"}},
		{"a Deployment: its template's spec only", deployment, nil, 1,
			[]string{"<stdin>: Deployment/d: spec.template.spec.futurePodField: [unknownFields]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := checkRun(t, tc.stdin, append(tc.args, "-")...)
			wantCode(t, code, tc.code, stdout, stderr)
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout, "futureStatusField") || strings.Contains(stdout, "futureMetadataField") || strings.Contains(stdout, "futureRolloutField") {
				t.Errorf("a field outside the pod spec is judged:\n%s", stdout)
			}
		})
	}
	// -o json: the violation carries its line, and the patches keep the unknown field (they never remove it).
	rs := checkJSON(t, strings.Replace(withSpec, "  automountServiceAccountToken: false\n", "", 1), 0, "--policy", warnPolicy, "-")
	for _, p := range rs[0]["patches"].([]any) {
		if op := p.(map[string]any); op["op"] != "add" {
			t.Errorf("patch %v", op)
		}
	}
	v := rs[0]["warnings"].([]any)[0].(map[string]any)
	if v["field"] != "spec.containers[0].futureContainerField" || v["line"] != float64(10) {
		t.Errorf("warning %v", v)
	}
}
