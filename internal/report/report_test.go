package report

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"agentgate.io/agentgate/internal/manifest"
	"agentgate.io/agentgate/policy"
)

const (
	examples = "../../examples/"
	// minimalPod is admitted by the default policy once the mutating webhook has hardened it.
	minimalPod = `apiVersion: v1
kind: Pod
metadata:
  name: minimal
  namespace: agents
spec:
  containers:
    - name: runner
      image: registry.corp.example/agents/runner:1.4.2
`
	// hostPIDPod is denied by the default policy, whatever hardening does.
	hostPIDPod = `apiVersion: v1
kind: Pod
metadata: {name: host, namespace: agents}
spec:
  hostPID: true
  containers: [{name: runner, image: "registry.corp.example/agents/runner:1.4.2"}]
`
	deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.corp.example/agents/web:2.0.0"}]
`
)

func mustPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, errs := policy.Parse([]byte(doc))
	if len(errs) > 0 {
		t.Fatalf("policy: %v", errs.ToAggregate())
	}
	return p
}

// judged returns a run of the default policy (or the given ones) over sources given as name, data pairs.
func judged(t *testing.T, r *Run, sources ...string) *Run {
	t.Helper()
	if r.Set == nil {
		r.Set = policy.NewSet(policy.Default())
	}
	for i := 0; i+1 < len(sources); i += 2 {
		r.Judge(&manifest.Source{Name: sources[i], Data: []byte(sources[i+1])})
	}
	return r
}

// entries renders what Judge recorded, one line per object.
func entries(r *Run) []string {
	var out []string
	for _, f := range r.files {
		if f.err != nil {
			out = append(out, fmt.Sprintf("%s: error: %v", f.name, f.err))
			continue
		}
		for _, d := range f.docs {
			for _, e := range d.entries {
				s := e.label(len(f.docs) > 1) + " " + e.object() + "@" + fmt.Sprint(e.line())
				switch {
				case e.err != nil:
					s += " error: " + e.err.Error()
				case e.skipped != "":
					s += " skipped"
				default:
					s += fmt.Sprintf(" ns=%s allowed=%v matched=%v violations=%d patched=%v", e.namespace, e.result.Allowed(), e.result.Matched, len(e.result.Violations), len(e.patches) > 0)
				}
				if len(d.fixOps) > 0 && e == d.entries[len(d.entries)-1] {
					s += " fixed"
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func TestJudge(t *testing.T) {
	list := "apiVersion: v1\nkind: List\nitems:\n  - " + strings.ReplaceAll(strings.TrimSpace(deployment), "\n", "\n    ") +
		"\n  - {apiVersion: v1, kind: Secret, metadata: {name: s}}\n"
	agentsOnly := mustPolicy(t, `apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: agents}
spec:
  match: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: agents}}}
`)
	for _, tc := range []struct {
		name    string
		run     Run
		sources []string
		want    []string
	}{
		{"a Pod: the mutating webhook's patch, then judged hardened", Run{}, []string{"p.yaml", minimalPod},
			[]string{"p.yaml Pod/minimal@1 ns=agents allowed=true matched=[agents] violations=0 patched=true"}},
		{"a Pod denied anyway: not patched", Run{}, []string{"p.yaml", hostPIDPod},
			[]string{"p.yaml Pod/host@1 ns=agents allowed=false matched=[agents] violations=1 patched=false"}},
		{"a controller: never patched, judged as it will be after hardening", Run{}, []string{"d.yaml", deployment},
			[]string{"d.yaml Deployment/web@1 ns=default allowed=true matched=[agents] violations=0 patched=false"}},
		{"--fix hardens controllers too", Run{Fix: true}, []string{"d.yaml", deployment},
			[]string{"d.yaml Deployment/web@1 ns=default allowed=true matched=[agents] violations=0 patched=false fixed"}},
		{"List items, other kinds skipped", Run{Fix: true}, []string{"l.yaml", list},
			[]string{
				"l.yaml.items[0] Deployment/web@4 ns=default allowed=true matched=[agents] violations=0 patched=false",
				"l.yaml.items[1] Secret/s@13 skipped fixed",
			}},
		{"documents numbered, empty ones not counted", Run{}, []string{"m.yaml", "# c\n---\n" + minimalPod + "---\n" + hostPIDPod},
			[]string{
				"m.yaml#1 Pod/minimal@3 ns=agents allowed=true matched=[agents] violations=0 patched=true",
				"m.yaml#2 Pod/host@13 ns=agents allowed=false matched=[agents] violations=1 patched=false",
			}},
		{"namespace labels known: kubernetes.io/metadata.name added", Run{Set: policy.NewSet(agentsOnly), NamespaceLabels: map[string]string{}},
			[]string{"p.yaml", minimalPod, "d.yaml", deployment},
			[]string{
				"p.yaml Pod/minimal@1 ns=agents allowed=true matched=[agents] violations=0 patched=true",
				"d.yaml Deployment/web@1 ns=default allowed=true matched=[] violations=0 patched=false",
			}},
		{"NetworkPolicies: judged against the policies that manage the network, never patched", Run{Set: policy.NewSet(mustPolicy(t, `apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: net}
spec:
  network: {manage: true, egress: {allow: [{cidr: 10.0.0.0/8, ports: [{port: 443}]}]}}
