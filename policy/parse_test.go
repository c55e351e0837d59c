package policy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// updateGolden rewrites the golden files under testdata/ instead of comparing with them:
//
//	go test ./policy/ -run 'Golden|Patch|Parse' -update
var updateGolden = flag.Bool("update", false, "rewrite golden files in testdata/ instead of comparing")

// compareGolden compares got with testdata/<name>, or writes it there with -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// policyFromDefault parses the embedded default policy after edit has changed its document: the way tests
// build variants of the default without copying it.
func policyFromDefault(t testing.TB, edit func(ap *AgentPolicy)) *Policy {
	t.Helper()
	var ap AgentPolicy
	if err := yaml.UnmarshalStrict(DefaultPolicyYAML(), &ap); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	if edit != nil {
		edit(&ap)
	}
	doc, err := yaml.Marshal(&ap)
	if err != nil {
		t.Fatal(err)
	}
	p, errs := Parse(doc)
	if len(errs) > 0 {
		t.Fatalf("policy variant does not parse: %v\n%s", errs.ToAggregate(), doc)
	}
	return p
}

func errorStrings(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func TestDefaultPolicyParses(t *testing.T) {
	p, errs := Parse(DefaultPolicyYAML())
	if len(errs) > 0 {
		t.Fatalf("embedded default policy: %v", errs.ToAggregate())
	}
	d := Default()
	if p.Name != "agents" || d.Name != "agents" {
		t.Errorf("name = %q / %q, want agents", p.Name, d.Name)
	}
	s := d.Spec
	if s.Mode != ModeEnforce || s.Windows != WindowsDeny {
		t.Errorf("mode %q windows %q, want enforce, deny", s.Mode, s.Windows)
	}
	sc := s.SecurityContext
	if !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !*sc.RunAsNonRoot || sc.SeccompProfile != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("securityContext = %+v, want the strict choices", sc)
	}
	if got := capList(sc.AllowedCapabilities); got != "[NET_BIND_SERVICE]" {
		t.Errorf("allowedCapabilities = %s", got)
	}
	if *s.ServiceAccountToken.Automount || !*s.Env.DenyLiteralSecrets {
		t.Errorf("automount %v denyLiteralSecrets %v", *s.ServiceAccountToken.Automount, *s.Env.DenyLiteralSecrets)
	}
	if got := strings.Join(s.Images.DenyTags, ","); got != "latest" {
		t.Errorf("denyTags = %q", got)
	}
	if len(p.allow) != 1 || p.allow[0].source != "registry.corp.example/agents/**" {
		t.Errorf("allow = %+v", p.allow)
	}
	for _, rq := range []struct {
		list corev1.ResourceList
		name corev1.ResourceName
		want string
	}{
		{s.Resources.Defaults.Requests, corev1.ResourceCPU, "100m"},
		{s.Resources.Defaults.Requests, corev1.ResourceMemory, "128Mi"},
		{s.Resources.Defaults.Limits, corev1.ResourceCPU, "1"},
		{s.Resources.Defaults.Limits, corev1.ResourceMemory, "512Mi"},
		{s.Resources.Max, corev1.ResourceCPU, "4"},
		{s.Resources.Max, corev1.ResourceMemory, "8Gi"},
	} {
		q := rq.list[rq.name]
		if q.Cmp(resource.MustParse(rq.want)) != 0 {
			t.Errorf("%s = %s, want %s", rq.name, q.String(), rq.want)
		}
	}
	// DefaultPolicyYAML hands out a copy: a caller cannot change the embedded document.
	b := DefaultPolicyYAML()
	b[0] = 'X'
	if DefaultPolicyYAML()[0] == 'X' {
		t.Error("DefaultPolicyYAML returns the embedded slice itself")
	}
}

const policyHead = "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\n"

