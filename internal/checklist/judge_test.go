package checklist

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"agentgate.io/agentgate/certs"
)

func egressNP(name string, sel map[string]string, types []networkingv1.PolicyType, rules ...networkingv1.NetworkPolicyEgressRule) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}, PolicyTypes: types, Egress: rules},
	}
}

func toCIDR(cidr string, except ...string) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}}}
}

// TestNamespaceEgress: what counts as restricted egress, and every way a policy can let the metadata range out.
func TestNamespaceEgress(t *testing.T) {
	egress := []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	dns := networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}}
	for _, tc := range []struct {
		name    string
		nps     []networkingv1.NetworkPolicy
		ok      bool
		problem string // substring of the first problem
	}{
		{"agentgate-egress", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, egress, dns, toCIDR("0.0.0.0/0", "169.254.0.0/16", "10.0.0.0/8"))}, true, ""},
		{"default deny egress", []networkingv1.NetworkPolicy{egressNP("deny-all", nil, egress)}, true, ""},
		{"none", nil, false, "no NetworkPolicy agentgate-egress"},
		{"agentgate-egress name but Ingress only", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, ingress)}, false, "no NetworkPolicy agentgate-egress"},
		{"deny egress for some pods only", []networkingv1.NetworkPolicy{egressNP("deny-some", map[string]string{"a": "b"}, egress)}, false, "no NetworkPolicy"},
		{"default deny with a rule is not a deny", []networkingv1.NetworkPolicy{egressNP("deny-all", nil, egress, dns)}, false, "no NetworkPolicy"},
		{"metadata reachable through 0.0.0.0/0", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, egress, toCIDR("0.0.0.0/0"))}, false, "spec.egress[0].to[0].ipBlock 0.0.0.0/0"},
		{"metadata only /32 excepted", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, egress, toCIDR("0.0.0.0/0", "169.254.169.254/32"))}, false, "0.0.0.0/0"},
		{"link-local range itself", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, egress, toCIDR("169.254.170.0/24"))}, false, "169.254.170.0/24"},
		{"rule without to", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, egress, networkingv1.NetworkPolicyEgressRule{})}, false, "spec.egress[0] (no to"},
		{"another policy opens it", []networkingv1.NetworkPolicy{
			egressNP(EgressPolicyName, nil, egress, dns),
			egressNP("open", map[string]string{"x": "y"}, egress, toCIDR("128.0.0.0/1")),
		}, false, "NetworkPolicy ns/open"},
		{"policyTypes omitted but egress rules: still an Egress policy", []networkingv1.NetworkPolicy{
			egressNP(EgressPolicyName, nil, egress, dns),
			egressNP("implicit", nil, nil, toCIDR("169.254.0.0/16")),
		}, false, "NetworkPolicy ns/implicit"},
		{"except the allowed block itself", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, egress, toCIDR("169.254.170.0/24", "169.254.170.0/24"))}, true, ""},
		{"wider except covers it", []networkingv1.NetworkPolicy{egressNP(EgressPolicyName, nil, egress, toCIDR("0.0.0.0/0", "169.0.0.0/8"))}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, problems, _ := namespaceEgress("ns", tc.nps)
			if ok && len(problems) == 0 != tc.ok {
				t.Fatalf("restricted=%v problems=%q, want ok=%v", ok, problems, tc.ok)
			}
			if !tc.ok && (len(problems) == 0 || !strings.Contains(problems[0], tc.problem)) {
				t.Fatalf("problems %q, want first containing %q", problems, tc.problem)
			}
			if tc.ok && len(problems) > 0 {
				t.Fatalf("problems %q, want none", problems)
			}
		})
	}
}

