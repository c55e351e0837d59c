package webhook

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// The reviews that `make run` tells newcomers to send answer as the README says: the minimal pod is patched,
// the bad pod is denied with a cause for every problem in it.
func TestWebhookMakeRunExamples(t *testing.T) {
	ts := startServer(t, Options{})
	read := func(name string) []byte {
		body, err := os.ReadFile(filepath.Join("..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	code, rev, raw := ts.post("/mutate", read("review-minimal-pod.json"))
	if code != http.StatusOK || rev == nil {
		t.Fatalf("/mutate: HTTP %d: %s", code, raw)
	}
	requireAllowed(t, rev.Response)
	if len(rev.Response.Patch) == 0 {
		t.Error("/mutate: the minimal pod was not hardened")
	}
	code, rev, raw = ts.post("/validate", read("review-bad-pod.json"))
	if code != http.StatusOK || rev == nil {
		t.Fatalf("/validate: HTTP %d: %s", code, raw)
	}
	requireDenied(t, rev.Response,
		"spec.hostNetwork",
		"spec.containers[0].securityContext.privileged",
		"spec.containers[0].securityContext.capabilities.add[0]",
		"spec.containers[0].securityContext.readOnlyRootFilesystem",
		"spec.containers[0].image",
		"spec.containers[0].command[2]",
		"spec.containers[0].env[0].value",
		"spec.volumes[0].hostPath",
	)
}
