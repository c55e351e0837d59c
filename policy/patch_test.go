package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	gomodulespatch "gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/runtime"
)

// sortOps orders operations by path then op, so that golden files do not depend on map iteration in the diff.
func sortOps(ops []gomodulespatch.Operation) {
	slices.SortStableFunc(ops, func(a, b gomodulespatch.Operation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Operation, b.Operation)
	})
}

// applyOps applies RFC 6902 operations with an independent implementation (evanphx/json-patch, the one the
// API server uses) and returns the patched document.
func applyOps(raw []byte, ops []gomodulespatch.Operation) ([]byte, error) {
	if len(ops) == 0 {
		return raw, nil
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(b)
	if err != nil {
		return nil, err
	}
	return p.Apply(raw)
}

// checkPatchApplies: the patch turns raw into a document that decodes (strictly) to exactly the hardened
// object. Returns the operations.
func checkPatchApplies(t testing.TB, raw []byte, original, hardened runtime.Object) []gomodulespatch.Operation {
	t.Helper()
	ops, err := CreatePatch(raw, original, hardened)
	if err != nil {
		t.Fatalf("CreatePatch: %v", err)
	}
	patched, err := applyOps(raw, ops)
	if err != nil {
		t.Fatalf("applying %s: %v", mustJSON(t, ops), err)
	}
	w, err := decodeRawWorkload(patched)
	if err != nil {
		t.Fatalf("patched document does not decode: %v\n%s", err, patched)
	}
	if got, want := mustJSON(t, w.Object), mustJSON(t, hardened); got != want {
		t.Errorf("patched raw document differs from the hardened object:\npatched  %s\nhardened %s\nops %s", got, want, mustJSON(t, ops))
	}
	return ops
}

// TestCreatePatchGolden: the patch the mutating webhook returns for each sample in testdata/patch, compared
// with its golden file, and applied to the raw document to prove it yields the hardened pod.
func TestCreatePatchGolden(t *testing.T) {
	set := NewSet(Default())
	inputs, err := filepath.Glob(filepath.Join("testdata", "patch", "*.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no samples in testdata/patch: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			w, raw := workloadFromYAML(t, string(doc))
			m, changed := set.Mutate(w, testNS, Requester{})
			ops := checkPatchApplies(t, raw, w.Object, m.Object)
			if changed != (len(ops) > 0) {
				t.Errorf("Mutate changed=%v but the patch has %d operations", changed, len(ops))
			}
			sortOps(ops)
			var buf bytes.Buffer
			buf.WriteString("[\n")
			for i, op := range ops {
				b, err := json.Marshal(op)
				if err != nil {
					t.Fatal(err)
				}
				buf.WriteString("  ")
				buf.Write(b)
				if i < len(ops)-1 {
					buf.WriteString(",")
				}
				buf.WriteString("\n")
			}
			buf.WriteString("]\n")
			compareGolden(t, filepath.Join("patch", name+".patch.json"), buf.Bytes())

			// A second pass over the patched pod: nothing left to patch.
			if changed {
				patched, _ := applyOps(raw, ops)
				w2, err := decodeRawWorkload(patched)
				if err != nil {
					t.Fatal(err)
				}
				m2, changed2 := set.Mutate(w2, testNS, Requester{})
				ops2, err := CreatePatch(patched, w2.Object, m2.Object)
				if changed2 || err != nil || len(ops2) != 0 {
					t.Errorf("second pass: changed %v, ops %v, err %v", changed2, ops2, err)
				}
				if res := set.Judge(w2, testNS, Requester{}); !res.Allowed() {
					t.Errorf("patched pod denied: %q", violationKeys(res.Violations))
				}
			}
		})
	}
}

// TestCreatePatchNoise: differences that come from typed marshalling alone (fields the raw document omits or
// writes differently) never reach the patch.
func TestCreatePatchNoise(t *testing.T) {
	for _, raw := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"a","image":"x"}]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","creationTimestamp":null,"labels":{}},"spec":{"containers":[{"name":"a","image":"x","resources":{},"ports":[{"containerPort":80,"hostPort":0,"protocol":"TCP"}]}],"hostNetwork":false},"status":{}}`,
	} {
		w, err := decodeRawWorkload([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		ops, err := CreatePatch([]byte(raw), w.Object, w.DeepCopy().Object)
		if err != nil || ops != nil {
			t.Errorf("%s: unchanged object gave ops %v, err %v", raw, ops, err)
		}
	}
}

// TestCreatePatchControllers: the same diff works on any workload object (the CLI's --fix shows it), with
// operations under the template's path.
func TestCreatePatchControllers(t *testing.T) {
	set := NewSet(Default())
	w, raw := workloadFromYAML(t, `apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: a, image: registry.corp.example/agents/a:1}]
`)
	h := w.DeepCopy()
	set.Harden(h, testNS, Requester{})
	ops := checkPatchApplies(t, raw, w.Object, h.Object)
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	for _, op := range ops {
		if !strings.HasPrefix(op.Path, "/spec/jobTemplate/spec/template/spec/") {
			t.Errorf("operation outside the pod template: %s %s", op.Operation, op.Path)
		}
	}
}
