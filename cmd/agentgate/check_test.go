package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/check/golden")

const (
	examples = "../../examples/"
	td       = "testdata/check/"
)

// checkRun drives the whole command, as the binary would run it.
func checkRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"check"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func wantCode(t *testing.T, got, want int, stdout, stderr string) {
	t.Helper()
	if got != want {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", got, want, stdout, stderr)
	}
}

// checkJSON runs with -o json and decodes the report.
func checkJSON(t *testing.T, stdin string, wantExit int, args ...string) []map[string]any {
	t.Helper()
	code, stdout, stderr := checkRun(t, stdin, append([]string{"-o", "json"}, args...)...)
	wantCode(t, code, wantExit, stdout, stderr)
	var out []map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("-o json printed invalid JSON: %v\n%s", err, stdout)
	}
	return out
}

func TestCheckExamples(t *testing.T) {
	for _, tc := range []struct {
		file    string
		code    int
		patches bool // the webhook would mutate the (single) pod
	}{
		{"agent-pod.yaml", 0, false},
		{"minimal-pod.yaml", 0, true},
		{"bad-pod.yaml", 1, false},
		{"deployment.yaml", 0, false},
		{"cronjob.yaml", 1, false},
		{"mixed.yaml", 0, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			code, stdout, stderr := checkRun(t, "", examples+tc.file)
			wantCode(t, code, tc.code, stdout, stderr)
			for _, r := range checkJSON(t, "", tc.code, examples+tc.file) {
				if r["skipped"] == true {
					continue
				}
				if got := len(r["patches"].([]any)) > 0; got != tc.patches {
					t.Errorf("%s/%s: patches %v, want patches: %v", r["kind"], r["name"], r["patches"], tc.patches)
				}
			}
		})
	}
}

func TestCheckBadPodReportsEveryField(t *testing.T) {
	code, stdout, stderr := checkRun(t, "", examples+"bad-pod.yaml")
	wantCode(t, code, 1, stdout, stderr)
	prefix := examples + "bad-pod.yaml: Pod/bad-runner: "
	for _, field := range []string{
		"spec.hostNetwork",
		"spec.automountServiceAccountToken",
		"spec.securityContext.runAsUser",
		"spec.volumes[0].hostPath",
		"spec.containers[0].image",
		"spec.containers[0].command[2]",
		"spec.containers[0].env[0].value",
		"spec.containers[0].securityContext.privileged",
		"spec.containers[0].securityContext.readOnlyRootFilesystem",
		"spec.containers[0].securityContext.capabilities.add[0]",
		"spec.containers[0].ports[0].hostPort",
		"spec.containers[0].resources.limits[cpu]",
		"spec.containers[0].resources.limits[memory]",
	} {
		if !strings.Contains(stdout, "\n"+prefix+field+": [") && !strings.HasPrefix(stdout, prefix+field+": [") {
			t.Errorf("no violation line for %s in:\n%s", field, stdout)
		}
	}
	if !strings.Contains(stdout, "0 admitted, 1 denied") {
		t.Errorf("summary missing:\n%s", stdout)
	}
}

func TestCheckControllerPaths(t *testing.T) {
	code, stdout, stderr := checkRun(t, "", examples+"cronjob.yaml", td+"multi.yaml", td+"list.json")
	wantCode(t, code, 1, stdout, stderr)
	for _, line := range []string{
		examples + "cronjob.yaml: CronJob/nightly-sync: spec.jobTemplate.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation: ",
		examples + "cronjob.yaml: CronJob/nightly-sync: spec.jobTemplate.spec.template.spec.containers[0].image: ",
		td + "multi.yaml#2: Deployment/web: spec.template.spec.hostPID: ",
		td + "multi.yaml#2: Deployment/web: spec.template.spec.containers[0].securityContext.runAsUser: ",
		td + "multi.yaml#4.items[0]: Job/once: spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem: ",
		td + "list.json.items[1]: DaemonSet/node-agent: spec.template.spec.hostNetwork: ",
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("missing %q in:\n%s", line, stdout)
		}
	}
	// The webhook mutates Pods only: controllers never get patches.
	for _, r := range checkJSON(t, "", 1, examples+"deployment.yaml", td+"multi.yaml", td+"list.json") {
		if k := r["kind"]; k != "Pod" && r["patches"] != nil && len(r["patches"].([]any)) > 0 {
			t.Errorf("%s/%s has patches %v; the webhook does not mutate controllers", k, r["name"], r["patches"])
		}
	}
}