`))}, []string{"n.yaml", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: agents}
spec: {podSelector: {}, egress: [{}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: agents}
spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}], ports: [{port: 443}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: typo}
spec: {podSelector: {}, egres: []}
---
apiVersion: networking.k8s.io/v1beta1
kind: NetworkPolicy
metadata: {name: old}
`},
			[]string{
				"n.yaml#1 NetworkPolicy/open@1 ns=agents allowed=false matched=[net] violations=1 patched=false",
				"n.yaml#2 NetworkPolicy/api@6 ns=agents allowed=true matched=[net] violations=0 patched=false",
				`n.yaml#3 NetworkPolicy/typo@14 error: decoding NetworkPolicy: unknown field "spec.egres"`,
				`n.yaml#4 NetworkPolicy/old@16 error: apiVersion: Unsupported value: "networking.k8s.io/v1beta1": agentgate judges networking.k8s.io/v1 NetworkPolicies`,
			}},
		{"Secrets: a service-account token Secret in a selected namespace is refused; other Secrets are skipped", Run{}, []string{"s.yaml", `apiVersion: v1
kind: Secret
metadata: {name: ci-settings, namespace: agents, annotations: {kubernetes.io/service-account.name: build-bot}}
type: kubernetes.io/service-account-token
---
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: agents}
stringData: {password: x}
---
apiVersion: v1
kind: Secret
metadata: {name: dup, namespace: agents}
type: Opaque
type: kubernetes.io/service-account-token
`},
			[]string{
				"s.yaml#1 Secret/ci-settings@1 ns=agents allowed=false matched=[agents] violations=1 patched=false",
				`s.yaml#2 Secret/db@6 skipped`,
				// Two types: refused by the YAML reader already, never judged by one of them.
				`s.yaml#3 /(unnamed)@15 error: not valid YAML: yaml: unmarshal errors: line 15: key "type" already set in map`,
			}},
		{"generateName", Run{}, []string{"g.yaml", strings.Replace(minimalPod, "name: minimal", "generateName: job-", 1)},
			[]string{"g.yaml Pod/job-*@1 ns=agents allowed=true matched=[agents] violations=0 patched=true"}},
		{"errors name their line", Run{}, []string{
			"invalid.yaml", minimalPod + "      ports: [{containerPort: eighty}]\n",
			// A field agentgate's k8s.io/api does not know is judged, not an error (check unknownFields).
			"unknown.yaml", strings.Replace(minimalPod, "image:", "imag:", 1),
			"nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n",
			"noversion.yaml", "kind: Pod\n",
			"badversion.yaml", "apiVersion: a/b/c\nkind: Pod\n",
			"scalar.yaml", "# c\nhello\n",
			"bad.yaml", "a: 1\nb: [\n",
			"norc.yaml", "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec: {}\n",
			"empty.yaml", "# nothing\n",
			"array.json", "[]",
		}, []string{
			"invalid.yaml Pod/minimal@10 error: decoding Pod: spec.containers[0].ports[0].containerPort: cannot decode JSON string into int32",
			"unknown.yaml Pod/minimal@1 ns=agents allowed=false matched=[agents] violations=2 patched=false",
			"nokind.yaml /x@1 error: kind: Required value: every Kubernetes object names its kind",
			"noversion.yaml Pod/(unnamed)@1 error: apiVersion: Required value: every Kubernetes object names its apiVersion",
			`badversion.yaml Pod/(unnamed)@1 error: apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c`,
			"scalar.yaml /(unnamed)@2 error: not a Kubernetes object: a mapping with apiVersion, kind and metadata is expected",
			"bad.yaml /(unnamed)@2 error: not valid YAML: did not find expected node content",
			`norc.yaml ReplicationController/rc@1 error: ReplicationController "rc": spec.template: Required value`,
			"empty.yaml: error: empty: no Kubernetes object in it (only blank lines or comments)",
			"array.json: error: line 1: a JSON array is not a Kubernetes object (put several objects in {\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [...]})",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run
			got := entries(judged(t, &r, tc.sources...))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestJudgeUnreadable(t *testing.T) {
	r := &Run{Set: policy.NewSet(policy.Default())}
	r.Judge(&manifest.Source{Name: "x.yaml", Err: errors.New("permission denied")})
	if got := entries(r); len(got) != 1 || got[0] != "x.yaml: error: permission denied" {
		t.Errorf("got %q", got)
	}
}

func TestTally(t *testing.T) {
	for _, tc := range []struct {
		t    Tally
		want string
		exit int
	}{
		{Tally{}, "0 workloads checked: 0 admitted, 0 denied", ExitAdmitted},
		{Tally{Workloads: 1, Admitted: 1, Mutated: 1}, "1 workload checked: 1 admitted (1 after mutation), 0 denied", ExitAdmitted},
		{Tally{Workloads: 2, Admitted: 1, Denied: 1, Violations: 1, Warnings: 2, Audits: 1},
			"2 workloads checked: 1 admitted, 1 denied; 1 violation; 2 warnings; 1 audit finding", ExitDenied},
		{Tally{Workloads: 1, Denied: 1, Violations: 3, Audits: 2, Skipped: 4, Errors: 1},
			"1 workload checked: 0 admitted, 1 denied; 3 violations; 2 audit findings; 4 skipped; 1 error", ExitUnusable},
		{Tally{Errors: 2}, "0 workloads checked: 0 admitted, 0 denied; 2 errors", ExitUnusable},
	} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.t, got, tc.want)
		}
		if got := tc.t.ExitCode(); got != tc.exit {
			t.Errorf("%+v: exit %d, want %d", tc.t, got, tc.exit)
		}
	}
	r := judged(t, &Run{}, "a.yaml", minimalPod+"---\n"+hostPIDPod+"---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "b.yaml", "a: [")
	want := Tally{Workloads: 2, Admitted: 1, Denied: 1, Mutated: 1, Violations: 1, Skipped: 1, Errors: 1}
	if got := r.Tally(); got != want {
		t.Errorf("Tally() = %+v, want %+v", got, want)
	}
}

func writeText(r *Run) (out, notes string) {
	var o, n bytes.Buffer
	r.WriteText(&o, &n)
	return o.String(), n.String()
}
