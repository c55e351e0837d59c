package policy

// Network: agent namespaces keep a default-deny egress NetworkPolicy (DESIGN.md, "Network").
//
//	spec.network.manage                  agentgate owns NetworkPolicy agentgate-egress in every agent namespace
//	                                     the policy selects
//	spec.network.egress.allow[*].cidr    besides DNS, the only destinations (empty: no egress at all)
//	spec.network.egress.allow[*].ports   port, endPort, protocol (TCP, UDP, SCTP); empty: every port
//	spec.network.egress.dns              UDP and TCP 53 to the cluster DNS pods (default true)
//	spec.network.egress.dnsResolvers     further resolver addresses reached on UDP and TCP 53 only, even inside
//	                                     a blocked range (node-local DNS on 169.254.20.10)
//	spec.network.egress.blocked          excepted from every allowed CIDR, on top of DefaultBlocked, always
//
// NetworkPolicies are additive: any one that selects an agent pod widens its egress. JudgeNetworkPolicy
// therefore judges every NetworkPolicy in a managed namespace against the policies that manage it, and
// finds where it lets agent pods reach more than network.egress allows (check networkEgress).

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Network is spec.network.
type Network struct {
	Manage bool          `json:"manage,omitempty"`
	Egress NetworkEgress `json:"egress,omitempty"`
}

type NetworkEgress struct {
	Allow []EgressAllow `json:"allow,omitempty"`
	// DNS defaults to true: a pod without a resolver fails in ways that are hard to read.
	DNS          *bool    `json:"dns,omitempty"`
	DNSResolvers []string `json:"dnsResolvers,omitempty"`
	Blocked      []string `json:"blocked,omitempty"`
}

// EgressAllow is one allowed destination range and its ports.
type EgressAllow struct {
	CIDR  string       `json:"cidr"`
	Ports []EgressPort `json:"ports,omitempty"`
}

// EgressPort is a port or, with EndPort, a range; Protocol defaults to TCP like a NetworkPolicy's.
type EgressPort struct {
	Port     int32           `json:"port"`
	EndPort  *int32          `json:"endPort,omitempty"`
	Protocol corev1.Protocol `json:"protocol,omitempty"`
}

const (
	// NetworkPolicyName is the NetworkPolicy agentgate owns in each managed namespace.
	NetworkPolicyName = "agentgate-egress"
	// ManagedByLabel marks it as agentgate's: the controller deletes nothing without it.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "agentgate"
	// PolicyAnnotation names the policy the owned NetworkPolicy was built from.
	PolicyAnnotation = "agentgate.io/policy"
	// CheckNetworkEgress is the check ID of JudgeNetworkPolicy's violations.
	CheckNetworkEgress = "networkEgress"
)

// DefaultBlocked is always excepted from every allowed CIDR, whatever spec.network.egress.blocked says: the
// cloud metadata APIs (169.254.169.254, AWS's fd00:ec2::254; they hand out the node's credentials), the rest
// of link-local, and "this network" 0.0.0.0/8 (on Linux, 0.0.0.0 reaches the local host).
var DefaultBlocked = []string{"169.254.0.0/16", "0.0.0.0/8", "fe80::/10", "fd00:ec2::254/128"}

// The cluster DNS the dns switch opens: kube-dns (CoreDNS keeps the label) in kube-system.
const (
	dnsNamespace    = "kube-system"
	dnsPodLabel     = "k8s-app"
	dnsPodValue     = "kube-dns"
	namespaceNameLb = "kubernetes.io/metadata.name"
	dnsPort         = 53
)

// network is spec.network compiled.
type network struct {
	manage    bool
	allow     []allowedRange
	dns       bool
	resolvers []netip.Prefix
	blocked   []netip.Prefix // DefaultBlocked and spec's, deduplicated
	allowed   string         // what the policy allows, in words, for every violation
}

type allowedRange struct {
	prefix netip.Prefix
	ports  []portRange // empty: every port
}

type portRange struct {
	protocol corev1.Protocol
	from, to int32
}

func (r portRange) String() string {
	if r.from == 1 && r.to == 65535 {
		return string(r.protocol) + " every port"
	}
	if r.from == r.to {
		return fmt.Sprintf("%s %d", r.protocol, r.from)
	}
	return fmt.Sprintf("%s %d-%d", r.protocol, r.from, r.to)
}

func (r portRange) within(o portRange) bool {
	return r.protocol == o.protocol && o.from <= r.from && r.to <= o.to
}

