package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// weakenBase sets every field of the contract to something an edit can weaken.
const weakenBase = `apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: agents}
spec:
  mode: enforce
  match:
    namespaceSelector:
      matchLabels: {agentgate.io/agents: "true"}
      matchExpressions: [{key: tier, operator: In, values: [agents]}]
    podSelector: {}
  exempt:
    namespaces: [kube-system]
    serviceAccounts: [infra/mesh]
    usernames: [ops-admin]
    containers: [{name: istio-proxy, image: "docker.io/istio/proxyv2:*", checks: [images], serviceAccounts: [infra/mesh]}]
  images:
    allow: ["registry.corp.example/agents/**"]
    deny: ["docker.io/**"]
    denyTags: [latest, dev]
    requireDigest: true
    pinDigests: true
  securityContext:
    readOnlyRootFilesystem: true
    allowedCapabilities: [NET_BIND_SERVICE]
    allowPrivilegeEscalation: false
    runAsNonRoot: true
    seccompProfile: RuntimeDefault
  serviceAccountToken:
    automount: false
    allowServiceAccounts: [agentgate-system/agentgate]
  resources:
    defaults: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: "1", memory: 512Mi}}
    max: {cpu: "4", memory: 8Gi}
    maxPerPod: {cpu: "16", memory: 32Gi}
    allowed: [cpu, memory, ephemeral-storage]
    allowResourceClaims: false
  commands:
    blocked: ["rm -rf /", "shutdown", "reboot"]
    allowed: [python3, /usr/bin/env]
  env:
    denyLiteralSecrets: true
  windows: deny
  exec:
    mode: deny
    allowGroups: [sre]
    interactive: deny
  unknownFields: deny
  scheduling:
    priorityClassNames: [agents-low]
    systemPriorityNamespaces: [agentgate-system]
`

// edit replaces each "old=>new" pair once in doc, failing the test when old is not there (so that a case
// cannot silently stop editing anything when the base changes).
func edit(t *testing.T, doc string, pairs ...string) string {
	t.Helper()
	for _, p := range pairs {
		from, to, ok := strings.Cut(p, "=>")
		if !ok || !strings.Contains(doc, from) {
			t.Fatalf("edit %q: %q not in the document", p, from)
		}
		doc = strings.Replace(doc, from, to, 1)
	}
	return doc
}

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, errs := Parse([]byte(doc))
	if len(errs) > 0 {
		t.Fatalf("%v\n%s", errs.ToAggregate(), doc)
	}
	return p
}

