package main

// agentgate check: judge manifests offline through exactly the webhook's decision path (policy.Set.Mutate,
// policy.Set.Judge, policy.CreatePatch). Everything here is input handling and output formatting; no policy
// logic lives in this file.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	yaml3 "go.yaml.in/yaml/v3"
	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/policy"
)

const checkUsage = `Usage: agentgate check [flags] PATH...

Judge Kubernetes manifests offline, through the same decision path as the admission webhook: Pods as the
mutating webhook would patch them and the validating webhook would then judge them, controllers (Deployment,
ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController) by their pod template as it will be
after hardening.

PATH is a file, a folder (searched recursively for *.yaml, *.yml and *.json; folders whose name starts with "."
are skipped) or - for standard input. A file holds YAML documents separated by ---, JSON objects, or kind: List
objects. Other kinds are reported as skipped, not judged. A document without apiVersion or kind is an error.

Flags:
  --policy FILE               policy to apply: an AgentPolicy document, or a ConfigMap holding one under the
                              key policy.yaml. Repeat for several; a workload must satisfy every policy that
                              selects it. Default: the policy embedded in agentgate (the one "make run" serves).
  -o, --output FORMAT         text (default), json (an array, one object per document) or sarif (SARIF 2.1.0).
  --fix                       print the manifests hardened, as YAML documents separated by ---, instead of the
                              report (which then goes to standard error). Pods come out as the mutating webhook
                              would patch them; controllers' pod templates are hardened the same way, although
                              the webhook itself never mutates controllers: committing the output is how to fix
                              them at the source. Workloads still denied get every field hardening can fill;
                              their remaining violations say what to change by hand. Other documents are
                              printed unchanged.
  --namespace-labels K=V,...  labels of the workloads' namespaces, for policies' namespaceSelector (plus
                              kubernetes.io/metadata.name, which the API server sets on every namespace);
                              "" means no labels. Without it the labels are unknown and every
                              namespaceSelector matches (the strict side). A workload's namespace is its
                              metadata.namespace, or "default".

Output (text): one line per violation, "FILE: Kind/name: field.path: message" (FILE#N for the Nth document of a
file holding several); warn-mode violations start with "warning:", audit-mode ones with "audit:", exemptions
with "exempt:"; then a summary line. Notes (skipped documents) and errors go to standard error.

Exit status: 0 every workload admitted; 1 at least one workload denied; 2 unusable input or policy (each error
names the file, line, document and field; the other files are still checked and reported).
`

// Exit codes of agentgate check (the public contract of DESIGN.md).
const (
	exitAdmitted = 0
	exitDenied   = 1
	exitUnusable = 2
)

// stdinName is how standard input is named in reports.
const stdinName = "<stdin>"

type checkOptions struct {
	policies []string
	output   string
	fix      bool
	// nsLabels is nil when the namespace's labels are unknown (no --namespace-labels).
	nsLabels map[string]string
	paths    []string
}

func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, code, ok := parseCheckArgs(args, stdout, stderr)
	if !ok {
		return code
	}
	set, ok := loadPolicies(opts.policies, stderr)
	if !ok {
		return exitUnusable
	}
	c := &checker{set: set, opts: opts}
	files := collectSources(opts.paths, stdin)
	for _, f := range files {
		c.checkFile(f)
	}
	return c.report(files, stdout, stderr)
}

// parseCheckArgs accepts flags before, between and after paths ("--" ends the flags).
func parseCheckArgs(args []string, stdout, stderr io.Writer) (*checkOptions, int, bool) {
	opts := &checkOptions{}
	fs := flag.NewFlagSet("agentgate check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("policy", "", func(s string) error {
		if s == "" || s == "-" {
			return errors.New("--policy needs a file name (standard input is for manifests)")
		}
		opts.policies = append(opts.policies, s)
		return nil
	})
	fs.StringVar(&opts.output, "o", "text", "")
	fs.StringVar(&opts.output, "output", "text", "")
	fs.BoolVar(&opts.fix, "fix", false, "")
	fs.Func("namespace-labels", "", func(s string) error {
		m, err := parseLabels(s)
		if err != nil {
			return err
		}
		if opts.nsLabels == nil {
			opts.nsLabels = map[string]string{}
		}
		maps.Copy(opts.nsLabels, m)
		return nil
	})
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, checkUsage)
				return nil, exitAdmitted, false
			}
			fmt.Fprintf(stderr, "agentgate check: %v\nRun \"agentgate check -h\" for usage.\n", err)
			return nil, exitUnusable, false
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			opts.paths = append(opts.paths, left...)
			break
		}
		opts.paths = append(opts.paths, left[0])
		rest = left[1:]
	}
	switch opts.output {
	case "text", "json", "sarif":
	default:
		fmt.Fprintf(stderr, "agentgate check: -o %q: the output format is text, json or sarif\n", opts.output)
		return nil, exitUnusable, false
	}
	if opts.fix && opts.output != "text" {
		fmt.Fprintf(stderr, "agentgate check: --fix prints manifests; it cannot be combined with -o %s\n", opts.output)
		return nil, exitUnusable, false
	}
	if len(opts.paths) == 0 {
		fmt.Fprintf(stderr, "agentgate check: no PATH given (a file, a folder, or - for standard input)\nRun \"agentgate check -h\" for usage.\n")
		return nil, exitUnusable, false
	}
	if n := slices.Index(opts.paths, "-"); n >= 0 && slices.Index(opts.paths[n+1:], "-") >= 0 {
		fmt.Fprintf(stderr, "agentgate check: - (standard input) given twice\n")
		return nil, exitUnusable, false
	}
	return opts, 0, true
}

