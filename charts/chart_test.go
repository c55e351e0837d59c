// Package charts_test keeps charts/agentgate honest: helm lint passes, the default render is manifests/ object for
// object (labels Helm adds aside), every value does what values.yaml says, and bad values are refused with
// their path. The server-side dry-runs of every render are in e2e/chart_test.go.
package charts_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/internal/charttest"
	"agentgate.io/agentgate/policy"
)

func render(t *testing.T, values string, sets ...string) []charttest.Object {
	t.Helper()
	var files []string
	if values != "" {
		files = append(files, values)
	}
	out, err := charttest.Template(t.TempDir(), files, sets...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := charttest.Objects(out)
	if err != nil {
		t.Fatalf("decoding helm template's output: %v", err)
	}
	return objs
}

func TestChartLint(t *testing.T) {
	for _, s := range charttest.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			args := []string{"lint", "--strict", charttest.Chart(), "--namespace", charttest.Namespace}
			if s.Values != "" {
				f := filepath.Join(t.TempDir(), "values.yaml")
				if err := os.WriteFile(f, []byte(s.Values), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--values", f)
			}
			out, err := charttest.Run("helm", args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint did not report success:\n%s", out)
			}
		})
	}
}

// TestChartMatchesKustomize: one source of truth. With default values the chart renders exactly what
// `kubectl kustomize manifests/` does, and so for the cert-manager overlay and the monitoring component.
func TestChartMatchesKustomize(t *testing.T) {
	for _, s := range charttest.Scenarios {
		if s.Kustomize == nil {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			want, err := charttest.Kustomize(t.TempDir(), s.Kustomize.Resources, s.Kustomize.Components)
			if err != nil {
				t.Fatal(err)
			}
			wantObjs, err := charttest.Objects(want)
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, s.Values)
			if len(wantObjs) == 0 || len(got) == 0 {
				t.Fatalf("an empty render proves nothing: kustomize %d objects, chart %d", len(wantObjs), len(got))
			}
			for _, d := range charttest.Compare(got, wantObjs) {
				t.Error(d)
			}
			if t.Failed() {
				t.Log("bring charts/agentgate/templates in line with manifests/ (or the other way round)")
			}
		})
	}
}

// find returns the one object of kind and name, failing the test when there is not exactly one.
func find(t *testing.T, objs []charttest.Object, kind, name string) charttest.Object {
	t.Helper()
	var found []charttest.Object
	for _, o := range objs {
		meta, _ := o["metadata"].(map[string]any)
		if o.Kind() == kind && meta["name"] == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects %s/%s rendered, want 1", len(found), kind, name)
	}
	return found[0]
}

// at reads a value by a path of map keys and list indexes ("spec", "webhooks", 0, "failurePolicy").
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	if o, ok := v.(charttest.Object); ok {
		v = map[string]any(o)
	}
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %v", path, path[:i])
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d at %v", path, k, path[:i])
			}
			v = l[k]
		}
	}
	return v
}

func asYAML(v any) string {
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}

// webhook returns the webhook entry named name from either configuration.
func webhook(t *testing.T, objs []charttest.Object, name string) map[string]any {
	t.Helper()
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		for _, w := range at(t, find(t, objs, kind, "agentgate"), "webhooks").([]any) {
			if w.(map[string]any)["name"] == name {
				return w.(map[string]any)
			}
		}
	}
	t.Fatalf("no webhook %s rendered", name)
	return nil
}

var webhookValues = map[string]string{
	"harden":            "harden.pods.agentgate.io",
	"validateWorkloads": "validate.workloads.agentgate.io",
	"validatePolicies":  "validate.policies.agentgate.io",
	"guardNamespaces":   "guard.namespaces.agentgate.io",
	"guardPolicies":     "guard.policies.agentgate.io",
}

// excludesByName holds when a namespaceSelector carries the NotIn expression that keeps kube-system and the
// release namespace away from agentgate whatever else it says (expressions are ANDed).
func excludesByName(sel map[string]any, namespace string) bool {
	exprs, _ := sel["matchExpressions"].([]any)
	for _, e := range exprs {
		m := e.(map[string]any)
		if m["key"] == "kubernetes.io/metadata.name" && m["operator"] == "NotIn" {
			vals := fmt.Sprint(m["values"])
			if strings.Contains(vals, "kube-system") && strings.Contains(vals, namespace) {
				return true
			}
		}
	}
	return false
}