// Attempts to switch a policy off, or part of it, by editing it: each must be caught, at exactly these
// fields, all at once.
func TestWeakeningsCatchOffSwitches(t *testing.T) {
	cases := []struct {
		name  string
		edits []string
		want  []string // fields, in report order
	}{
		{"mode enforce to audit", []string{"mode: enforce=>mode: audit"}, []string{"spec.mode"}},
		{"mode enforce to warn", []string{"mode: enforce=>mode: warn"}, []string{"spec.mode"}},
		{"the namespace added to exempt.namespaces", []string{"namespaces: [kube-system]=>namespaces: [kube-system, team-a]"}, []string{"spec.exempt.namespaces[1]"}},
		{"an exemption replaced by another", []string{"namespaces: [kube-system]=>namespaces: [team-a]"}, []string{"spec.exempt.namespaces[0]"}},
		{"a service account exempted", []string{"serviceAccounts: [infra/mesh]=>serviceAccounts: [infra/mesh, team-a/runner]"}, []string{"spec.exempt.serviceAccounts[1]"}},
		{"a container exemption added", []string{`containers: [{=>containers: [{name: agent, image: "*/**", checks: [images], usernames: [bob]}, {`}, []string{"spec.exempt.containers[0]"}},
		{"a username exempted", []string{"usernames: [ops-admin]=>usernames: [ops-admin, bob]"}, []string{"spec.exempt.usernames[1]"}},
		{"a container exemption relaxes one more check", []string{"checks: [images]=>checks: [images, runAsNonRoot]"}, []string{"spec.exempt.containers[0]"}},
		{"a container exemption for one more requester", []string{"image: \"docker.io/istio/proxyv2:*\", checks: [images], serviceAccounts: [infra/mesh]=>image: \"docker.io/istio/proxyv2:*\", checks: [images], serviceAccounts: [infra/mesh, team-a/runner]"}, []string{"spec.exempt.containers[0]"}},
		{"a container exemption's image broadened", []string{`proxyv2:*"=>*"`}, []string{"spec.exempt.containers[0]"}},
		{"a container exemption renamed", []string{"name: istio-proxy=>name: agent"}, []string{"spec.exempt.containers[0]"}},
		{"a namespace selector that matches nothing", []string{`agentgate.io/agents: "true"}=>agentgate.io/agents: "never"}`}, []string{"spec.match.namespaceSelector"}},
		{"a namespace selector with an added requirement", []string{`values: [agents]}]=>values: [agents]}, {key: agentgate.io/opt-in, operator: Exists}]`}, []string{"spec.match.namespaceSelector"}},
		{"a namespace selector In turned into NotIn", []string{"operator: In=>operator: NotIn"}, []string{"spec.match.namespaceSelector"}},
		{"an opt-in pod selector", []string{"podSelector: {}=>podSelector: {matchLabels: {sandbox: \"on\"}}"}, []string{"spec.match.podSelector"}},
		{"an opt-out pod selector", []string{"podSelector: {}=>podSelector: {matchExpressions: [{key: skip-agentgate, operator: DoesNotExist}]}"}, []string{"spec.match.podSelector"}},
		{"images.allow emptied", []string{`allow: ["registry.corp.example/agents/**"]=>allow: []`}, []string{"spec.images.allow"}},
		{"images.allow removed", []string{"    allow: [\"registry.corp.example/agents/**\"]\n=>"}, []string{"spec.images.allow"}},
		{"an allow pattern added", []string{`allow: ["registry.corp.example/agents/**"]=>allow: ["registry.corp.example/agents/**", "ghcr.io/**"]`}, []string{"spec.images.allow[1]"}},
		{"an allow pattern broadened", []string{"registry.corp.example/agents/**=>registry.corp.example/**"}, []string{"spec.images.allow[0]"}},
		{"a deny pattern removed", []string{`deny: ["docker.io/**"]=>deny: []`}, []string{"spec.images.deny[0]"}},
		{"a deny pattern narrowed", []string{`deny: ["docker.io/**"]=>deny: ["docker.io/library/*"]`}, []string{"spec.images.deny[0]"}},
		{"a denied tag removed", []string{"denyTags: [latest, dev]=>denyTags: [latest]"}, []string{"spec.images.denyTags[1]"}},
		{"requireDigest off", []string{"requireDigest: true=>requireDigest: false"}, []string{"spec.images.requireDigest"}},
		{"pinDigests off", []string{"pinDigests: true=>pinDigests: false"}, []string{"spec.images.pinDigests"}},
		{"a registry pinning may reach at local addresses", []string{"pinDigests: true=>pinDigests: true\n    pinRegistries: [{registry: \"localhost:5000\", localAddresses: true}]"},
			[]string{"spec.images.pinRegistries[0].localAddresses"}},
		{"a registry pinning may ask over plain HTTP", []string{"pinDigests: true=>pinDigests: true\n    pinRegistries: [{registry: \"localhost:5000\", plainHTTP: true}]"},
			[]string{"spec.images.pinRegistries[0].plainHTTP"}},
		{"readOnlyRootFilesystem off", []string{"readOnlyRootFilesystem: true=>readOnlyRootFilesystem: false"}, []string{"spec.securityContext.readOnlyRootFilesystem"}},
		{"a capability allowed", []string{"[NET_BIND_SERVICE]=>[NET_BIND_SERVICE, cap_sys_admin]"}, []string{"spec.securityContext.allowedCapabilities[1]"}},
		{"allowPrivilegeEscalation on", []string{"allowPrivilegeEscalation: false=>allowPrivilegeEscalation: true"}, []string{"spec.securityContext.allowPrivilegeEscalation"}},
		{"runAsNonRoot off", []string{"runAsNonRoot: true=>runAsNonRoot: false"}, []string{"spec.securityContext.runAsNonRoot"}},
		{"seccomp to Localhost", []string{"seccompProfile: RuntimeDefault=>seccompProfile: Localhost"}, []string{"spec.securityContext.seccompProfile"}},
		{"token automount on", []string{"automount: false=>automount: true"}, []string{"spec.serviceAccountToken.automount"}},
		{"a service account allowed a token", []string{"[agentgate-system/agentgate]=>[agentgate-system/agentgate, team-a/default]"}, []string{"spec.serviceAccountToken.allowServiceAccounts[1]"}},
		{"max cpu raised", []string{`max: {cpu: "4"=>max: {cpu: "64"`}, []string{"spec.resources.max[cpu]"}},
		{"max memory removed", []string{`max: {cpu: "4", memory: 8Gi}=>max: {cpu: "4"}`}, []string{"spec.resources.max[memory]"}},
		{"max removed", []string{"    max: {cpu: \"4\", memory: 8Gi}\n=>"}, []string{"spec.resources.max[cpu]", "spec.resources.max[memory]"}},
		{"a default limit raised", []string{`limits: {cpu: "1"=>limits: {cpu: "3"`}, []string{"spec.resources.defaults.limits[cpu]"}},
		{"default requests removed", []string{"requests: {cpu: 100m, memory: 128Mi}, =>"}, []string{"spec.resources.defaults.requests[cpu]", "spec.resources.defaults.requests[memory]"}},
		{"maxPerPod raised", []string{`maxPerPod: {cpu: "16"=>maxPerPod: {cpu: "64"`}, []string{"spec.resources.maxPerPod[cpu]"}},
		{"maxPerPod memory removed", []string{`maxPerPod: {cpu: "16", memory: 32Gi}=>maxPerPod: {cpu: "16"}`}, []string{"spec.resources.maxPerPod[memory]"}},
		{"a GPU allowed", []string{"allowed: [cpu, memory, ephemeral-storage]=>allowed: [cpu, memory, ephemeral-storage, nvidia.com/gpu]"}, []string{"spec.resources.allowed[3]"}},
		{"hugepages allowed with a ceiling", []string{"allowed: [cpu, memory, ephemeral-storage]=>allowed: [cpu, memory, hugepages-2Mi]",
			`max: {cpu: "4", memory: 8Gi}=>max: {cpu: "4", memory: 8Gi, hugepages-2Mi: 1Gi}`}, []string{"spec.resources.allowed[2]"}},
		{"resource claims allowed", []string{"allowResourceClaims: false=>allowResourceClaims: true"}, []string{"spec.resources.allowResourceClaims"}},
		{"priorityClassNames emptied", []string{"priorityClassNames: [agents-low]=>priorityClassNames: []"}, []string{"spec.scheduling.priorityClassNames"}},
		{"a priority class allowed", []string{"priorityClassNames: [agents-low]=>priorityClassNames: [agents-low, batch-high]"}, []string{"spec.scheduling.priorityClassNames[1]"}},
		{"a system class listed", []string{"priorityClassNames: [agents-low]=>priorityClassNames: [agents-low, system-node-critical]"}, []string{"spec.scheduling.priorityClassNames[1]"}},
		{"a namespace given the system classes", []string{"systemPriorityNamespaces: [agentgate-system]=>systemPriorityNamespaces: [agentgate-system, agents]"}, []string{"spec.scheduling.systemPriorityNamespaces[1]"}},
		{"a blocked command removed", []string{`"shutdown", "reboot"]=>"shutdown"]`}, []string{"spec.commands.blocked[2]"}},
		{"commands.blocked emptied", []string{`blocked: ["rm -rf /", "shutdown", "reboot"]=>blocked: []`}, []string{"spec.commands.blocked[0]", "spec.commands.blocked[1]", "spec.commands.blocked[2]"}},
		{"a blocked command narrowed", []string{`"rm -rf /"=>"rm -rf /tmp"`}, []string{"spec.commands.blocked[0]"}},
		{"commands.allowed emptied", []string{"allowed: [python3, /usr/bin/env]=>allowed: []"}, []string{"spec.commands.allowed"}},
		{"an executable allowed", []string{"allowed: [python3, /usr/bin/env]=>allowed: [python3, /usr/bin/env, bash]"}, []string{"spec.commands.allowed[2]"}},
		{"denyLiteralSecrets off", []string{"denyLiteralSecrets: true=>denyLiteralSecrets: false"}, []string{"spec.env.denyLiteralSecrets"}},
		{"windows skipLinuxChecks", []string{"windows: deny=>windows: skipLinuxChecks"}, []string{"spec.windows"}},
		{"exec.mode deny to audit", []string{"    mode: deny=>    mode: audit"}, []string{"spec.exec.mode"}},
		{"exec.mode deny to allow", []string{"    mode: deny=>    mode: allow"}, []string{"spec.exec.mode"}},
		{"exec.mode removed (audit is the default)", []string{"    mode: deny\n=>"}, []string{"spec.exec.mode"}},
		{"a group allowed to exec", []string{"allowGroups: [sre]=>allowGroups: [sre, dev]"}, []string{"spec.exec.allowGroups[1]"}},
		{"the allowed group replaced", []string{"allowGroups: [sre]=>allowGroups: [system:masters]"}, []string{"spec.exec.allowGroups[0]"}},
		{"interactive sessions allowed", []string{"interactive: deny=>interactive: allow"}, []string{"spec.exec.interactive"}},
		{"the exec section removed", []string{"  exec:\n    mode: deny\n    allowGroups: [sre]\n    interactive: deny\n=>"}, []string{"spec.exec.mode", "spec.exec.interactive"}},
		{"unknownFields warn", []string{"unknownFields: deny=>unknownFields: warn"}, []string{"spec.unknownFields"}},
		{"everything at once is reported at once", []string{
			"mode: enforce=>mode: audit",
			"namespaces: [kube-system]=>namespaces: [kube-system, team-a]",
			`allow: ["registry.corp.example/agents/**"]=>allow: []`,
			`"shutdown", "reboot"]=>"shutdown"]`,
		}, []string{"spec.mode", "spec.exempt.namespaces[1]", "spec.images.allow", "spec.commands.blocked[2]"}},
	}
	if len(cases) < 20 {
		t.Fatalf("%d cases; the guard's table keeps at least 20 attempts", len(cases))
	}
	old := mustParse(t, weakenBase)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Weakenings(old, mustParse(t, edit(t, weakenBase, c.edits...)))
			var fields []string
			for _, w := range got {
				fields = append(fields, w.Field)
				if w.Rule == "" || w.Old == "" || w.New == "" || w.Detail == "" || w.Old == w.New {
					t.Errorf("incomplete: %+v", w)
				}
			}
			if !slices.Equal(fields, c.want) {
				t.Errorf("fields %q, want %q", fields, c.want)
			}
			for _, w := range got {
				t.Log(w)
			}
		})
	}
}