var dnsPorts = []portRange{{corev1.ProtocolUDP, dnsPort, dnsPort}, {corev1.ProtocolTCP, dnsPort, dnsPort}}

// compileNetwork validates spec.network, every error at once with its path. What it accepts always turns into
// a NetworkPolicy the API server takes: CIDRs canonical, an except only of its CIDR's family and strictly
// inside it, ports in range.
func compileNetwork(n Network, fp *field.Path) (*network, field.ErrorList) {
	var errs field.ErrorList
	ep := fp.Child("egress")
	c := &network{manage: n.Manage, dns: n.Egress.DNS == nil || *n.Egress.DNS}

	for _, s := range DefaultBlocked {
		c.blocked = append(c.blocked, netip.MustParsePrefix(s))
	}
	for i, s := range n.Egress.Blocked {
		p, err := parseCIDR(s)
		if err != nil {
			errs = append(errs, field.Invalid(ep.Child("blocked").Index(i), s, err.Error()))
			continue
		}
		if !slices.Contains(c.blocked, p) {
			c.blocked = append(c.blocked, p)
		}
	}
	for i, s := range n.Egress.DNSResolvers {
		p, err := parseAddressOrCIDR(s)
		if err != nil {
			errs = append(errs, field.Invalid(ep.Child("dnsResolvers").Index(i), s, err.Error()))
			continue
		}
		c.resolvers = append(c.resolvers, p)
	}
	for i, a := range n.Egress.Allow {
		ap := ep.Child("allow").Index(i)
		r := allowedRange{}
		p, err := parseCIDR(a.CIDR)
		if err != nil {
			errs = append(errs, field.Invalid(ap.Child("cidr"), a.CIDR, err.Error()))
		} else {
			r.prefix = p
			for _, b := range c.blocked {
				if b.Contains(p.Addr()) && b.Bits() <= p.Bits() {
					errs = append(errs, field.Invalid(ap.Child("cidr"), a.CIDR, "lies inside the blocked range "+b.String()+": it would allow nothing (a resolver there goes in egress.dnsResolvers)"))
				}
			}
		}
		for j, port := range a.Ports {
			pp := ap.Child("ports").Index(j)
			pr := portRange{protocol: port.Protocol, from: port.Port, to: port.Port}
			if pr.protocol == "" {
				pr.protocol = corev1.ProtocolTCP
			}
			switch pr.protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}))
			}
			if port.Port < 1 || port.Port > 65535 {
				errs = append(errs, field.Invalid(pp.Child("port"), port.Port, "must be between 1 and 65535"))
			}
			if port.EndPort != nil {
				pr.to = *port.EndPort
				if *port.EndPort < port.Port || *port.EndPort > 65535 {
					errs = append(errs, field.Invalid(pp.Child("endPort"), *port.EndPort, fmt.Sprintf("must be between port (%d) and 65535", port.Port)))
				}
			}
			r.ports = append(r.ports, pr)
		}
		c.allow = append(c.allow, r)
	}
	c.allowed = c.describe()
	return c, errs
}

// parseCIDR accepts a canonical IPv4 or IPv6 prefix: the API server refuses (newer versions) or silently
// masks (older ones) anything else, and either would make the owned object differ from what the policy says.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR such as 10.0.0.0/8 or fd00::/8: %v", err)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("an IPv4-mapped IPv6 prefix: write the IPv4 prefix %s", netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked())
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("host bits set: did you mean %s?", p.Masked())
	}
	return p, nil
}

// parseAddressOrCIDR accepts an address (a resolver: 169.254.20.10) as its single-address prefix.
func parseAddressOrCIDR(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is4In6() || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("write a plain IPv4 or IPv6 address")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return parseCIDR(s)
}