func TestCheckMultiDocumentSkipsUnknownKinds(t *testing.T) {
	code, stdout, stderr := checkRun(t, "", td+"multi.yaml")
	wantCode(t, code, 1, stdout, stderr)
	for _, note := range []string{
		"note: " + td + "multi.yaml#1: skipped ConfigMap/settings (v1)",
		"note: " + td + "multi.yaml#4.items[1]: skipped Secret/token (v1)",
	} {
		if !strings.Contains(stderr, note) {
			t.Errorf("missing %q in stderr:\n%s", note, stderr)
		}
	}
	if !strings.Contains(stdout, "3 workloads checked: 1 admitted (1 after mutation), 2 denied; 3 violations; 2 skipped") {
		t.Errorf("summary:\n%s", stdout)
	}
	rs := checkJSON(t, "", 1, td+"multi.yaml")
	var got []string
	for _, r := range rs {
		s := r["kind"].(string) + "#" + jsonNumber(r["document"]) + "@" + jsonNumber(r["line"])
		if r["skipped"] == true {
			s += " skipped"
			if !strings.Contains(r["reason"].(string), "agentgate judges") {
				t.Errorf("reason %q", r["reason"])
			}
		}
		got = append(got, s)
	}
	// The comment-only document is not counted; lines are where each object's content starts.
	want := []string{"ConfigMap#1@2 skipped", "Deployment#2@9", "Pod#3@30", "Job#4@43", "Secret#4@56 skipped"}
	if !slices.Equal(got, want) {
		t.Errorf("documents %v, want %v", got, want)
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCheckStdin(t *testing.T) {
	data, err := os.ReadFile(examples + "bad-pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := checkRun(t, string(data), "-")
	wantCode(t, code, 1, stdout, stderr)
	if !strings.Contains(stdout, "<stdin>: Pod/bad-runner: spec.hostNetwork: ") {
		t.Errorf("stdout:\n%s", stdout)
	}
	good, err := os.ReadFile(examples + "agent-pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Flags may follow paths.
	code, stdout, stderr = checkRun(t, string(good), "-", "-o", "json")
	wantCode(t, code, 0, stdout, stderr)
	if !strings.Contains(stdout, `"file": "<stdin>"`) {
		t.Errorf("stdout:\n%s", stdout)
	}
}

func TestCheckFolder(t *testing.T) {
	rs := checkJSON(t, "", 1, td+"folder")
	var got []string
	for _, r := range rs {
		got = append(got, r["file"].(string)+" "+r["kind"].(string)+"/"+r["name"].(string)+" "+jsonNumber(r["allowed"]))
	}
	// Recursive, lexical order, *.yaml *.yml *.json only; .hidden is not read.
	want := []string{
		td + "folder/a.yaml Pod/folder-a true",
		td + "folder/sub/b.yml ReplicaSet/folder-b false",
		td + "folder/sub/c.json Pod/folder-c true",
		td + "folder/sub/c.json ReplicationController/folder-d true",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	code, stdout, stderr := checkRun(t, "", t.TempDir())
	wantCode(t, code, 2, stdout, stderr)
	if !strings.Contains(stderr, "folder holds no *.yaml, *.yml or *.json file") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// The patches the CLI prints, applied to the manifest, give a pod the webhook would not patch again.
func TestCheckPatchesAreIdempotent(t *testing.T) {
	for _, tc := range []struct{ file, policy, as string }{
		{examples + "minimal-pod.yaml", "../../policy/default-policy.yaml", "--as=alice"},
		// the exempt container keeps what its exemption relaxes
		{td + "sidecar.yaml", td + "exempt-policy.yaml", "--as=" + meshOperator},
	} {
		file := tc.file
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs := strings.Split(string(data), "\n---\n")
		args := []string{"--policy", tc.policy}
		rs := checkJSON(t, "", 0, append(args, file, tc.as)...)
		if len(rs) != len(docs) {
			t.Fatalf("%s: %d reports for %d documents", file, len(rs), len(docs))
		}
		for i, r := range rs {
			raw, err := yaml.YAMLToJSON([]byte(docs[i]))
			if err != nil {
				t.Fatal(err)
			}
			ops, err := json.Marshal(r["patches"])
			if err != nil {
				t.Fatal(err)
			}
			patch, err := jsonpatchapply.DecodePatch(ops)
			if err != nil {
				t.Fatalf("%s: patches are not RFC 6902: %v", file, err)
			}
			patched, err := patch.Apply(raw)
			if err != nil {
				t.Fatalf("%s: applying %s: %v", file, ops, err)
			}
			again := checkJSON(t, string(patched), 0, append(args[:2:2], "-", tc.as)...)
			if p := again[0]["patches"].([]any); len(p) != 0 || again[0]["allowed"] != true {
				t.Errorf("%s#%d: after its patches: allowed %v, patches again %v", file, i+1, again[0]["allowed"], p)
			}
		}
	}
}

// -o sarif is wired to the SARIF writer (its shape is tested in internal/report), naming this binary's version.
func TestCheckSARIF(t *testing.T) {
	code, stdout, stderr := checkRun(t, "", "-o", "sarif", examples+"bad-pod.yaml", td+"invalid-field.yaml")
	wantCode(t, code, 2, stdout, stderr)
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct{ Name, Version string } `json:"driver"`
			} `json:"tool"`
			Results []any `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(stdout), &log); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, stdout)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Version != version || len(log.Runs[0].Results) < 10 {
		t.Errorf("SARIF log %+v", log)
	}
	if !strings.Contains(stderr, "spec.containers[0].ports[0].containerPort: cannot decode JSON string into int32") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestCheckFix(t *testing.T) {
	// Every fixable workload comes out admitted with nothing left for the webhook to patch; other documents
	// come out unchanged; comments survive.
	code, stdout, stderr := checkRun(t, "", "--fix", examples+"minimal-pod.yaml", examples+"deployment.yaml", examples+"mixed.yaml", td+"list.json", td+"folder/sub/c.json")
	wantCode(t, code, 1, stdout, stderr) // list.json's DaemonSet uses hostNetwork: not fixable
	if !strings.Contains(stdout, "# The smallest agent pod agentgate admits") || !strings.Contains(stdout, "# Source: "+examples+"mixed.yaml") {
		t.Errorf("comments or sources lost:\n%s", stdout)
	}
	if !strings.Contains(stderr, "DaemonSet/node-agent: spec.template.spec.hostNetwork:") {
		t.Errorf("the report goes to stderr with --fix:\n%s", stderr)
	}
	rs := checkJSON(t, stdout, 1, "-")
	var kinds []string
	for _, r := range rs {
		kinds = append(kinds, r["kind"].(string))
		if r["skipped"] == true {
			continue
		}
		if p := r["patches"].([]any); len(p) != 0 {
			t.Errorf("%s/%s: patches after --fix: %v", r["kind"], r["name"], p)
		}
		if r["name"] != "node-agent" && r["allowed"] != true {
			t.Errorf("%s/%s denied after --fix: %v", r["kind"], r["name"], r["violations"])
		}
	}
	want := []string{"Pod", "Deployment", "ConfigMap", "Service", "StatefulSet", "Pod", "DaemonSet", "Pod", "ReplicationController"}
	if !slices.Equal(kinds, want) {
		t.Errorf("documents %v, want %v", kinds, want)
	}
	// Controllers' templates are hardened too: the fixed Deployment's template needs nothing more.
	if !strings.Contains(stdout, "      automountServiceAccountToken: false\n") {
		t.Errorf("Deployment template not hardened:\n%s", stdout)
	}
	// A fixed single file is a drop-in replacement: no Source comment, exit 0.
	code, fixed, stderr := checkRun(t, "", "--fix", examples+"minimal-pod.yaml")
	wantCode(t, code, 0, fixed, stderr)
	code, out, stderr := checkRun(t, fixed, "-")
	wantCode(t, code, 0, out, stderr)
	if strings.Contains(fixed, "# Source:") {
		t.Errorf("single-file --fix output has a Source comment:\n%s", fixed)
	}
	// An already hardened manifest comes out byte for byte.
	orig, err := os.ReadFile(examples + "agent-pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, fixed, _ := checkRun(t, "", "--fix", examples+"agent-pod.yaml"); fixed != string(orig) {
		t.Errorf("--fix changed a hardened manifest:\n%s", fixed)
	}
}

func TestCheckBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"malformed YAML", []string{td + "malformed.yaml"},
			[]string{td + "malformed.yaml:8: document 1: not valid YAML: mapping values are not allowed"}},
		{"invalid value", []string{td + "invalid-field.yaml"},
			[]string{td + "invalid-field.yaml:10: document 1 (Pod/invalid): ", "spec.containers[0].ports[0].containerPort: cannot decode JSON string into int32"}},
		{"empty file", []string{td + "empty.yaml"},
			[]string{td + "empty.yaml: empty: no Kubernetes object in it"}},
		{"empty stdin", []string{"-"},
			[]string{"<stdin>: empty"}},
		{"missing kind", []string{td + "missing-kind.yaml"},
			[]string{td + "missing-kind.yaml:1: document 1: kind: Required value"}},
		{"missing file", []string{td + "nope.yaml"},
			[]string{td + "nope.yaml", "no such file"}},
		{"invalid policy", []string{"--policy", td + "invalid-policy.yaml", "--policy", td + "multi.yaml", examples + "agent-pod.yaml"},
			[]string{
				"policy " + td + "invalid-policy.yaml:1: spec.mode: Unsupported value: \"block\"",
				"policy " + td + "invalid-policy.yaml:1: spec.images.allow[0]: Invalid value: \"runner\"",
				"policy " + td + "invalid-policy.yaml:1: spec.resources.max[cpu]: Invalid value: \"0\"",
				"policy " + td + "multi.yaml:2: document 1: data[policy.yaml]: Required value: a ConfigMap labelled agentgate.io/policy=true holds its AgentPolicy document under data[policy.yaml]",
				"policy " + td + "multi.yaml:9: document 2: kind: Unsupported value: \"Deployment\"",
			}},
		{"bad flag value", []string{"-o", "xml", examples + "agent-pod.yaml"}, []string{`-o "xml"`}},
		{"no path", nil, []string{"no PATH given"}},
		{"bad namespace labels", []string{"--namespace-labels", "a", examples + "agent-pod.yaml"}, []string{`"a" is not key=value`}},
		{"fix with json", []string{"--fix", "-o", "json", examples + "agent-pod.yaml"}, []string{"--fix prints manifests"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := checkRun(t, "", tc.args...)
			wantCode(t, code, 2, stdout, stderr)
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// Odd input is an error naming the document (exit 2), never a crash and never a silent pass.
func TestCheckOddInput(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: x, image: registry.corp.example/agents/runner:1.4.2}]}\n"
	for _, tc := range []struct {
		name, stdin string
		code        int
		want        string // in stderr
	}{
		{"scalar document", "hello\n", 2, "<stdin>:1: document 1: not a Kubernetes object"},
		{"sequence document", "- a\n- b\n", 2, "not a Kubernetes object"},
		{"document hidden after an end marker", pod + "...\napiVersion: v1\nkind: Pod\nmetadata: {name: hidden}\nspec: {hostPID: true}\n", 2,
			"<stdin>:5: document 1: content after the end of the document"},
		{"end marker then a new document", pod + "...\n---\n" + pod, 0, ""},
		{"CRLF line ends", strings.ReplaceAll(pod+"---\n"+pod, "\n", "\r\n"), 0, ""},
		{"duplicate key", "apiVersion: v1\nkind: Pod\nkind: Pod\n", 2, `<stdin>:3: document 1: not valid YAML: yaml: unmarshal errors: line 3: key "kind" already set in map`},
		{"duplicate JSON field", `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [], "containers": []}}`, 2, `duplicate field "spec.containers"`},
		{"bad metadata", "apiVersion: v1\nkind: Pod\nmetadata: 5\n", 2, "cannot read apiVersion, kind and metadata"},
		{"bad apiVersion", "apiVersion: a/b/c\nkind: Pod\nmetadata: {name: p}\n", 2, `apiVersion: Invalid value: "a/b/c"`},
		{"List of scalars", "apiVersion: v1\nkind: List\nitems: [1]\n", 2, "document 1 items[0]: not a Kubernetes object"},
		{"JSON array", `[{"apiVersion": "v1"}]`, 2, "a JSON array is not a Kubernetes object"},
		{"truncated JSON", `{"apiVersion": "v1", "kind": "Pod"`, 2, "not valid JSON"},
		{"ReplicationController without template", "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec: {}\n", 2, "spec.template: Required value"},
		{"Pod in another group", "apiVersion: example.com/v1\nkind: Pod\nmetadata: {name: p}\n", 0, `skipped Pod/p (example.com/v1)`},
		{"generateName", "apiVersion: v1\nkind: Pod\nmetadata: {generateName: job-}\nspec: {hostPID: true, containers: [{name: x, image: registry.corp.example/agents/runner:1.4.2}]}\n", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := checkRun(t, tc.stdin, "-")
			wantCode(t, code, tc.code, stdout, stderr)
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
			for _, o := range []string{"json", "sarif"} {
				if c, out, _ := checkRun(t, tc.stdin, "-o", o, "-"); c != tc.code || !json.Valid([]byte(out)) {
					t.Errorf("-o %s: exit %d, valid JSON %v", o, c, json.Valid([]byte(out)))
				}
			}
		})
	}
}

// An unusable file does not hide the verdicts on the others; the exit code is still 2.
func TestCheckErrorsDoNotHideResults(t *testing.T) {
	code, stdout, stderr := checkRun(t, "", td+"malformed.yaml", examples+"bad-pod.yaml", td+"empty.yaml")
	wantCode(t, code, 2, stdout, stderr)
	if !strings.Contains(stdout, "Pod/bad-runner: spec.hostNetwork:") || !strings.Contains(stdout, "0 admitted, 1 denied; ") {
		t.Errorf("bad pod's verdict hidden:\n%s", stdout)
	}
	if strings.Count(stderr, "error: ") != 2 {
		t.Errorf("want both errors:\n%s", stderr)
	}
	rs := checkJSON(t, "", 2, td+"malformed.yaml", examples+"bad-pod.yaml")
	if len(rs) != 2 || rs[0]["error"] == nil || rs[1]["allowed"] != false {
		t.Errorf("json: %v", rs)
	}
}

func TestCheckTwoPolicies(t *testing.T) {
	args := []string{"--policy", "../../policy/default-policy.yaml", "--policy", td + "warn-policy.yaml"}
	code, stdout, stderr := checkRun(t, "", append(args, examples+"minimal-pod.yaml")...)
	wantCode(t, code, 0, stdout, stderr) // warnings admit
	want := "warning: " + examples + "minimal-pod.yaml: Pod/runner-minimal: spec.containers[0].image: [images] "
	if !strings.Contains(stdout, want) || !strings.Contains(stdout, "(policy digests)") || !strings.Contains(stdout, "; 1 warning") {
		t.Errorf("want a warning from policy digests:\n%s", stdout)
	}
	rs := checkJSON(t, "", 1, append(args, examples+"cronjob.yaml")...)
	r := rs[0]
	if r["allowed"] != false || !slices.Equal(toStrings(r["policies"]), []string{"agents", "digests"}) {
		t.Errorf("cronjob: %v", r)
	}
	for _, w := range r["warnings"].([]any) {
		if m := w.(map[string]any); m["mode"] != "warn" || m["policy"] != "digests" {
			t.Errorf("warning %v", m)
		}
	}
	for _, v := range r["violations"].([]any) {
		if m := v.(map[string]any); m["mode"] != "enforce" || m["policy"] != "agents" {
			t.Errorf("violation %v", m)
		}
	}
	// Two policies with one name are ambiguous.
	code, stdout, stderr = checkRun(t, "", "--policy", td+"warn-policy.yaml", "--policy", td+"warn-policy.yaml", examples+"agent-pod.yaml")
	wantCode(t, code, 2, stdout, stderr)
	if !strings.Contains(stderr, `policy "digests" is already given`) {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestCheckNamespaceLabels(t *testing.T) {
	// Offline, the default policy's namespaceSelector matches everything, and the CLI says so once.
	code, stdout, stderr := checkRun(t, "", examples+"bad-pod.yaml", examples+"cronjob.yaml")
	wantCode(t, code, 1, stdout, stderr)
	if strings.Count(stderr, "namespace labels are unknown") != 1 {
		t.Errorf("want the note once:\n%s", stderr)
	}
	// With labels that do not select the namespace, no policy applies.
	code, stdout, stderr = checkRun(t, "", "--namespace-labels", "team=web", examples+"bad-pod.yaml")
	wantCode(t, code, 0, stdout, stderr)
	if !strings.Contains(stderr, "Pod/bad-runner: no policy selects it") || strings.Contains(stderr, "labels are unknown") {
		t.Errorf("stderr:\n%s", stderr)
	}
	code, stdout, stderr = checkRun(t, "", "--namespace-labels", "agentgate.io/agents=true,team=web", examples+"bad-pod.yaml")
	wantCode(t, code, 1, stdout, stderr)
	// kubernetes.io/metadata.name is set as on a real namespace: here the namespace is known to have no
	// other label, so only workloads in namespace agents are selected.
	code, stdout, stderr = checkRun(t, "", "--policy", td+"ns-policy.yaml", "--namespace-labels", "", examples+"bad-pod.yaml", td+"sidecar.yaml")
	wantCode(t, code, 1, stdout, stderr)
	if !strings.Contains(stdout, "Pod/bad-runner: spec.hostNetwork:") || !strings.Contains(stderr, "Pod/debug: no policy selects it") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// meshOperator is the requester exempt-policy.yaml's container exemption names.
const meshOperator = "system:serviceaccount:mesh:operator"

func TestCheckExemptions(t *testing.T) {
	// Offline the requester is unknown: the container exemption, anchored to the mesh operator, does not apply.
	code, stdout, stderr := checkRun(t, "", "--policy", td+"exempt-policy.yaml", td+"sidecar.yaml")
	wantCode(t, code, 1, stdout, stderr)
	for _, want := range []string{
		"sidecar.yaml#1: Pod/meshed: spec.containers[1].image:",
		"sidecar.yaml#1: Pod/meshed: spec.containers[1].securityContext.runAsUser:",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("missing %q:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = checkRun(t, "", "--as", meshOperator, "--policy", td+"exempt-policy.yaml", td+"sidecar.yaml")
	wantCode(t, code, 0, stdout, stderr)
	for _, want := range []string{
		"exempt: " + td + "sidecar.yaml#1: Pod/meshed: spec.containers[1]: container istio-proxy (docker.io/istio/proxyv2:1.24.0) requested by " + meshOperator +
			" is exempt from images, runAsNonRoot, runAsUser (policy tools)",
		"exempt: " + td + "sidecar.yaml#2: Pod/debug: metadata.namespace: namespace tools is exempt (policy tools)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("missing %q:\n%s", want, stdout)
		}
	}
}

func TestCheckHelp(t *testing.T) {
	code, stdout, _ := checkRun(t, "", "-h")
	if code != 0 || !strings.Contains(stdout, "Usage: agentgate check") || !strings.Contains(stdout, "Exit status: 0") {
		t.Errorf("exit %d, help:\n%s", code, stdout)
	}
}

// Golden files hold the whole output (exit code, stdout, stderr) of representative runs in text and JSON.
// Regenerate with: go test ./cmd/agentgate -run TestCheckGolden -update
func TestCheckGolden(t *testing.T) {
	inputs := []string{examples + "bad-pod.yaml", examples + "minimal-pod.yaml", examples + "cronjob.yaml", td + "multi.yaml", td + "list.json", td + "malformed.yaml"}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"text", inputs},
		{"json", append([]string{"-o", "json"}, inputs...)},
		{"two-policies.text", []string{"--policy", "../../policy/default-policy.yaml", "--policy", td + "warn-policy.yaml", examples + "minimal-pod.yaml", examples + "cronjob.yaml"}},
		{"fix", []string{"--fix", examples + "minimal-pod.yaml", examples + "deployment.yaml", td + "multi.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := checkRun(t, "", tc.args...)
			got := "# agentgate check " + strings.Join(tc.args, " ") + "\n# exit " + jsonNumber(code) +
				"\n# stdout\n" + stdout + "# stderr\n" + stderr
			path := filepath.Join("testdata", "check", "golden", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the golden file (run with -update if the change is intended):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + jsonNumber(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}
