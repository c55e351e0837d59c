package checklist

// The pure judgements of the checklist: each takes objects already read and says what they prove.

import (
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/policy"
)

// MinCertValidity: a serving certificate expiring sooner fails tls (the seeds' "not expiring within 30 days").
const MinCertValidity = 30 * 24 * time.Hour

// EgressPolicyName is the NetworkPolicy agentgate keeps in every agent namespace.
const EgressPolicyName = "agentgate-egress"

// linkLocalNet is 169.254.0.0/16, the link-local range of cloud metadata services.
var _, linkLocalNet, _ = net.ParseCIDR("169.254.0.0/16")

// verifyServing says whether the serving certificate chain verifies against caBundle for dnsName, and whether
// its leaf outlives now+MinCertValidity.
func verifyServing(caBundle []byte, chain []*x509.Certificate, dnsName string, now time.Time) error {
	if len(caBundle) == 0 {
		return fmt.Errorf("caBundle is empty: the API server verifies agentgate against its system roots only")
	}
	roots, err := certs.PoolFromPEM(caBundle)
	if err != nil {
		return fmt.Errorf("caBundle: %v", err)
	}
	if len(chain) == 0 {
		return fmt.Errorf("no serving certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: dnsName, CurrentTime: now}); err != nil {
		return fmt.Errorf("serving certificate (subject %q) does not verify against the caBundle for %s: %v", leaf.Subject.CommonName, dnsName, err)
	}
	if left := leaf.NotAfter.Sub(now); left < MinCertValidity {
		return fmt.Errorf("serving certificate expires %s (in %s, less than 30 days)", leaf.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Hour))
	}
	return nil
}

// podTokenProblems lists how a pod gets a service-account token: automount not explicitly off (the pod's
// service account may turn it on), or a projected serviceAccountToken volume (a token with any audience).
func podTokenProblems(pod *corev1.Pod) []string {
	var out []string
	if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
		out = append(out, "spec.automountServiceAccountToken is not false")
	}
	for i, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for j, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				out = append(out, fmt.Sprintf("spec.volumes[%d].projected.sources[%d].serviceAccountToken (volume %q)", i, j, v.Name))
			}
		}
	}
	return out
}

// podMissingLimits lists every container (init, ephemeral included) without a cpu or memory limit.
func podMissingLimits(pod *corev1.Pod) []string {
	var out []string
	check := func(path, name string, limits corev1.ResourceList) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			// A pod-level limit bounds every container that sets none (agentgate then fills none either).
			if pod.Spec.Resources != nil {
				if _, podLevel := pod.Spec.Resources.Limits[r]; podLevel {
					continue
				}
			}
			if _, ok := limits[r]; !ok {
				out = append(out, fmt.Sprintf("%s (container %q) has no %s limit", path, name, r))
			}
		}
	}
	for i, c := range pod.Spec.InitContainers {
		check(fmt.Sprintf("spec.initContainers[%d].resources.limits", i), c.Name, c.Resources.Limits)
	}
	for i, c := range pod.Spec.Containers {
		check(fmt.Sprintf("spec.containers[%d].resources.limits", i), c.Name, c.Resources.Limits)
	}
	// Ephemeral containers cannot set resources; they run inside the pod's limits, so they are not listed.
	return out
}

// policyResourceProblems: a policy must fill cpu and memory limits where unset and cap what a pod may ask.
func policyResourceProblems(p *policy.Policy) []string {
	var out []string
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := p.Spec.Resources.Defaults.Limits[r]; !ok {
			out = append(out, fmt.Sprintf("policy %s: spec.resources.defaults.limits.%s is not set", p.Name, r))
		}
		if _, ok := p.Spec.Resources.Max[r]; !ok {
			out = append(out, fmt.Sprintf("policy %s: spec.resources.max.%s is not set", p.Name, r))
		}
	}
	return out
}