func (c *network) describe() string {
	var parts []string
	if c.dns {
		d := "DNS (UDP and TCP 53) to kube-system pods k8s-app=kube-dns"
		for _, r := range c.resolvers {
			d += ", " + r.String()
		}
		parts = append(parts, d)
	} else if len(c.resolvers) > 0 {
		parts = append(parts, "DNS (UDP and TCP 53) to "+joinPrefixes(c.resolvers))
	}
	for _, a := range c.allow {
		s := a.prefix.String()
		if len(a.ports) == 0 {
			s += " every port"
		} else {
			var ps []string
			for _, p := range a.ports {
				ps = append(ps, p.String())
			}
			s += " " + strings.Join(ps, ", ")
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no egress at all"
	}
	return strings.Join(parts, "; ") + "; never " + joinPrefixes(c.blocked)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// ManagesNetwork reports whether the policy keeps agentgate-egress in the namespace: network.manage is on,
// its namespaceSelector selects the namespace and the namespace is not exempt. Which namespaces are in the
// sandbox at all (agentgate.io/agents) is the caller's to decide.
func (p *Policy) ManagesNetwork(ns Namespace) bool {
	if p.network == nil || !p.network.manage || p.exemptNS[ns.Name] {
		return false
	}
	return p.selectsNamespace(ns)
}

// SelectsPod reports whether the policy judges the workload in the namespace when rq sends it (selectors and
// exemptions).
func (p *Policy) SelectsPod(w *Workload, ns Namespace, rq Requester) bool {
	ok, _ := p.selects(w, ns, rq)
	return ok
}

// NetworkManager is the policy that owns agentgate-egress in the namespace: the first by name of those that
// manage it, nil if none. One NetworkPolicy has one pod selector; a second managing policy is not merged into
// it (NetworkPolicies add up, so a merge would let a pod both select reach what either allows), it judges the
// first one's NetworkPolicy at admission like any other, and the conflict shows as a refused write.
func (s *Set) NetworkManager(ns Namespace) *Policy {
	for _, p := range s.Policies {
		if p.ManagesNetwork(ns) {
			return p
		}
	}
	return nil
}

// DesiredNetworkPolicy is the NetworkPolicy agentgate keeps in the namespace for p: the pods p selects may
// reach DNS and the allowed ranges (minus the blocked ones, split per address family) and nothing else.
func DesiredNetworkPolicy(p *Policy, namespace string) *networkingv1.NetworkPolicy {
	n := p.network
	np := &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name: NetworkPolicyName, Namespace: namespace,
			Labels:      map[string]string{ManagedByLabel: ManagedByValue},
			Annotations: map[string]string{PolicyAnnotation: p.Name},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      []networkingv1.NetworkPolicyEgressRule{},
		},
	}
	if sel := p.Spec.Match.PodSelector; sel != nil {
		np.Spec.PodSelector = *sel.DeepCopy()
	}
	if n.dns || len(n.resolvers) > 0 {
		rule := networkingv1.NetworkPolicyEgressRule{Ports: npPorts(dnsPorts)}
		if n.dns {
			rule.To = append(rule.To, networkingv1.NetworkPolicyPeer{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLb: dnsNamespace}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{dnsPodLabel: dnsPodValue}},
			})
		}
		for _, r := range n.resolvers {
			rule.To = append(rule.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: r.String()}})
		}
		np.Spec.Egress = append(np.Spec.Egress, rule)
	}
	for _, a := range n.allow {
		block := &networkingv1.IPBlock{CIDR: a.prefix.String()}
		for _, b := range n.blocked {
			// Only ranges of the same family strictly inside the CIDR: the API server refuses any other except.
			if b.Addr().Is4() == a.prefix.Addr().Is4() && b.Bits() > a.prefix.Bits() && a.prefix.Contains(b.Addr()) {
				block.Except = append(block.Except, b.String())
			}
		}
		rule := networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: block}}}
		if len(a.ports) > 0 {
			rule.Ports = npPorts(a.ports)
		}
		np.Spec.Egress = append(np.Spec.Egress, rule)
	}
	return np
}

func npPorts(rs []portRange) []networkingv1.NetworkPolicyPort {
	out := make([]networkingv1.NetworkPolicyPort, len(rs))
	for i, r := range rs {
		proto, port := r.protocol, intstr.FromInt32(r.from)
		out[i] = networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port}
		if r.to != r.from {
			end := r.to
			out[i].EndPort = &end
		}
	}
	return out
}

// JudgeNetworkPolicy judges a NetworkPolicy of the namespace against every policy that manages the namespace's
// network and whose pods it could select. Res.Matched lists those policies.
func (s *Set) JudgeNetworkPolicy(np *networkingv1.NetworkPolicy, ns Namespace) Result {
	var res Result
	for _, p := range s.Policies {
		if !p.ManagesNetwork(ns) || !mayOverlap(p.Spec.Match.PodSelector, &np.Spec.PodSelector) {
			continue
		}
		res.Matched = append(res.Matched, p.Name)
		res.Violations = append(res.Violations, p.JudgeNetworkPolicy(np)...)
	}
	return res
}

