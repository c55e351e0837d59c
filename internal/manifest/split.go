package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// Document is one YAML document or JSON object of a source.
type Document struct {
	// Index counts the source's documents from 1, leaving out empty ones (only blank lines or comments).
	Index int
	// Line is where the document's section starts (its --- line, or 1); ContentLine is its first line of
	// content. Lines count from 1 in the whole source.
	Line, ContentLine int
	// Text is the document as written, with its --- line if it has one.
	Text []byte
	// IsJSON says the document is an object of a JSON stream rather than a YAML document.
	IsJSON bool
	// JSON is the document converted to JSON, what the API server would receive; nil when it is not valid
	// YAML.
	JSON []byte
	// Err says why the document cannot be used: it is not valid YAML, or content hides after its end (which
	// YAML-to-JSON conversion would silently drop). ErrLine is the source line it points at, 0 if unknown.
	Err     error
	ErrLine int

	node *yaml3.Node // for LineOf and Fixed; nil when yaml.v3 cannot read the document
}

// Split cuts a source into its documents: a stream of JSON objects when it starts with "{" (or "["), else
// YAML documents separated by lines starting with "---" (YAML's document marker, which cannot start a line
// inside a document, so no parser is needed to find it). A leading byte-order mark is ignored. Empty
// documents are left out. The error is for a source that cannot be split at all (broken JSON, a JSON value
// other than an object); a document that cannot be read is returned with its Err set, in its place.
func Split(data []byte) ([]*Document, error) {
	docs, _, err := split(data, true)
	return docs, err
}

// split is Split, and also returns the number of sections, empty ones included. checkEnd says whether to
// look for content hidden after the end of a YAML document: policy files are read without that check, as
// the server reads them (policy.Parse).
func split(data []byte, checkEnd bool) ([]*Document, int, error) {
	sections, err := splitSections(data)
	if err != nil {
		return nil, 0, err
	}
	var docs []*Document
	for _, s := range sections {
		d := &Document{Line: s.line, ContentLine: s.contentLine, Text: s.text, IsJSON: s.json}
		if s.json {
			d.JSON = s.text
		} else {
			j, err := yaml.YAMLToJSONStrict(s.text)
			if err != nil {
				msg, line := yamlError(err, s.line)
				d.Err, d.ErrLine = fmt.Errorf("not valid YAML: %s", msg), line
				d.Index = len(docs) + 1
				docs = append(docs, d)
				continue
			}
			d.JSON = j
		}
		if isNull(d.JSON) {
			continue
		}
		d.Index = len(docs) + 1
		d.node = parseNode(s.text)
		docs = append(docs, d)
		if checkEnd && !s.json && d.node != nil {
			// sigs.k8s.io/yaml reads the first document of its input and ignores the rest: nothing may hide there.
			if err := trailingContent(s.text); err != nil {
				msg, line := yamlError(err, s.line)
				d.Err, d.ErrLine = errors.New(msg), line
			}
		}
	}
	return docs, len(sections), nil
}

// section is one document as written, before decoding.
type section struct {
	text              []byte
	line, contentLine int
	json              bool
}

func splitSections(data []byte) ([]section, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		secs, err := splitJSON(data)
		if err == nil || t[0] == '[' {
			return secs, err
		}
		if _, yerr := yaml.YAMLToJSON(data); yerr != nil {
			return nil, err
		}
		// Not JSON after all: a YAML flow mapping. Read it as YAML.
	}
	var out []section
	start, startLine, line := 0, 1, 1
	for off := 0; off < len(data); line++ {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		if isDocMarker(data[off:next]) && off > start {
			out = append(out, newSection(data[start:off], startLine))
			start, startLine = off, line
		}
		off = next
	}
	if start < len(data) {
		out = append(out, newSection(data[start:], startLine))
	}
	return out, nil
}

func isDocMarker(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	return bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || line[3] == ' ' || line[3] == '\t')
}

func newSection(text []byte, line int) section {
	s := section{text: text, line: line, contentLine: line}
	for i, l := range bytes.Split(text, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || t[0] == '#' || (i == 0 && isDocMarker(l) && isBlankOrComment(t[3:])) {
			continue
		}
		s.contentLine = line + i
		break
	}
	return s
}

func isBlankOrComment(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || b[0] == '#'
}

func splitJSON(data []byte) ([]section, error) {
	var out []section
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := int(dec.InputOffset())
		for start < len(data) && strings.IndexByte(" \t\r\n", data[start]) >= 0 {
			start++
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return out, nil
		}
		line := 1 + bytes.Count(data[:start], []byte("\n"))
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line = 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			}
			return nil, fmt.Errorf("line %d: not valid JSON: %w", line, err)
		}
		if raw[0] != '{' {
			return nil, fmt.Errorf(`line %d: a JSON %s is not a Kubernetes object (put several objects in {"apiVersion": "v1", "kind": "List", "items": [...]})`, line, jsonKind(raw[0]))
		}
		out = append(out, section{text: raw, line: line, contentLine: line, json: true})
	}
}

func jsonKind(b byte) string {
	switch b {
	case '[':
		return "array"
	case '"':
		return "string"
	}
	return "value"
}

func isNull(j []byte) bool {
	t := bytes.TrimSpace(j)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

var (
	yamlLineRE    = regexp.MustCompile(`\bline (\d+)\b`)
	yamlNewlineRE = regexp.MustCompile(`:?\s*\n\s*`)
	// yamlLeadingLineRE is the position a YAML syntax error starts with, redundant once the line is shown.
	yamlLeadingLineRE = regexp.MustCompile(`^(error converting YAML to JSON: )?yaml: line \d+: `)
)

// yamlError rewrites a YAML error inside one document for the source: its line numbers become lines of the
// source, and the first one is returned as the error's line.
func yamlError(err error, first int) (string, int) {
	msg := absoluteLines(err.Error(), first)
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	if m := yamlLeadingLineRE.FindStringSubmatch(msg); m != nil {
		msg = strings.TrimPrefix(msg, m[0])
	}
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	return msg, line
}

// absoluteLines turns the line numbers of a YAML error inside one document into lines of the source, on one
// line.
func absoluteLines(msg string, first int) string {
	msg = yamlNewlineRE.ReplaceAllString(strings.TrimSpace(msg), ": ")
	return yamlLineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+first-1)
	})
}

func parseNode(text []byte) *yaml3.Node {
	var n yaml3.Node
	if err := yaml3.Unmarshal(text, &n); err != nil || n.Kind != yaml3.DocumentNode || len(n.Content) != 1 {
		return nil
	}
	return &n
}

// trailingContent reports content after the end of the section's first YAML document, such as a document
// after a "..." end marker.
func trailingContent(text []byte) error {
	dec := yaml3.NewDecoder(bytes.NewReader(text))
	var n yaml3.Node
	if dec.Decode(&n) != nil {
		return nil
	}
	switch err := dec.Decode(&n); {
	case err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("content after the end of the document: %w", err)
	}
	return fmt.Errorf(`yaml: line %d: a second YAML document without a "---" line before it`, n.Line)
}
