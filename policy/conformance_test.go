package policy

// Conformance against peers' own fixtures (DESIGN.md): every workload document listed in
// ../shared/conformance/INDEX.tsv is replayed through the webhook's code path and compared with the row's
// verdict, the field paths of its denials and the classes of its hardening patch.
//
// INDEX.md's reference policy R is DESIGN.md's default policy with two substitutions, both made here too:
//   - images.allow holds the registries the file uses (INDEX.tsv "registries="), except for kyverno's
//     restrict-image-registries fixtures, which are judged against that test's own allowlist {eu.foo.io, bar.io};
//   - R judges images by registry only: it has no tag rule, so images.denyTags is emptied (with the default
//     denyTags: [latest], every fixture that writes "nginx" would be denied for its implicit :latest, which is
//     agentgate working as designed, not a disagreement with the peers).
// Rows whose verdict is "source-verdict only" or "n/a" are counted and skipped.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	gomodulespatch "gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/yaml"
)

// conformanceExceptions lists the rows where INDEX.tsv is demonstrably wrong, keyed "file#doc", with the
// reason. A listed row must still disagree with the index: when it stops disagreeing, the entry is stale and
// the test says so. Never list a row here to hide a project bug.
//
// Empty today: every disagreement found so far was the project's, and was fixed there —
//   - "allowPrivilegeEscalation: unset" reported beside privileged: true or an added CAP_SYS_ADMIN (58 rows):
//     noise, and advice the API server would refuse;
//   - no pod-level seccompProfile when every container sets its own (psa seccompprofile_restricted2): an
//     ephemeral container added later would then have none;
//   - a Windows pod under windows: deny reported for unset automount, runAsNonRoot and limits besides
//     spec.os.name (psa base_windows).
var conformanceExceptions = map[string]string{}

// indexRow is one line of INDEX.tsv.
type indexRow struct {
	line                                                int
	source, file                                        string
	doc                                                 int
	kindName, op, sourceCheck, ourChecks, sourceVerdict string
	ourVerdict, notes                                   string

	denyPaths  []string // from "deny: check@path; ..."
	denyChecks []string // the index's check names, parallel to denyPaths
	patches    []string // from "patch: a,b"
	registries []string // from "registries=a,b"
}

func (r *indexRow) key() string { return r.file + "#" + strconv.Itoa(r.doc) }

func readIndex(t *testing.T) []*indexRow {
	t.Helper()
	f, err := os.Open(filepath.Join(conformanceDir, "INDEX.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []*indexRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if n == 1 {
			if !strings.HasPrefix(sc.Text(), "source\tfile\tdoc\tkind/name\top\t") {
				t.Fatalf("INDEX.tsv header changed: %q", sc.Text())
			}
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 10 {
			t.Fatalf("INDEX.tsv:%d: %d columns, want 10", n, len(cols))
		}
		doc, err := strconv.Atoi(cols[2])
		if err != nil {
			t.Fatalf("INDEX.tsv:%d: doc %q: %v", n, cols[2], err)
		}
		r := &indexRow{line: n, source: cols[0], file: cols[1], doc: doc, kindName: cols[3], op: cols[4],
			sourceCheck: cols[5], ourChecks: cols[6], sourceVerdict: cols[7], ourVerdict: cols[8], notes: cols[9]}
		for _, part := range strings.Split(r.notes, "|") {
			part = strings.TrimSpace(part)
			switch {
			case strings.HasPrefix(part, "deny:"):
				for _, d := range strings.Split(strings.TrimPrefix(part, "deny:"), ";") {
					d = strings.TrimSpace(d)
					at := strings.LastIndex(d, "@")
					if at < 0 {
						t.Fatalf("INDEX.tsv:%d: denial %q has no @path", n, d)
					}
					r.denyChecks = append(r.denyChecks, d[:at])
					r.denyPaths = append(r.denyPaths, d[at+1:])
				}
			case strings.HasPrefix(part, "patch:"):
				for _, p := range strings.Split(strings.TrimPrefix(part, "patch:"), ",") {
					r.patches = append(r.patches, strings.TrimSpace(p))
				}
			case strings.HasPrefix(part, "registries="):
				r.registries = strings.Split(strings.TrimPrefix(part, "registries="), ",")
			}
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// yamlDocuments splits a multi-document YAML file the way INDEX.tsv counts documents: on "---" lines,
// leaving out documents with nothing but comments and blank lines.
func yamlDocuments(data []byte) []string {
	var docs []string
	var cur strings.Builder
	flush := func() {
		for _, l := range strings.Split(cur.String(), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, cur.String())
				break
			}
		}
		cur.Reset()
	}
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(l, "---") && strings.TrimSpace(strings.TrimPrefix(l, "---")) == "" {
			flush()
			continue
		}
		cur.WriteString(l)
	}
	flush()
	return docs
}

// patchClass maps a leaf path of a hardening patch (relative to the pod spec) to INDEX.md's patch classes.
var patchClasses = []struct {
	re    *regexp.Regexp
	class string
}{
	{regexp.MustCompile(`^/(initContainers|containers|ephemeralContainers)/\d+/securityContext/readOnlyRootFilesystem$`), "rorfs"},
	{regexp.MustCompile(`^/(initContainers|containers|ephemeralContainers)/\d+/securityContext/capabilities/drop(/\d+)?$`), "drop-ALL"},
	{regexp.MustCompile(`^/(initContainers|containers|ephemeralContainers)/\d+/securityContext/allowPrivilegeEscalation$`), "no-privesc"},
	{regexp.MustCompile(`^/securityContext/runAsNonRoot$`), "runAsNonRoot"},
	{regexp.MustCompile(`^/securityContext/seccompProfile/type$`), "seccomp"},
	{regexp.MustCompile(`^/automountServiceAccountToken$`), "automount"},
	{regexp.MustCompile(`^/(initContainers|containers)/\d+/resources/(limits|requests)/[^/]+$`), "limits"},
}

// leafPaths flattens one operation into the paths of the scalar values it writes.
func leafPaths(path string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			leafPaths(path+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k), vv, out)
		}
	case []any:
		for i, vv := range x {
			leafPaths(path+"/"+strconv.Itoa(i), vv, out)
		}
	default:
		*out = append(*out, path)
	}
}

