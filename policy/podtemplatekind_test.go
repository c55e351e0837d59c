package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

func TestParsePodTemplateKind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // String() of the result, or the error
	}{
		{"example.agentgate.io/v1/AgentJob=spec.runner.template", "example.agentgate.io/v1/AgentJob=spec.runner.template"},
		{"batch.example.com/v1beta2/Run=spec.template", "batch.example.com/v1beta2/Run=spec.template"},
		{"example.com/v1/AgentJob", `"example.com/v1/AgentJob": no "=" between the kind and the path of its pod template (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/AgentJob=spec.template", `"example.com/AgentJob=spec.template": "example.com/AgentJob" is not GROUP/VERSION/KIND (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob/x=spec.template", `"example.com/v1/AgentJob/x=spec.template": "example.com/v1/AgentJob/x" is not GROUP/VERSION/KIND (expected ` + PodTemplateKindSyntax + ")"},
		{"apps/v1/Deployment=spec.template", `"apps/v1/Deployment=spec.template": Deployment.apps is judged already, by its typed pod template (expected ` + PodTemplateKindSyntax + ")"},
		{"/v1/Pod=spec", `"/v1/Pod=spec": Pod is judged already, by its typed pod template (expected ` + PodTemplateKindSyntax + ")"},
		{"example/v1/AgentJob=spec.template", `"example/v1/AgentJob=spec.template": group "example": a custom resource's group is a DNS subdomain with at least one dot (expected ` + PodTemplateKindSyntax + ")"},
		{"Example.COM/v1/AgentJob=spec.template", `"Example.COM/v1/AgentJob=spec.template": group "Example.COM": a custom resource's group is a DNS subdomain with at least one dot (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/V1/AgentJob=spec.template", `"example.com/V1/AgentJob=spec.template": version "V1": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?') (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/agentJob=spec.template", `"example.com/v1/agentJob=spec.template": kind "agentJob": a kind is a CamelCase name such as AgentJob (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/=spec.template", `"example.com/v1/=spec.template": kind "": a kind is a CamelCase name such as AgentJob (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/Agent_Job=spec.template", `"example.com/v1/Agent_Job=spec.template": kind "Agent_Job": a kind is a CamelCase name such as AgentJob (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob=", `"example.com/v1/AgentJob=": empty FIELD.PATH (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob=spec..template", `"example.com/v1/AgentJob=spec..template": path segment "": member names only, separated by dots (no list indexes) (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob=spec.runners[0].template", `"example.com/v1/AgentJob=spec.runners[0].template": path segment "runners[0]": member names only, separated by dots (no list indexes) (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob=.spec.template", `"example.com/v1/AgentJob=.spec.template": path segment "": member names only, separated by dots (no list indexes) (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob=spec.template=x", `"example.com/v1/AgentJob=spec.template=x": path segment "template=x": member names only, separated by dots (no list indexes) (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob=metadata.template", `"example.com/v1/AgentJob=metadata.template": metadata cannot hold a pod template (expected ` + PodTemplateKindSyntax + ")"},
		{"example.com/v1/AgentJob=status.template", `"example.com/v1/AgentJob=status.template": status is written by controllers through the status subresource, which is not judged: declare where users write the template (expected ` + PodTemplateKindSyntax + ")"},
		{"", `"": no "=" between the kind and the path of its pod template (expected ` + PodTemplateKindSyntax + ")"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			k, err := ParsePodTemplateKind(tc.in)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = k.String()
			}
			if got != tc.want {
				t.Errorf("ParsePodTemplateKind(%q)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestNewPodTemplateKinds(t *testing.T) {
	parse := func(s string) PodTemplateKind {
		k, err := ParsePodTemplateKind(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	job := parse("example.agentgate.io/v1/AgentJob=spec.runner.template")
	job2 := parse("example.agentgate.io/v2/AgentJob=spec.template")
	kinds, err := NewPodTemplateKinds(job, job2)
	if err != nil {
		t.Fatal(err)
	}
	if v := kinds.Versions(schema.GroupKind{Group: "example.agentgate.io", Kind: "AgentJob"}); !slices.Equal(v, []string{"v1", "v2"}) {
		t.Errorf("versions %q", v)
	}
	if v := kinds.Versions(schema.GroupKind{Group: "agents.x-k8s.io", Kind: "Sandbox"}); !slices.Equal(v, []string{"v1alpha1", "v1beta1"}) {
		t.Errorf("Sandbox versions %q", v)
	}
	if k, ok := kinds.Lookup(schema.GroupVersionKind{Group: "example.agentgate.io", Version: "v1", Kind: "AgentJob"}); !ok || k.TemplatePath().String() != "spec.runner.template" {
		t.Errorf("lookup: %v %v", k, ok)
	}
	if _, ok := kinds.Lookup(schema.GroupVersionKind{Group: "example.agentgate.io", Version: "v3", Kind: "AgentJob"}); ok {
		t.Error("an undeclared version is judged")
	}
	if d := kinds.Declared(); len(d) != 2 {
		t.Errorf("declared %v", d)
	}

	_, err = NewPodTemplateKinds(job, parse("example.agentgate.io/v1/AgentJob=spec.template"), parse("agents.x-k8s.io/v1beta1/Sandbox=spec.template"))
	want := `"example.agentgate.io/v1/AgentJob=spec.template": example.agentgate.io/v1 AgentJob is declared twice (also "example.agentgate.io/v1/AgentJob=spec.runner.template")` + "\n" +
		`"agents.x-k8s.io/v1beta1/Sandbox=spec.template": agents.x-k8s.io/v1beta1 Sandbox is judged already, by its pod template at spec.podTemplate`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func sandboxKind(version string) PodTemplateKind {
	k, _ := DefaultPodTemplateKinds().Lookup(schema.GroupVersionKind{Group: "agents.x-k8s.io", Version: version, Kind: "Sandbox"})
	return k
}

const sandboxYAML = `
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: {name: sb, namespace: agents, finalizers: [agents.x-k8s.io/finalizer]}
spec:
  operatingMode: Running
  service: true
  podTemplate:
    metadata:
      labels: {app: agent}
      annotations: {note: x}
    spec:
      containers:
      - name: agent
        image: registry.corp.example/agents/runner:1.0
        command: [/agent]
  volumeClaimTemplates:
  - metadata: {name: work}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
status: {podIPs: [10.0.0.1]}
`

func decodeTemplateYAML(t *testing.T, k PodTemplateKind, doc string) (*Workload, []byte, error) {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	w, err := k.Decode(raw)
	return w, raw, err
}

// TestSandboxJudgedByItsTemplate: a Sandbox is judged like a Deployment, as its pod will be after hardening,
// with paths from the object's root, and never changed.
func TestSandboxJudgedByItsTemplate(t *testing.T) {
	set := NewSet(Default())
	w, raw, err := decodeTemplateYAML(t, sandboxKind("v1beta1"), sandboxYAML)
	if err != nil {
		t.Fatal(err)
	}
	if w.Kind != "Sandbox" || w.IsPod() || w.Meta.Name != "sb" || w.SpecPath.String() != "spec.podTemplate.spec" || w.PodMetaPath.String() != "spec.podTemplate.metadata" {
		t.Errorf("workload %s/%s %s %s", w.Kind, w.Meta.Name, w.SpecPath, w.PodMetaPath)
	}
	res, ops, err := set.Review(raw, w, testNS, Requester{})
	if err != nil || ops != nil {
		t.Fatalf("Review: ops %v err %v (a Sandbox is never mutated)", ops, err)
	}
	if !res.Allowed() {
		t.Errorf("a Sandbox whose pod will be hardened is denied: %q", violationKeys(res.Violations))
	}
	if w.Spec.Containers[0].SecurityContext != nil || w.Spec.AutomountServiceAccountToken != nil {
		t.Error("judging changed the Sandbox")
	}

	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"privileged", "command: [/agent]", "command: [/agent]\n        securityContext: {privileged: true}",
			[]string{"privileged@spec.podTemplate.spec.containers[0].securityContext.privileged"}},
		{"unlisted image", "registry.corp.example/agents/runner:1.0", "docker.io/library/busybox:1.36",
			[]string{"images@spec.podTemplate.spec.containers[0].image"}},
		{"host namespaces", "containers:", "hostPID: true\n      containers:",
			[]string{"hostNamespaces@spec.podTemplate.spec.hostPID"}},
		{"AppArmor unconfined in the template's annotations", "note: x", "container.apparmor.security.beta.kubernetes.io/agent: unconfined",
			[]string{"appArmor@spec.podTemplate.metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent]"}},
		{"token automount", "containers:", "automountServiceAccountToken: true\n      containers:",
			[]string{"automountServiceAccountToken@spec.podTemplate.spec.automountServiceAccountToken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(sandboxYAML, tc.from, tc.to, 1)
			if doc == sandboxYAML {
				t.Fatal("test setup: nothing replaced")
			}
			w, _, err := decodeTemplateYAML(t, sandboxKind("v1alpha1"), strings.Replace(doc, "v1beta1", "v1alpha1", 1))
			if err != nil {
				t.Fatal(err)
			}
			res := set.Judge(w, testNS, Requester{})
			if got := violationKeys(res.Violations); !slices.Equal(got, tc.want) {
				t.Errorf("violations %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTemplateKindBadInput: an object whose template cannot be judged is an error at its field path.
func TestTemplateKindBadInput(t *testing.T) {
	job, err := ParsePodTemplateKind("example.agentgate.io/v1/AgentJob=spec.runner.template")
	if err != nil {
		t.Fatal(err)
	}
	const head = "apiVersion: example.agentgate.io/v1\nkind: AgentJob\nmetadata: {name: j}\n"
	for _, tc := range []struct {
		name string
		kind PodTemplateKind
		doc  string
		want string
	}{
		{"no spec at all", job, head, `spec: Required value: agentgate judges example.agentgate.io/v1 AgentJob by its pod template at spec.runner.template, and there is none`},
		{"no template", job, head + "spec: {runner: {replicas: 1}}", `spec.runner.template: Required value: agentgate judges example.agentgate.io/v1 AgentJob by its pod template at spec.runner.template, and there is none`},
		{"null template", job, head + "spec: {runner: {template: null}}", `spec.runner.template: Required value: agentgate judges example.agentgate.io/v1 AgentJob by its pod template at spec.runner.template, and there is none`},
		{"runner is a list", job, head + "spec: {runner: [{template: {}}]}", `spec.runner: Invalid value: "[{\"template\":{}}]": not an object: agentgate judges example.agentgate.io/v1 AgentJob by its pod template at spec.runner.template`},
		{"template is a string", job, head + "spec: {runner: {template: pod.yaml}}", `spec.runner.template: Invalid value: "\"pod.yaml\"": not an object: agentgate judges example.agentgate.io/v1 AgentJob by its pod template at spec.runner.template`},
		{"path leads to a pod spec", job, head + "spec: {runner: {template: {containers: [{name: a, image: x}]}}}", `spec.runner.template.containers: Forbidden: spec.runner.template holds a pod spec, not a pod template: the path of example.agentgate.io/v1 AgentJob must lead to an object with metadata and spec, as a Deployment's spec.template does`},
		{"template without spec", job, head + "spec: {runner: {template: {metadata: {labels: {a: b}}}}}", `spec.runner.template.spec: Required value: a pod template has a spec: without one there is no pod to judge`},
		{"unknown field in a container", job, head + "spec: {runner: {template: {spec: {containers: [{name: a, image: x, securityContex: {privileged: true}}]}}}}",
			`spec.runner.template.spec.containers[0].securityContex: Forbidden: unknown field: agentgate's k8s.io/api does not know it, so no check could see it`},
		{"duplicate field in the template", job, `{"apiVersion":"example.agentgate.io/v1","kind":"AgentJob","metadata":{"name":"j"},"spec":{"runner":{"template":{"spec":{"hostPID":false,"hostPID":true,"containers":[]}}}}}`,
			`spec.runner.template.spec.hostPID: Duplicate value: "the value would depend on which occurrence a decoder keeps"`},
		{"wrong type in the template", job, head + "spec: {runner: {template: {spec: {hostPID: yes-please, containers: []}}}}",
			`spec.runner.template.spec.hostPID: Invalid value: "": cannot decode: cannot decode JSON string into bool`},
		{"unknown metadata field", job, "apiVersion: example.agentgate.io/v1\nkind: AgentJob\nmetadata: {name: j, nme: k}\nspec: {runner: {template: {spec: {containers: []}}}}",
			`metadata.nme: Forbidden: unknown field: agentgate's k8s.io/api does not know it, so no check could see it`},
		{"not an object", job, "[]", `not a JSON object: cannot decode JSON array into map[string]jsontext.Value`},
		{"Sandbox without podTemplate", sandboxKind("v1beta1"), "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: s}\nspec: {operatingMode: Running}",
			`spec.podTemplate: Required value: agentgate judges agents.x-k8s.io/v1beta1 Sandbox by its pod template at spec.podTemplate, and there is none`},
		{"Sandbox with a pod template's unknown field", sandboxKind("v1alpha1"), "apiVersion: agents.x-k8s.io/v1alpha1\nkind: Sandbox\nmetadata: {name: s}\nspec: {podTemplate: {spec: {containers: [{name: a, image: x}], hostUsers: false, sandboxRuntime: runc}}}",
			`spec.podTemplate.spec.sandboxRuntime: Forbidden: unknown field: agentgate's k8s.io/api does not know it, so no check could see it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			if strings.HasPrefix(tc.doc, "{") || strings.HasPrefix(tc.doc, "[") {
				raw = []byte(tc.doc)
			} else {
				var err error
				if raw, err = yaml.YAMLToJSON([]byte(tc.doc)); err != nil {
					t.Fatal(err)
				}
			}
			w, err := tc.kind.Decode(raw)
			if err == nil {
				t.Fatalf("decoded: %+v", w)
			}
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("%T is not a *TemplateError: %v", err, err)
			}
			if err.Error() != tc.want {
				t.Errorf("\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// TestTemplateObjectPatch: --fix hardens a declared kind's template in place; the rest of the object stays
// as sent, and a copy is independent of its original.
func TestTemplateObjectPatch(t *testing.T) {
	job, _ := ParsePodTemplateKind("example.agentgate.io/v1/AgentJob=spec.runner.template")
	w, raw, err := decodeTemplateYAML(t, job, `
apiVersion: example.agentgate.io/v1
kind: AgentJob
metadata: {name: j, namespace: agents}
spec:
  parallelism: 3
  runner:
    retries: 2
    template:
      metadata: {labels: {app: j}}
      spec:
        containers: [{name: a, image: registry.corp.example/agents/runner:1.0, command: [/agent]}]
`)
	if err != nil {
		t.Fatal(err)
	}
	set := NewSet(Default())
	h := hardenTwice(t, set, w)
	if w.Spec.Containers[0].SecurityContext != nil {
		t.Fatal("hardening a copy changed the original")
	}
	ops, err := CreatePatch(raw, w.Object, h.Object)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, op := range ops {
		paths = append(paths, op.Operation+" "+op.Path)
		if !strings.HasPrefix(op.Path, "/spec/runner/template/spec/") {
			t.Errorf("patch outside the template: %s", op.Path)
		}
	}
	if len(ops) == 0 {
		t.Fatal("no patch")
	}
	slices.Sort(paths)
	t.Logf("patch: %q", paths)
	if res := set.Judge(w, testNS, Requester{}); !res.Allowed() {
		t.Errorf("denied: %q", violationKeys(res.Violations))
	}
}

// FuzzParsePodTemplateKind: a declaration never panics, and an accepted one reads back as itself.
func FuzzParsePodTemplateKind(f *testing.F) {
	for _, s := range []string{"example.agentgate.io/v1/AgentJob=spec.runner.template", "a.b/v1/K=x", "=", "a.b/v1/K=spec.", "x/y/z=a.b=c", "a.b/v1/K=spec.a[0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePodTemplateKind(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Errorf("%q reads back as %q", s, k.String())
		}
		again, err := ParsePodTemplateKind(k.String())
		if err != nil || again.String() != k.String() {
			t.Errorf("%q does not parse again: %v", k.String(), err)
		}
	})
}

// FuzzPodTemplateKindDecode: any input is a judged workload or a *TemplateError, never a panic, and a
// decoded object marshals back (the --fix path).
func FuzzPodTemplateKindDecode(f *testing.F) {
	raw, err := yaml.YAMLToJSON([]byte(sandboxYAML))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"spec":{"podTemplate":{"spec":{"containers":[{"name":"a","image":"x","securityContext":{"privileged":true}}]}}}}`))
	f.Add([]byte(`{"spec":{"podTemplate":{"containers":[]}}}`))
	f.Add([]byte(`{"spec":{"podTemplate":{"spec":null}}}`))
	f.Add([]byte(`{"spec":[]}`))
	f.Add([]byte(`null`))
	set := NewSet(Default())
	k := sandboxKind("v1beta1")
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := k.Decode(data)
		if err != nil {
			var te *TemplateError
			if !errors.As(err, &te) || te.Err == nil {
				t.Fatalf("%T: %v", err, err)
			}
			return
		}
		set.Judge(w, testNS, Requester{})
		if _, err := CreatePatch(data, w.Object, w.DeepCopy().Object); err != nil {
			t.Errorf("CreatePatch: %v", err)
		}
	})
}