// TestChartTunedValues renders the scenario that sets every value away from its default and checks each lands
// where values.yaml says, and that none reaches past what it may change.
func TestChartTunedValues(t *testing.T) {
	var tuned charttest.Scenario
	for _, s := range charttest.Scenarios {
		if s.Name == "tuned" {
			tuned = s
		}
	}
	objs := render(t, tuned.Values)
	dep := find(t, objs, "Deployment", "agentgate")
	pod := at(t, dep, "spec", "template", "spec").(map[string]any)
	container := at(t, pod, "containers", 0).(map[string]any)
	checks := []struct {
		what      string
		got, want any
	}{
		{"replicas", at(t, dep, "spec", "replicas"), 3.0},
		{"image pinned by digest", container["image"], "registry.example/agentgate:v9.9.9@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"pull policy", container["imagePullPolicy"], "Always"},
		{"pull secrets", asYAML(pod["imagePullSecrets"]), "- name: pull-secret"},
		{"resources", asYAML(container["resources"]), "limits:\n  cpu: \"2\"\n  memory: 512Mi\nrequests:\n  cpu: 200m\n  memory: 128Mi"},
		{"no priority class", pod["priorityClassName"], nil},
		{"no spread constraints", pod["topologySpreadConstraints"], nil},
		{"affinity", at(t, pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", 0, "topologyKey"), "kubernetes.io/hostname"},
		{"node selector", asYAML(pod["nodeSelector"]), "kubernetes.io/os: linux"},
		{"tolerations", at(t, pod, "tolerations", 0, "key"), "dedicated"},
		{"grace period", pod["terminationGracePeriodSeconds"], 45.0},
		{"pod annotation", at(t, dep, "spec", "template", "metadata", "annotations", "example.com/note"), "tuned"},
		{"pod label", at(t, dep, "spec", "template", "metadata", "labels", "team"), "platform"},
		// A pod label cannot take over a selector label: the Deployment would stop selecting its pods.
		{"selector label kept", at(t, dep, "spec", "template", "metadata", "labels", "app.kubernetes.io/component"), "webhook"},
		{"strategy", asYAML(at(t, dep, "spec", "strategy")), "rollingUpdate:\n  maxSurge: 0\n  maxUnavailable: 1\ntype: RollingUpdate"},
		{"PDB maxUnavailable replaces minAvailable", asYAML(at(t, find(t, objs, "PodDisruptionBudget", "agentgate"), "spec")),
			"maxUnavailable: 1\nselector:\n  matchLabels:\n    app.kubernetes.io/component: webhook\n    app.kubernetes.io/name: agentgate"},
		{"no Namespace object", len(slices.DeleteFunc(slices.Clone(objs), func(o charttest.Object) bool { return o.Kind() != "Namespace" })), 0},
		{"no self-signed Issuer with an issuerRef", len(slices.DeleteFunc(slices.Clone(objs), func(o charttest.Object) bool { return o.Kind() != "Issuer" })), 0},
		{"issuerRef", asYAML(at(t, find(t, objs, "Certificate", "agentgate-serving"), "spec", "issuerRef")), "group: cert-manager.io\nkind: ClusterIssuer\nname: corp-ca"},
		{"certificate secret", at(t, find(t, objs, "Certificate", "agentgate-serving"), "spec", "secretName"), "agentgate-cert"},
		{"certificate volume", at(t, pod, "volumes", 0, "secret", "secretName"), "agentgate-cert"},
		{"certificate renewal", at(t, find(t, objs, "Certificate", "agentgate-serving"), "spec", "renewBefore"), "240h"},
		{"webhook annotation", at(t, find(t, objs, "ValidatingWebhookConfiguration", "agentgate"), "metadata", "annotations", "example.com/owner"), "platform"},
		{"CA injection kept beside it", at(t, find(t, objs, "MutatingWebhookConfiguration", "agentgate"), "metadata", "annotations", "cert-manager.io/inject-ca-from"), "agentgate-system/agentgate-serving"},
		{"harden reinvocation", webhook(t, objs, "harden.pods.agentgate.io")["reinvocationPolicy"], "Never"},
		{"harden objectSelector", asYAML(webhook(t, objs, "harden.pods.agentgate.io")["objectSelector"]), "matchExpressions:\n- key: agentgate.io/skip\n  operator: DoesNotExist"},
		{"validate objectSelector", asYAML(webhook(t, objs, "validate.workloads.agentgate.io")["objectSelector"]), "matchLabels:\n  agentgate.io/judge: \"true\""},
		{"ServiceMonitor interval", at(t, find(t, objs, "ServiceMonitor", "agentgate"), "spec", "endpoints", 0, "interval"), "15s"},
		{"ServiceMonitor label", at(t, find(t, objs, "ServiceMonitor", "agentgate"), "metadata", "labels", "release"), "prometheus"},
		{"PrometheusRule label", at(t, find(t, objs, "PrometheusRule", "agentgate"), "metadata", "labels", "release"), "prometheus"},
		{"dashboard namespace", at(t, find(t, objs, "ConfigMap", "agentgate-dashboard"), "metadata", "namespace"), "monitoring"},
		{"dashboard labels", at(t, find(t, objs, "ConfigMap", "agentgate-dashboard"), "metadata", "labels", "team"), "platform"},
		{"policy document", strings.Contains(at(t, find(t, objs, "ConfigMap", "agentgate-policy-agents"), "data", "policy.yaml").(string), "mode: warn"), true},
		{"extra policy", at(t, find(t, objs, "ConfigMap", "agentgate-policy-team-a"), "metadata", "labels", "agentgate.io/policy"), "true"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	args := fmt.Sprint(container["args"])
	for _, want := range []string{"--shutdown-delay=10s", "--admin-groups=platform-admins,system:masters", "--tls-min-version=1.2",
		"--log-level=debug", "--audit-interval=15m", "--policy-reports=false", "--digest-timeout=3s", "--cert-dir=/var/run/agentgate/certs"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	if strings.Contains(args, "--cert-secret") {
		t.Errorf("cert-manager mode still passes --cert-secret: %s", args)
	}
	want := map[string]struct {
		failurePolicy string
		timeout       float64
	}{
		"harden": {"Ignore", 3}, "validateWorkloads": {"Ignore", 10}, "validatePolicies": {"Fail", 2},
		"guardNamespaces": {"Ignore", 4}, "guardPolicies": {"Ignore", 4},
	}
	for value, name := range webhookValues {
		w := webhook(t, objs, name)
		if w["failurePolicy"] != want[value].failurePolicy || w["timeoutSeconds"] != want[value].timeout {
			t.Errorf("webhooks.%s: %s has failurePolicy %v, timeoutSeconds %v; want %s, %v", value, name,
				w["failurePolicy"], w["timeoutSeconds"], want[value].failurePolicy, want[value].timeout)
		}
	}
	// The security settings of agentgate's own pod are not values: no value set above reaches them.
	def := find(t, render(t, ""), "Deployment", "agentgate")
	for _, p := range [][]any{{"spec", "template", "spec", "containers", 0, "securityContext"}} {
		if a, b := asYAML(at(t, dep, p...)), asYAML(at(t, def, p...)); a != b {
			t.Errorf("%v changed by values:\n%s\nwant\n%s", p, a, b)
		}
	}
	if a, b := at(t, pod, "securityContext", "runAsNonRoot"), true; a != b {
		t.Errorf("pod securityContext.runAsNonRoot = %v", a)
	}
}

// TestChartNamespaceSelectorsAlwaysExclude: whatever namespaceSelector a value gives, kube-system and the
// release namespace stay excluded by name (no deadlock, kube-system never blocked) — an empty selector, one
// that names kube-system on purpose, one with only labels, and a release in another namespace.
func TestChartNamespaceSelectorsAlwaysExclude(t *testing.T) {
	cases := []struct {
		name, values, namespace string
	}{
		{"empty selector", "webhooks: {harden: {namespaceSelector: {}}, validateWorkloads: {namespaceSelector: {}}}", charttest.Namespace},
		{"selector naming kube-system", `webhooks:
  harden: {namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [kube-system]}]}}
  validateWorkloads: {namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [kube-system, agentgate-system]}]}}`, charttest.Namespace},
		{"labels only", "webhooks: {harden: {namespaceSelector: {matchLabels: {team: a}}}, validateWorkloads: {namespaceSelector: {matchLabels: {team: a}}}}", charttest.Namespace},
		{"defaults", "", charttest.Namespace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs := render(t, c.values)
			for _, name := range []string{"harden.pods.agentgate.io", "validate.workloads.agentgate.io", "guard.namespaces.agentgate.io"} {
				sel, _ := webhook(t, objs, name)["namespaceSelector"].(map[string]any)
				if !excludesByName(sel, c.namespace) {
					t.Errorf("%s: namespaceSelector does not exclude kube-system and %s by name:\n%s", name, c.namespace, asYAML(sel))
				}
			}
		})
	}
}

// TestChartOtherNamespace: released into another namespace, everything that names agentgate's namespace follows
// it: service references, exclusions, certificate names; the default policy names no requester in any namespace.
func TestChartOtherNamespace(t *testing.T) {
	out, err := charttest.Run("helm", "template", charttest.Release, charttest.Chart(), "--namespace", "security",
		"--set", "certificates.mode=cert-manager")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, charttest.Namespace) {
		for i, line := range strings.Split(out, "\n") {
			if strings.Contains(line, charttest.Namespace) {
				t.Errorf("line %d still names %s: %s", i+1, charttest.Namespace, line)
			}
		}
	}
	objs, err := charttest.Objects(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := at(t, find(t, objs, "ConfigMap", "agentgate-policy-agents"), "data", "policy.yaml").(string)
	p, errs := policy.Parse([]byte(doc))
	if len(errs) > 0 {
		t.Fatalf("the rendered default policy does not parse: %v", errs)
	}
	// Token allowances name requesters; agentgate's own pod keeps its token because its namespace is outside
	// the webhooks, not because the policy names it.
	if got := p.Spec.ServiceAccountToken.AllowServiceAccounts; len(got) != 0 {
		t.Errorf("allowServiceAccounts = %v, want none", got)
	}
	for _, name := range []string{"harden.pods.agentgate.io", "validate.workloads.agentgate.io", "guard.namespaces.agentgate.io"} {
		if sel, _ := webhook(t, objs, name)["namespaceSelector"].(map[string]any); !excludesByName(sel, "security") {
			t.Errorf("%s does not exclude the release namespace: %s", name, asYAML(sel))
		}
	}
}

// TestChartDefaultPolicyIsTheEmbeddedOne: in its own namespace the chart installs the very bytes the binary
// embeds (files/default-policy.yaml is a link to manifests/base/policy.yaml; a packaged chart holds a copy).
func TestChartDefaultPolicyIsTheEmbeddedOne(t *testing.T) {
	doc := at(t, find(t, render(t, ""), "ConfigMap", "agentgate-policy-agents"), "data", "policy.yaml").(string)
	if doc != string(policy.DefaultPolicyYAML()) {
		t.Fatalf("the chart's default policy differs from the embedded one:\n%s", doc)
	}
}

// TestChartRefusesBadValues: values.schema.json refuses a wrong spelling, an unknown key (a typo must not be
// silently ignored) or an out-of-range number, naming the value; and the templates refuse what the schema cannot
// see.
func TestChartRefusesBadValues(t *testing.T) {
	cases := []struct {
		values string
		want   string // in the error, exactly
	}{
		{"webhooks: {validateWorkloads: {failurePolicy: ignore}}", `at '/webhooks/validateWorkloads/failurePolicy': value must be one of 'Fail', 'Ignore'`},
		{"webhooks: {harden: {failurePolicy: Open}}", `at '/webhooks/harden/failurePolicy': value must be one of 'Fail', 'Ignore'`},
		{"webhooks: {guardPolicies: {timeoutSeconds: 31}}", `at '/webhooks/guardPolicies/timeoutSeconds': maximum: got 31, want 30`},
		{"webhooks: {guardNamespaces: {timeoutSeconds: 0}}", `at '/webhooks/guardNamespaces/timeoutSeconds': minimum: got 0, want 1`},
		{"webhooks: {harden: {reinvocationPolicy: Always}}", `at '/webhooks/harden/reinvocationPolicy': value must be one of 'Never', 'IfNeeded'`},
		{"webhooks: {harden: {namespaceSelector: {matchExpressions: [{key: a, operator: Equals}]}}}",
			`at '/webhooks/harden/namespaceSelector/matchExpressions/0/operator': value must be one of 'In', 'NotIn', 'Exists', 'DoesNotExist'`},
		// The policy and guard webhooks' selectors are structural: not values.
		{"webhooks: {validatePolicies: {namespaceSelector: {}}}", `at '/webhooks/validatePolicies': additional properties 'namespaceSelector' not allowed`},
		{"webhooks: {guardNamespaces: {namespaceSelector: {}}}", `at '/webhooks/guardNamespaces': additional properties 'namespaceSelector' not allowed`},
		{"certificates: {mode: none}", `at '/certificates/mode': value must be one of 'self-managed', 'cert-manager'`},
		{"certificates: {mode: Cert-Manager}", `at '/certificates/mode': value must be one of 'self-managed', 'cert-manager'`},
		{"replicas: 0", `at '/replicas': minimum: got 0, want 1`},
		{"replica: 3", `at '': additional properties 'replica' not allowed`},
		// The pod's security settings are not values, under any spelling.
		{"securityContext: {runAsUser: 0}", `at '': additional properties 'securityContext' not allowed`},
		{"podSecurityContext: {runAsUser: 0}", `at '': additional properties 'podSecurityContext' not allowed`},
		{"image: {digest: latest}", `at '/image/digest': 'latest' does not match pattern`},
		{"server: {tlsMinVersion: \"1.0\"}", `at '/server/tlsMinVersion': value must be one of '', '1.2', '1.3'`},
		{"server: {shutdownDelay: 5}", `at '/server/shutdownDelay': got number, want string`},
		{"podDisruptionBudget: {minAvailable: lots}", `at '/podDisruptionBudget/minAvailable': 'oneOf' failed, none matched`},
		{"extraPolicies: {Team_A: 'x'}", `invalid propertyName 'Team_A'`},
		{"extraPolicies: {agents: 'x'}", `extraPolicies.agents: the ConfigMap agentgate-policy-agents is the default policy; set policy.document to replace it`},
	}
	for _, c := range cases {
		t.Run(c.values, func(t *testing.T) {
			_, err := charttest.Template(t.TempDir(), []string{c.values})
			if err == nil {
				t.Fatal("rendered; want a refusal")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error lacks %q:\n%v", c.want, err)
			}
		})
	}
}

// TestChartRendersParsablePolicies: every policy ConfigMap any scenario renders is a valid policy, and the
// document in the packaged default is the embedded one.
func TestChartRendersParsablePolicies(t *testing.T) {
	for _, s := range charttest.Scenarios {
		for _, o := range render(t, s.Values) {
			labels, _ := at(t, o, "metadata", "labels").(map[string]any)
			if o.Kind() != "ConfigMap" || labels["agentgate.io/policy"] != "true" {
				continue
			}
			doc, _ := at(t, o, "data", "policy.yaml").(string)
			if _, errs := policy.Parse([]byte(doc)); len(errs) > 0 {
				t.Errorf("%s: %s: %v", s.Name, o.Key(), errs)
			}
		}
	}
}

// TestChartPackage: the packaged chart (what `make chart-publish` pushes) carries copies of the files linked
// from manifests/ and renders exactly what the chart directory does.
func TestChartPackage(t *testing.T) {
	dir := t.TempDir()
	if out, err := charttest.Run("helm", "package", charttest.Chart(), "--destination", dir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pkgs, _ := filepath.Glob(filepath.Join(dir, "agentgate-*.tgz"))
	if len(pkgs) != 1 {
		t.Fatalf("helm package wrote %v", pkgs)
	}
	values := filepath.Join(dir, "values.yaml")
	for _, s := range charttest.Scenarios {
		if err := os.WriteFile(values, []byte(s.Values), 0o600); err != nil {
			t.Fatal(err)
		}
		fromDir, err := charttest.Run("helm", "template", charttest.Release, charttest.Chart(), "--namespace", charttest.Namespace, "--values", values)
		if err != nil {
			t.Fatal(err)
		}
		fromPkg, err := charttest.Run("helm", "template", charttest.Release, pkgs[0], "--namespace", charttest.Namespace, "--values", values)
		if err != nil {
			t.Fatal(err)
		}
		if fromDir != fromPkg {
			t.Errorf("%s: the packaged chart renders differently from charts/agentgate", s.Name)
		}
	}
}

// TestChartReadmeListsEveryValue: charts/agentgate/README.md has a row for every value of values.schema.json
// (down to the objects whose keys are the user's, like podLabels), and no row for a value that does not exist.
func TestChartReadmeListsEveryValue(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(charttest.Chart(), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Properties map[string]*schema `json:"properties"`
	}
	var root schema
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(charttest.Chart(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			if i := strings.Index(rest, "` |"); i > 0 {
				rows[rest[:i]] = true
			}
		}
	}
	// A value documented as a whole (a selector, issuerRef) is a leaf; otherwise every key below it is one.
	var values []string
	var walk func(prefix string, s *schema)
	walk = func(prefix string, s *schema) {
		for name, sub := range s.Properties {
			if name == "global" { // Helm's own, for subcharts
				continue
			}
			if len(sub.Properties) > 0 && !rows[prefix+name] {
				walk(prefix+name+".", sub)
				continue
			}
			values = append(values, prefix+name)
		}
	}
	walk("", &root)
	slices.Sort(values)
	for _, v := range values {
		if !rows[v] {
			t.Errorf("README.md has no row for the value %s", v)
		}
		delete(rows, v)
	}
	for r := range rows {
		t.Errorf("README.md documents %s, which values.schema.json does not have", r)
	}
	if len(values) < 40 {
		t.Fatalf("only %d values found: the schema walk is broken", len(values))
	}
}
