package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/internal/charttest"
)

// crdKinds are the kinds the chart renders whose CustomResourceDefinitions a bare API server does not have
// (Prometheus Operator, cert-manager): they are left out of the dry-run, and only they.
var crdKinds = map[string]string{
	"monitoring.coreos.com/v1 ServiceMonitor": "Prometheus Operator",
	"monitoring.coreos.com/v1 PrometheusRule": "Prometheus Operator",
	"cert-manager.io/v1 Issuer":               "cert-manager",
	"cert-manager.io/v1 Certificate":          "cert-manager",
}

// TestChartDryRun renders charts/agentgate for every scenario of internal/charttest (defaults, monitoring,
// cert-manager, every value changed) and applies each render with a server-side dry-run: the API server's
// schema, validation and admission chain — agentgate's own /validate-policy and guard webhooks included —
// judge every object the chart can produce.
func TestChartDryRun(t *testing.T) {
	// The tuned scenario puts the dashboard into its own namespace.
	if _, err := env.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, s := range charttest.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			var values []string
			if s.Values != "" {
				values = append(values, s.Values)
			}
			out, err := charttest.Template(t.TempDir(), values)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := charttest.Objects(out)
			if err != nil {
				t.Fatal(err)
			}
			var apply []string
			var skipped []string
			for _, o := range objs {
				gvk := fmt.Sprintf("%v %v", o["apiVersion"], o.Kind())
				served, err := env.serves(fmt.Sprint(o["apiVersion"]), o.Kind())
				if err != nil {
					t.Fatal(err)
				}
				if !served {
					if _, ok := crdKinds[gvk]; !ok {
						t.Errorf("%s: the API server does not serve %s, and it is no known CRD kind", o.Key(), gvk)
					}
					skipped = append(skipped, o.Key())
					continue
				}
				doc, err := yaml.Marshal(o)
				if err != nil {
					t.Fatal(err)
				}
				apply = append(apply, string(doc))
			}
			if len(apply) < 10 {
				t.Fatalf("only %d objects to apply: the render lost its content", len(apply))
			}
			res, err := kubectl(t, []byte(strings.Join(apply, "---\n")), "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry-run: %v\n%s", err, res)
			}
			if n := strings.Count(res, "(server dry run)"); n != len(apply) {
				t.Errorf("%d of %d objects dry-run applied:\n%s", n, len(apply), res)
			}
			slices.Sort(skipped)
			t.Logf("applied %d objects; left out for want of their CRDs: %v", len(apply), skipped)
		})
	}
}

// serves reports whether the API server serves kind in apiVersion.
func (s *suite) serves(apiVersion, kind string) (bool, error) {
	list, err := s.client.Discovery().ServerResourcesForGroupVersion(apiVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Kind == kind {
			return true, nil
		}
	}
	return false, nil
}

// TestChartInvalidPolicyRefused: a policy given as a chart value that does not parse is refused by agentgate's
// own /validate-policy when the release is applied, with the field, before it can land.
func TestChartInvalidPolicyRefused(t *testing.T) {
	out, err := charttest.Template(t.TempDir(), []string{`extraPolicies:
  team-b: |
    apiVersion: agentgate.io/v1alpha1
    kind: AgentPolicy
    metadata: {name: team-b}
    spec:
      mode: sometimes
`})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := charttest.Objects(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Key() != "v1 ConfigMap agentgate-system/agentgate-policy-team-b" {
			continue
		}
		doc, _ := yaml.Marshal(o)
		res, err := kubectl(t, doc, "apply", "--dry-run=server", "-f", "-")
		if err == nil {
			t.Fatalf("an invalid policy was accepted:\n%s", res)
		}
		if want := `data[policy.yaml].spec.mode: Unsupported value: "sometimes"`; !strings.Contains(res, want) {
			t.Fatalf("refused without %q:\n%s", want, res)
		}
		return
	}
	t.Fatal("the chart rendered no ConfigMap agentgate-policy-team-b")
}