// parseLabels reads "k=v,k2=v2" (an empty string: a namespace with no labels).
func parseLabels(s string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return nil, fmt.Errorf("--namespace-labels: %q is not key=value", kv)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("--namespace-labels: label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("--namespace-labels: label value %q: %s", v, strings.Join(errs, "; "))
		}
		m[k] = v
	}
	return m, nil
}

// loadPolicies parses every --policy file (the embedded default when there is none). Every field error of
// every file is printed before giving up.
func loadPolicies(files []string, stderr io.Writer) (*policy.Set, bool) {
	if len(files) == 0 {
		return policy.NewSet(policy.Default()), true
	}
	var (
		policies []*policy.Policy
		from     = map[string]string{}
		ok       = true
	)
	fail := func(format string, a ...any) {
		fmt.Fprintf(stderr, "agentgate check: "+format+"\n", a...)
		ok = false
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fail("policy %s: %v", name, err)
			continue
		}
		sections, err := splitDocuments(data)
		if err != nil {
			fail("policy %s: %v", name, err)
			continue
		}
		n := 0
		for _, s := range sections {
			doc := s.text
			if !s.json {
				j, err := yaml.YAMLToJSONStrict(s.text)
				if err != nil {
					msg, line := yamlError(err, s.line)
					if line == 0 {
						line = s.contentLine
					}
					fail("policy %s:%d: not valid YAML: %s", name, line, msg)
					n++
					continue
				}
				doc = j
			}
			if isNull(doc) {
				continue
			}
			n++
			loc := fmt.Sprintf("%s:%d", name, s.contentLine)
			if len(sections) > 1 {
				loc += fmt.Sprintf(": document %d", n)
			}
			body, prefix, err := policyDocument(doc)
			if err != nil {
				fail("policy %s: %v", loc, err)
				continue
			}
			p, errs := policy.Parse(body)
			for _, e := range errs {
				fail("policy %s: %s%s", loc, prefix, fieldErrorString(e))
			}
			if len(errs) > 0 {
				continue
			}
			if prev, dup := from[p.Name]; dup {
				fail("policy %s: metadata.name: policy %q is already given by %s; names must be unique", loc, p.Name, prev)
				continue
			}
			from[p.Name] = loc
			policies = append(policies, p)
		}
		if n == 0 {
			fail("policy %s: empty: no policy document in it", name)
		}
	}
	if !ok {
		return nil, false
	}
	return policy.NewSet(policies...), true
}

// policyDocument accepts an AgentPolicy document, or a ConfigMap holding one under policy.yaml (how policies
// are kept in a cluster). It returns the policy document and the prefix to give its field errors.
func policyDocument(doc []byte) ([]byte, string, error) {
	var h struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Data       map[string]string `json:"data"`
	}
	if err := json.Unmarshal(doc, &h); err != nil {
		return doc, "", nil // Parse reports it with the field
	}
	if h.APIVersion != "v1" || h.Kind != "ConfigMap" {
		return doc, "", nil
	}
	body, ok := h.Data["policy.yaml"]
	if !ok {
		return nil, "", errors.New(`data: a policy ConfigMap holds its policy under the key "policy.yaml"`)
	}
	return []byte(body), "data[policy.yaml]: ", nil
}

// fieldErrorString prints a field error without an empty path in front.
func fieldErrorString(e *field.Error) string {
	if e.Field == "" || e.Field == "<nil>" {
		if e.Detail != "" {
			return e.Detail
		}
		return e.ErrorBody()
	}
	return e.Error()
}

// source is one input file (or standard input) and its bytes, or why it cannot be read.
type source struct {
	name string
	data []byte
	err  error
	docs []*document
}

func collectSources(paths []string, stdin io.Reader) []*source {
	var out []*source
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			out = append(out, &source{name: stdinName, data: data, err: err})
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			out = append(out, &source{name: p, err: err})
			continue
		}
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			out = append(out, &source{name: p, data: data, err: err})
			continue
		}
		found := 0
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				out = append(out, &source{name: path, err: err})
				return nil
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
			default:
				return nil
			}
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				return nil // a symbolic link to a folder named like a manifest
			}
			found++
			data, err := os.ReadFile(path)
			out = append(out, &source{name: path, data: data, err: err})
			return nil
		})
		if err != nil {
			out = append(out, &source{name: p, err: err})
		} else if found == 0 {
			out = append(out, &source{name: p, err: errors.New("folder holds no *.yaml, *.yml or *.json file")})
		}
	}
	return out
}

