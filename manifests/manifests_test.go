// Package manifests_test keeps manifests/ honest: the installed default policy is the embedded one, and
// agentgate's own pod is as hardened as the pods it admits.
package manifests_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/policy"
)

func TestInstalledDefaultPolicyIsTheEmbeddedOne(t *testing.T) {
	installed, err := os.ReadFile("base/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(installed, policy.DefaultPolicyYAML()) {
		t.Fatal("manifests/base/policy.yaml differs from policy/default-policy.yaml: copy one onto the other (DESIGN.md: the same document)")
	}
}

// TestOwnDeploymentPassesOwnPolicy judges agentgate's own Deployment with the default policy, namespace labels
// unknown (every selector matches): no violation, and hardening has nothing left to fill in; but for the token,
// which agentgate needs to talk to the API server, and its system priority class. Token allowances follow the requester, and agentgate's pods
// are created by the ReplicaSet controller, which no policy may name: agentgate's namespace stays outside the
// webhooks' reach instead (manifests/base/webhooks.yaml excludes it by name), so the token is allowed here.
func TestOwnDeploymentPassesOwnPolicy(t *testing.T) {
	data, err := os.ReadFile("base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jsonData, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		t.Fatal(err)
	}
	w, err := policy.DecodeWorkload(schema.GroupKind{Group: "apps", Kind: "Deployment"}, jsonData)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(policy.DefaultPolicyYAML()), "automount: false", "automount: true", 1)
	// The same for its priority class: system-cluster-critical, since the API server waits on agentgate.
	doc = strings.Replace(doc, "systemPriorityNamespaces: []", "systemPriorityNamespaces: [agentgate-system]", 1)
	p, errs := policy.Parse([]byte(doc))
	if len(errs) > 0 || !strings.Contains(doc, "automount: true") || !strings.Contains(doc, "systemPriorityNamespaces: [agentgate-system]") {
		t.Fatalf("the default policy with automount: true and agentgate-system's system priority: %v", errs.ToAggregate())
	}
	set := policy.NewSet(p)
	ns := policy.Namespace{Name: "agentgate-system"}
	res := set.Judge(w, ns, policy.Requester{})
	for _, v := range res.Violations {
		t.Errorf("%s: %s", v.Field, v.Message)
	}
	if len(res.Matched) == 0 {
		t.Fatal("the default policy did not select agentgate's own pod: the test proves nothing")
	}
	hardened := w.DeepCopy()
	if set.Harden(hardened, ns, policy.Requester{}) {
		t.Errorf("hardening changed agentgate's own pod template: it should already be as hardened as the pods it admits\n%+v", hardened.Spec)
	}
}

// TestOperatingDocListsEveryWebhook: docs/operating.md's table of what the API server sends to agentgate names
// every webhook of base/webhooks.yaml, and says how many there are; a webhook added without its row fails.
func TestOperatingDocListsEveryWebhook(t *testing.T) {
	raw, err := os.ReadFile("base/webhooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, part := range strings.Split(string(raw), "\n---") {
		var cfg struct {
			Webhooks []struct{ Name string } `json:"webhooks"`
		}
		if err := yaml.Unmarshal([]byte(part), &cfg); err != nil {
			t.Fatal(err)
		}
		for _, w := range cfg.Webhooks {
			names = append(names, w.Name)
		}
	}
	if len(names) == 0 {
		t.Fatal("no webhook read from base/webhooks.yaml")
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "| `"+n+"` ") {
			t.Errorf("docs/operating.md has no table row for webhook %s", n)
		}
	}
	counts := map[int]string{5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
	if want := "registers " + counts[len(names)] + " webhooks"; !strings.Contains(string(doc), want) {
		t.Errorf("docs/operating.md does not say %q", want)
	}
}
