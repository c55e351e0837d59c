package manifest

import (
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
)

func TestLineOf(t *testing.T) {
	const multi = `# a comment
apiVersion: v1
kind: Pod
metadata:
  name: p
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata:
      name: a
      annotations:
        example.com/a.b: "x"
    spec:
      containers:
        - name: c
          image: i
          securityContext:
            privileged: true
        - name: d
          image: j
  - {apiVersion: v1, kind: Pod, metadata: {name: b}}
`
	docs, err := Split([]byte(multi))
	if err != nil || len(docs) != 2 {
		t.Fatalf("split: %d documents, %v", len(docs), err)
	}
	pod, list := docs[0], docs[1]
	jsonDocs, err := Split([]byte("{\"apiVersion\": \"v1\",\n \"kind\": \"Pod\",\n \"spec\": {\"hostPID\": true}}"))
	if err != nil {
		t.Fatal(err)
	}
	broken := &Document{Line: 3, ContentLine: 4} // yaml.v3 could not read it
	for _, tc := range []struct {
		name        string
		doc         *Document
		item, field string
		want        int
	}{
		{"the document", pod, "", "", 2},
		{"a field", pod, "", "metadata.name", 5},
		{"an unset field: its closest ancestor", pod, "", "spec.containers[0].image", 2},
		{"an unset field under a written one", pod, "", "metadata.labels[app]", 4},
		{"a List item", list, "/items/0", "", 10},
		{"a field of a List item", list, "/items/0", "spec.containers[0].securityContext.privileged", 21},
		{"the second element", list, "/items/0", "spec.containers[1].image", 23},
		{"a key with dots and a slash", list, "/items/0", "metadata.annotations[example.com/a.b]", 15},
		{"an index past the end", list, "/items/0", "spec.containers[5].image", 17},
		{"a flow-style item", list, "/items/1", "metadata.name", 24},
		{"JSON", jsonDocs[0], "", "spec.hostPID", 3},
		{"unreadable: its first line of content", broken, "", "spec", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.doc.LineOf(tc.item, tc.field); got != tc.want {
				t.Errorf("LineOf(%q, %q) = %d, want %d", tc.item, tc.field, got, tc.want)
			}
		})
	}
}

func TestFieldTokens(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "",
		"spec.containers[0].securityContext":   "spec|containers|0|securityContext",
		"metadata.annotations[a.b/c]":          "metadata|annotations|a.b/c",
		"spec.containers[0].resources[cpu":     "spec|containers|0|resources|cpu",
		"spec.initContainers[2].command[1]":    "spec|initContainers|2|command|1",
		"spec.resources.limits[memory].amount": "spec|resources|limits|memory|amount",
	} {
		if got := strings.Join(fieldTokens(in), "|"); got != want {
			t.Errorf("fieldTokens(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFieldPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"/items/2":              ".items[2]",
		"/items/2/items/0":      ".items[2].items[0]",
		"/spec/a~1b/c~0d/-":     ".spec.a/b.c~d[-]",
		"/spec/containers/10/x": ".spec.containers[10].x",
	} {
		if got := FieldPath(in); got != want {
			t.Errorf("FieldPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSortPatches(t *testing.T) {
	ops := []jsonpatch.Operation{
		{Operation: "add", Path: "/spec/volumes"},
		{Operation: "add", Path: "/spec/containers/10/securityContext"},
		{Operation: "add", Path: "/spec/containers/2/securityContext"},
		{Operation: "add", Path: "/metadata/labels"},
		{Operation: "remove", Path: "/spec/containers/0/args/3"},
		{Operation: "remove", Path: "/spec/containers/0/args/1"}, // after /3: order within one array is kept
		{Operation: "add", Path: "/spec/automountServiceAccountToken"},
		{Operation: "add", Path: "/spec/containers/0/args/-"},
	}
	var got []string
	for _, op := range SortPatches(ops) {
		got = append(got, op.Operation+" "+op.Path)
	}
	want := []string{
		"add /metadata/labels",
		"add /spec/automountServiceAccountToken",
		"remove /spec/containers/0/args/3",
		"remove /spec/containers/0/args/1",
		"add /spec/containers/0/args/-",
		"add /spec/containers/2/securityContext",
		"add /spec/containers/10/securityContext",
		"add /spec/volumes",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