// document is one YAML document or JSON object of a file.
type document struct {
	src *source
	// index counts the file's non-empty documents from 1.
	index int
	// line is where the document's section starts (its --- line, or 1); contentLine its first line of content.
	line, contentLine int
	text              []byte // as written
	isJSON            bool
	json              []byte      // the document converted to JSON, what the API server would receive
	node              *yaml3.Node // for line numbers and --fix; nil when yaml.v3 cannot read the document
	entries           []*entry
	// fixOps harden the whole document (paths from its root), for --fix.
	fixOps []jsonpatch.Operation
}

// entry is one object judged, skipped or in error: the document itself, or an item of a List.
type entry struct {
	doc *document
	// item is the JSON pointer of a List item inside its document ("" for the document itself).
	item       string
	apiVersion string
	kind       string
	name       string
	namespace  string
	err        error
	errLine    int
	skipped    string // why it was not judged
	result     *policy.Result
	patches    []jsonpatch.Operation
}

func (c *checker) checkFile(src *source) {
	if src.err != nil {
		return
	}
	sections, err := splitDocuments(src.data)
	if err != nil {
		src.err = err
		return
	}
	n := 0
	for _, s := range sections {
		d := &document{src: src, line: s.line, contentLine: s.contentLine, text: s.text, isJSON: s.json}
		if s.json {
			d.json = s.text
		} else {
			j, err := yaml.YAMLToJSONStrict(s.text)
			if err != nil {
				n++
				d.index = n
				msg, line := yamlError(err, s.line)
				d.addError("", fmt.Errorf("not valid YAML: %s", msg), line)
				src.docs = append(src.docs, d)
				continue
			}
			d.json = j
		}
		if isNull(d.json) {
			continue
		}
		n++
		d.index = n
		d.node = parseNode(s.text)
		src.docs = append(src.docs, d)
		if !s.json && d.node != nil {
			// sigs.k8s.io/yaml reads the first document of its input and ignores the rest: nothing may hide there.
			if err := trailingContent(s.text); err != nil {
				msg, line := yamlError(err, s.line)
				d.addError("", errors.New(msg), line)
				continue
			}
		}
		c.judgeObject(d, "", d.json)
	}
	if n == 0 {
		src.err = errors.New("empty: no Kubernetes object in it (only blank lines or comments)")
	}
}

func (d *document) addError(item string, err error, line int) *entry {
	e := &entry{doc: d, item: item, err: err, errLine: line}
	d.entries = append(d.entries, e)
	return e
}

type checker struct {
	set  *policy.Set
	opts *checkOptions
}

// objectHeader is what is read of every object before its kind is known.
type objectHeader struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// judgeObject judges one object (at JSON pointer item inside the document), recursing into List items.
func (c *checker) judgeObject(d *document, item string, obj []byte) {
	var e *entry
	defer func() {
		// Never a crash, never a silent pass: a bug met on some input makes that object an error.
		if r := recover(); r != nil {
			err := fmt.Errorf("internal error while judging this object (please report it): %v", r)
			if e == nil {
				d.addError(item, err, 0)
				return
			}
			e.err, e.result = err, nil
			if !slices.Contains(d.entries, e) {
				d.entries = append(d.entries, e)
			}
		}
	}()
	trimmed := bytes.TrimSpace(obj)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		d.addError(item, errors.New("not a Kubernetes object: a mapping with apiVersion, kind and metadata is expected"), 0)
		return
	}
	var h objectHeader
	if err := json.Unmarshal(obj, &h); err != nil {
		d.addError(item, fmt.Errorf("cannot read apiVersion, kind and metadata: %w", err), 0)
		return
	}
	name := h.Metadata.Name
	if name == "" && h.Metadata.GenerateName != "" {
		name = h.Metadata.GenerateName + "*"
	}
	e = &entry{doc: d, item: item, apiVersion: h.APIVersion, kind: h.Kind, name: name, namespace: h.Metadata.Namespace}
	switch {
	case h.Kind == "":
		e.err = errors.New("kind: Required value: every Kubernetes object names its kind")
		d.entries = append(d.entries, e)
		return
	case h.APIVersion == "":
		e.err = errors.New("apiVersion: Required value: every Kubernetes object names its apiVersion")
		d.entries = append(d.entries, e)
		return
	}
	gv, err := schema.ParseGroupVersion(h.APIVersion)
	if err != nil {
		e.err = fmt.Errorf("apiVersion: Invalid value: %q: %w", h.APIVersion, err)
		d.entries = append(d.entries, e)
		return
	}
	if strings.HasSuffix(h.Kind, "List") && h.Items != nil {
		for i, it := range h.Items {
			c.judgeObject(d, item+"/items/"+strconv.Itoa(i), it)
		}
		return
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: h.Kind}
	d.entries = append(d.entries, e)
	if !policy.Supported(gk) {
		e.skipped = (&policy.UnsupportedKindError{GroupKind: gk}).Error()
		return
	}
	w, err := policy.DecodeWorkload(gk, obj)
	if err != nil {
		e.err = err
		if m := unknownFieldRE.FindStringSubmatch(err.Error()); m != nil {
			e.errLine = d.lineOf(item, m[1])
		}
		return
	}
	ns := policy.Namespace{Name: w.Meta.Namespace, Labels: c.opts.nsLabels}
	if ns.Name == "" {
		ns.Name = "default"
	}
	if ns.Labels != nil {
		// A real namespace always carries this label (the API server sets it), so selectors may rely on it.
		ns.Labels = maps.Clone(ns.Labels)
		if _, ok := ns.Labels["kubernetes.io/metadata.name"]; !ok {
			ns.Labels["kubernetes.io/metadata.name"] = ns.Name
		}
	}
	e.namespace = ns.Name
	// Exactly the webhook's path: the mutating webhook patches Pods only, and the validating webhook then
	// judges what the API server stored (the patched Pod, or a controller as sent).
	var res policy.Result
	if w.IsPod() {
		hardened, mutated := c.set.Mutate(w, ns)
		res = c.set.Judge(hardened, ns)
		if mutated {
			ops, err := policy.CreatePatch(obj, w.Object, hardened.Object)
			if err != nil {
				e.err = fmt.Errorf("computing the webhook's patch: %w", err)
				return
			}
			e.patches = sortPatches(ops)
		}
	} else {
		res = c.set.Judge(w, ns)
	}
	e.result = &res
	if c.opts.fix {
		fixed := w.DeepCopy()
		if c.set.Harden(fixed, ns) {
			ops, err := policy.CreatePatch(obj, w.Object, fixed.Object)
			if err != nil {
				e.err = fmt.Errorf("hardening for --fix: %w", err)
				return
			}
			for _, op := range sortPatches(ops) {
				op.Path = item + op.Path
				d.fixOps = append(d.fixOps, op)
			}
		}
	}
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)

