// Package manifests_test keeps manifests/ honest: the installed default policy is the embedded one, and
// agentgate's own pod is as hardened as the pods it admits.
package manifests_test

import (
	"bytes"
	"os"
	"testing"

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