// classifyPatch returns the sorted set of patch classes of ops, whose paths start with specPrefix; any
// operation that is not an "add" of a known class is returned in unknown.
func classifyPatch(ops []gomodulespatch.Operation, specPrefix string) (classes, unknown []string) {
	set := map[string]bool{}
	for _, op := range ops {
		if op.Operation != "add" && op.Operation != "replace" {
			unknown = append(unknown, op.Operation+" "+op.Path)
			continue
		}
		var leaves []string
		leafPaths(op.Path, op.Value, &leaves)
		for _, l := range leaves {
			rel, ok := strings.CutPrefix(l, specPrefix)
			found := false
			for _, pc := range patchClasses {
				if ok && pc.re.MatchString(rel) {
					set[pc.class] = true
					found = true
					break
				}
			}
			if !found {
				unknown = append(unknown, op.Operation+" "+l)
			}
		}
	}
	for c := range set {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	return classes, unknown
}

// conformancePolicy builds R for one row (see the file comment), cached by allowlist.
type conformancePolicies map[string]*Set

func (cp conformancePolicies) forRow(t *testing.T, r *indexRow) *Set {
	var allow []string
	if strings.Contains(r.file, "/restrict-image-registries/") {
		allow = []string{"eu.foo.io/**", "bar.io/**"}
	} else {
		for _, reg := range r.registries {
			allow = append(allow, reg+"/**")
		}
	}
	key := strings.Join(allow, ",")
	if s, ok := cp[key]; ok {
		return s
	}
	s := NewSet(policyFromDefault(t, func(ap *AgentPolicy) {
		ap.Spec.Images.Allow = allow
		ap.Spec.Images.DenyTags = nil
	}))
	cp[key] = s
	return s
}

// conformanceOutcome is what the project did with one row.
type conformanceOutcome struct {
	allowed  bool
	paths    []string // denial field paths, sorted, unique
	checks   []string // check@path, for messages
	patches  []string // patch classes, sorted
	unknown  []string // patch operations of no known class
	problems []string // property failures independent of the index (patch does not apply, oracle, decode)
}

func runConformanceRow(t *testing.T, cp conformancePolicies, oracle restrictedOracle, r *indexRow, doc string) conformanceOutcome {
	var out conformanceOutcome
	problem := func(format string, args ...any) { out.problems = append(out.problems, fmt.Sprintf(format, args...)) }

	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		problem("document is not YAML: %v", err)
		return out
	}
	wantKindName := r.kindName
	if strings.HasPrefix(r.kindName, "AdmissionReview/") {
		var ar struct {
			Request struct {
				Operation string          `json:"operation"`
				Object    json.RawMessage `json:"object"`
			} `json:"request"`
		}
		if err := json.Unmarshal(raw, &ar); err != nil || len(ar.Request.Object) == 0 {
			problem("AdmissionReview without request.object: %v", err)
			return out
		}
		if ar.Request.Operation != r.op {
			problem("AdmissionReview operation %q, index says %q", ar.Request.Operation, r.op)
		}
		raw = ar.Request.Object
		wantKindName = strings.TrimPrefix(r.kindName, "AdmissionReview/")
	}
	w, err := decodeRawWorkload(raw)
	if err != nil {
		problem("does not decode: %v", err)
		return out
	}
	if got := w.Kind + "/" + w.Meta.Name; got != wantKindName {
		problem("document %d is %s, index says %s (document numbering differs)", r.doc, got, wantKindName)
		return out
	}
	if apiServerDefaults(w) {
		raw = []byte(mustJSON(t, w.Object))
	}
	set := cp.forRow(t, r)
	ns := Namespace{Name: w.Meta.Namespace}
	if ns.Name == "" {
		ns.Name = "default"
	}

	var res Result
	judged := w
	switch {
	case w.IsPod() && r.op == "CREATE":
		// The mutating webhook, then the validating webhook on what mutation returned.
		m, changed := set.Mutate(w, ns, Requester{})
		res = set.Judge(m, ns, Requester{})
		judged = m
		if changed {
			ops, err := CreatePatch(raw, w.Object, m.Object)
			if err != nil {
				problem("CreatePatch: %v", err)
			}
			out.patches, out.unknown = classifyPatch(ops, "/spec")
			if patched, err := applyOps(raw, ops); err != nil {
				problem("patch does not apply: %v", err)
			} else if pw, err := decodeRawWorkload(patched); err != nil {
				problem("patched pod does not decode: %v", err)
			} else if mustJSON(t, pw.Object) != mustJSON(t, m.Object) {
				problem("patch applied to the raw pod differs from the mutated pod")
			}
		}
	case w.IsPod():
		// UPDATE: no mutation; the validating webhook judges the new object.
		res = set.Judge(w, ns, Requester{})
	default:
		// Controllers are never mutated; they are judged as their pods will be after hardening.
		res = set.Judge(w, ns, Requester{})
		h := w.DeepCopy()
		set.Harden(h, ns, Requester{})
		judged = h
		if res.Allowed() {
			ops, err := CreatePatch(raw, w.Object, h.Object)
			if err != nil {
				problem("CreatePatch: %v", err)
			}
			out.patches, out.unknown = classifyPatch(ops, "/"+strings.ReplaceAll(w.SpecPath.String(), ".", "/"))
		}
	}
	out.allowed = res.Allowed()
	seen := map[string]bool{}
	for _, v := range res.Violations {
		out.checks = append(out.checks, v.Check+"@"+v.Field)
		if !seen[v.Field] {
			seen[v.Field] = true
			out.paths = append(out.paths, v.Field)
		}
	}
	sort.Strings(out.paths)
	if out.allowed {
		if v := oracle.violations(judged.PodMeta, judged.Spec); len(v) > 0 {
			problem("admitted, but fails Pod Security restricted: %s", strings.Join(v, "; "))
		}
	}
	return out
}