// section is one document as written, before decoding.
type section struct {
	text              []byte
	line, contentLine int
	json              bool
}

// splitDocuments cuts a file into documents: a stream of JSON objects when it starts with "{", otherwise
// YAML documents separated by lines starting with "---" (YAML's document marker, which cannot appear at the
// start of a line inside a document, so no parser is needed to find it).
func splitDocuments(data []byte) ([]section, error) {
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

// yamlError rewrites a YAML error inside one document for the file: its line numbers become lines of the
// file, and the first one is returned as the error's line.
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

// absoluteLines turns the line numbers of a YAML error inside one document into lines of the file, on one
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

// lineOf finds the file line of a field path (as policy prints it) in the object at item: the line of the
// field itself, or of its closest ancestor written in the manifest (the place to add an unset field).
func (d *document) lineOf(item, fieldPath string) int {
	if d.node == nil {
		return d.contentLine
	}
	n := d.node.Content[0]
	line := n.Line
	for _, tok := range append(pointerTokens(item), fieldTokens(fieldPath)...) {
		k, v := nodeChild(n, tok)
		if v == nil {
			break
		}
		if k != nil {
			line = k.Line
		} else {
			line = v.Line
		}
		n = v
	}
	return d.line + line - 1
}

// nodeChild returns the key and value under tok of a mapping, or the element at index tok of a sequence.
func nodeChild(n *yaml3.Node, tok string) (key, val *yaml3.Node) {
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == tok {
				return n.Content[i], n.Content[i+1]
			}
		}
	case yaml3.SequenceNode:
		if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
			return nil, n.Content[i]
		}
	}
	return nil, nil
}

// fieldTokens splits "spec.containers[0].securityContext" or "metadata.annotations[a.b/c]".
func fieldTokens(p string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '.':
			flush()
		case '[':
			flush()
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				toks = append(toks, p[i+1:])
				return toks
			}
			toks = append(toks, p[i+1:i+j])
			i += j
		default:
			cur.WriteByte(p[i])
		}
	}
	flush()
	return toks
}

// pointerTokens splits an RFC 6901 JSON pointer.
func pointerTokens(ptr string) []string {
	if ptr == "" {
		return nil
	}
	toks := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks
}

// sortPatches orders operations by path, so that output is the same on every run (the diff library walks
// maps in random order). Operations on elements of one array keep their relative order, which matters.
func sortPatches(ops []jsonpatch.Operation) []jsonpatch.Operation {
	key := func(p string) []string {
		toks := pointerTokens(p)
		if n := len(toks); n > 0 && isArrayIndex(toks[n-1]) {
			toks = toks[:n-1]
		}
		return toks
	}
	slices.SortStableFunc(ops, func(a, b jsonpatch.Operation) int {
		ka, kb := key(a.Path), key(b.Path)
		for i := 0; i < len(ka) && i < len(kb); i++ {
			if ka[i] == kb[i] {
				continue
			}
			na, ea := strconv.Atoi(ka[i])
			nb, eb := strconv.Atoi(kb[i])
			if ea == nil && eb == nil {
				return na - nb
			}
			return strings.Compare(ka[i], kb[i])
		}
		return len(ka) - len(kb)
	})
	return ops
}