// policyCommandProblems: some command rule, and sessions into agent pods not simply allowed.
func policyCommandProblems(p *policy.Policy) []string {
	var out []string
	if len(p.Spec.Commands.Blocked) == 0 && len(p.Spec.Commands.Allowed) == 0 {
		out = append(out, fmt.Sprintf("policy %s: spec.commands.blocked is empty and spec.commands.allowed is unset", p.Name))
	}
	if p.Spec.Exec.Mode == policy.ExecAllow {
		out = append(out, fmt.Sprintf("policy %s: spec.exec.mode is allow (sessions into agent pods are neither judged nor refused)", p.Name))
	}
	return out
}

// namespaceEgress judges one agent namespace's NetworkPolicies: restricted when agentgate-egress (policyTypes
// Egress) or a default-deny egress (empty podSelector, policyTypes Egress, no rule) is there, and no Egress
// policy lets a pod reach 169.254.0.0/16 (NetworkPolicies add up: one allowing it is enough).
func namespaceEgress(ns string, nps []networkingv1.NetworkPolicy) (restricted bool, problems []string, evidence string) {
	for i := range nps {
		np := &nps[i]
		if !hasEgressType(np) {
			continue
		}
		if np.Name == EgressPolicyName {
			restricted, evidence = true, fmt.Sprintf("NetworkPolicy %s/%s (policyTypes Egress)", ns, np.Name)
		} else if !restricted && len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 && len(np.Spec.Egress) == 0 {
			restricted, evidence = true, fmt.Sprintf("NetworkPolicy %s/%s denies all egress of every pod", ns, np.Name)
		}
		if why := reachesMetadata(np); why != "" {
			problems = append(problems, fmt.Sprintf("NetworkPolicy %s/%s: %s lets pods reach 169.254.0.0/16 (cloud metadata)", ns, np.Name, why))
		}
	}
	if !restricted {
		problems = append(problems, fmt.Sprintf("namespace %s: no NetworkPolicy %s with policyTypes Egress and no default-deny egress policy", ns, EgressPolicyName))
	}
	return restricted, problems, evidence
}

func hasEgressType(np *networkingv1.NetworkPolicy) bool {
	for _, t := range np.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeEgress {
			return true
		}
	}
	// Without policyTypes, a policy with egress rules is an Egress policy (the API's defaulting rule).
	return len(np.Spec.PolicyTypes) == 0 && len(np.Spec.Egress) > 0
}

// reachesMetadata names the egress rule letting traffic to the metadata range out, or "".
func reachesMetadata(np *networkingv1.NetworkPolicy) string {
	for i, rule := range np.Spec.Egress {
		if len(rule.To) == 0 {
			return fmt.Sprintf("spec.egress[%d] (no to: every destination)", i)
		}
		for j, peer := range rule.To {
			if peer.IPBlock == nil {
				continue // pod and namespace selectors select pod IPs, never link-local addresses
			}
			_, cidr, err := net.ParseCIDR(peer.IPBlock.CIDR)
			if err != nil || !overlaps(cidr, linkLocalNet) {
				continue
			}
			excluded := false
			for _, ex := range peer.IPBlock.Except {
				// Only an exception covering the whole /16 blocks it: a /32 for 169.254.169.254 leaves the
				// rest of link-local (other metadata endpoints, e.g. 169.254.170.2) reachable.
				if _, e, err := net.ParseCIDR(ex); err == nil {
					if covers(e, linkLocalNet) || covers(e, cidr) {
						excluded = true
					}
				}
			}
			if !excluded {
				return fmt.Sprintf("spec.egress[%d].to[%d].ipBlock %s", i, j, peer.IPBlock.CIDR)
			}
		}
	}
	return ""
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// covers says whether outer holds all of inner.
func covers(outer, inner *net.IPNet) bool {
	o, _ := outer.Mask.Size()
	i, _ := inner.Mask.Size()
	return outer.Contains(inner.IP) && o <= i && len(outer.IP) == len(inner.IP)
}

// flagValue reads --name=value or --name value from a container's args; ok is false when absent.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, prefix := range []string{"--" + name, "-" + name} {
			if a == prefix && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, prefix+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}
