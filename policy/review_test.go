package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	gomodulespatch "gomodules.xyz/jsonpatch/v2"
)

// TestReview: Review is exactly the webhooks' path, Mutate then Judge for a Pod with CreatePatch's patch, and
// Judge alone for a controller; applying its patch leaves nothing more to patch; it never changes w.
func TestReview(t *testing.T) {
	set := NewSet(Default())
	const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: agents}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.corp.example/agents/web:1.0}]
`
	docs := map[string]string{"deployment": deployment}
	samples, err := filepath.Glob(filepath.Join("testdata", "patch", "*.yaml"))
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples in testdata/patch: %v", err)
	}
	for _, in := range samples {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		docs[strings.TrimSuffix(filepath.Base(in), ".yaml")] = string(b)
	}
	var patched, denied int
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			w, raw := workloadFromYAML(t, doc)
			before := mustJSON(t, w.Object)
			res, ops, err := set.Review(raw, w, testNS, Requester{})
			if err != nil {
				t.Fatal(err)
			}
			if after := mustJSON(t, w.Object); after != before {
				t.Errorf("Review changed its workload:\nbefore %s\nafter  %s", before, after)
			}
			var want Result
			var wantOps []string
			if w.IsPod() {
				m, changed := set.Mutate(w, testNS, Requester{})
				want = set.Judge(m, testNS, Requester{})
				if changed {
					o, err := CreatePatch(raw, w.Object, m.Object)
					if err != nil {
						t.Fatal(err)
					}
					wantOps = opKeys(t, o)
				}
			} else {
				want = set.Judge(w, testNS, Requester{})
			}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("result %q, want %q", violationKeys(res.Violations), violationKeys(want.Violations))
			}
			if got := opKeys(t, ops); !reflect.DeepEqual(got, wantOps) {
				t.Errorf("ops %q, want %q", got, wantOps)
			}
			if !res.Allowed() {
				denied++
			}
			if !w.IsPod() || len(ops) == 0 {
				return
			}
			patched++
			again, err := applyOps(raw, ops)
			if err != nil {
				t.Fatal(err)
			}
			w2, err := decodeRawWorkload(again)
			if err != nil {
				t.Fatal(err)
			}
			res2, ops2, err := set.Review(again, w2, testNS, Requester{})
			if err != nil || len(ops2) != 0 || res2.Allowed() != res.Allowed() {
				t.Errorf("after its patch: ops %v, allowed %v (was %v), err %v", ops2, res2.Allowed(), res.Allowed(), err)
			}
		})
	}
	if patched == 0 || denied == 0 {
		t.Errorf("the samples should include a pod that is patched (%d) and a denied one (%d)", patched, denied)
	}
}

// opKeys renders operations in a stable order: the diff library emits them in map order.
func opKeys(t testing.TB, ops []gomodulespatch.Operation) []string {
	var out []string
	for _, op := range ops {
		out = append(out, op.Operation+" "+op.Path+" "+mustJSON(t, op.Value))
	}
	slices.Sort(out)
	return out
}