func isArrayIndex(tok string) bool {
	if tok == "-" {
		return true
	}
	_, err := strconv.Atoi(tok)
	return err == nil
}

// Reporting.

func (e *entry) label(multi bool) string {
	s := e.doc.src.name
	if multi {
		s += "#" + strconv.Itoa(e.doc.index)
	}
	if e.item != "" {
		s += fieldPathOfPointer(e.item)
	}
	return s
}

// fieldPathOfPointer renders "/items/2" as ".items[2]".
func fieldPathOfPointer(ptr string) string {
	var b strings.Builder
	for _, t := range pointerTokens(ptr) {
		if isArrayIndex(t) {
			b.WriteString("[" + t + "]")
		} else {
			b.WriteString("." + t)
		}
	}
	return b.String()
}

func (e *entry) object() string {
	name := e.name
	if name == "" {
		name = "(unnamed)"
	}
	return e.kind + "/" + name
}

func (e *entry) line() int {
	if e.errLine > 0 {
		return e.errLine
	}
	if e.item != "" {
		return e.doc.lineOf(e.item, "")
	}
	return e.doc.contentLine
}

// errorString names the file, line, document and what is wrong.
func (e *entry) errorString() string {
	s := fmt.Sprintf("%s:%d: document %d", e.doc.src.name, e.line(), e.doc.index)
	if e.item != "" {
		s += " " + strings.TrimPrefix(fieldPathOfPointer(e.item), ".")
	}
	if e.kind != "" {
		s += " (" + e.object() + ")"
	}
	return s + ": " + e.err.Error()
}

type tally struct {
	workloads, admitted, denied, mutated, violations, warnings, audits, skipped, errors int
}

func (c *checker) tally(files []*source) tally {
	var t tally
	for _, f := range files {
		if f.err != nil {
			t.errors++
		}
		for _, d := range f.docs {
			for _, e := range d.entries {
				switch {
				case e.err != nil:
					t.errors++
				case e.skipped != "":
					t.skipped++
				case e.result != nil:
					t.workloads++
					if e.result.Allowed() {
						t.admitted++
					} else {
						t.denied++
					}
					if len(e.patches) > 0 {
						t.mutated++
					}
					t.violations += len(e.result.ByMode(policy.ModeEnforce))
					t.warnings += len(e.result.ByMode(policy.ModeWarn))
					t.audits += len(e.result.ByMode(policy.ModeAudit))
				}
			}
		}
	}
	return t
}

func (t tally) exitCode() int {
	switch {
	case t.errors > 0:
		return exitUnusable
	case t.denied > 0:
		return exitDenied
	}
	return exitAdmitted
}

func (c *checker) report(files []*source, stdout, stderr io.Writer) int {
	t := c.tally(files)
	switch {
	case c.opts.fix:
		c.writeFixed(files, stdout, stderr)
		c.writeText(files, t, stderr, stderr)
	case c.opts.output == "json":
		c.writeJSON(files, stdout, stderr)
	case c.opts.output == "sarif":
		c.writeSARIF(files, t, stdout, stderr)
	default:
		c.writeText(files, t, stdout, stderr)
	}
	return t.exitCode()
}

