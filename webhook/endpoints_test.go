package webhook

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEndpointTable: the endpoint table is the one list. Every entry is served, labelled in metrics, routed by
// the manifests' webhook configurations and described in the package doc and the README; every path the
// manifests route is in the table.
func TestEndpointTable(t *testing.T) {
	ts := startServer(t, Options{})
	manifests := readFile(t, "../manifests/base/webhooks.yaml")
	doc := readFile(t, "doc.go")
	readme := readFile(t, "../README.md")
	var names []string
	for _, e := range endpoints {
		names = append(names, e.name)
		path := "/" + e.name
		if got := endpointLabel(path); got != e.name {
			t.Errorf("endpointLabel(%q) = %q", path, got)
		}
		// A GET reaches the review handler (405 from serveReview), not the mux's 404.
		if code, _, _ := ts.do(http.MethodGet, path, "", nil); code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s = %d, want 405 from the review handler", path, code)
		}
		if !strings.Contains(manifests, "path: "+path+",") {
			t.Errorf("manifests/base/webhooks.yaml routes nothing to %s", path)
		}
		if !strings.Contains(doc, "POST "+path+":") {
			t.Errorf("doc.go does not describe POST %s", path)
		}
		if !strings.Contains(readme, "`"+path+"`") {
			t.Errorf("README.md does not mention `%s`", path)
		}
	}
	for _, m := range regexp.MustCompile(`path: /([a-z-]+),`).FindAllStringSubmatch(manifests, -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("manifests/base/webhooks.yaml routes /%s, which is not in the endpoint table", m[1])
		}
	}
	if got := endpointLabel("/no-such-endpoint"); got != "other" {
		t.Errorf("an unknown path is labelled %q, want other", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
