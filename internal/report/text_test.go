package report

import (
	"strings"
	"testing"

	"agentgate.io/agentgate/policy"
)

const (
	warnPolicy = `apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: digests}
spec:
  mode: warn
  images: {allow: ["registry.corp.example/agents/**"], requireDigest: true}
`
	auditPolicy = `apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: quiet}
spec:
  mode: audit
  match: {podSelector: {matchLabels: {audit: "yes"}}}
  images: {allow: ["registry.corp.example/agents/**"], denyTags: ["1.4.2"]}
  exempt: {namespaces: [tools]}
`
)

func TestWriteText(t *testing.T) {
	set := policy.NewSet(policy.Default(), mustPolicy(t, warnPolicy), mustPolicy(t, auditPolicy))
	audited := strings.Replace(minimalPod, "  namespace: agents\n", "  namespace: agents\n  labels: {audit: \"yes\"}\n", 1)
	tools := strings.Replace(audited, "namespace: agents", "namespace: tools", 1)
	r := judged(t, &Run{Set: set},
		"a.yaml", audited+"---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n"+hostPIDPod,
		"t.yaml", tools,
		"bad.yaml", "a: [\n",
	)
	out, notes := writeText(r)
	const wantOut = `warning: a.yaml#1: Pod/minimal: spec.containers[0].image: [images] the policy requires images pinned by digest (found "registry.corp.example/agents/runner:1.4.2"; allowed: a reference with @sha256:… digest) (policy digests)
audit: a.yaml#1: Pod/minimal: spec.containers[0].image: [images] tag "1.4.2" is mutable and denied: pin a version or a digest (found "registry.corp.example/agents/runner:1.4.2"; allowed: a tag not in ["1.4.2"], or a digest) (policy quiet)
a.yaml#3: Pod/host: spec.hostPID: [hostNamespaces] hostPID shares the node's namespace with the agent (found true; allowed: false, unset) (policy agents)
warning: a.yaml#3: Pod/host: spec.hostPID: [hostNamespaces] hostPID shares the node's namespace with the agent (found true; allowed: false, unset) (policy digests)
warning: a.yaml#3: Pod/host: spec.containers[0].image: [images] the policy requires images pinned by digest (found "registry.corp.example/agents/runner:1.4.2"; allowed: a reference with @sha256:… digest) (policy digests)
warning: t.yaml: Pod/minimal: spec.containers[0].image: [images] the policy requires images pinned by digest (found "registry.corp.example/agents/runner:1.4.2"; allowed: a reference with @sha256:… digest) (policy digests)
exempt: t.yaml: Pod/minimal: metadata.namespace: namespace tools is exempt (policy quiet)
3 workloads checked: 2 admitted (2 after mutation), 1 denied; 1 violation; 4 warnings; 1 audit finding; 1 skipped; 1 error
`
	const wantNotes = `note: namespace labels are unknown offline, so the namespaceSelector of policy "agents" matches every namespace (the strict side); give --namespace-labels to use a namespace's labels
note: a.yaml#2: skipped Secret/s (v1): not a kind agentgate judges
error: bad.yaml:1: document 1: not valid YAML: did not find expected node content
`
	if out != wantOut {
		t.Errorf("out:\n%s\nwant:\n%s", out, wantOut)
	}
	if notes != wantNotes {
		t.Errorf("notes:\n%s\nwant:\n%s", notes, wantNotes)
	}
}

func TestWriteTextNotes(t *testing.T) {
	// Labels known: no note about selectors; a workload no policy selects is said to be so; one policy: no
	// "(policy …)" suffix.
	r := judged(t, &Run{Set: policy.NewSet(policy.Default()), NamespaceLabels: map[string]string{"team": "web"}}, "p.yaml", hostPIDPod)
	out, notes := writeText(r)
	if want := "1 workload checked: 1 admitted, 0 denied\n"; out != want {
		t.Errorf("out %q, want %q", out, want)
	}
	if want := "note: p.yaml: Pod/host: no policy selects it\n"; notes != want {
		t.Errorf("notes %q, want %q", notes, want)
	}
	// No workload: no note about selectors either.
	r = judged(t, &Run{}, "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
	out, notes = writeText(r)
	if want := "0 workloads checked: 0 admitted, 0 denied; 1 skipped\n"; out != want {
		t.Errorf("out %q, want %q", out, want)
	}
	if strings.Contains(notes, "namespace labels") {
		t.Errorf("notes %q", notes)
	}
	// One policy: no suffix.
	r = judged(t, &Run{}, "p.yaml", hostPIDPod)
	if out, _ = writeText(r); !strings.HasPrefix(out, "p.yaml: Pod/host: spec.hostPID: [hostNamespaces] hostPID shares the node's namespace with the agent (found true; allowed: false, unset)\n") {
		t.Errorf("out %q", out)
	}
}