func TestParseStrictUnknownFields(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // field paths, in the decoder's order
	}{
		{"top level", policyHead + "spc: {}\n", []string{"spc"}},
		{"metadata", "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p, namespace: x}\n", []string{"metadata.namespace"}},
		{"spec", policyHead + "spec: {enforce: true}\n", []string{"spec.enforce"}},
		{"spec.images", policyHead + "spec:\n  images: {alow: [x]}\n", []string{"spec.images.alow"}},
		{"list element", policyHead + "spec:\n  exempt:\n    containers:\n    - {name: a, image: 'docker.io/a:*', checks: [images], usernames: [alice]}\n    - {name: b, image: 'docker.io/b:*', nme: c, checks: [images], usernames: [alice]}\n", []string{"spec.exempt.containers[1].nme"}},
		{"resources.defaults", policyHead + "spec:\n  resources: {defaults: {request: {cpu: 1}}}\n", []string{"spec.resources.defaults.request"}},
		{"selector", policyHead + "spec:\n  match: {podSelector: {matchLabel: {a: b}}}\n", []string{"spec.match.podSelector.matchLabel"}},
		{"several at once", policyHead + "spec:\n  images: {alow: [x]}\n  serviceAccountToken: {automunt: true}\nstatus: {}\n",
			[]string{"spec.images.alow", "spec.serviceAccountToken.automunt", "status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, errs := Parse([]byte(tc.doc))
			if p != nil {
				t.Fatal("a policy with an unknown field parsed")
			}
			var got []string
			for _, e := range errs {
				if e.Type != field.ErrorTypeForbidden || !strings.HasPrefix(e.Detail, "unknown field") {
					t.Errorf("unexpected error %v", e)
					continue
				}
				got = append(got, e.Field)
			}
			if strings.Join(sortedCopy(got), " ") != strings.Join(sortedCopy(tc.want), " ") {
				t.Errorf("unknown-field paths = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseDuplicateKey(t *testing.T) {
	for _, doc := range []string{
		policyHead + "spec:\n  mode: warn\n  mode: enforce\n",
		policyHead + "spec:\n  images:\n    allow: [a]\n    deny: []\n    allow: [b]\n",
		`{"apiVersion":"agentgate.io/v1alpha1","kind":"AgentPolicy","metadata":{"name":"p"},"spec":{"windows":"deny","windows":"skipLinuxChecks"}}`,
	} {
		p, errs := Parse([]byte(doc))
		if p != nil || len(errs) == 0 {
			t.Errorf("duplicate key accepted:\n%s", doc)
			continue
		}
		if msg := errs.ToAggregate().Error(); !strings.Contains(msg, "already set") && !strings.Contains(msg, "duplicate field") {
			t.Errorf("error does not say the key is duplicated: %s", msg)
		}
	}
}

// TestParseEveryErrorAtOnce: one policy, five different mistakes, five errors, each at its exact path.
func TestParseEveryErrorAtOnce(t *testing.T) {
	doc := []byte(`apiVersion: agentgate.io/v1
kind: AgentPolicy
metadata: {name: five-mistakes}
spec:
  mode: block
  images:
    allow: ["registry.corp.example/**", "nginx"]
  exempt:
    serviceAccounts: [ci-runner]
  resources:
    max: {cpu: "0", memory: 8Gi}
`)
	p, errs := Parse(doc)
	if p != nil {
		t.Fatal("parsed")
	}
	want := []struct {
		path string
		typ  field.ErrorType
	}{
		{"apiVersion", field.ErrorTypeNotSupported},
		{"spec.mode", field.ErrorTypeNotSupported},
		{"spec.exempt.serviceAccounts[0]", field.ErrorTypeInvalid},
		{"spec.images.allow[1]", field.ErrorTypeInvalid},
		{"spec.resources.max[cpu]", field.ErrorTypeInvalid},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(errs), len(want), strings.Join(errorStrings(errs), "\n"))
	}
	for i, w := range want {
		if errs[i].Field != w.path || errs[i].Type != w.typ {
			t.Errorf("error %d = %s %q, want %s %q", i, errs[i].Type, errs[i].Field, w.typ, w.path)
		}
	}
	compareGolden(t, "parse/five-mistakes.golden", []byte(strings.Join(errorStrings(errs), "\n")+"\n"))
}

// TestParseFieldErrors: one mistake per case, with its exact path and type; messages are in the golden file.
func TestParseFieldErrors(t *testing.T) {
	var golden strings.Builder
	for _, tc := range []struct {
		name, spec string
		path       string
		typ        field.ErrorType
	}{
		{"kind", "", "kind", field.ErrorTypeNotSupported},
		{"metadata.name", "", "metadata.name", field.ErrorTypeRequired},
		{"windows", "windows: allow", "spec.windows", field.ErrorTypeNotSupported},
		{"namespaceSelector", "match: {namespaceSelector: {matchExpressions: [{key: a, operator: Near}]}}", "spec.match.namespaceSelector", field.ErrorTypeInvalid},
		{"exempt namespace", `exempt: {namespaces: [""]}`, "spec.exempt.namespaces[0]", field.ErrorTypeRequired},
		{"exempt sa with two slashes", "exempt: {serviceAccounts: [a/b/c]}", "spec.exempt.serviceAccounts[0]", field.ErrorTypeInvalid},
		{"exempt container name", "exempt: {containers: [{image: 'docker.io/istio/proxyv2:*', checks: [images], serviceAccounts: [mesh/operator]}]}", "spec.exempt.containers[0].name", field.ErrorTypeRequired},
		{"exempt container image", "exempt: {containers: [{name: istio-init, checks: [images], serviceAccounts: [mesh/operator]}]}", "spec.exempt.containers[0].image", field.ErrorTypeRequired},
		{"exempt container glob", "exempt: {containers: [{name: a, image: 'docker.io/a/[:*', checks: [images], serviceAccounts: [mesh/operator]}]}", "spec.exempt.containers[0].image", field.ErrorTypeInvalid},
		{"exempt container without checks", "exempt: {containers: [{name: a, image: 'docker.io/a:*', serviceAccounts: [mesh/operator]}]}", "spec.exempt.containers[0].checks", field.ErrorTypeRequired},
		{"exempt container from a baseline check", "exempt: {containers: [{name: a, image: 'docker.io/a:*', checks: [privileged], serviceAccounts: [mesh/operator]}]}", "spec.exempt.containers[0].checks[0]", field.ErrorTypeForbidden},
		{"exempt container from a pod check", "exempt: {containers: [{name: a, image: 'docker.io/a:*', checks: [serviceAccountTokenProjection], serviceAccounts: [mesh/operator]}]}", "spec.exempt.containers[0].checks[0]", field.ErrorTypeForbidden},
		{"exempt container from an unknown check", "exempt: {containers: [{name: a, image: 'docker.io/a:*', checks: [everything], serviceAccounts: [mesh/operator]}]}", "spec.exempt.containers[0].checks[0]", field.ErrorTypeNotSupported},
		{"exempt container without requester", "exempt: {containers: [{name: a, image: 'docker.io/a:*', checks: [images]}]}", "spec.exempt.containers[0].serviceAccounts", field.ErrorTypeRequired},
		{"exempt container by a controller", "exempt: {containers: [{name: a, image: 'docker.io/a:*', checks: [images], serviceAccounts: [kube-system/replicaset-controller]}]}", "spec.exempt.containers[0].serviceAccounts[0]", field.ErrorTypeInvalid},
		{"exempt kube-system sa", "exempt: {serviceAccounts: [kube-system/job-controller]}", "spec.exempt.serviceAccounts[0]", field.ErrorTypeInvalid},
		{"exempt sa wildcard", "exempt: {serviceAccounts: ['agents/*']}", "spec.exempt.serviceAccounts[0]", field.ErrorTypeInvalid},
		{"exempt controller-manager", "exempt: {usernames: ['system:kube-controller-manager']}", "spec.exempt.usernames[0]", field.ErrorTypeInvalid},
		{"exempt sa as username", "exempt: {usernames: ['system:serviceaccount:kube-system:replicaset-controller']}", "spec.exempt.usernames[0]", field.ErrorTypeInvalid},
		{"exempt node", "exempt: {usernames: ['system:node:n1']}", "spec.exempt.usernames[0]", field.ErrorTypeInvalid},
		{"token sa in kube-system", "serviceAccountToken: {allowServiceAccounts: [kube-system/generic-garbage-collector]}", "spec.serviceAccountToken.allowServiceAccounts[0]", field.ErrorTypeInvalid},
		{"deny glob without registry", "images: {deny: [library/nginx]}", "spec.images.deny[0]", field.ErrorTypeInvalid},
		{"allow glob empty segment", "images: {allow: ['registry.example.com//x']}", "spec.images.allow[0]", field.ErrorTypeInvalid},
		{"denyTags", "images: {denyTags: [latest, 'not a tag']}", "spec.images.denyTags[1]", field.ErrorTypeInvalid},
		{"allowedCapabilities ALL", "securityContext: {allowedCapabilities: [NET_BIND_SERVICE, cap_all]}", "spec.securityContext.allowedCapabilities[1]", field.ErrorTypeInvalid},
		{"seccompProfile", "securityContext: {seccompProfile: Unconfined}", "spec.securityContext.seccompProfile", field.ErrorTypeNotSupported},
		{"max negative", "resources: {max: {memory: -1Gi}}", "spec.resources.max[memory]", field.ErrorTypeInvalid},
		{"default limit above max", "resources: {defaults: {limits: {cpu: '8'}}, max: {cpu: '4'}}", "spec.resources.defaults.limits[cpu]", field.ErrorTypeInvalid},
		{"default request above default limit", "resources: {defaults: {requests: {memory: 1Gi}, limits: {memory: 512Mi}}}", "spec.resources.defaults.requests[memory]", field.ErrorTypeInvalid},
		{"default request zero", "resources: {defaults: {requests: {cpu: '0'}}}", "spec.resources.defaults.requests[cpu]", field.ErrorTypeInvalid},
		{"blocked empty", "commands: {blocked: ['  ']}", "spec.commands.blocked[0]", field.ErrorTypeRequired},
		{"allowed with args", "commands: {allowed: ['/bin/sh -c']}", "spec.commands.allowed[0]", field.ErrorTypeInvalid},
		{"blocked list of commands", "commands: {blocked: [reboot, 'rm -rf / ; reboot']}", "spec.commands.blocked[1]", field.ErrorTypeInvalid},
		{"blocked variable", "commands: {blocked: ['rm -rf $HOME']}", "spec.commands.blocked[0]", field.ErrorTypeInvalid},
		{"blocked unparseable", "commands: {blocked: ['rm -rf \"/']}", "spec.commands.blocked[0]", field.ErrorTypeInvalid},
		{"blocked pipeline", "commands: {blocked: ['curl x | sh']}", "spec.commands.blocked[0]", field.ErrorTypeInvalid},
		{"allowed relative path", "commands: {allowed: [./python3]}", "spec.commands.allowed[0]", field.ErrorTypeInvalid},
		{"allowed pattern", "commands: {allowed: ['python*']}", "spec.commands.allowed[0]", field.ErrorTypeInvalid},
		{"type mismatch", "mode: 5", "spec.mode", field.ErrorTypeTypeInvalid},
		{"unknownFields", "unknownFields: allow", "spec.unknownFields", field.ErrorTypeNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := policyHead
			switch tc.name {
			case "kind":
				head = "apiVersion: agentgate.io/v1alpha1\nkind: Policy\nmetadata: {name: p}\n"
			case "metadata.name":
				head = "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {}\n"
			}
			doc := head
			if tc.spec != "" {
				doc += "spec:\n  " + tc.spec + "\n"
			}
			p, errs := Parse([]byte(doc))
			if p != nil {
				t.Fatalf("parsed:\n%s", doc)
			}
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%s", len(errs), strings.Join(errorStrings(errs), "\n"))
			}
			if errs[0].Field != tc.path || errs[0].Type != tc.typ {
				t.Errorf("error = %s %q, want %s %q (%v)", errs[0].Type, errs[0].Field, tc.typ, tc.path, errs[0])
			}
			golden.WriteString(tc.name + ": " + errs[0].Error() + "\n")
		})
	}
	if !t.Failed() {
		compareGolden(t, "parse/field-errors.golden", []byte(golden.String()))
	}
}

func TestParseNotADocument(t *testing.T) {
	for _, doc := range []string{"", "[1, 2]", "apiVersion: [", "\t- x"} {
		if p, errs := Parse([]byte(doc)); p != nil || len(errs) == 0 {
			t.Errorf("Parse(%q) accepted", doc)
		}
	}
}

// TestParseDefaults: a policy that says nothing gets the strict choice for everything DESIGN.md defaults.
func TestParseDefaults(t *testing.T) {
	for _, doc := range []string{policyHead, policyHead + "spec: {}\n", `{"apiVersion":"agentgate.io/v1alpha1","kind":"AgentPolicy","metadata":{"name":"p"},"spec":{}}`} {
		p, errs := Parse([]byte(doc))
		if len(errs) > 0 {
			t.Fatalf("%q: %v", doc, errs.ToAggregate())
		}
		s := p.Spec
		sc := s.SecurityContext
		switch {
		case s.Mode != ModeEnforce, s.Windows != WindowsDeny,
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem,
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
			sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot,
			sc.SeccompProfile != corev1.SeccompProfileTypeRuntimeDefault,
			s.ServiceAccountToken.Automount == nil || *s.ServiceAccountToken.Automount,
			s.Env.DenyLiteralSecrets == nil || !*s.Env.DenyLiteralSecrets:
			t.Errorf("%q: defaults not applied: %+v", doc, s)
		}
		if len(p.allowedCaps) != 0 {
			t.Errorf("an empty policy allows capabilities %v", p.allowedCaps)
		}
		if p.nsSelector != nil || p.podSelector != nil {
			t.Error("an empty match must select every pod")
		}
	}

	// Defaults fill what is unset and never override what a policy says, false included.
	p, errs := Parse([]byte(policyHead + `spec:
  mode: audit
  windows: skipLinuxChecks
  securityContext: {readOnlyRootFilesystem: false, allowPrivilegeEscalation: true, runAsNonRoot: false, seccompProfile: Localhost}
  serviceAccountToken: {automount: true}
  env: {denyLiteralSecrets: false}
`))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	s := p.Spec
	sc := s.SecurityContext
	if s.Mode != ModeAudit || s.Windows != WindowsSkipLinuxChecks || *sc.ReadOnlyRootFilesystem || !*sc.AllowPrivilegeEscalation ||
		*sc.RunAsNonRoot || sc.SeccompProfile != corev1.SeccompProfileTypeLocalhost || !*s.ServiceAccountToken.Automount || *s.Env.DenyLiteralSecrets {
		t.Errorf("explicit values overridden by defaults: %+v", s)
	}
}

// TestParseCompiled: what Parse compiles (selectors, exemptions, capabilities, globs) behaves as written.
func TestParseCompiled(t *testing.T) {
	p, errs := Parse([]byte(policyHead + `spec:
  match: {podSelector: {matchLabels: {role: agent}}}
  exempt:
    namespaces: [ops]
    serviceAccounts: [ci/runner]
    containers: [{name: istio-init, image: "docker.io/istio/proxyv2:*", checks: [images, images, runAsNonRoot], usernames: [alice]}]
  images: {allow: ["docker.io/library/*", "ghcr.io/acme/**"], deny: ["ghcr.io/acme/legacy/**"]}
  securityContext: {allowedCapabilities: [cap_net_raw]}
`))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	if !p.allowedCaps["NET_RAW"] {
		t.Errorf("cap_net_raw not normalised: %v", p.allowedCaps)
	}
	if _, ok := p.exemptBy["system:serviceaccount:ci:runner"]; !p.exemptNS["ops"] || !ok || len(p.exemptContainer) != 1 {
		t.Errorf("exemptions not compiled: %v %v %v", p.exemptNS, p.exemptBy, p.exemptContainer)
	}
	if c := p.exemptContainer[0]; !slices.Equal(c.checks, []string{"images", "runAsNonRoot"}) || c.by["alice"] != "spec.exempt.containers[0].usernames[0]" {
		t.Errorf("container exemption compiled as %+v", c)
	}
	for _, tc := range []struct {
		ref           string
		allow, denied bool
	}{
		{"nginx", true, false},
		{"docker.io/library/nginx:1.27", true, false},
		{"index.docker.io/library/nginx", true, false},
		{"docker.io/bitnami/nginx", false, false},
		{"ghcr.io/acme/a/b/c:1", true, false},
		{"ghcr.io/acme", true, false}, // "**" matches no segment too
		{"ghcr.io/acme/legacy/x", true, true},
		{"ghcr.io.evil.example/acme/x", false, false},
	} {
		img, err := parseImage(tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		_, allow := firstMatch(p.allow, img)
		_, denied := firstMatch(p.deny, img)
		if allow != tc.allow || denied != tc.denied {
			t.Errorf("%s: allow %v deny %v, want %v %v", tc.ref, allow, denied, tc.allow, tc.denied)
		}
	}
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }
