package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/policy"
)

const monitoringDir = "../../manifests/components/monitoring"

// madeByPrometheus are series Prometheus writes itself, not agentgate: allowed in queries though no agentgate
// /metrics has them.
var madeByPrometheus = map[string]string{
	"up": "1 when the scrape of a target succeeded (AgentgateWebhookDown, replicas scraped)",
}

// TestMonitoringQueriesOnlyExportedMetrics: every metric name in the dashboard's queries and the alerts'
// expressions is one that a running agentgate exports (histograms as _bucket, _sum and _count, as Prometheus
// stores them), so that a renamed metric or a typo cannot leave a panel empty or an alert unable to fire. And
// every agentgate_ metric is on the dashboard.
func TestMonitoringQueriesOnlyExportedMetrics(t *testing.T) {
	exported, families := exportedMetrics(t)
	used := usedMetrics(t)
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in the dashboard and alerts: the extraction is broken", len(used))
	}
	for _, m := range slices.Sorted(maps.Keys(used)) {
		if _, ok := madeByPrometheus[m]; ok {
			continue
		}
		if !exported[m] {
			t.Errorf("%s is queried by %s but agentgate exports no such series", m, strings.Join(used[m], ", "))
		}
	}
	onDashboard := map[string]bool{}
	for m, where := range used {
		for _, w := range where {
			if strings.HasPrefix(w, "dashboard.json") {
				onDashboard[m] = true
			}
		}
	}
	for _, f := range slices.Sorted(maps.Keys(families)) {
		if !strings.HasPrefix(f, "agentgate_") {
			continue
		}
		shown := false
		for _, s := range seriesNames(f, families[f]) {
			shown = shown || onDashboard[s]
		}
		if !shown {
			t.Errorf("agentgate exports %s but the dashboard (%s/dashboard.json) shows it nowhere: add a panel", f, monitoringDir)
		}
	}
}

// exportedMetrics runs `agentgate serve` in-process and drives it through every path that creates a series —
// a hardened pod whose image tag is resolved at a real OCI registry, a denied pod, an exempted namespace, a
// malformed review — then reads /metrics the way Prometheus does. It returns the series names and the families.
func exportedMetrics(t *testing.T) (map[string]bool, map[string]dto.MetricType) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	regSrv := httptest.NewServer(reg)
	t.Cleanup(regSrv.Close)
	host := strings.TrimPrefix(regSrv.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/agents/runner:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	// The default policy, with the test registry allowed and tags pinned to digests.
	doc := string(policy.DefaultPolicyYAML())
	for old, repl := range map[string]string{
		`allow: ["registry.corp.example/agents/**"]`: fmt.Sprintf(`allow: ["registry.corp.example/agents/**", "%s/agents/**"]`, host),
		"pinDigests: false":                          "pinDigests: true",
	} {
		if !strings.Contains(doc, old) {
			t.Fatalf("the default policy no longer contains %q: adapt this test", old)
		}
		doc = strings.Replace(doc, old, repl, 1)
	}
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	r := startServe(t, "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--self-signed-dir", certDir, "--policy-file", policyFile)
	c := serveClient(t, filepath.Join(certDir, "ca.crt"))
	url := "https://" + r.srv.Addr().String()
	waitServeReady(t, c, url)

	review := func(file, namespace, image string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", file))
		if err != nil {
			t.Fatal(err)
		}
		var rev map[string]any
		if err := json.Unmarshal(data, &rev); err != nil {
			t.Fatal(err)
		}
		req := rev["request"].(map[string]any)
		obj := req["object"].(map[string]any)
		if namespace != "" {
			req["namespace"] = namespace
			obj["metadata"].(map[string]any)["namespace"] = namespace
		}
		if image != "" {
			obj["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"] = image
		}
		out, _ := json.Marshal(rev)
		return out
	}
	if resp := servePost(t, c, url+"/mutate", review("review-minimal-pod.json", "", host+"/agents/runner:1.0")); !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("/mutate of a minimal pod: allowed %v, patch %s", resp.Allowed, resp.Patch)
	}
	if resp := servePost(t, c, url+"/validate", review("review-bad-pod.json", "", "")); resp.Allowed {
		t.Fatal("/validate admitted the bad pod: no violation is counted")
	}
	if resp := servePost(t, c, url+"/validate", review("review-bad-pod.json", "kube-system", "")); !resp.Allowed {
		t.Fatalf("/validate denied in an exempted namespace: %v", resp.Result)
	}
	resp, err := c.Post(url+"/validate", "application/json", strings.NewReader("{"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed review: HTTP %d, want 400", resp.StatusCode)
	}

	mresp, err := http.Get("http://" + r.srv.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(mresp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series, families := map[string]bool{}, map[string]dto.MetricType{}
	for n, f := range parsed {
		if len(f.GetMetric()) == 0 {
			continue
		}
		families[n] = f.GetType()
		for _, s := range seriesNames(n, f.GetType()) {
			series[s] = true
		}
	}
	// The background audit runs only with a cluster (serve --kubeconfig): one run over a pod that fails the
	// default policy gives every family it exports, named by the code that registers them.
	for n, typ := range backgroundAuditFamilies(t) {
		families[n] = typ
		for _, s := range seriesNames(n, typ) {
			series[s] = true
		}
	}
	return series, families
}

// seriesNames are the names Prometheus stores a family under (classic histograms and summaries).
func seriesNames(family string, typ dto.MetricType) []string {
	switch typ {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{family + "_bucket", family + "_sum", family + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{family, family + "_sum", family + "_count"}
	default:
		return []string{family}
	}
}

// usedMetrics maps every metric name in the dashboard's queries and variables and in the PrometheusRule's
// expressions to where it is used.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(where, expr string) {
		names, err := promqlMetricNames(expr)
		if err != nil {
			t.Errorf("%s: %v: %s", where, err, expr)
		}
		for _, n := range names {
			used[n] = append(used[n], where)
		}
	}

	data, err := os.ReadFile(filepath.Join(monitoringDir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if title, ok := x["title"].(string); ok {
				path += fmt.Sprintf("[%q]", title)
			} else if n, ok := x["name"].(string); ok {
				path += fmt.Sprintf("[$%s]", n)
			}
			for k, val := range x {
				s, isString := val.(string)
				switch {
				case k == "expr" && isString:
					add(path, s)
				case (k == "query" || k == "definition") && isString:
					if inner, ok := labelValuesQuery(s); ok {
						add(path, inner)
					}
				default:
					walk(path, val)
				}
			}
		case []any:
			for _, val := range x {
				walk(path, val)
			}
		}
	}
	walk("dashboard.json", dash)

	data, err = os.ReadFile(filepath.Join(monitoringDir, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert, Record, Expr string
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			add("prometheusrule.yaml["+r.Alert+r.Record+"]", r.Expr)
		}
	}
	return used
}

// labelValuesQuery returns the series selector of a Grafana variable query label_values(SELECTOR, label).
func labelValuesQuery(q string) (string, bool) {
	q = strings.TrimSpace(q)
	inner, ok := strings.CutPrefix(q, "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", false // label_values(label): no metric
	}
	return strings.TrimSpace(inner[:i]), true
}

// PromQL words that are not metric names where a metric name could stand: operators, and aggregations, which
// may be followed by a by/without clause instead of "(".
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "atan2": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// Words followed by a parenthesised list of label names.
var promqlLabelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promqlMetricNames returns the metric names an expression selects: identifiers outside label matchers
// ({…}), ranges ([…]), strings and label lists (by, without, on, ignoring, group_left, group_right), and not
// followed by "(" (functions and aggregations). It errs on unbalanced brackets and unterminated strings.
// Grafana's $variables stand only inside matchers and ranges, which are skipped whole.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d", i)
	}
	skipTo := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); {
			switch expr[j] {
			case '"', '\'', '`':
				k, err := skipString(j)
				if err != nil {
					return 0, err
				}
				j = k
				continue
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
			j++
		}
		return 0, fmt.Errorf("unbalanced %c at %d", open, i)
	}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isIdent := func(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
	labelList, depth := false, 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j, err := skipTo(i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '(' && labelList:
			j, err := skipTo(i, '(', ')')
			if err != nil {
				return nil, err
			}
			i, labelList = j, false
		case c >= '0' && c <= '9' || c == '.':
			// numbers, durations (10m), exponents (1e3)
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			switch {
			case promqlLabelLists[strings.ToLower(word)]:
				labelList = true
			case promqlKeywords[strings.ToLower(word)]:
			case k < len(expr) && expr[k] == '(':
				// a function or an aggregation
			default:
				names = append(names, word)
			}
			i = j
		case c == '$':
			return nil, fmt.Errorf("a $variable outside a matcher or range at %d", i)
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ) at %d", i)
			}
			i++
		case c == ']' || c == '}':
			return nil, fmt.Errorf("unbalanced %c at %d", c, i)
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%d unclosed (", depth)
	}
	return names, nil
}

func TestPromQLMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`sum by (le, endpoint) (rate(agentgate_x_bucket{job=~"$job"}[$__rate_interval]))`, []string{"agentgate_x_bucket"}},
		{`absent(up{job=~".*agentgate.*"} == 1)`, []string{"up"}},
		{`sum(rate(a{result="denied"}[10m])) > 3 * sum(rate(a[6h] offset 10m)) + 0.1`, []string{"a", "a"}},
		{`min by (cert) (m) - time() < 30 * 24 * 3600`, []string{"m"}},
		{`x and on (pod) group_left(version) y`, []string{"x", "y"}},
		{`sum without (instance) (n) / ignoring(code) o unless p`, []string{"n", "o", "p"}},
		{`1e3 * m or vector(0)`, []string{"m"}},
		{`m{a="}{[",b='\'"'} > bool 0`, []string{"m"}},
		{`topk(20, sum by (policy, check) (increase(v[$__range])))`, []string{"v"}},
		{`ns:recorded:rate5m`, []string{"ns:recorded:rate5m"}},
		{`sum(rate(x[5m])`, nil},               // unbalanced
		{`m{a="b}`, nil},                       // unterminated string
		{`rate(x[$__interval]) * $scale`, nil}, // a variable where a value stands
	}
	for _, c := range cases {
		got, err := promqlMetricNames(c.expr)
		if c.want == nil {
			if err == nil {
				t.Errorf("%s: no error, want one (got %v)", c.expr, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.expr, got, err, c.want)
		}
	}
	if got, ok := labelValuesQuery("label_values(agentgate_policy_info{job=~\"$job\"}, policy)"); !ok || got != `agentgate_policy_info{job=~"$job"}` {
		t.Errorf("label_values: %q, %v", got, ok)
	}
}

func backgroundAuditFamilies(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "agents"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "elsewhere.example/x:1"}}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pods, err := cluster.StartPodCache(ctx, fake.NewClientset(bad))
	if err != nil {
		t.Fatal(err)
	}
	if err := pods.WaitSynced(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	a := &cluster.BackgroundAudit{Pods: pods, Policies: func() (*policy.Set, <-chan struct{}) { return policy.NewSet(policy.Default()), nil }}
	reg := prometheus.NewRegistry()
	if err := a.Register(reg); err != nil {
		t.Fatal(err)
	}
	if sum := a.RunOnce(t.Context()); sum.Violating != 1 {
		t.Fatalf("background audit: %+v, want the pod violating", sum)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range mfs {
		out[f.GetName()] = f.GetType()
	}
	return out
}
