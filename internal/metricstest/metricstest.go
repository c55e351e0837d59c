// Package metricstest reads Prometheus text expositions in tests, with the Prometheus parser rather than by
// hand, so that every test that asserts on agentgate's metrics reads them one way.
package metricstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Fetch GETs url and returns the sum that Sum computes over its body.
func Fetch(url, name string, match ...string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Sum(body, name, match...)
}

// Sum adds up every sample of the counter, gauge or untyped metric name whose labels include each of match,
// written as in the exposition: `result="denied"`. A metric that is absent sums to 0.
func Sum(exposition []byte, name string, match ...string) (float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(exposition))
	if err != nil {
		return 0, fmt.Errorf("parsing metrics: %w", err)
	}
	family, ok := families[name]
	if !ok {
		return 0, nil
	}
	total := 0.0
	for _, m := range family.GetMetric() {
		if !hasLabels(m, match) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		default:
			return 0, fmt.Errorf("%s is a %s: Sum reads counters and gauges", name, family.GetType())
		}
	}
	return total, nil
}

func hasLabels(m *dto.Metric, match []string) bool {
	for _, want := range match {
		found := false
		for _, l := range m.GetLabel() {
			if want == l.GetName()+`="`+strings.ReplaceAll(l.GetValue(), `"`, `\"`)+`"` {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