func TestPodTokenProblems(t *testing.T) {
	f, tr := false, true
	projected := corev1.Volume{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{}}, {ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "t"}},
	}}}}
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want []string
	}{
		{"off", corev1.PodSpec{AutomountServiceAccountToken: &f}, nil},
		{"unset: the service account decides", corev1.PodSpec{}, []string{"spec.automountServiceAccountToken is not false"}},
		{"on", corev1.PodSpec{AutomountServiceAccountToken: &tr}, []string{"spec.automountServiceAccountToken is not false"}},
		{"off but projected by hand", corev1.PodSpec{AutomountServiceAccountToken: &f, Volumes: []corev1.Volume{{Name: "x"}, projected}},
			[]string{`spec.volumes[1].projected.sources[1].serviceAccountToken (volume "tok")`}},
	} {
		got := podTokenProblems(&corev1.Pod{Spec: tc.spec})
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPodMissingLimits(t *testing.T) {
	full := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
		Containers: []corev1.Container{
			{Name: "ok", Resources: corev1.ResourceRequirements{Limits: full}},
			{Name: "requests-only", Resources: corev1.ResourceRequirements{Requests: full}},
		},
	}}
	want := []string{
		`spec.initContainers[0].resources.limits (container "init") has no memory limit`,
		`spec.containers[1].resources.limits (container "requests-only") has no cpu limit`,
		`spec.containers[1].resources.limits (container "requests-only") has no memory limit`,
	}
	if got := podMissingLimits(pod); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// A pod-level memory limit bounds the containers that set none: only cpu is still missing.
	pod.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
	want = []string{`spec.containers[1].resources.limits (container "requests-only") has no cpu limit`}
	if got := podMissingLimits(pod); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("with a pod-level memory limit: got %q\nwant %q", got, want)
	}
}

func TestVerifyServing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := certs.GenerateCA("agentgate-ca", 365*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.GenerateCA("other-ca", 365*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	long, err := certs.GenerateServing(ca, []string{"agentgate-webhook.agentgate-system.svc"}, nil, 90*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	short, err := certs.GenerateServing(ca, []string{"agentgate-webhook.agentgate-system.svc"}, nil, 10*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	const dns = "agentgate-webhook.agentgate-system.svc"
	for _, tc := range []struct {
		name   string
		bundle []byte
		chain  []*x509.Certificate
		dns    string
		want   string
	}{
		{"verifies", ca.CertPEM, []*x509.Certificate{long.Cert}, dns, ""},
		{"bundle of both CAs (rotation overlap)", append(append([]byte{}, other.CertPEM...), ca.CertPEM...), []*x509.Certificate{long.Cert}, dns, ""},
		{"empty caBundle", nil, []*x509.Certificate{long.Cert}, dns, "caBundle is empty"},
		{"garbage caBundle", []byte("not pem"), []*x509.Certificate{long.Cert}, dns, "caBundle:"},
		{"other CA", other.CertPEM, []*x509.Certificate{long.Cert}, dns, "does not verify"},
		{"other name", ca.CertPEM, []*x509.Certificate{long.Cert}, "evil.agentgate-system.svc", "does not verify"},
		{"expires within 30 days", ca.CertPEM, []*x509.Certificate{short.Cert}, dns, "less than 30 days"},
		{"no certificate", ca.CertPEM, nil, dns, "no serving certificate"},
	} {
		err := verifyServing(tc.bundle, tc.chain, tc.dns, now)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestFlagValue(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"serve", "--log-level=warn"}, "warn", true},
		{[]string{"serve", "--log-level", "error"}, "error", true},
		{[]string{"serve", "-log-level=debug"}, "debug", true},
		{[]string{"serve", "--log-levels=warn"}, "", false},
		{[]string{"serve", "--log-level"}, "", false},
	} {
		got, ok := flagValue(tc.args, "log-level")
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: got %q %v, want %q %v", tc.args, got, ok, tc.want, tc.ok)
		}
	}
}

// TestItemStatus: the worst finding decides; no finding is unknown, never pass; remedy only when not pass.
func TestItemStatus(t *testing.T) {
	b := &builder{id: "x", remedy: "do"}
	if it := b.item(); it.Status != Unknown || it.Remedy != "do" {
		t.Errorf("empty: %+v", it)
	}
	b.pass("a")
	if it := b.item(); it.Status != Pass || it.Remedy != "" {
		t.Errorf("pass: %+v", it)
	}
	b.unknown("b")
	if it := b.item(); it.Status != Unknown {
		t.Errorf("unknown: %+v", it)
	}
	b.fail("c")
	b.pass("d")
	if it := b.item(); it.Status != Fail || len(it.Evidence) != 4 || it.Evidence[2] != "fail: c" {
		t.Errorf("fail: %+v", it)
	}
	r := newReport([]Item{b.item()})
	if r.ExitCode() != ExitFail || r.Summary.Fail != 1 || r.Summary.Unknown != len(outside) {
		t.Errorf("report: %+v", r.Summary)
	}
	if r := newReport([]Item{{ID: "y", Status: Unknown}}); r.ExitCode() != ExitPass {
		t.Errorf("unknown must not fail the run")
	}
}
