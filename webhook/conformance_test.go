package webhook

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/policy"
)

// conformanceDir is ../shared/conformance as seen from the repository root (DESIGN.md).
const conformanceDir = "../../shared/conformance"

// TestWebhookConformanceFixturesMatchLibrary replays every workload document of the shared conformance
// corpus through the real server, /mutate then /validate as the API server calls them, and requires the same
// answer as the library path that policy's conformance test compares with INDEX.tsv: the same verdict, a
// cause for every violation's field path, and the patch policy.CreatePatch makes. Together the two tests
// show the corpus verdicts hold over HTTPS, not only in the library.
func TestWebhookConformanceFixturesMatchLibrary(t *testing.T) {
	if _, err := os.Stat(filepath.Join(conformanceDir, "INDEX.tsv")); err != nil {
		t.Skipf("conformance corpus not found at %s (webhook/%s from the repository root): %v", conformanceDir, conformanceDir, err)
	}
	// The default policy, judging by registry only as INDEX.md's reference policy does: fixtures then reach
	// every check instead of stopping at the image.
	doc := policyDoc(t, `allow: ["registry.corp.example/agents/**"]`, `allow: []`, "denyTags: [latest]", "denyTags: []")
	p, errs := policy.Parse(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	set := policy.NewSet(p)
	ts := startServer(t, Options{Sources: []Source{StaticSource{"conformance:agents": doc}}})

	var replayed, admitted, refused int
	err := filepath.WalkDir(conformanceDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, y := range strings.Split(string(data), "\n---") {
			raw, err := yaml.YAMLToJSON([]byte(y))
			if err != nil || len(raw) < 2 || raw[0] != '{' {
				continue
			}
			var tm struct {
				metav1.TypeMeta
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if json.Unmarshal(raw, &tm) != nil {
				continue
			}
			gv, err := schema.ParseGroupVersion(tm.APIVersion)
			if err != nil || !policy.Supported(schema.GroupKind{Group: gv.Group, Kind: tm.Kind}) || gv.Version != "v1" {
				continue
			}
			name := strings.TrimPrefix(path, conformanceDir+"/") + "#" + strconv.Itoa(i)
			ns := tm.Metadata.Namespace
			if ns == "" {
				ns = "default"
				raw = withNamespace(t, raw, ns)
			}
			gvk := metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: tm.Kind}
			outcome := replayConformance(t, ts, set, name, gvk, ns, tm.Metadata.Name, raw)
			replayed++
			switch outcome {
			case "admitted":
				admitted++
			case "refused":
				refused++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if replayed < 100 {
		t.Errorf("only %d workload documents replayed: has the corpus moved?", replayed)
	}
	t.Logf("%d workload documents replayed over HTTPS: %d admitted, %d denied, %d refused as malformed", replayed, admitted, replayed-admitted-refused, refused)
	ts.healthy()
}

func withNamespace(t *testing.T, raw []byte, ns string) []byte {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["metadata"] = meta
	}
	meta["namespace"] = ns
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// replayConformance compares the server with the library on one document and returns admitted, denied or
// refused (the document does not decode strictly).
func replayConformance(t *testing.T, ts *testServer, set *policy.Set, name string, gvk metav1.GroupVersionKind, ns, objName string, raw []byte) string {
	t.Helper()
	gk := schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}
	w, decodeErr := policy.DecodeWorkload(gk, raw)
	r := rv{gvk: gvk, namespace: ns, name: objName, uid: "conf", obj: raw}

	judged := raw
	if gk == podGK {
		resp := ts.answer("/mutate", r)
		if decodeErr != nil {
			if resp.Allowed {
				t.Errorf("%s: /mutate admitted a document the library cannot decode (%v)", name, decodeErr)
			}
			return "refused"
		}
		m, changed := set.Mutate(w, policy.Namespace{Name: ns}, policy.Requester{})
		var want []byte
		if changed {
			ops, err := policy.CreatePatch(raw, w.Object, m.Object)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(ops) > 0 {
				want, _ = json.Marshal(ops)
			}
		}
		// gomodules.xyz/jsonpatch emits operations in map order: compare them as sets.
		if !sameOps(t, resp.Patch, want) {
			t.Errorf("%s: /mutate patch\n%s\nlibrary patch\n%s", name, resp.Patch, want)
			return "denied"
		}
		if resp.Patch != nil {
			patch, err := jsonpatch.DecodePatch(resp.Patch)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if judged, err = patch.Apply(raw); err != nil {
				t.Fatalf("%s: patch does not apply: %v", name, err)
			}
		}
		if w, decodeErr = policy.DecodeWorkload(gk, judged); decodeErr != nil {
			t.Fatalf("%s: the patched pod does not decode: %v", name, decodeErr)
		}
		r.obj = judged
	}
	resp := ts.answer("/validate", r)
	if decodeErr != nil {
		if resp.Allowed {
			t.Errorf("%s: /validate admitted a document the library cannot decode (%v)", name, decodeErr)
		}
		return "refused"
	}
	res := set.Judge(w, policy.Namespace{Name: ns}, policy.Requester{})
	if resp.Allowed != res.Allowed() {
		t.Errorf("%s: /validate allowed=%v, library %v", name, resp.Allowed, res.Allowed())
		return "denied"
	}
	if res.Allowed() {
		return "admitted"
	}
	var want []string
	for _, v := range res.ByMode(policy.ModeEnforce) {
		want = append(want, v.Field)
	}
	var got []string
	for _, c := range resp.Result.Details.Causes {
		got = append(got, c.Field)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: causes %q, library violations %q", name, got, want)
	}
	return "denied"
}

// sameOps compares two JSON patches as sets of operations.
func sameOps(t *testing.T, a, b []byte) bool {
	t.Helper()
	canon := func(p []byte) []string {
		if len(p) == 0 {
			return nil
		}
		var ops []json.RawMessage
		if err := json.Unmarshal(p, &ops); err != nil {
			t.Fatalf("patch %s: %v", p, err)
		}
		out := make([]string, len(ops))
		for i, op := range ops {
			out[i] = string(op)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(canon(a), canon(b))
}
