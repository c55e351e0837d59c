package manifests_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/internal/checklist"
)

const monitoringDir = "components/monitoring"

// prometheusRule is the part of a PrometheusRule that promtool reads: spec is a plain rules file.
type prometheusRule struct {
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// promtool returns bin/promtool or stops the test with how to build it.
func promtool(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "bin", "promtool"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("promtool not found at %s: run `make test` (its prerequisite `make tools` builds it from the Go module proxy)", bin)
	}
	return bin
}

// rulesFile writes the PrometheusRule's spec, the plain rules file promtool reads, into dir/rules.yaml.
func rulesFile(t *testing.T, dir string) prometheusRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(monitoringDir, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var whole map[string]any
	if err := yaml.UnmarshalStrict(data, &whole); err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.Marshal(whole["spec"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	var rule prometheusRule
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	return rule
}

// TestAlertsWithPromtool runs `promtool check rules` (syntax, templates) and `promtool test rules` on
// components/monitoring/tests/*.yaml against the PrometheusRule's rules, as Prometheus evaluates them.
func TestAlertsWithPromtool(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	rulesFile(t, dir)
	tests, err := filepath.Glob(filepath.Join(monitoringDir, "tests", "*.yaml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests in %s/tests (%v)", monitoringDir, err)
	}
	args := []string{"test", "rules"}
	for _, f := range tests {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(copyPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, copyPath)
	}
	for _, a := range [][]string{{"check", "rules", filepath.Join(dir, "rules.yaml")}, args} {
		out, err := exec.Command(bin, a...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(a, " "), err, out)
		}
	}
}

// promtoolTests is the part of a promtool test file that says which alerts it expects where.
type promtoolTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name  string `json:"name"`
		Evals []struct {
			Alert string           `json:"alertname"`
			Exp   []map[string]any `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertFiresAndStaysSilent: each alert of the PrometheusRule has a promtool case where it fires and
// one where it stays silent, so that an alert that never fires (a typo in a metric name) or always fires
// cannot pass.
func TestEveryAlertFiresAndStaysSilent(t *testing.T) {
	rule := rulesFile(t, t.TempDir())
	fires, silent := map[string]int{}, map[string]int{}
	files, _ := filepath.Glob(filepath.Join(monitoringDir, "tests", "*.yaml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pt promtoolTests
		// promtool has more fields than this test reads: not strict.
		if err := yaml.Unmarshal(data, &pt); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Equal(pt.RuleFiles, []string{"rules.yaml"}) {
			t.Errorf("%s: rule_files = %v, want [rules.yaml] (the test writes the PrometheusRule's spec there)", f, pt.RuleFiles)
		}
		for _, tc := range pt.Tests {
			for _, e := range tc.Evals {
				if len(e.Exp) > 0 {
					fires[e.Alert]++
				} else {
					silent[e.Alert]++
				}
			}
		}
	}
	var alerts []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alert in the PrometheusRule")
	}
	for _, a := range alerts {
		if fires[a] == 0 {
			t.Errorf("%s: no promtool case where it fires", a)
		}
		if silent[a] == 0 {
			t.Errorf("%s: no promtool case where it stays silent", a)
		}
	}
	for a := range fires {
		if !slices.Contains(alerts, a) {
			t.Errorf("promtool tests expect %s, which the PrometheusRule does not have", a)
		}
	}
}

// TestDashboardIsWellFormed: the dashboard Grafana imports is one JSON document whose panels all query the
// chosen Prometheus data source, with unique panel IDs and a query in every target.
func TestDashboardIsWellFormed(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(monitoringDir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID         int            `json:"id"`
			Type       string         `json:"type"`
			Title      string         `json:"title"`
			Datasource map[string]any `json:"datasource"`
			Targets    []struct {
				RefID      string         `json:"refId"`
				Expr       string         `json:"expr"`
				Datasource map[string]any `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "agentgate" || d.Title == "" {
		t.Errorf("uid %q, title %q: want uid agentgate (links to it stay stable) and a title", d.UID, d.Title)
	}
	ids := map[int]string{}
	for _, p := range d.Panels {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("%s: id also used by %q", where, prev)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("%s: datasource %v, want the ${datasource} variable", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", where)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || tg.Datasource["uid"] != "${datasource}" {
				t.Errorf("%s: target %q has no expression, refId or data source", where, tg.RefID)
			}
		}
	}
	if len(ids) < 10 {
		t.Errorf("%d panels: the dashboard lost its content", len(ids))
	}
}

// TestOperatingDocExplainsEveryAlert: docs/operating.md's alert table has a row for each alert of the
// PrometheusRule, saying what it means and what to do.
func TestOperatingDocExplainsEveryAlert(t *testing.T) {
	rule := rulesFile(t, t.TempDir())
	doc, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !strings.Contains(string(doc), "| `"+r.Alert+"` (") {
				t.Errorf("docs/operating.md has no alert table row for %s", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alert read from the PrometheusRule")
	}
}

// TestChecklistKnowsEveryAlert: agentgate checklist's alerts item requires exactly the PrometheusRule's alerts.
func TestChecklistKnowsEveryAlert(t *testing.T) {
	rule := rulesFile(t, t.TempDir())
	var alerts []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	want := slices.Sorted(slices.Values(checklist.Alerts))
	if got := slices.Sorted(slices.Values(alerts)); !slices.Equal(got, want) {
		t.Errorf("the PrometheusRule's alerts %v, internal/checklist.Alerts %v: keep them equal", got, want)
	}
}