// selectorNote says once that namespaceSelectors match everything offline, when a policy has one.
func (c *checker) selectorNote() string {
	if c.opts.nsLabels != nil {
		return ""
	}
	var names []string
	for _, p := range c.set.Policies {
		if sel := p.Spec.Match.NamespaceSelector; sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0) {
			names = append(names, strconv.Quote(p.Name))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("note: namespace labels are unknown offline, so the namespaceSelector of policy %s matches every namespace (the strict side); give --namespace-labels to use a namespace's labels",
		strings.Join(names, ", "))
}

func (c *checker) writeText(files []*source, t tally, out, notes io.Writer) {
	if n := c.selectorNote(); n != "" && t.workloads > 0 {
		fmt.Fprintln(notes, n)
	}
	severalPolicies := len(c.set.Policies) > 1
	for _, f := range files {
		if f.err != nil {
			fmt.Fprintf(notes, "error: %s: %v\n", f.name, f.err)
			continue
		}
		multi := len(f.docs) > 1
		for _, d := range f.docs {
			for _, e := range d.entries {
				switch {
				case e.err != nil:
					fmt.Fprintf(notes, "error: %s\n", e.errorString())
				case e.skipped != "":
					fmt.Fprintf(notes, "note: %s: skipped %s (%s): not a kind agentgate judges\n", e.label(multi), e.object(), e.apiVersion)
				default:
					where := e.label(multi) + ": " + e.object()
					if len(e.result.Matched) == 0 && len(e.result.Exemptions) == 0 {
						fmt.Fprintf(notes, "note: %s: no policy selects it\n", where)
					}
					for _, v := range e.result.Violations {
						prefix := ""
						switch v.Mode {
						case policy.ModeWarn:
							prefix = "warning: "
						case policy.ModeAudit:
							prefix = "audit: "
						}
						suffix := ""
						if severalPolicies {
							suffix = " (policy " + v.Policy + ")"
						}
						fmt.Fprintf(out, "%s%s: %s: %s%s\n", prefix, where, v.Field, v.Message, suffix)
					}
					for _, x := range e.result.Exemptions {
						fmt.Fprintf(out, "exempt: %s: %s: %s (policy %s)\n", where, orDash(x.Field), x.Detail, x.Policy)
					}
				}
			}
		}
	}
	fmt.Fprintln(out, t.summary())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func (t tally) summary() string {
	s := fmt.Sprintf("%s checked: %d admitted", plural(t.workloads, "workload", "workloads"), t.admitted)
	if t.mutated > 0 {
		s += fmt.Sprintf(" (%d after mutation)", t.mutated)
	}
	s += fmt.Sprintf(", %d denied", t.denied)
	if t.violations > 0 {
		s += "; " + plural(t.violations, "violation", "violations")
	}
	if t.warnings > 0 {
		s += "; " + plural(t.warnings, "warning", "warnings")
	}
	if t.audits > 0 {
		s += "; " + plural(t.audits, "audit finding", "audit findings")
	}
	if t.skipped > 0 {
		s += fmt.Sprintf("; %d skipped", t.skipped)
	}
	if t.errors > 0 {
		s += "; " + plural(t.errors, "error", "errors")
	}
	return s
}

// JSON output: an array with one object per document (per item of a List).

type jsonLocation struct {
	File     string `json:"file"`
	Document int    `json:"document,omitempty"`
	Item     string `json:"item,omitempty"`
	Line     int    `json:"line,omitempty"`
}

type jsonViolation struct {
	policy.Violation
	Line int `json:"line,omitempty"`
}

type jsonWorkload struct {
	jsonLocation
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Namespace  string                `json:"namespace"`
	Name       string                `json:"name"`
	Allowed    bool                  `json:"allowed"`
	Policies   []string              `json:"policies"`
	Violations []jsonViolation       `json:"violations"`
	Warnings   []jsonViolation       `json:"warnings"`
	Audit      []jsonViolation       `json:"audit"`
	Exemptions []policy.Exemption    `json:"exemptions"`
	Patches    []jsonpatch.Operation `json:"patches"`
}

type jsonSkipped struct {
	jsonLocation
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Skipped    bool   `json:"skipped"`
	Reason     string `json:"reason"`
}

type jsonError struct {
	jsonLocation
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name,omitempty"`
	Error      string `json:"error"`
}

func (c *checker) writeJSON(files []*source, stdout, stderr io.Writer) {
	out := []any{}
	for _, f := range files {
		if f.err != nil {
			fmt.Fprintf(stderr, "error: %s: %v\n", f.name, f.err)
			out = append(out, jsonError{jsonLocation: jsonLocation{File: f.name}, Error: f.err.Error()})
			continue
		}
		for _, d := range f.docs {
			for _, e := range d.entries {
				loc := jsonLocation{File: f.name, Document: d.index, Item: strings.TrimPrefix(fieldPathOfPointer(e.item), "."), Line: e.line()}
				switch {
				case e.err != nil:
					fmt.Fprintf(stderr, "error: %s\n", e.errorString())
					out = append(out, jsonError{jsonLocation: loc, APIVersion: e.apiVersion, Kind: e.kind, Name: e.name, Error: e.err.Error()})
				case e.skipped != "":
					out = append(out, jsonSkipped{jsonLocation: loc, APIVersion: e.apiVersion, Kind: e.kind, Namespace: e.namespace, Name: e.name, Skipped: true, Reason: e.skipped})
				default:
					r := e.result
					w := jsonWorkload{
						jsonLocation: loc, APIVersion: e.apiVersion, Kind: e.kind, Namespace: e.namespace, Name: e.name,
						Allowed:    r.Allowed(),
						Policies:   nonNil(r.Matched),
						Violations: e.violations(policy.ModeEnforce),
						Warnings:   e.violations(policy.ModeWarn),
						Audit:      e.violations(policy.ModeAudit),
						Exemptions: nonNil(r.Exemptions),
						Patches:    nonNil(e.patches),
					}
					out = append(out, w)
				}
			}
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "agentgate check: writing JSON: %v\n", err)
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (e *entry) violations(m policy.Mode) []jsonViolation {
	out := []jsonViolation{}
	for _, v := range e.result.ByMode(m) {
		out = append(out, jsonViolation{Violation: v, Line: e.doc.lineOf(e.item, v.Field)})
	}
	return out
}

// SARIF 2.1.0 output: one run; a result per violation; input errors and skipped documents as notifications.

const sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name    string      `json:"name"`
	Version string      `json:"version,omitempty"`
	Rules   []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string       `json:"id"`
	ShortDescription sarifMessage `json:"shortDescription"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifMessage    `json:"message"`
	Locations  []sarifLocation `json:"locations"`
	Properties map[string]any  `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysicalLocation `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations,omitempty"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogicalLocation struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

func sarifURI(name string) string {
	p := filepath.ToSlash(name)
	if filepath.IsAbs(name) {
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Path: p}).String()
}

func physical(name string, line int) *sarifPhysicalLocation {
	loc := &sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: sarifURI(name)}}
	if line > 0 {
		loc.Region = &sarifRegion{StartLine: line}
	}
	return loc
}

func (c *checker) writeSARIF(files []*source, t tally, stdout, stderr io.Writer) {
	ids := policy.CheckIDs()
	index := map[string]int{}
	rules := make([]sarifRule, 0, len(ids))
	addRule := func(id string) int {
		if i, ok := index[id]; ok {
			return i
		}
		index[id] = len(rules)
		rules = append(rules, sarifRule{ID: id, ShortDescription: sarifMessage{Text: "agentgate check " + id}})
		return index[id]
	}
	for _, id := range ids {
		addRule(id)
	}
	results := []sarifResult{}
	var notes []sarifNotification
	for _, f := range files {
		if f.err != nil {
			fmt.Fprintf(stderr, "error: %s: %v\n", f.name, f.err)
			notes = append(notes, sarifNotification{Level: "error", Message: sarifMessage{Text: f.err.Error()},
				Locations: []sarifLocation{{PhysicalLocation: physical(f.name, 0)}}})
			continue
		}
		for _, d := range f.docs {
			for _, e := range d.entries {
				switch {
				case e.err != nil:
					fmt.Fprintf(stderr, "error: %s\n", e.errorString())
					notes = append(notes, sarifNotification{Level: "error", Message: sarifMessage{Text: e.errorString()},
						Locations: []sarifLocation{{PhysicalLocation: physical(f.name, e.line())}}})
				case e.skipped != "":
					notes = append(notes, sarifNotification{Level: "note",
						Message:   sarifMessage{Text: fmt.Sprintf("skipped %s (%s): %s", e.object(), e.apiVersion, e.skipped)},
						Locations: []sarifLocation{{PhysicalLocation: physical(f.name, e.line())}}})
				default:
					for _, v := range e.result.Violations {
						level := "error"
						switch v.Mode {
						case policy.ModeWarn:
							level = "warning"
						case policy.ModeAudit:
							level = "note"
						}
						results = append(results, sarifResult{
							RuleID: v.Check, RuleIndex: addRule(v.Check), Level: level,
							Message: sarifMessage{Text: fmt.Sprintf("%s: %s: %s", e.object(), v.Field, v.Message)},
							Locations: []sarifLocation{{
								PhysicalLocation: physical(f.name, d.lineOf(e.item, v.Field)),
								LogicalLocations: []sarifLogicalLocation{{FullyQualifiedName: e.object() + "/" + v.Field}},
							}},
							Properties: map[string]any{
								"policy": v.Policy, "mode": v.Mode, "namespace": e.namespace,
								"found": v.Found, "allowed": v.Allowed,
							},
						})
					}
				}
			}
		}
	}
	log := sarifLog{
		Schema: sarifSchema, Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:        sarifTool{Driver: sarifDriver{Name: "agentgate", Version: version, Rules: rules}},
			Invocations: []sarifInvocation{{ExecutionSuccessful: t.errors == 0, ToolExecutionNotifications: notes}},
			Results:     results,
		}},
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(log); err != nil {
		fmt.Fprintf(stderr, "agentgate check: writing SARIF: %v\n", err)
	}
}

// --fix: every document, in order; hardened ones rewritten, the others as written.

func (c *checker) writeFixed(files []*source, stdout, stderr io.Writer) {
	first := true
	sources := 0
	for _, f := range files {
		if f.err == nil {
			sources++
		}
	}
	for _, f := range files {
		if f.err != nil {
			continue
		}
		for _, d := range f.docs {
			if slices.ContainsFunc(d.entries, func(e *entry) bool { return e.err != nil }) {
				continue // reported as an error; nothing trustworthy to print
			}
			text, err := d.fixedText()
			if err != nil {
				fmt.Fprintf(stderr, "error: %s:%d: document %d: --fix: %v\n", f.name, d.contentLine, d.index, err)
				continue
			}
			var b bytes.Buffer
			if !first {
				b.WriteString("---\n")
			}
			first = false
			if sources > 1 {
				b.WriteString("# Source: " + f.name + "\n")
			}
			b.Write(text)
			if !bytes.HasSuffix(text, []byte("\n")) {
				b.WriteString("\n")
			}
			stdout.Write(b.Bytes())
		}
	}
}

// fixedText renders the document with its fix operations applied. YAML documents are edited in place (order
// and comments kept); the result is checked against an independent application of the same operations to the
// document's JSON, and replaced by a plain rendering of that JSON if they differ.
func (d *document) fixedText() ([]byte, error) {
	if len(d.fixOps) == 0 && !d.isJSON {
		return stripMarker(d.text), nil
	}
	opsJSON, err := json.Marshal(d.fixOps)
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatchapply.DecodePatch(opsJSON)
	if err != nil {
		return nil, err
	}
	want, err := patch.Apply(d.json)
	if err != nil {
		return nil, fmt.Errorf("applying the hardening patch: %w", err)
	}
	if d.node != nil {
		// JSON is YAML in flow style; it is printed in block style, its keys kept in order.
		if text, err := editYAML(d.text, d.fixOps, d.isJSON); err == nil {
			if got, err := yaml.YAMLToJSONStrict(text); err == nil && sameJSON(got, want) {
				return text, nil
			}
		}
	}
	return yaml.JSONToYAML(want)
}

// stripMarker drops a leading "---" line (the writer puts its own between documents).
func stripMarker(text []byte) []byte {
	first, rest, ok := bytes.Cut(text, []byte("\n"))
	if isDocMarker(first) && isBlankOrComment(bytes.TrimSpace(first)[3:]) {
		if !ok {
			return nil
		}
		return rest
	}
	return text
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// editYAML applies add, replace and remove operations to the YAML document's node tree; block turns flow
// style (JSON) into block style.
func editYAML(text []byte, ops []jsonpatch.Operation, block bool) ([]byte, error) {
	doc := parseNode(text)
	if doc == nil {
		return nil, errors.New("cannot parse the document")
	}
	if block {
		blockStyle(doc)
	}
	root := doc.Content[0]
	for _, op := range ops {
		toks := pointerTokens(op.Path)
		if len(toks) == 0 {
			return nil, fmt.Errorf("operation on the whole document")
		}
		parent := root
		for _, t := range toks[:len(toks)-1] {
			if parent.Kind == yaml3.AliasNode || hasMergeKey(parent) {
				return nil, errors.New("anchors and aliases are not edited in place")
			}
			_, v := nodeChild(parent, t)
			if v == nil {
				return nil, fmt.Errorf("%s: no such field", op.Path)
			}
			parent = v
		}
		if parent.Kind == yaml3.AliasNode || hasMergeKey(parent) {
			return nil, errors.New("anchors and aliases are not edited in place")
		}
		last := toks[len(toks)-1]
		var val *yaml3.Node
		if op.Operation == "add" || op.Operation == "replace" {
			val = &yaml3.Node{}
			if err := val.Encode(integral(op.Value)); err != nil {
				return nil, err
			}
		}
		switch parent.Kind {
		case yaml3.MappingNode:
			i := 0
			for ; i+1 < len(parent.Content) && parent.Content[i].Value != last; i += 2 {
			}
			found := i+1 < len(parent.Content)
			switch {
			case op.Operation == "remove" && found:
				parent.Content = slices.Delete(parent.Content, i, i+2)
			case (op.Operation == "add" || op.Operation == "replace") && found:
				parent.Content[i+1] = val
			case op.Operation == "add":
				if len(parent.Content) == 0 {
					parent.Style &^= yaml3.FlowStyle
				}
				parent.Content = append(parent.Content, &yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!str", Value: last}, val)
			default:
				return nil, fmt.Errorf("%s %s: no such field", op.Operation, op.Path)
			}
		case yaml3.SequenceNode:
			idx := len(parent.Content)
			if last != "-" {
				n, err := strconv.Atoi(last)
				if err != nil || n < 0 || n > len(parent.Content) {
					return nil, fmt.Errorf("%s: bad index", op.Path)
				}
				idx = n
			}
			switch op.Operation {
			case "add":
				if len(parent.Content) == 0 {
					parent.Style &^= yaml3.FlowStyle
				}
				parent.Content = slices.Insert(parent.Content, idx, val)
			case "replace", "remove":
				if idx >= len(parent.Content) {
					return nil, fmt.Errorf("%s: bad index", op.Path)
				}
				if op.Operation == "replace" {
					parent.Content[idx] = val
				} else {
					parent.Content = slices.Delete(parent.Content, idx, idx+1)
				}
			default:
				return nil, fmt.Errorf("unsupported operation %q", op.Operation)
			}
		default:
			return nil, fmt.Errorf("%s: parent is not a mapping or a sequence", op.Path)
		}
	}
	var b bytes.Buffer
	enc := yaml3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func blockStyle(n *yaml3.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func hasMergeKey(n *yaml3.Node) bool {
	if n.Kind != yaml3.MappingNode {
		return false
	}
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Tag == "!!merge" || n.Content[i].Value == "<<" {
			return true
		}
	}
	return false
}

// integral turns whole float64 numbers (how JSON decodes every number) back into integers, so that YAML
// prints 1000000000, not 1e+09.
func integral(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = integral(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = integral(e)
		}
		return out
	}
	return v
}
