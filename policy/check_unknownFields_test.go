package policy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A pod as a newer API server sends it: fields that k8s.io/api v0.37 does not have, at every kind of place.
const newerPod = `{"apiVersion":"v1","kind":"Pod",
"metadata":{"name":"agent","namespace":"agents","labels":{"app":"agent"},"newMetaField":{"a":1}},
"spec":{"automountServiceAccountToken":false,"newPodField":true,
 "securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"},"newPodSecurityField":"x"},
 "containers":[{"name":"agent","image":"registry.corp.example/agents/runner:1.0","command":["/bin/agent"],"newContainerField":[1,2],
  "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"1","memory":"512Mi"}},
  "securityContext":{"readOnlyRootFilesystem":true,"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"newSecurityField":{"deep":[{"x":1}]}}}]},
"status":{"phase":"Pending","observedGeneration":3,"newStatusField":"y"}}`

var newerPodSpecFields = []string{
	"spec.newPodField",
	"spec.securityContext.newPodSecurityField",
	"spec.containers[0].newContainerField",
	"spec.containers[0].securityContext.newSecurityField",
}

func TestCheckUnknownFields(t *testing.T) {
	w, err := DecodeWorkload(schema.GroupKind{Kind: "Pod"}, []byte(newerPod))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, f := range w.Unknown {
		all = append(all, f.Path)
	}
	want := []string{"metadata.newMetaField", "spec.newPodField", "spec.securityContext.newPodSecurityField",
		"spec.containers[0].newContainerField", "spec.containers[0].securityContext.newSecurityField", "status.newStatusField"}
	if strings.Join(all, " ") != strings.Join(want, " ") {
		t.Fatalf("unknown fields %q, want %q", all, want)
	}
	const allowed = "fields of Kubernetes 1.37 (k8s.io/api v0.37.2)"
	for _, tc := range []struct {
		policy string
		mode   Mode
	}{
		{"", ModeEnforce},
		{"unknownFields: deny", ModeEnforce},
		{"unknownFields: warn", ModeWarn},
		{"mode: warn\nunknownFields: deny", ModeWarn},
		{"mode: audit\nunknownFields: warn", ModeAudit}, // warn never makes an audit policy louder
	} {
		t.Run(tc.policy, func(t *testing.T) {
			p := testPolicy(t, tc.policy)
			r := &report{policy: p}
			checkUnknownFields.run(p, newPodView(p, w, Requester{}, nil), r)
			var got []string
			for _, v := range r.out {
				got = append(got, v.Field)
				if v.Mode != tc.mode || v.Check != "unknownFields" || v.Allowed != allowed {
					t.Errorf("%s: mode %s check %s allowed %q", v.Field, v.Mode, v.Check, v.Allowed)
				}
				if !strings.Contains(v.Message, "does not know this field: the cluster's API server is newer than agentgate (upgrade agentgate first)") {
					t.Errorf("message %q", v.Message)
				}
			}
			if strings.Join(got, " ") != strings.Join(newerPodSpecFields, " ") {
				t.Errorf("violations at %q, want %q", got, newerPodSpecFields)
			}
		})
	}
	// Found is the value as written.
	p := testPolicy(t, "")
	r := &report{policy: p}
	checkUnknownFields.run(p, newPodView(p, w, Requester{}, nil), r)
	if r.out[3].Found != `{"deep":[{"x":1}]}` || r.out[0].Found != "true" {
		t.Errorf("found %q, %q", r.out[0].Found, r.out[3].Found)
	}
}

// Judge (the webhook's and the CLI's one decision path) denies a pod with unknown pod-spec fields under the
// default policy, and admits it with warnings under unknownFields: warn; fields under metadata and status
// are no violation.
func TestJudgeUnknownFields(t *testing.T) {
	w, err := DecodeWorkload(schema.GroupKind{Kind: "Pod"}, []byte(newerPod))
	if err != nil {
		t.Fatal(err)
	}
	res := NewSet(Default()).Judge(w, Namespace{Name: "agents"}, Requester{})
	if res.Allowed() || len(res.Violations) != len(newerPodSpecFields) {
		t.Fatalf("default policy: allowed %v, violations %v", res.Allowed(), res.Violations)
	}
	res = NewSet(testPolicy(t, "unknownFields: warn")).Judge(w, Namespace{Name: "agents"}, Requester{})
	if !res.Allowed() || len(res.ByMode(ModeWarn)) != len(newerPodSpecFields) {
		t.Fatalf("warn: allowed %v, violations %v", res.Allowed(), res.Violations)
	}
	// A controller: only its template's pod spec is judged; a new field of the Deployment's own spec is not.
	deploy := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","newMeta":1},"spec":{"newDeploymentField":1,"selector":{"matchLabels":{"app":"agent"}},
"template":{"metadata":{"labels":{"app":"agent"},"newTemplateMeta":1},"spec":{"automountServiceAccountToken":false,"newPodField":true,
"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
"containers":[{"name":"agent","image":"registry.corp.example/agents/runner:1.0","command":["/bin/agent"]}]}}},"status":{"newStatus":1}}`
	dw, err := DecodeWorkload(schema.GroupKind{Group: "apps", Kind: "Deployment"}, []byte(deploy))
	if err != nil {
		t.Fatal(err)
	}
	res = NewSet(Default()).Judge(dw, Namespace{Name: "agents"}, Requester{})
	var fields []string
	for _, v := range res.ByMode(ModeEnforce) {
		if v.Check == "unknownFields" {
			fields = append(fields, v.Field)
		}
	}
	if strings.Join(fields, " ") != "spec.template.spec.newPodField" {
		t.Errorf("Deployment: unknownFields violations at %q", fields)
	}
}

// TestKubernetesAPIModule keeps the version that messages name equal to the one agentgate is built with.
func TestKubernetesAPIModule(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no k8s.io/api")
	}
	if string(m[1]) != KubernetesAPIModule {
		t.Errorf("go.mod has k8s.io/api %s, KubernetesAPIModule is %s", m[1], KubernetesAPIModule)
	}
	if KubernetesVersion() != "1.37" {
		t.Errorf("KubernetesVersion() = %q", KubernetesVersion())
	}
}
