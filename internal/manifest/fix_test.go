package manifest

import (
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
)

func op(operation, path string, value any) jsonpatch.Operation {
	return jsonpatch.Operation{Operation: operation, Path: path, Value: value}
}

func TestFixed(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ops      []jsonpatch.Operation
		want     string
	}{
		{"no operation: as written, without its --- line", "--- # c\n# head\na:   1\n", nil, "# head\na:   1\n"},
		{"edited in place: order and comments kept", `# head
apiVersion: v1
kind: Pod
metadata:
  name: p # the name
  labels: {app: p}
spec:
  containers:
    - name: c   # main
      image: i
      securityContext: {}
`, []jsonpatch.Operation{
			op("add", "/spec/automountServiceAccountToken", false),
			op("add", "/spec/containers/0/securityContext/runAsUser", float64(1000)),
			op("replace", "/spec/containers/0/image", "j"),
			op("add", "/spec/containers/1", map[string]any{"name": "d", "image": "k"}),
			op("remove", "/metadata/labels", nil),
		}, `# head
apiVersion: v1
kind: Pod
metadata:
  name: p # the name
spec:
  containers:
    - name: c # main
      image: j
      securityContext:
        runAsUser: 1000
    - image: k
      name: d
  automountServiceAccountToken: false
`},
		{"sequences", "a: [1, 2]\nc: []\n", []jsonpatch.Operation{op("remove", "/a/0", nil), op("add", "/c/-", "x"), op("add", "/b", []any{})},
			"a: [2]\nc:\n  - x\nb: []\n"},
		{"JSON: block style, keys in order, whole numbers as integers",
			`{"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 1000000000}}}]}}`,
			[]jsonpatch.Operation{op("add", "/spec/containers/0/resources/requests", map[string]any{"memory": float64(134217728)})},
			"kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: c\n      resources:\n        limits:\n          cpu: 1000000000\n        requests:\n          memory: 134217728\n"},
		{"JSON without operation: as YAML", `{"b": 1, "a": 2}`, nil, "b: 1\na: 2\n"},
		{"aliases: a plain rendering of the patched JSON", "# lost\nb: &x {c: 1}\na: *x\n", []jsonpatch.Operation{op("add", "/a/d", float64(2))},
			"a:\n  c: 1\n  d: 2\nb:\n  c: 1\n"},
		{"merge keys: a plain rendering of the patched JSON", "b: &x {c: 1}\na:\n  <<: *x\n  e: 3\n", []jsonpatch.Operation{op("add", "/a/d", float64(2))},
			"a:\n  c: 1\n  d: 2\n  e: 3\nb:\n  c: 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Split([]byte(tc.in))
			if err != nil || len(docs) != 1 {
				t.Fatalf("split: %d documents, %v", len(docs), err)
			}
			got, err := docs[0].Fixed(tc.ops)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestFixedError(t *testing.T) {
	docs, err := Split([]byte("a: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = docs[0].Fixed([]jsonpatch.Operation{op("add", "/b/c", "x")})
	if err == nil || !strings.HasPrefix(err.Error(), "applying the hardening patch: ") {
		t.Errorf("error %v", err)
	}
}

// editYAML refuses what it cannot edit faithfully; Fixed then falls back to a plain rendering.
func TestEditYAMLRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		op       jsonpatch.Operation
		want     string
	}{
		{"alias", "b: &x {c: 1}\na: *x\n", op("add", "/a/d", 1), "anchors and aliases are not edited in place"},
		{"under an alias", "b: &x {c: {e: 1}}\na: *x\n", op("add", "/a/c/d", 1), "anchors and aliases are not edited in place"},
		{"merge key", "a: {<<: {c: 1}}\n", op("add", "/a/d", 1), "anchors and aliases are not edited in place"},
		{"whole document", "a: 1\n", op("replace", "", map[string]any{}), "operation on the whole document"},
		{"missing parent", "a: 1\n", op("add", "/b/c", 1), "/b/c: no such field"},
		{"remove a missing field", "a: 1\n", op("remove", "/b", nil), "remove /b: no such field"},
		{"bad index", "a: [1]\n", op("add", "/a/3", 1), "/a/3: bad index"},
		{"replace past the end", "a: [1]\n", op("replace", "/a/1", 1), "/a/1: bad index"},
		{"scalar parent", "a: 1\n", op("add", "/a/b", 1), "/a/b: parent is not a mapping or a sequence"},
		{"unsupported operation", "a: [1]\n", op("move", "/a/0", nil), `unsupported operation "move"`},
		{"not YAML", "a: [\n", op("add", "/b", 1), "cannot parse the document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := editYAML([]byte(tc.in), []jsonpatch.Operation{tc.op}, false)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
