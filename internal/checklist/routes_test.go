package checklist

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// TestRoutes: a side door counts as routed only by a rule matching its group, version, operation and exact
// resource or subresource, including the wildcards the API server accepts.
func TestRoutes(t *testing.T) {
	resize := sideDoor{"", "pods/resize", admissionregistrationv1.Update, ""}
	secrets := sideDoor{"", "secrets", admissionregistrationv1.Create, ""}
	rule := func(groups, versions, resources []string, ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{Operations: ops, Rule: admissionregistrationv1.Rule{APIGroups: groups, APIVersions: versions, Resources: resources}}}
	}
	core, v1 := []string{""}, []string{"v1"}
	for _, c := range []struct {
		name  string
		door  sideDoor
		rules []admissionregistrationv1.RuleWithOperations
		want  bool
	}{
		{"exact", resize, rule(core, v1, []string{"pods", "pods/resize"}, admissionregistrationv1.Create, admissionregistrationv1.Update), true},
		{"the main resource only", resize, rule(core, v1, []string{"pods"}, admissionregistrationv1.Update), false},
		{"another subresource", resize, rule(core, v1, []string{"pods/ephemeralcontainers"}, admissionregistrationv1.Update), false},
		{"pods/*", resize, rule(core, v1, []string{"pods/*"}, admissionregistrationv1.Update), true},
		{"*/resize", resize, rule(core, v1, []string{"*/resize"}, admissionregistrationv1.Update), true},
		{"* is main resources only", resize, rule(core, v1, []string{"*"}, admissionregistrationv1.OperationAll), false},
		{"*/*", resize, rule([]string{"*"}, []string{"*"}, []string{"*/*"}, admissionregistrationv1.OperationAll), true},
		{"CREATE only", resize, rule(core, v1, []string{"pods/resize"}, admissionregistrationv1.Create), false},
		{"another group", secrets, rule([]string{"apps"}, v1, []string{"secrets"}, admissionregistrationv1.Create), false},
		{"another version", secrets, rule(core, []string{"v1beta1"}, []string{"secrets"}, admissionregistrationv1.Create), false},
		{"* matches a main resource", secrets, rule(core, v1, []string{"*"}, admissionregistrationv1.Create), true},
		{"a subresource does not route the main one", secrets, rule(core, v1, []string{"secrets/*"}, admissionregistrationv1.Create), false},
	} {
		if got := routes(c.rules, c.door); got != c.want {
			t.Errorf("%s: routes = %v, want %v", c.name, got, c.want)
		}
	}
}
