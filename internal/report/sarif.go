package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"

	"agentgate.io/agentgate/policy"
)

// SARIF 2.1.0: one run; a rule per check; a result per violation; input errors and skipped objects as
// notifications of the run's invocation.

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

// sarifURI is a relative URI reference for a relative file name, a file: URI for an absolute one.
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

// WriteSARIF writes the report as a SARIF 2.1.0 log to out: one run of the tool "agentgate" (Version), whose
// rules are policy.CheckIDs() in order; a result per violation (level error, warning or note for enforce,
// warn and audit modes) at the violation's file and line, with Kind/name/field as logical location and the
// policy, mode, namespace, found and allowed values as properties. Errors and skipped objects are
// notifications of the invocation, which is successful when nothing is in error. Errors are also written
// to errs.
func (r *Run) WriteSARIF(out, errs io.Writer) {
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
	for _, f := range r.files {
		if f.err != nil {
			fmt.Fprintf(errs, "error: %s: %v\n", f.name, f.err)
			notes = append(notes, sarifNotification{Level: "error", Message: sarifMessage{Text: f.err.Error()},
				Locations: []sarifLocation{{PhysicalLocation: physical(f.name, 0)}}})
			continue
		}
		for _, d := range f.docs {
			for _, e := range d.entries {
				switch {
				case e.err != nil:
					fmt.Fprintf(errs, "error: %s\n", e.errorString())
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
								PhysicalLocation: physical(f.name, d.LineOf(e.item, v.Field)),
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
			Tool:        sarifTool{Driver: sarifDriver{Name: "agentgate", Version: r.Version, Rules: rules}},
			Invocations: []sarifInvocation{{ExecutionSuccessful: r.Tally().Errors == 0, ToolExecutionNotifications: notes}},
			Results:     results,
		}},
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(log); err != nil {
		fmt.Fprintf(errs, "agentgate check: writing SARIF: %v\n", err)
	}
}