// Edits that tighten a policy, or change nothing that matters, pass.
func TestWeakeningsLetTighteningPass(t *testing.T) {
	cases := []struct {
		name  string
		old   []string // edits giving the old version (none: the base)
		edits []string
	}{
		{"audit to enforce", []string{"mode: enforce=>mode: audit"}, nil},
		{"warn to audit", []string{"mode: enforce=>mode: warn"}, []string{"mode: enforce=>mode: audit"}},
		{"mode removed (enforce is the default)", nil, []string{"  mode: enforce\n=>"}},
		{"every default written out removed", nil, []string{
			"    readOnlyRootFilesystem: true\n=>", "    allowPrivilegeEscalation: false\n=>", "    runAsNonRoot: true\n=>",
			"    seccompProfile: RuntimeDefault\n=>", "    automount: false\n=>", "  env:\n    denyLiteralSecrets: true\n=>", "  windows: deny\n=>"}},
		{"metadata.name changed", nil, []string{"name: agents}=>name: sandbox}"}},
		{"an exemption removed", nil, []string{"namespaces: [kube-system]=>namespaces: []", "serviceAccounts: [infra/mesh]=>serviceAccounts: []",
			"usernames: [ops-admin]=>usernames: []",
			`containers: [{name: istio-proxy, image: "docker.io/istio/proxyv2:*", checks: [images], serviceAccounts: [infra/mesh]}]=>containers: []`}},
		{"an exemption's image written with index.docker.io", nil, []string{"docker.io/istio=>docker.io/istio"}},
		{"a namespace selector requirement dropped", nil, []string{`matchExpressions: [{key: tier, operator: In, values: [agents]}]=>matchExpressions: []`}},
		{"the namespace selector emptied", nil, []string{"    namespaceSelector:\n      matchLabels: {agentgate.io/agents: \"true\"}\n      matchExpressions: [{key: tier, operator: In, values: [agents]}]\n=>    namespaceSelector: {}\n"}},
		{"the namespace selector removed", nil, []string{"    namespaceSelector:\n      matchLabels: {agentgate.io/agents: \"true\"}\n      matchExpressions: [{key: tier, operator: In, values: [agents]}]\n=>"}},
		{"the namespace selector rewritten as matchExpressions", nil, []string{`matchLabels: {agentgate.io/agents: "true"}=>matchLabels: {}`,
			"values: [agents]}]=>values: [agents]}, {key: agentgate.io/agents, operator: In, values: [\"true\"]}]"}},
		{"an opt-in pod selector removed", []string{"podSelector: {}=>podSelector: {matchLabels: {sandbox: \"on\"}}"}, nil},
		{"an allow pattern removed", []string{`allow: ["registry.corp.example/agents/**"]=>allow: ["registry.corp.example/agents/**", "ghcr.io/**"]`}, nil},
		{"an allowlist set where there was none", []string{`allow: ["registry.corp.example/agents/**"]=>allow: []`}, nil},
		{"an allow pattern written with index.docker.io", []string{`allow: ["registry.corp.example/agents/**"]=>allow: ["docker.io/library/*"]`},
			[]string{`allow: ["registry.corp.example/agents/**"]=>allow: ["index.docker.io/library/*"]`}},
		{"a deny pattern and a denied tag added", nil, []string{`deny: ["docker.io/**"]=>deny: ["docker.io/**", "ghcr.io/**"]`, "denyTags: [latest, dev]=>denyTags: [latest, dev, main]"}},
		{"requireDigest and pinDigests on", []string{"requireDigest: true=>requireDigest: false", "pinDigests: true=>pinDigests: false"}, nil},
		{"a pinRegistries entry removed", []string{"pinDigests: true=>pinDigests: true\n    pinRegistries: [{registry: \"localhost:5000\", localAddresses: true}]"}, nil},
		{"a pinRegistries entry respelled", []string{"pinDigests: true=>pinDigests: true\n    pinRegistries: [{registry: \"localhost:5000\", localAddresses: true}]"},
			[]string{"pinDigests: true=>pinDigests: true\n    pinRegistries: [{registry: \"LOCALHOST:5000\", localAddresses: true}]"}},
		{"a capability removed", nil, []string{"allowedCapabilities: [NET_BIND_SERVICE]=>allowedCapabilities: []"}},
		{"a capability respelled", nil, []string{"[NET_BIND_SERVICE]=>[cap_net_bind_service]"}},
		{"token automount off", []string{"automount: false=>automount: true"}, nil},
		{"resources lowered and a bound added", nil, []string{`max: {cpu: "4", memory: 8Gi}=>max: {cpu: "2", memory: 8Gi, ephemeral-storage: 1Gi}`,
			`limits: {cpu: "1", memory: 512Mi}=>limits: {cpu: 500m, memory: 512Mi}`}},
		{"maxPerPod lowered and allowed narrowed", nil, []string{`maxPerPod: {cpu: "16"=>maxPerPod: {cpu: "8"`,
			"allowed: [cpu, memory, ephemeral-storage]=>allowed: [cpu, memory]"}},
		{"allowed unset: the same three", nil, []string{"    allowed: [cpu, memory, ephemeral-storage]\n=>"}},
		{"a priority class removed", []string{"priorityClassNames: [agents-low]=>priorityClassNames: [agents-low, batch-high]"}, []string{}},
		{"a class list set where there was none", []string{"priorityClassNames: [agents-low]=>priorityClassNames: []"}, []string{}},
		{"a bound written in other units", nil, []string{"memory: 8Gi=>memory: 8192Mi", `cpu: "4"=>cpu: 4000m`}},
		{"a blocked command added", nil, []string{`"shutdown", "reboot"]=>"shutdown", "reboot", "halt"]`}},
		{"a blocked command respaced", nil, []string{`"rm -rf /"=>"rm  -rf   /"`}},
		{"an allowed executable removed", nil, []string{"allowed: [python3, /usr/bin/env]=>allowed: [python3]"}},
		{"an executable allowlist set where there was none", []string{"allowed: [python3, /usr/bin/env]=>allowed: []"}, nil},
		{"denyLiteralSecrets and windows: deny back on", []string{"denyLiteralSecrets: true=>denyLiteralSecrets: false", "windows: deny=>windows: skipLinuxChecks"}, nil},
		{"exec.mode allow to audit", []string{"    mode: deny=>    mode: allow"}, []string{"    mode: deny=>    mode: audit"}},
		{"exec.mode audit to deny", []string{"    mode: deny=>    mode: audit"}, nil},
		{"an allowed group removed, interactive deny set", []string{"interactive: deny=>interactive: allow"}, []string{"allowGroups: [sre]=>allowGroups: []"}},
		{"unknownFields: deny back on", []string{"unknownFields: deny=>unknownFields: warn"}, nil},
		{"unknownFields: deny left out (the default)", nil, []string{"  unknownFields: deny\n=>"}},
		{"seccomp from Localhost to Localhost", []string{"seccompProfile: RuntimeDefault=>seccompProfile: Localhost"}, []string{"seccompProfile: RuntimeDefault=>seccompProfile: Localhost"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := mustParse(t, edit(t, weakenBase, c.old...))
			cur := mustParse(t, edit(t, weakenBase, c.edits...))
			if got := Weakenings(old, cur); len(got) > 0 {
				t.Errorf("a tightening reported as weakening: %v", got)
			}
		})
	}
}

