package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gomodules.xyz/jsonpatch/v2"

	"agentgate.io/agentgate/internal/manifest"
	"agentgate.io/agentgate/policy"
)

// The JSON report is an array with one object per document (per item of a List): a workload, a skipped
// object or an error. Its field names are a public contract: add fields freely, rename none.

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

// WriteJSON writes the JSON report to out: an array with one object per document (per item of a List), each
// with its file, document, item and line. A workload has apiVersion, kind, namespace, name, allowed,
// policies (those that selected it), violations, warnings and audit (by mode, each violation with check,
// field, found, allowed, message and line), exemptions and patches (the RFC 6902 operations the mutating
// webhook would return). A skipped object has skipped: true and a reason; an error has error. Errors are
// also written to errs.
func (r *Run) WriteJSON(out, errs io.Writer) {
	all := []any{}
	for _, f := range r.files {
		if f.err != nil {
			fmt.Fprintf(errs, "error: %s: %v\n", f.name, f.err)
			all = append(all, jsonError{jsonLocation: jsonLocation{File: f.name}, Error: f.err.Error()})
			continue
		}
		for _, d := range f.docs {
			for _, e := range d.entries {
				loc := jsonLocation{File: f.name, Document: d.Index, Item: strings.TrimPrefix(manifest.FieldPath(e.item), "."), Line: e.line()}
				switch {
				case e.err != nil:
					fmt.Fprintf(errs, "error: %s\n", e.errorString())
					all = append(all, jsonError{jsonLocation: loc, APIVersion: e.apiVersion, Kind: e.kind, Name: e.name, Error: e.err.Error()})
				case e.skipped != "":
					all = append(all, jsonSkipped{jsonLocation: loc, APIVersion: e.apiVersion, Kind: e.kind, Namespace: e.namespace, Name: e.name, Skipped: true, Reason: e.skipped})
				default:
					res := e.result
					all = append(all, jsonWorkload{
						jsonLocation: loc, APIVersion: e.apiVersion, Kind: e.kind, Namespace: e.namespace, Name: e.name,
						Allowed:    res.Allowed(),
						Policies:   nonNil(res.Matched),
						Violations: e.violations(policy.ModeEnforce),
						Warnings:   e.violations(policy.ModeWarn),
						Audit:      e.violations(policy.ModeAudit),
						Exemptions: nonNil(res.Exemptions),
						Patches:    nonNil(e.patches),
					})
				}
			}
		}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(all); err != nil {
		fmt.Fprintf(errs, "agentgate check: writing JSON: %v\n", err)
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
		out = append(out, jsonViolation{Violation: v, Line: e.doc.LineOf(e.item, v.Field)})
	}
	return out
}