// disagreement describes how an outcome differs from its row; "" when they agree.
func disagreement(r *indexRow, o conformanceOutcome) (category, detail string) {
	wantAllowed := r.ourVerdict == "admit+patch"
	if o.allowed != wantAllowed {
		if o.allowed {
			return "verdict: index denies, project admits", fmt.Sprintf("index denies at %q", r.denyPaths)
		}
		return "verdict: index admits, project denies", fmt.Sprintf("project denies %q", o.checks)
	}
	want := slices.Sorted(slices.Values(uniq(r.denyPaths)))
	if !slices.Equal(want, o.paths) {
		var missing, extra []string
		for _, p := range want {
			if !slices.Contains(o.paths, p) {
				missing = append(missing, p)
			}
		}
		for _, p := range o.paths {
			if !slices.Contains(want, p) {
				extra = append(extra, p)
			}
		}
		switch {
		case len(missing) > 0 && len(extra) > 0:
			category = "denial paths: some differ"
		case len(missing) > 0:
			category = "denial paths: project misses some"
		default:
			category = "denial paths: project reports more"
		}
		return category, fmt.Sprintf("missing %q, extra %q (project: %q)", missing, extra, o.checks)
	}
	if r.op == "CREATE" && (strings.HasPrefix(r.kindName, "Pod/") || wantAllowed) {
		wantPatches := slices.Sorted(slices.Values(r.patches))
		if !slices.Equal(wantPatches, o.patches) {
			return "patch classes", fmt.Sprintf("index %q, project %q", wantPatches, o.patches)
		}
	}
	if len(o.unknown) > 0 {
		return "patch: operations of no known class", fmt.Sprintf("%q", o.unknown)
	}
	return "", ""
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func TestConformanceIndex(t *testing.T) {
	requireConformance(t)
	rows := readIndex(t)
	oracle := newRestrictedOracle(t)
	cp := conformancePolicies{}
	files := map[string][]string{}

	var checked, passed, excepted, disagreeing int
	skipped := map[string]int{}
	byCategory := map[string][]string{}
	var problems []string
	usedExceptions := map[string]bool{}

	for _, r := range rows {
		switch {
		case strings.HasPrefix(r.ourVerdict, "n/a"), strings.HasPrefix(r.ourVerdict, "source-verdict only"):
			skipped[r.ourVerdict]++
			continue
		case r.ourVerdict != "deny" && r.ourVerdict != "admit+patch":
			t.Errorf("INDEX.tsv:%d: unknown verdict %q", r.line, r.ourVerdict)
			continue
		}
		docs, ok := files[r.file]
		if !ok {
			data, err := os.ReadFile(filepath.Join(conformanceDir, r.file))
			if err != nil {
				t.Errorf("INDEX.tsv:%d: %v", r.line, err)
				continue
			}
			docs = yamlDocuments(data)
			files[r.file] = docs
		}
		if r.doc >= len(docs) {
			t.Errorf("INDEX.tsv:%d: %s has %d documents, index names document %d", r.line, r.file, len(docs), r.doc)
			continue
		}
		checked++
		o := runConformanceRow(t, cp, oracle, r, docs[r.doc])
		where := fmt.Sprintf("%s#%d (%s, INDEX.tsv:%d)", r.file, r.doc, r.kindName, r.line)
		for _, p := range o.problems {
			problems = append(problems, where+": "+p)
		}
		cat, detail := disagreement(r, o)
		if reason, ok := conformanceExceptions[r.key()]; ok {
			usedExceptions[r.key()] = true
			if cat == "" {
				t.Errorf("%s: listed in conformanceExceptions (%s) but now agrees with the index: remove the entry", where, reason)
			}
			excepted++
			continue
		}
		if cat != "" {
			disagreeing++
			byCategory[cat] = append(byCategory[cat], where+": "+detail)
			continue
		}
		if len(o.problems) == 0 {
			passed++
		}
	}
	for k := range conformanceExceptions {
		if !usedExceptions[k] {
			t.Errorf("conformanceExceptions names %s, which is not a checked row of INDEX.tsv", k)
		}
	}

	cats := make([]string, 0, len(byCategory))
	for c := range byCategory {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	var summary bytes.Buffer
	fmt.Fprintf(&summary, "INDEX.tsv: %d rows; %d workload rows checked: %d agree, %d disagree, %d listed exceptions; %d property failures; skipped:",
		len(rows), checked, passed, disagreeing, excepted, len(problems))
	for _, k := range slices.Sorted(maps.Keys(skipped)) {
		fmt.Fprintf(&summary, " %d %q", skipped[k], k)
	}
	t.Log(summary.String())
	const show = 8
	for _, c := range cats {
		items := byCategory[c]
		msg := fmt.Sprintf("%d rows: %s", len(items), c)
		for i, it := range items {
			if i == show {
				msg += fmt.Sprintf("\n    ... %d more", len(items)-show)
				break
			}
			msg += "\n    " + it
		}
		t.Error(msg)
	}
	for i, p := range problems {
		if i == 20 {
			t.Errorf("... %d more property failures", len(problems)-20)
			break
		}
		t.Error(p)
	}
}
