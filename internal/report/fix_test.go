package report

import (
	"bytes"
	"strings"
	"testing"
)

func writeFixed(r *Run) (out, errs string) {
	var o, e bytes.Buffer
	r.WriteFixed(&o, &e)
	return o.String(), e.String()
}

func TestWriteFixed(t *testing.T) {
	// One source: a drop-in replacement, documents in order, comments kept, nothing hardened twice.
	r := judged(t, &Run{Fix: true}, "a.yaml", "# keep me\n"+minimalPod+"---\napiVersion: v1\nkind: Secret\nmetadata: {name: s} # as written\n")
	out, errs := writeFixed(r)
	if errs != "" || strings.Contains(out, "# Source:") || !strings.HasPrefix(out, "# keep me\napiVersion: v1\n") ||
		!strings.Contains(out, "\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s} # as written\n") ||
		!strings.Contains(out, "      securityContext:\n") {
		t.Errorf("out:\n%s\nerrs:\n%s", out, errs)
	}
	again := judged(t, &Run{Fix: true}, "fixed.yaml", out)
	if got := again.Tally(); got.Mutated != 0 || got.Denied != 0 || got.Errors != 0 {
		t.Errorf("after --fix: %+v\n%s", got, out)
	}
	if out2, _ := writeFixed(again); out2 != out {
		t.Errorf("fixing a fixed manifest changed it:\n%s\nwas:\n%s", out2, out)
	}

	// Several sources: each document names its source; documents in error and unreadable sources are left out.
	r = judged(t, &Run{Fix: true}, "a.yaml", hostPIDPod, "b.yaml", "kind: Pod\n---\n"+deployment, "c.yaml", "")
	out, errs = writeFixed(r)
	if !strings.HasPrefix(out, "# Source: a.yaml\napiVersion: v1\n") || !strings.Contains(out, "\n---\n# Source: b.yaml\napiVersion: apps/v1\n") ||
		strings.Count(out, "---\n") != 1 || strings.Contains(out, "kind: Pod\n---") || errs != "" {
		t.Errorf("out:\n%s\nerrs:\n%s", out, errs)
	}
	// The denied pod still gets every field hardening can fill.
	if pod, _, _ := strings.Cut(out, "---\n"); !strings.Contains(pod, "\n  automountServiceAccountToken: false\n") {
		t.Errorf("denied pod not hardened:\n%s", out)
	}
}
