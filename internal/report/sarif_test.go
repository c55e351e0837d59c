package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"agentgate.io/agentgate/policy"
)

// sarifShape is the part of SARIF 2.1.0 that code-scanning tools read.
type sarifShape struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name    string `json:"name"`
				Version string `json:"version"`
				Rules   []struct {
					ID string `json:"id"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Invocations []struct {
			ExecutionSuccessful bool `json:"executionSuccessful"`
			Notifications       []struct {
				Level   string                `json:"level"`
				Message struct{ Text string } `json:"message"`
			} `json:"toolExecutionNotifications"`
		} `json:"invocations"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					FullyQualifiedName string `json:"fullyQualifiedName"`
				} `json:"logicalLocations"`
			} `json:"locations"`
			Properties map[string]any `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func writeSARIF(t *testing.T, r *Run) (sarifShape, string) {
	t.Helper()
	var out, errs bytes.Buffer
	r.WriteSARIF(&out, &errs)
	var log sarifShape
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, out.String())
	}
	if log.Version != "2.1.0" || !strings.Contains(log.Schema, "sarif-2.1.0") || len(log.Runs) != 1 {
		t.Fatalf("version %q, $schema %q, %d runs", log.Version, log.Schema, len(log.Runs))
	}
	return log, errs.String()
}

func TestWriteSARIF(t *testing.T) {
	r := readRun(t, &Run{Version: "v1.2.3"}, examples+"bad-pod.yaml")
	judged(t, r,
		"multi.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n",
		"invalid-field.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\nspec:\n  containers:\n  - name: c\n    image: i\n    ports: [{containerPort: eighty}]\n",
	)
	log, errs := writeSARIF(t, r)
	run := log.Runs[0]
	if run.Tool.Driver.Name != "agentgate" || run.Tool.Driver.Version != "v1.2.3" {
		t.Errorf("driver %q %q", run.Tool.Driver.Name, run.Tool.Driver.Version)
	}
	var rules []string
	for _, rule := range run.Tool.Driver.Rules {
		rules = append(rules, rule.ID)
	}
	if !slices.Equal(rules, policy.CheckIDs()) {
		t.Errorf("rules %v, want policy.CheckIDs() %v", rules, policy.CheckIDs())
	}
	if len(run.Results) < 10 {
		t.Fatalf("%d results", len(run.Results))
	}
	for _, res := range run.Results {
		if res.RuleIndex < 0 || res.RuleIndex >= len(rules) || rules[res.RuleIndex] != res.RuleID {
			t.Errorf("result ruleId %q, ruleIndex %d: not in rules", res.RuleID, res.RuleIndex)
		}
		if res.Level != "error" || res.Message.Text == "" || len(res.Locations) != 1 {
			t.Errorf("result %+v", res)
			continue
		}
		loc := res.Locations[0]
		if loc.PhysicalLocation.ArtifactLocation.URI == "" || loc.PhysicalLocation.Region.StartLine < 1 || len(loc.LogicalLocations) != 1 {
			t.Errorf("location %+v", loc)
		}
		for _, k := range []string{"policy", "mode", "namespace", "found", "allowed"} {
			if _, ok := res.Properties[k]; !ok {
				t.Errorf("result %s: no property %q", res.RuleID, k)
			}
		}
	}
	// The hostNetwork violation points at its own line, with Kind/name/field as logical location.
	first := run.Results[0].Locations[0]
	if first.PhysicalLocation.ArtifactLocation.URI != "../../examples/bad-pod.yaml" || first.PhysicalLocation.Region.StartLine != 9 ||
		first.LogicalLocations[0].FullyQualifiedName != "Pod/bad-runner/spec.hostNetwork" {
		t.Errorf("first location %+v", first)
	}
	inv := run.Invocations[0]
	if inv.ExecutionSuccessful {
		t.Errorf("executionSuccessful with an input error")
	}
	var levels []string
	for _, n := range inv.Notifications {
		levels = append(levels, n.Level)
		if n.Level == "error" && !strings.Contains(n.Message.Text, "spec.containers[0].ports[0].containerPort: cannot decode JSON string into int32") {
			t.Errorf("error notification %q", n.Message.Text)
		}
	}
	if !slices.Equal(levels, []string{"note", "note", "error"}) {
		t.Errorf("notification levels %v (two skipped objects, one error)", levels)
	}
	if !strings.HasPrefix(errs, "error: invalid-field.yaml:8: document 1 (Pod/typo): ") {
		t.Errorf("errs %q", errs)
	}
}

// Warn and audit modes map to SARIF levels warning and note; a run without error is successful.
func TestWriteSARIFLevels(t *testing.T) {
	set := policy.NewSet(policy.Default(), mustPolicy(t, warnPolicy), mustPolicy(t, auditPolicy))
	audited := strings.Replace(minimalPod, "  namespace: agents\n", "  namespace: agents\n  labels: {audit: \"yes\"}\n", 1)
	log, _ := writeSARIF(t, judged(t, &Run{Set: set}, "p.yaml", audited))
	var levels []string
	for _, res := range log.Runs[0].Results {
		levels = append(levels, res.Level+" "+res.Properties["policy"].(string))
	}
	if !slices.Equal(levels, []string{"warning digests", "note quiet"}) {
		t.Errorf("levels %v", levels)
	}
	if inv := log.Runs[0].Invocations[0]; !inv.ExecutionSuccessful || len(inv.Notifications) != 0 {
		t.Errorf("invocation %+v", inv)
	}
}

func TestSARIFURI(t *testing.T) {
	for name, want := range map[string]string{
		"a/b.yaml":           "a/b.yaml",
		"../x y/#1.yaml":     "../x%20y/%231.yaml",
		"/abs/path/p.yaml":   "file:///abs/path/p.yaml",
		"<stdin>":            "%3Cstdin%3E",
		"dir/with:colon.yml": "dir/with:colon.yml",
	} {
		if got := sarifURI(name); got != want {
			t.Errorf("sarifURI(%q) = %q, want %q", name, got, want)
		}
	}
}
