// Package report is what agentgate check reports: each object of each manifest judged through the webhooks'
// decision path (Run.Judge, which asks policy.Set.Review), tallied into an exit status, and written as
// text, JSON or SARIF 2.1.0, or as the manifests hardened (--fix). The JSON field names and the SARIF shape
// are a public contract (DESIGN.md, "Interfaces that outside tools rely on").
package report

import (
	"fmt"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"

	"agentgate.io/agentgate/internal/manifest"
	"agentgate.io/agentgate/policy"
)

// Exit statuses of agentgate check (the public contract of DESIGN.md).
const (
	ExitAdmitted = 0 // every workload admitted
	ExitDenied   = 1 // at least one workload denied
	ExitUnusable = 2 // unusable input or policy
)

// Run is one agentgate check run: its settings, then every source judged, in order. Set the fields, call
// Judge for each source, then one of the writers.
type Run struct {
	Set *policy.Set
	// NamespaceLabels are the labels of every workload's namespace; nil when they are unknown, so that every
	// namespaceSelector matches (the strict side).
	NamespaceLabels map[string]string
	// Namespaces, when set, are the live labels of each namespace by name (agentgate audit): they win over
	// NamespaceLabels for the namespaces they hold.
	Namespaces map[string]map[string]string
	// TokenSecrets, when set, are the names of each namespace's service-account token Secrets (agentgate audit):
	// a workload of a namespace it holds is judged by serviceAccountTokenSecrets; elsewhere references to
	// Secrets are not judged (their types are unknown offline).
	TokenSecrets map[string][]string
	// Requester is who would send the workloads to the API server; the zero value (unknown) applies no
	// requester-anchored exemption, the strict side.
	Requester policy.Requester
	// Fix also computes, for WriteFixed, the hardening of every workload (controllers' templates included).
	Fix bool
	// Version is the agentgate version that SARIF names as its tool's.
	Version string
	// PodTemplateKinds are the kinds judged by a pod template at a path (agent-sandbox's, and those of
	// --pod-template-kind); nil: agent-sandbox's only.
	PodTemplateKinds *policy.PodTemplateKinds

	files []*file
}

// file is one source and its documents, or why it cannot be read.
type file struct {
	name string
	err  error
	docs []*document
}

// document is one document of a source and what was found in it.
type document struct {
	*manifest.Document
	file    *file
	entries []*entry
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

func (d *document) addError(item string, err error, line int) *entry {
	e := &entry{doc: d, item: item, err: err, errLine: line}
	d.entries = append(d.entries, e)
	return e
}

// label is "FILE", "FILE#N" for the Nth document of a file holding several, then the List item if any.
func (e *entry) label(multi bool) string {
	s := e.doc.file.name
	if multi {
		s += "#" + strconv.Itoa(e.doc.Index)
	}
	if e.item != "" {
		s += manifest.FieldPath(e.item)
	}
	return s
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
		return e.doc.LineOf(e.item, "")
	}
	return e.doc.ContentLine
}

// errorString names the file, line, document and what is wrong.
func (e *entry) errorString() string {
	s := fmt.Sprintf("%s:%d: document %d", e.doc.file.name, e.line(), e.doc.Index)
	if e.item != "" {
		s += " " + strings.TrimPrefix(manifest.FieldPath(e.item), ".")
	}
	if e.kind != "" {
		s += " (" + e.object() + ")"
	}
	return s + ": " + e.err.Error()
}

// Tally counts what a run found.
type Tally struct {
	Workloads, Admitted, Denied, Mutated, Violations, Warnings, Audits, Skipped, Errors int
}

// Tally counts the run's workloads, verdicts, violations by mode, skipped objects and errors (an unreadable
// source counts as one).
func (r *Run) Tally() Tally {
	var t Tally
	for _, f := range r.files {
		if f.err != nil {
			t.Errors++
		}
		for _, d := range f.docs {
			for _, e := range d.entries {
				switch {
				case e.err != nil:
					t.Errors++
				case e.skipped != "":
					t.Skipped++
				case e.result != nil:
					t.Workloads++
					if e.result.Allowed() {
						t.Admitted++
					} else {
						t.Denied++
					}
					if len(e.patches) > 0 {
						t.Mutated++
					}
					t.Violations += len(e.result.ByMode(policy.ModeEnforce))
					t.Warnings += len(e.result.ByMode(policy.ModeWarn))
					t.Audits += len(e.result.ByMode(policy.ModeAudit))
				}
			}
		}
	}
	return t
}

// ExitCode is ExitUnusable if anything could not be read or judged, else ExitDenied if a workload is denied,
// else ExitAdmitted.
func (t Tally) ExitCode() int {
	switch {
	case t.Errors > 0:
		return ExitUnusable
	case t.Denied > 0:
		return ExitDenied
	}
	return ExitAdmitted
}

// String is the summary line of the text report.
func (t Tally) String() string {
	s := fmt.Sprintf("%s checked: %d admitted", plural(t.Workloads, "workload", "workloads"), t.Admitted)
	if t.Mutated > 0 {
		s += fmt.Sprintf(" (%d after mutation)", t.Mutated)
	}
	s += fmt.Sprintf(", %d denied", t.Denied)
	if t.Violations > 0 {
		s += "; " + plural(t.Violations, "violation", "violations")
	}
	if t.Warnings > 0 {
		s += "; " + plural(t.Warnings, "warning", "warnings")
	}
	if t.Audits > 0 {
		s += "; " + plural(t.Audits, "audit finding", "audit findings")
	}
	if t.Skipped > 0 {
		s += fmt.Sprintf("; %d skipped", t.Skipped)
	}
	if t.Errors > 0 {
		s += "; " + plural(t.Errors, "error", "errors")
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
