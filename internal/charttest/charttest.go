// Package charttest renders charts/agentgate with bin/helm and manifests/ with bin/kubectl's kustomize, and
// compares the two object by object, so that the chart tests (charts/) and the e2e dry-runs (e2e/) read
// renders one way.
package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Namespace is the namespace manifests/ installs into; the chart is rendered into it for the comparison.
const Namespace = "agentgate-system"

// Release is the release name the tests render with.
const Release = "agentgate"

// HelmLabels are the labels the chart adds that manifests/ does not have: the only difference the parity test
// forgives. Everything else, including every annotation, must be equal.
var HelmLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
}

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Chart is the chart's directory.
func Chart() string { return filepath.Join(Root(), "charts", "agentgate") }

// Tool is the path of bin/NAME, or an error that says how to get it.
func Tool(name string) (string, error) {
	p := filepath.Join(Root(), "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found at %s: run `make test` (its prerequisites `make tools` and `make controlplane` build bin/)", name, p)
	}
	return p, nil
}

// Run runs bin/NAME with args and returns its standard output; the error carries standard error.
func Run(name string, args ...string) (string, error) {
	bin, err := Tool(name)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// Helm keeps caches and a repository config under HOME; the tests need neither.
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+os.TempDir()+"/agentgate-helm-cache",
		"HELM_CONFIG_HOME="+os.TempDir()+"/agentgate-helm-config", "HELM_DATA_HOME="+os.TempDir()+"/agentgate-helm-data")
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// Template renders the chart into Namespace with the given values files (YAML text, in order) and --set flags.
func Template(dir string, values []string, sets ...string) (string, error) {
	args := []string{"template", Release, Chart(), "--namespace", Namespace}
	for i, v := range values {
		f := filepath.Join(dir, fmt.Sprintf("values-%d.yaml", i))
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			return "", err
		}
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return Run("helm", args...)
}

// Kustomize renders the kustomization that has resources and components (paths relative to the repository
// root), written into dir.
func Kustomize(dir string, resources, components []string) (string, error) {
	rel := func(paths []string) ([]string, error) {
		var out []string
		for _, p := range paths {
			r, err := filepath.Rel(dir, filepath.Join(Root(), p))
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	res, err := rel(resources)
	if err != nil {
		return "", err
	}
	comp, err := rel(components)
	if err != nil {
		return "", err
	}
	k, err := yaml.Marshal(map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
		"resources": res, "components": comp,
	})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), k, 0o600); err != nil {
		return "", err
	}
	return Run("kubectl", "kustomize", "--load-restrictor=LoadRestrictionsNone", dir)
}

// Object is one rendered Kubernetes object, decoded as JSON would be.
type Object map[string]any

// Key names an object the way the API server does: group/version, kind, namespace and name.
func (o Object) Key() string {
	meta, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v %v %v/%v", o["apiVersion"], o["kind"], meta["namespace"], meta["name"])
}

// Kind is the object's kind.
func (o Object) Kind() string { s, _ := o["kind"].(string); return s }

// Objects decodes a multi-document YAML stream; empty documents (a template that rendered nothing) are skipped.
func Objects(stream string) ([]Object, error) {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var objs []Object
	for i := 0; ; i++ {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var o Object
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		if len(o) == 0 {
			continue
		}
		objs = append(objs, o)
	}
}

// WithoutHelmLabels returns a deep copy of o without HelmLabels in metadata.labels (and without labels at
// all when nothing else is left).
func WithoutHelmLabels(o Object) Object {
	var c Object
	data, _ := yaml.Marshal(o)
	_ = yaml.Unmarshal(data, &c)
	meta, _ := c["metadata"].(map[string]any)
	if labels, ok := meta["labels"].(map[string]any); ok {
		for _, l := range HelmLabels {
			delete(labels, l)
		}
		if len(labels) == 0 {
			delete(meta, "labels")
		}
	}
	return c
}

// Compare returns every difference between two renders, object by object and field by field, after dropping
// HelmLabels from the chart's objects. Empty means equal.
func Compare(chart, kustomize []Object) []string {
	index := func(objs []Object) (map[string]Object, []string) {
		m := map[string]Object{}
		var dup []string
		for _, o := range objs {
			if _, ok := m[o.Key()]; ok {
				dup = append(dup, o.Key())
			}
			m[o.Key()] = o
		}
		return m, dup
	}
	c, cdup := index(chart)
	k, kdup := index(kustomize)
	var diffs []string
	for _, d := range cdup {
		diffs = append(diffs, "chart renders twice: "+d)
	}
	for _, d := range kdup {
		diffs = append(diffs, "kustomize renders twice: "+d)
	}
	keys := map[string]bool{}
	for key := range c {
		keys[key] = true
	}
	for key := range k {
		keys[key] = true
	}
	sorted := make([]string, 0, len(keys))
	for key := range keys {
		sorted = append(sorted, key)
	}
	sort.Strings(sorted)
	for _, key := range sorted {
		co, inChart := c[key]
		ko, inKust := k[key]
		switch {
		case !inChart:
			diffs = append(diffs, "only in kustomize: "+key)
		case !inKust:
			diffs = append(diffs, "only in the chart: "+key)
		default:
			for _, d := range DiffValues("", map[string]any(WithoutHelmLabels(co)), map[string]any(ko)) {
				diffs = append(diffs, key+": "+d)
			}
		}
	}
	return diffs
}

