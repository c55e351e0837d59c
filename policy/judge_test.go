package policy

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Judge and Mutate skip the copy when Harden would change nothing (needsHardening). The shortcut is exact
// only if needsHardening and Harden always agree: checked on every FuzzHarden input (seeds and corpus), for
// every fuzz policy set, and by fuzzing.

func checkNeedsHardening(t *testing.T, data []byte) {
	w, err := DecodeWorkload(schema.GroupKind{Kind: "Pod"}, data)
	if err != nil {
		return
	}
	for i, set := range fuzzSets(t) {
		for _, ns := range []Namespace{testNS, {Name: "kube-system"}, {Name: "plain", Labels: map[string]string{}}} {
			before := mustJSON(t, w.Object)
			needs := set.needsHardening(w, ns, Requester{})
			if after := mustJSON(t, w.Object); after != before {
				t.Fatalf("set %d: needsHardening changed the pod", i)
			}
			h := w.DeepCopy()
			if changed := set.Harden(h, ns, Requester{}); changed != needs {
				t.Fatalf("set %d, namespace %s: needsHardening %v, Harden changed %v: %s", i, ns.Name, needs, changed, data)
			}
			// Judge and Mutate with the shortcut give what the long way gives.
			long := set.evaluate(h, ns, Requester{})
			if w.IsPod() && long.Allowed() {
				long = set.evaluate(w, ns, Requester{})
			}
			if got := set.Judge(w, ns, Requester{}); mustJSON(t, got) != mustJSON(t, long) {
				t.Fatalf("set %d: Judge %s, the long way %s", i, mustJSON(t, got), mustJSON(t, long))
			}
		}
	}
}

func TestNeedsHardeningAgreesWithHarden(t *testing.T) {
	inputs := [][]byte{[]byte(strictPod)}
	for _, bc := range benchCases(t) {
		inputs = append(inputs, []byte(mustJSON(t, bc.pod.Object)), []byte(mustJSON(t, bc.hardened.Object)))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzHarden", "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// go test fuzz v1 corpus files: a header line, then []byte("...") as a Go string literal.
		for _, line := range strings.Split(string(data), "\n") {
			if lit, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(lit, ")")); err == nil {
					inputs = append(inputs, []byte(s))
				}
			}
		}
	}
	for _, in := range inputs {
		checkNeedsHardening(t, in)
	}
	t.Logf("%d inputs", len(inputs))
}

func FuzzNeedsHardening(f *testing.F) {
	f.Add([]byte(strictPod))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w"},"spec":{"os":{"name":"windows"},"containers":[{"name":"a","image":"x"}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"automountServiceAccountToken":false,"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"a","image":"x","securityContext":{"privileged":true,"readOnlyRootFilesystem":true,"capabilities":{"add":["CAP_SYS_ADMIN"],"drop":["ALL"]}},"resources":{"requests":{"cpu":"9","memory":"1Gi"},"limits":{"cpu":"9","memory":"1Gi"}}}],"ephemeralContainers":[{"name":"d","image":"x"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkNeedsHardening(t, data) })
}