// JudgeNetworkPolicy lists where np lets pods reach more than p's network.egress allows: a destination
// outside every allowed range, a blocked range not excepted, ports beyond the allowed ones, a rule without
// `to` (every destination), and in-cluster peers (namespaceSelector, podSelector) other than the cluster DNS.
// Conservative where the exact answer needs set arithmetic: a peer must fit inside one allowed range, and
// each blocked range it overlaps must be inside one of its excepts.
func (p *Policy) JudgeNetworkPolicy(np *networkingv1.NetworkPolicy) Violations {
	if p.network == nil {
		return nil
	}
	r := &report{policy: p}
	n := p.network
	if !limitsEgress(np) {
		return nil
	}
	ep := field.NewPath("spec", "egress")
	for i, rule := range np.Spec.Egress {
		rp := ep.Index(i)
		ports := rulePorts(rule.Ports)
		if len(rule.To) == 0 {
			r.add(CheckNetworkEgress, rp.Child("to"), "no to: every destination"+portsFound(ports), n.allowed,
				"a rule without `to` lets agent pods reach any address; name the allowed ranges as ipBlock peers")
			continue
		}
		for j, peer := range rule.To {
			pp := rp.Child("to").Index(j)
			if peer.IPBlock == nil {
				if n.dns && isClusterDNSPeer(peer) && portsWithin(ports, dnsPorts) {
					continue
				}
				at, found := pp.Child("namespaceSelector"), "namespaceSelector "+renderLabelSelector(peer.NamespaceSelector)
				if peer.NamespaceSelector == nil {
					at, found = pp.Child("podSelector"), "podSelector "+renderLabelSelector(peer.PodSelector)+" (pods of this namespace)"
				} else if peer.PodSelector != nil {
					found += ", podSelector " + renderLabelSelector(peer.PodSelector)
				}
				r.add(CheckNetworkEgress, at, found+portsFound(ports), n.allowed,
					"in-cluster peers other than the cluster DNS on port 53 are more than the policy allows")
				continue
			}
			cp := pp.Child("ipBlock", "cidr")
			cidr, err := netip.ParsePrefix(peer.IPBlock.CIDR)
			if err != nil {
				r.add(CheckNetworkEgress, cp, strconv.Quote(peer.IPBlock.CIDR), n.allowed, "not a CIDR: cannot tell what it lets through")
				continue
			}
			cidr = cidr.Masked()
			if containedIn(cidr, n.resolvers) && portsWithin(ports, dnsPorts) {
				continue // a listed resolver on port 53: allowed even inside a blocked range
			}
			var inside []allowedRange
			for _, a := range n.allow {
				if a.prefix.Bits() <= cidr.Bits() && a.prefix.Contains(cidr.Addr()) {
					inside = append(inside, a)
				}
			}
			if len(inside) == 0 {
				r.add(CheckNetworkEgress, cp, cidr.String()+portsFound(ports), n.allowed, "destination outside every allowed range")
				continue
			}
			if !portsAllowedBy(ports, inside) {
				at := rp.Child("ports")
				if len(rule.Ports) > 0 {
					for k, pr := range ports {
						if !portsAllowedBy([]portRange{pr}, inside) {
							r.add(CheckNetworkEgress, at.Index(k), pr.String()+" to "+cidr.String(), n.allowed, "port beyond those the policy allows for this range")
						}
					}
				} else {
					r.add(CheckNetworkEgress, at, "no ports: every port to "+cidr.String(), n.allowed, "port beyond those the policy allows for this range")
				}
			}
			for _, b := range n.blocked {
				if !b.Overlaps(cidr) {
					continue
				}
				if b.Bits() <= cidr.Bits() {
					r.add(CheckNetworkEgress, cp, cidr.String(), n.allowed, "lies inside the blocked range "+b.String())
					continue
				}
				if !exceptCovers(peer.IPBlock.Except, b) {
					r.add(CheckNetworkEgress, pp.Child("ipBlock", "except"), "["+strings.Join(peer.IPBlock.Except, ", ")+"]", n.allowed,
						"the blocked range "+b.String()+" is inside "+cidr.String()+" and must be excepted")
				}
			}
		}
	}
	return r.out
}