func TestWeakeningRendering(t *testing.T) {
	old := mustParse(t, weakenBase)
	got := Weakenings(old, mustParse(t, edit(t, weakenBase, "mode: enforce=>mode: audit", `max: {cpu: "4"=>max: {cpu: "64"`,
		`allow: ["registry.corp.example/agents/**"]=>allow: []`, "[NET_BIND_SERVICE]=>[NET_BIND_SERVICE, cap_sys_admin]")))
	want := []Weakening{
		{Rule: "mode", Field: "spec.mode", Old: `"enforce"`, New: `"audit"`},
		{Rule: "images", Field: "spec.images.allow", Old: `["registry.corp.example/agents/**"]`, New: "[]"},
		{Rule: "securityContext", Field: "spec.securityContext.allowedCapabilities[1]", Old: "(none)", New: `"cap_sys_admin"`},
		{Rule: "resources", Field: "spec.resources.max[cpu]", Old: "4", New: "64"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		g := got[i]
		g.Detail = ""
		if g != want[i] {
			t.Errorf("got %+v, want %+v", g, want[i])
		}
	}
	if s := got[0].String(); s != `spec.mode: "enforce" -> "audit": the policy stops denying anything: its violations only go to the audit log` {
		t.Errorf("String: %s", s)
	}
}

// specLeaves lists the JSON paths of a policy type's fields, down to the values a rule compares: strings,
// bools, lists of them, maps, label selectors and quantities are leaves; structs (also inside lists, "[]")
// are walked.
func specLeaves(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			name = f.Name
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		list := ""
		if ft.Kind() == reflect.Slice {
			ft, list = ft.Elem(), "[]"
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[metav1.LabelSelector]() && ft != reflect.TypeFor[resource.Quantity]() {
			out = append(out, specLeaves(ft, path+list)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// Every field of Spec is judged by exactly one weakening rule: a field added to the policy without a rule
// fails here, and so does a rule naming a field that does not exist.
func TestWeakeningRulesCoverSpec(t *testing.T) {
	owner := map[string]string{}
	for _, r := range weakeningRules {
		for _, f := range r.fields {
			if prev, dup := owner[f]; dup {
				t.Errorf("spec.%s is judged by the rules %q and %q: one rule, one place", f, prev, r.section)
			}
			owner[f] = r.section
			if top, _, _ := strings.Cut(f, "."); strings.TrimSuffix(top, "[]") != r.section {
				t.Errorf("rule %q names spec.%s, outside its section", r.section, f)
			}
		}
	}
	leaves := specLeaves(reflect.TypeFor[Spec](), "")
	for _, l := range leaves {
		if _, ok := owner[l]; !ok {
			t.Errorf("spec.%s has no weakening rule: say in policy/weaken.go (weakeningRules) how a change of it lets more pods in or hardens them less, and in README \"What counts as weakening a policy\"", l)
		}
		delete(owner, l)
	}
	for f, r := range owner {
		t.Errorf("rule %q names spec.%s, which is no field of Spec", r, f)
	}
	if len(leaves) < 25 {
		t.Errorf("only %d fields found in Spec: the walk is broken: %v", len(leaves), leaves)
	}
}

// The walk the meta-test relies on finds a field nested in a list of structs, as a new exemption field
// would be.
func TestSpecLeavesFindsNestedFields(t *testing.T) {
	type entry struct {
		Name   string   `json:"name"`
		Checks []string `json:"checks,omitempty"`
	}
	type section struct {
		Entries  []entry               `json:"entries"`
		Selector *metav1.LabelSelector `json:"selector"`
		On       *bool                 `json:"on"`
	}
	type spec struct {
		Section section `json:"section"`
	}
	got := specLeaves(reflect.TypeFor[spec](), "")
	want := []string{"section.entries[].name", "section.entries[].checks", "section.selector", "section.on"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
