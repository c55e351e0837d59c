package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"agentgate.io/agentgate/internal/manifest"
	"agentgate.io/agentgate/policy"
)

// readRun judges files (paths as agentgate check takes them) under the default policy.
func readRun(t *testing.T, r *Run, paths ...string) *Run {
	t.Helper()
	if r.Set == nil {
		r.Set = policy.NewSet(policy.Default())
	}
	for _, src := range manifest.Read(paths, strings.NewReader("")) {
		r.Judge(src)
	}
	return r
}

func writeJSON(t *testing.T, r *Run) (objects []map[string]any, errs string) {
	t.Helper()
	var out, e bytes.Buffer
	r.WriteJSON(&out, &e)
	if err := json.Unmarshal(out.Bytes(), &objects); err != nil {
		t.Fatalf("WriteJSON wrote invalid JSON: %v\n%s", err, out.String())
	}
	return objects, e.String()
}

// The JSON field names are a public contract (DESIGN.md).
func TestWriteJSONFields(t *testing.T) {
	rs, _ := writeJSON(t, readRun(t, &Run{}, examples+"bad-pod.yaml", examples+"minimal-pod.yaml"))
	if len(rs) != 2 {
		t.Fatalf("%d objects, want 2", len(rs))
	}
	for _, r := range rs {
		for _, k := range []string{"file", "document", "line", "apiVersion", "kind", "namespace", "name", "allowed", "policies", "violations", "warnings", "audit", "exemptions", "patches"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s: no %q field", r["name"], k)
			}
		}
	}
	bad := rs[0]
	if bad["allowed"] != false || bad["namespace"] != "agents" || bad["kind"] != "Pod" || bad["name"] != "bad-runner" {
		t.Errorf("bad pod: %v", bad)
	}
	vs := bad["violations"].([]any)
	if len(vs) < 10 {
		t.Fatalf("%d violations", len(vs))
	}
	for _, v := range vs {
		m := v.(map[string]any)
		for _, k := range []string{"policy", "mode", "check", "field", "found", "allowed", "message", "line"} {
			if _, ok := m[k]; !ok {
				t.Errorf("violation %v: no %q", m, k)
			}
		}
		if !slices.Contains(policy.CheckIDs(), m["check"].(string)) {
			t.Errorf("unknown check %v", m["check"])
		}
	}
	first := vs[0].(map[string]any)
	if first["field"] != "spec.hostNetwork" || first["line"] != float64(9) {
		t.Errorf("first violation %v, want spec.hostNetwork on line 9", first)
	}
	minimal := rs[1]
	if minimal["allowed"] != true || len(minimal["patches"].([]any)) == 0 {
		t.Errorf("minimal pod: %v", minimal)
	}
}

// Skipped objects and errors are objects of the array too; errors also go to errs.
func TestWriteJSONSkippedAndErrors(t *testing.T) {
	r := judged(t, &Run{},
		"l.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: s, namespace: tools}}\n- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: i, ports: [{containerPort: eighty}]}]}}\n",
		"empty.yaml", "",
	)
	rs, errs := writeJSON(t, r)
	if reason, _ := rs[0]["reason"].(string); strings.HasPrefix(reason, `unsupported kind "ConfigMap"`) {
		rs[0]["reason"] = "(policy.UnsupportedKindError)"
	}
	got, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"apiVersion":"v1","document":1,"file":"l.yaml","item":"items[0]","kind":"ConfigMap","line":4,"name":"s","namespace":"tools","reason":"(policy.UnsupportedKindError)","skipped":true},` +
		`{"apiVersion":"v1","document":1,"error":"decoding Pod: spec.containers[0].ports[0].containerPort: cannot decode JSON string into int32","file":"l.yaml","item":"items[1]","kind":"Pod","line":5,"name":"p"},` +
		`{"error":"empty: no Kubernetes object in it (only blank lines or comments)","file":"empty.yaml"}]`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	const wantErrs = `error: l.yaml:5: document 1 items[1] (Pod/p): decoding Pod: spec.containers[0].ports[0].containerPort: cannot decode JSON string into int32
error: empty.yaml: empty: no Kubernetes object in it (only blank lines or comments)
`
	if errs != wantErrs {
		t.Errorf("errs:\n%s\nwant:\n%s", errs, wantErrs)
	}
}

// An empty run is an empty array, not null.
func TestWriteJSONEmpty(t *testing.T) {
	var out, errs bytes.Buffer
	(&Run{Set: policy.NewSet()}).WriteJSON(&out, &errs)
	if out.String() != "[]\n" || errs.Len() != 0 {
		t.Errorf("out %q, errs %q", out.String(), errs.String())
	}
}