// limitsEgress: a NetworkPolicy affects egress when policyTypes names Egress, or (unset) when it has egress
// rules, as the API server defaults it.
func limitsEgress(np *networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// rulePorts: no ports is every port of every protocol; a named port may be any number.
func rulePorts(ps []networkingv1.NetworkPolicyPort) []portRange {
	if len(ps) == 0 {
		return []portRange{{corev1.ProtocolTCP, 1, 65535}, {corev1.ProtocolUDP, 1, 65535}, {corev1.ProtocolSCTP, 1, 65535}}
	}
	out := make([]portRange, len(ps))
	for i, p := range ps {
		r := portRange{protocol: corev1.ProtocolTCP, from: 1, to: 65535}
		if p.Protocol != nil {
			r.protocol = *p.Protocol
		}
		if p.Port != nil && p.Port.Type == intstr.Int {
			r.from, r.to = p.Port.IntVal, p.Port.IntVal
			if p.EndPort != nil {
				r.to = *p.EndPort
			}
		}
		out[i] = r
	}
	return out
}

func portsFound(ps []portRange) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return " on " + strings.Join(s, ", ")
}

func portsWithin(ps, allowed []portRange) bool {
	for _, p := range ps {
		if !slices.ContainsFunc(allowed, p.within) {
			return false
		}
	}
	return true
}

// portsAllowedBy: every port is allowed by one of the ranges (each containing the destination).
func portsAllowedBy(ps []portRange, ranges []allowedRange) bool {
	for _, p := range ps {
		if !slices.ContainsFunc(ranges, func(a allowedRange) bool {
			return len(a.ports) == 0 || slices.ContainsFunc(a.ports, p.within)
		}) {
			return false
		}
	}
	return true
}

func containedIn(p netip.Prefix, in []netip.Prefix) bool {
	return slices.ContainsFunc(in, func(q netip.Prefix) bool { return q.Bits() <= p.Bits() && q.Contains(p.Addr()) })
}

func exceptCovers(except []string, b netip.Prefix) bool {
	for _, e := range except {
		if p, err := netip.ParsePrefix(e); err == nil && p.Bits() <= b.Bits() && p.Masked().Contains(b.Addr()) {
			return true
		}
	}
	return false
}

// isClusterDNSPeer: the peer selects only kube-dns pods of kube-system.
func isClusterDNSPeer(peer networkingv1.NetworkPolicyPeer) bool {
	return requiresOnly(peer.NamespaceSelector, namespaceNameLb, dnsNamespace) && requiresOnly(peer.PodSelector, dnsPodLabel, dnsPodValue)
}

// requiresOnly: every object the selector selects carries key=value.
func requiresOnly(sel *metav1.LabelSelector, key, value string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	reqs, _ := s.Requirements()
	for _, r := range reqs {
		if r.Key() != key {
			continue
		}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if vals := r.Values().List(); len(vals) == 1 && vals[0] == value {
				return true
			}
		}
	}
	return false
}

// mayOverlap is false only when no label set can match both selectors: one requires key in A, the other key in
// B with A and B disjoint, or key absent. Anything else may select the same pods (the conservative side).
func mayOverlap(a, b *metav1.LabelSelector) bool {
	sa, errA := selectorOrEverything(a)
	sb, errB := selectorOrEverything(b)
	if errA != nil || errB != nil {
		return true
	}
	ra, _ := sa.Requirements()
	rb, _ := sb.Requirements()
	for _, x := range ra {
		for _, y := range rb {
			if x.Key() == y.Key() && (disjointRequirements(x, y) || disjointRequirements(y, x)) {
				return false
			}
		}
	}
	return true
}

func selectorOrEverything(sel *metav1.LabelSelector) (labels.Selector, error) {
	if sel == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(sel)
}

func disjointRequirements(x, y labels.Requirement) bool {
	switch x.Operator() {
	case selection.Equals, selection.DoubleEquals, selection.In:
	default:
		return false
	}
	xs := x.Values()
	switch y.Operator() {
	case selection.DoesNotExist:
		return true
	case selection.Equals, selection.DoubleEquals, selection.In:
		return !xs.HasAny(y.Values().UnsortedList()...)
	case selection.NotIn, selection.NotEquals:
		return y.Values().IsSuperset(xs)
	}
	return false
}

func renderLabelSelector(sel *metav1.LabelSelector) string {
	if sel == nil {
		return "(none)"
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "(invalid)"
	}
	if s.Empty() {
		return "{} (everything)"
	}
	return s.String()
}