// DiffValues lists the paths where two decoded JSON values differ, with both values.
func DiffValues(path string, chart, kustomize any) []string {
	if reflect.DeepEqual(chart, kustomize) {
		return nil
	}
	switch c := chart.(type) {
	case map[string]any:
		k, ok := kustomize.(map[string]any)
		if !ok {
			break
		}
		var names []string
		for n := range c {
			names = append(names, n)
		}
		for n := range k {
			if _, ok := c[n]; !ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		var diffs []string
		for _, n := range names {
			diffs = append(diffs, DiffValues(path+"."+n, c[n], k[n])...)
		}
		return diffs
	case []any:
		k, ok := kustomize.([]any)
		if !ok || len(k) != len(c) {
			break
		}
		var diffs []string
		for i := range c {
			diffs = append(diffs, DiffValues(fmt.Sprintf("%s[%d]", path, i), c[i], k[i])...)
		}
		return diffs
	}
	cj, _ := yaml.Marshal(chart)
	kj, _ := yaml.Marshal(kustomize)
	return []string{fmt.Sprintf("%s: chart %s, kustomize %s", path, oneLine(cj), oneLine(kj))}
}

func oneLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "\n", " ⏎ ")
}

// Scenario is one set of chart values the tests render, lint and apply with a server-side dry-run.
type Scenario struct {
	Name   string
	Values string // a values file
	// Kustomize is the kustomize render the chart must equal with these values (resources and components,
	// relative to the repository root); nil when no kustomization corresponds.
	Kustomize *Kustomization
}

// Kustomization is a kustomization's resources and components, relative to the repository root.
type Kustomization struct{ Resources, Components []string }

// Scenarios: the defaults and each mode manifests/ offers (compared with it), and every other value set away
// from its default at once.
var Scenarios = []Scenario{
	{Name: "default", Kustomize: &Kustomization{Resources: []string{"manifests"}}},
	{Name: "monitoring", Values: monitoringOn,
		Kustomize: &Kustomization{Resources: []string{"manifests"}, Components: []string{"manifests/components/monitoring"}}},
	{Name: "cert-manager", Values: "certificates: {mode: cert-manager}\n",
		Kustomize: &Kustomization{Resources: []string{"manifests/overlays/cert-manager"}}},
	{Name: "cert-manager+monitoring", Values: "certificates: {mode: cert-manager}\n" + monitoringOn,
		Kustomize: &Kustomization{Resources: []string{"manifests/overlays/cert-manager"}, Components: []string{"manifests/components/monitoring"}}},
	{Name: "tuned", Values: tuned},
}

const monitoringOn = `monitoring:
  serviceMonitor: {enabled: true}
  prometheusRule: {enabled: true}
  dashboard: {enabled: true}
`

// tuned sets every value away from its default.
const tuned = `namespace: {create: false}
image:
  repository: registry.example/agentgate
  tag: v9.9.9
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  pullPolicy: Always
imagePullSecrets: [pull-secret]
replicas: 3
updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}
resources:
  requests: {cpu: 200m, memory: 128Mi}
  limits: {cpu: "2", memory: 512Mi}
podDisruptionBudget: {enabled: true, maxUnavailable: 1}
priorityClassName: ""
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector: {matchLabels: {app.kubernetes.io/name: agentgate}}
topologySpreadConstraints: []
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: admission, effect: NoSchedule}]
podLabels: {team: platform, app.kubernetes.io/component: spoofed}
podAnnotations: {example.com/note: tuned}
terminationGracePeriodSeconds: 45
server:
  shutdownDelay: 10s
  adminGroups: [platform-admins, system:masters]
  tlsMinVersion: "1.2"
  logLevel: debug
  auditInterval: 15m
  policyReports: false
  extraArgs: [--digest-timeout=3s]
certificates:
  mode: cert-manager
  certManager:
    issuerRef: {kind: ClusterIssuer, name: corp-ca, group: cert-manager.io}
    secretName: agentgate-cert
    duration: 720h
    renewBefore: 240h
webhooks:
  annotations: {example.com/owner: platform}
  harden:
    failurePolicy: Ignore
    timeoutSeconds: 3
    reinvocationPolicy: Never
    namespaceSelector: {}
    objectSelector: {matchExpressions: [{key: agentgate.io/skip, operator: DoesNotExist}]}
  validateWorkloads:
    failurePolicy: Ignore
    timeoutSeconds: 10
    namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [kube-system, team-a]}]}
    objectSelector: {matchLabels: {agentgate.io/judge: "true"}}
  validatePolicies: {failurePolicy: Fail, timeoutSeconds: 2}
  guardNamespaces: {failurePolicy: Ignore, timeoutSeconds: 4}
  guardPolicies: {failurePolicy: Ignore, timeoutSeconds: 4}
policy:
  create: true
  document: |
    apiVersion: agentgate.io/v1alpha1
    kind: AgentPolicy
    metadata: {name: agents}
    spec:
      mode: warn
extraPolicies:
  team-a: |
    apiVersion: agentgate.io/v1alpha1
    kind: AgentPolicy
    metadata: {name: team-a}
    spec:
      mode: enforce
      images: {allow: ["registry.example/team-a/**"]}
monitoring:
  serviceMonitor: {enabled: true, interval: 15s, labels: {release: prometheus}}
  prometheusRule: {enabled: true, labels: {release: prometheus}}
  dashboard: {enabled: true, labels: {grafana_dashboard: "1", team: platform}, namespace: monitoring}
`
