package metricstest

import "testing"

func TestSum(t *testing.T) {
	body := []byte(`# TYPE agentgate_admission_requests_total counter
agentgate_admission_requests_total{endpoint="validate",result="denied"} 3
agentgate_admission_requests_total{endpoint="mutate",result="allowed"} 4
agentgate_admission_requests_total{endpoint="validate",result="allowed"} 5
# TYPE agentgate_policy_generation gauge
agentgate_policy_generation 7
`)
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"agentgate_admission_requests_total", nil, 12},
		{"agentgate_admission_requests_total", []string{`endpoint="validate"`}, 8},
		{"agentgate_admission_requests_total", []string{`endpoint="validate"`, `result="denied"`}, 3},
		{"agentgate_admission_requests_total", []string{`result="den"`}, 0},
		{"agentgate_policy_generation", nil, 7},
		{"agentgate_absent_total", nil, 0},
	} {
		got, err := Sum(body, tc.name, tc.match...)
		if err != nil || got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, %v; want %v", tc.name, tc.match, got, err, tc.want)
		}
	}
	if _, err := Sum([]byte("not { an exposition"), "x"); err == nil {
		t.Error("a malformed exposition summed without error")
	}
}
