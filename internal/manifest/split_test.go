package manifest

import (
	"fmt"
	"strings"
	"testing"
)

// summary renders a split as "index@line/contentLine kind", kind being yaml, json or the error and its line.
func summary(docs []*Document) []string {
	var out []string
	for _, d := range docs {
		s := fmt.Sprintf("%d@%d/%d ", d.Index, d.Line, d.ContentLine)
		switch {
		case d.Err != nil:
			s += fmt.Sprintf("error@%d: %v", d.ErrLine, d.Err)
		case d.IsJSON:
			s += "json " + string(d.JSON)
		default:
			s += "yaml " + string(d.JSON)
		}
		out = append(out, s)
	}
	return out
}

func TestSplit(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
	const podJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`
	for _, tc := range []struct {
		name, in string
		want     []string
		err      string
	}{
		{"one YAML document", pod, []string{"1@1/1 yaml " + podJSON}, ""},
		{"empty", "", nil, ""},
		{"comments only", "# nothing\n\n# here\n", nil, ""},
		{"null document", "null\n", nil, ""},
		{"leading marker and comments", "--- # first\n# about p\n" + pod, []string{"1@1/3 yaml " + podJSON}, ""},
		{"several, empty ones left out of the count", "# header\n" + pod + "---\n# comment only\n---\n\n" + pod + "--- \n" + pod,
			[]string{"1@1/2 yaml " + podJSON, "2@7/9 yaml " + podJSON, "3@12/13 yaml " + podJSON}, ""},
		{"a marker is ---, alone or followed by a blank", pod + "---x: 1\n", []string{`1@1/1 yaml {"---x":1,"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`}, ""},
		{"CRLF", strings.ReplaceAll(pod+"---\n"+pod, "\n", "\r\n"), []string{"1@1/1 yaml " + podJSON, "2@4/5 yaml " + podJSON}, ""},
		{"byte-order mark", "\xef\xbb\xbf" + pod, []string{"1@1/1 yaml " + podJSON}, ""},
		{"invalid YAML: the line is the source's", pod + "---\n" + pod + "labels: a: b\n", []string{"1@1/1 yaml " + podJSON, "2@4/5 error@8: not valid YAML: mapping values are not allowed in this context"}, ""},
		{"duplicate key", pod + "kind: Pod\n", []string{`1@1/1 error@4: not valid YAML: yaml: unmarshal errors: line 4: key "kind" already set in map`}, ""},
		{"content hidden after an end marker", pod + "...\nkind: Hidden\n", []string{`1@1/1 error@4: content after the end of the document: yaml: line 4: did not find expected <document start>`}, ""},
		{"end marker then a new document", pod + "...\n---\n" + pod, []string{"1@1/1 yaml " + podJSON, "2@5/6 yaml " + podJSON}, ""},
		{"scalar document", "hello\n", []string{`1@1/1 yaml "hello"`}, ""},
		{"JSON stream", podJSON + "\n\n  " + podJSON, []string{"1@1/1 json " + podJSON, "2@3/3 json " + podJSON}, ""},
		{"JSON kept as written", "{\"kind\": \"Pod\",\n \"apiVersion\": \"v1\"}", []string{"1@1/1 json {\"kind\": \"Pod\",\n \"apiVersion\": \"v1\"}"}, ""},
		{"YAML flow mapping", "{apiVersion: v1, kind: Pod, metadata: {name: p}}\n", []string{"1@1/1 yaml " + podJSON}, ""},
		{"JSON array", `[{"apiVersion": "v1"}]`, nil, "line 1: a JSON array is not a Kubernetes object"},
		{"JSON string", `"x"`, []string{`1@1/1 yaml "x"`}, ""},
		{"truncated JSON", "\n{\"apiVersion\": \"v1\"", nil, "line 2: not valid JSON: unexpected EOF"},
		{"JSON objects on one line", `{"a": 1} {"b": 2}`, []string{`1@1/1 json {"a": 1}`, `2@1/1 json {"b": 2}`}, ""},
		// A stream whose later object is broken is also valid YAML (a flow mapping, then something that
		// sigs.k8s.io/yaml would drop): it is read as YAML, and the hidden content reported.
		{"JSON stream with a broken object", podJSON + "\n[1]", []string{"1@1/1 error@1: content after the end of the document: yaml: line 1: did not find expected <document start>"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Split([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := summary(docs)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// Policy files are read as the server reads them: content after an end marker is not looked for.
func TestSplitWithoutEndCheck(t *testing.T) {
	docs, sections, err := split([]byte("a: 1\n...\nb: 2\n---\n# empty\n"), false)
	if err != nil || sections != 2 || len(docs) != 1 || docs[0].Err != nil || string(docs[0].JSON) != `{"a":1}` {
		t.Errorf("docs %q, %d sections, err %v", summary(docs), sections, err)
	}
}
