package policy

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

func networkPolicyDoc(network string) []byte {
	return []byte(`apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: net}
spec:
  match:
    namespaceSelector: {matchLabels: {agentgate.io/agents: "true"}}
    podSelector: {matchLabels: {role: agent}}
  network:
` + indent(network, "    "))
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// Every malformed network field is refused with its path, all at once.
func TestNetworkParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		want          []string // each error, as field.Error renders it (prefix)
	}{
		{"cidr does not parse", `egress: {allow: [{cidr: "10.0.0.0/33"}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "10.0.0.0/33": not a CIDR`}},
		{"address without prefix", `egress: {allow: [{cidr: "10.1.2.3"}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "10.1.2.3": not a CIDR`}},
		{"host bits set", `egress: {allow: [{cidr: "10.1.2.3/8"}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "10.1.2.3/8": host bits set: did you mean 10.0.0.0/8?`}},
		{"ipv4-mapped", `egress: {allow: [{cidr: "::ffff:10.0.0.0/104"}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "::ffff:10.0.0.0/104": an IPv4-mapped IPv6 prefix: write the IPv4 prefix 10.0.0.0/8`}},
		{"zone", `egress: {allow: [{cidr: "fe80::%eth0/64"}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "fe80::%eth0/64": not a CIDR`}},
		{"empty cidr", `egress: {allow: [{ports: [{port: 443}]}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "": not a CIDR`}},
		{"inside blocked metadata range", `egress: {allow: [{cidr: "169.254.169.254/32"}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "169.254.169.254/32": lies inside the blocked range 169.254.0.0/16`}},
		{"inside blocked ipv6 metadata", `egress: {allow: [{cidr: "fd00:ec2::254/128"}]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "fd00:ec2::254/128": lies inside the blocked range fd00:ec2::254/128`}},
		{"equal to an own blocked range", `egress: {allow: [{cidr: "10.0.0.0/8"}], blocked: ["10.0.0.0/8"]}`, []string{`spec.network.egress.allow[0].cidr: Invalid value: "10.0.0.0/8": lies inside the blocked range 10.0.0.0/8`}},
		{"port zero", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: 0}]}]}`, []string{`spec.network.egress.allow[0].ports[0].port: Invalid value: 0: must be between 1 and 65535`}},
		{"port missing", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{protocol: UDP}]}]}`, []string{`spec.network.egress.allow[0].ports[0].port: Invalid value: 0: must be between 1 and 65535`}},
		{"port too big", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: 65536}]}]}`, []string{`spec.network.egress.allow[0].ports[0].port: Invalid value: 65536: must be between 1 and 65535`}},
		{"negative port", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: -1}]}]}`, []string{`spec.network.egress.allow[0].ports[0].port: Invalid value: -1: must be between 1 and 65535`}},
		{"endPort below port", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: 443, endPort: 80}]}]}`, []string{`spec.network.egress.allow[0].ports[0].endPort: Invalid value: 80: must be between port (443) and 65535`}},
		{"endPort too big", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: 443, endPort: 70000}]}]}`, []string{`spec.network.egress.allow[0].ports[0].endPort: Invalid value: 70000: must be between port (443) and 65535`}},
		{"protocol lower case", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: 443, protocol: tcp}]}]}`, []string{`spec.network.egress.allow[0].ports[0].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"`}},
		{"protocol ICMP", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: 1, protocol: ICMP}]}]}`, []string{`spec.network.egress.allow[0].ports[0].protocol: Unsupported value: "ICMP"`}},
		{"port as a name", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: https}]}]}`, []string{`spec.network.egress.allow[0].ports[0].port: Invalid value: "string"`}},
		{"blocked does not parse", `egress: {blocked: ["metadata"]}`, []string{`spec.network.egress.blocked[0]: Invalid value: "metadata": not a CIDR`}},
		{"blocked host bits", `egress: {blocked: ["169.254.169.254/16"]}`, []string{`spec.network.egress.blocked[0]: Invalid value: "169.254.169.254/16": host bits set`}},
		{"resolver does not parse", `egress: {dnsResolvers: ["node-local"]}`, []string{`spec.network.egress.dnsResolvers[0]: Invalid value: "node-local": not a CIDR`}},
		{"resolver ipv4-mapped", `egress: {dnsResolvers: ["::ffff:169.254.20.10"]}`, []string{`spec.network.egress.dnsResolvers[0]: Invalid value: "::ffff:169.254.20.10": write a plain IPv4 or IPv6 address`}},
		{"manage not a bool", `manage: "yes"`, []string{`spec.network.manage: Invalid value: "string"`}},
		{"unknown field", `egress: {allowed: []}`, []string{`spec.network.egress.allowed: Forbidden: unknown field`}},
		{"unknown field in a port", `egress: {allow: [{cidr: "10.0.0.0/8", ports: [{port: 1, to: 2}]}]}`, []string{`spec.network.egress.allow[0].ports[0].to: Forbidden: unknown field`}},
		{"all at once", `egress: {allow: [{cidr: "x", ports: [{port: 0, protocol: ICMP}]}, {cidr: "10.0.0.0/8", ports: [{port: 5, endPort: 4}]}], blocked: ["y"], dnsResolvers: ["z"]}`, []string{
			`spec.network.egress.blocked[0]: Invalid value: "y"`,
			`spec.network.egress.dnsResolvers[0]: Invalid value: "z"`,
			`spec.network.egress.allow[0].cidr: Invalid value: "x"`,
			`spec.network.egress.allow[0].ports[0].protocol: Unsupported value: "ICMP"`,
			`spec.network.egress.allow[0].ports[0].port: Invalid value: 0`,
			`spec.network.egress.allow[1].ports[0].endPort: Invalid value: 4`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, errs := Parse(networkPolicyDoc(tc.network))
			if p != nil {
				t.Fatalf("parsed; want %d errors", len(tc.want))
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), errs)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, e.Error(), tc.want[i])
				}
			}
		})
	}
}

// The owned NetworkPolicy, exactly: DNS to kube-dns and the listed resolver on UDP and TCP 53, the allowed
// ranges with the blocked ones of the same family excepted (the API server refuses an except of the other
// family, or one not strictly inside its CIDR).
func TestDesiredNetworkPolicy(t *testing.T) {
	p, errs := Parse(networkPolicyDoc(`
manage: true
egress:
  dnsResolvers: [169.254.20.10]
  blocked: [10.96.0.0/12]
  allow:
    - {cidr: 0.0.0.0/0, ports: [{port: 443}, {port: 8000, endPort: 8080, protocol: UDP}]}
    - {cidr: "::/0"}
    - {cidr: 10.0.0.0/16}
    - {cidr: 192.168.0.0/16, ports: [{port: 5432, protocol: SCTP}]}`))
	if errs != nil {
		t.Fatal(errs)
	}
	got, err := yaml.Marshal(DesiredNetworkPolicy(p, "team-a"))
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  annotations:
    agentgate.io/policy: net
  labels:
    app.kubernetes.io/managed-by: agentgate
  name: agentgate-egress
  namespace: team-a
spec:
  egress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
    to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    - ipBlock:
        cidr: 169.254.20.10/32
  - ports:
    - port: 443
      protocol: TCP
    - endPort: 8080
      port: 8000
      protocol: UDP
    to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
        - 169.254.0.0/16
        - 0.0.0.0/8
        - 10.96.0.0/12
  - to:
    - ipBlock:
        cidr: ::/0
        except:
        - fe80::/10
        - fd00:ec2::254/128
  - to:
    - ipBlock:
        cidr: 10.0.0.0/16
  - ports:
    - port: 5432
      protocol: SCTP
    to:
    - ipBlock:
        cidr: 192.168.0.0/16
  podSelector:
    matchLabels:
      role: agent
  policyTypes:
  - Egress
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// No allow, no DNS: no egress at all (an empty rule list, never a missing one).
	p, errs = Parse(networkPolicyDoc(`{manage: true, egress: {dns: false}}`))
	if errs != nil {
		t.Fatal(errs)
	}
	np := DesiredNetworkPolicy(p, "x")
	if np.Spec.Egress == nil || len(np.Spec.Egress) != 0 || len(np.Spec.PolicyTypes) != 1 {
		t.Errorf("want policyTypes [Egress] and no rule, got %+v", np.Spec)
	}
}

func npFromYAML(t *testing.T, doc string) *networkingv1.NetworkPolicy {
	t.Helper()
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(doc), &np); err != nil {
		t.Fatal(err)
	}
	return &np
}

// Every way a NetworkPolicy can let agent pods reach more, with the exact path; and what stays admitted.
func TestJudgeNetworkPolicy(t *testing.T) {
	p, errs := Parse(networkPolicyDoc(`
manage: true
egress:
  dnsResolvers: [169.254.20.10]
  allow:
    - {cidr: 10.0.0.0/8, ports: [{port: 443}, {port: 8000, endPort: 8100}]}
    - {cidr: 0.0.0.0/0, ports: [{port: 80}]}`))
	if errs != nil {
		t.Fatal(errs)
	}
	set := NewSet(p)
	ns := Namespace{Name: "team-a", Labels: map[string]string{"agentgate.io/agents": "true"}}
	for _, tc := range []struct {
		name, spec string
		want       []string // field: found
	}{
		{"allow-all egress", `{podSelector: {}, egress: [{}]}`, []string{"spec.egress[0].to: no to: every destination on TCP every port, UDP every port, SCTP every port"}},
		{"to 0.0.0.0/0", `{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]}`, []string{"spec.egress[0].ports: no ports: every port to 0.0.0.0/0", "spec.egress[0].to[0].ipBlock.except: []", "spec.egress[0].to[0].ipBlock.except: []"}},
		{"outside allowed range", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 192.168.0.0/16}}], ports: [{port: 443}]}]}`, []string{"spec.egress[0].ports[0]: TCP 443 to 192.168.0.0/16"}},
		{"ipv6 everything", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: "::/0"}}], ports: [{port: 443}]}]}`, []string{"spec.egress[0].to[0].ipBlock.cidr: ::/0 on TCP 443"}},
		{"metadata address on 80", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 169.254.169.254/32}}], ports: [{port: 80}]}]}`, []string{"spec.egress[0].to[0].ipBlock.cidr: 169.254.169.254/32"}},
		{"80 everywhere without the blocked excepts", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.0.0/16]}}], ports: [{port: 80}]}]}`, []string{"spec.egress[0].to[0].ipBlock.except: [169.254.0.0/16]"}},
		{"other port", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}], ports: [{port: 22}]}]}`, []string{"spec.egress[0].ports[0]: TCP 22 to 10.1.0.0/16"}},
		{"UDP instead of TCP", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}], ports: [{port: 443, protocol: UDP}]}]}`, []string{"spec.egress[0].ports[0]: UDP 443 to 10.1.0.0/16"}},
		{"range beyond allowed range", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}], ports: [{port: 8000, endPort: 9000}]}]}`, []string{"spec.egress[0].ports[0]: TCP 8000-9000 to 10.1.0.0/16"}},
		{"named port", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}], ports: [{port: https}]}]}`, []string{"spec.egress[0].ports[0]: TCP every port to 10.1.0.0/16"}},
		{"no ports", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}]}]}`, []string{"spec.egress[0].ports: no ports: every port to 10.1.0.0/16"}},
		{"namespaceSelector everything", `{podSelector: {}, egress: [{to: [{namespaceSelector: {}}], ports: [{port: 443}]}]}`, []string{"spec.egress[0].to[0].namespaceSelector: namespaceSelector {} (everything) on TCP 443"}},
		{"podSelector in own namespace", `{podSelector: {}, egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]}`, []string{"spec.egress[0].to[0].podSelector: podSelector app=db (pods of this namespace)"}},
		{"kube-dns on every port", `{podSelector: {}, egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]}]}`, []string{"spec.egress[0].to[0].namespaceSelector: namespaceSelector kubernetes.io/metadata.name=kube-system, podSelector k8s-app=kube-dns on TCP every port"}},
		{"all of kube-system on 53", `{podSelector: {}, egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}], ports: [{port: 53, protocol: UDP}]}]}`, []string{"spec.egress[0].to[0].namespaceSelector: namespaceSelector kubernetes.io/metadata.name=kube-system on UDP 53"}},
		{"kube-dns or another app", `{podSelector: {}, egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchExpressions: [{key: k8s-app, operator: In, values: [kube-dns, metrics]}]}}], ports: [{port: 53, protocol: UDP}]}]}`, []string{"spec.egress[0].to[0].namespaceSelector"}},
		{"resolver on another port", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 169.254.20.10/32}}], ports: [{port: 80}]}]}`, []string{"spec.egress[0].to[0].ipBlock.cidr: 169.254.20.10/32"}},
		{"resolver on another port, no range around it", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 169.254.20.10/32}}], ports: [{port: 8080}]}]}`, []string{"spec.egress[0].ports[0]: TCP 8080 to 169.254.20.10/32", "spec.egress[0].to[0].ipBlock.cidr: 169.254.20.10/32"}},
		{"metadata address on 443", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 169.254.169.254/32}}], ports: [{port: 443}]}]}`, []string{"spec.egress[0].ports[0]: TCP 443 to 169.254.169.254/32", "spec.egress[0].to[0].ipBlock.cidr: 169.254.169.254/32"}},
		{"public address on 443", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 8.8.8.8/32}}], ports: [{port: 443}]}]}`, []string{"spec.egress[0].ports[0]: TCP 443 to 8.8.8.8/32"}},
		{"second rule bad", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: 443}]}, {to: [{ipBlock: {cidr: 10.0.0.0/8}}, {ipBlock: {cidr: 8.8.8.8/32}}], ports: [{port: 443}]}]}`, []string{"spec.egress[1].ports[0]: TCP 443 to 8.8.8.8/32"}},
		{"selects the agent pods by expression", `{podSelector: {matchExpressions: [{key: role, operator: Exists}]}, egress: [{}]}`, []string{"spec.egress[0].to"}},
		{"policyTypes unset, egress rules present", `{podSelector: {}, egress: [{}]}`, []string{"spec.egress[0].to"}},
		// Admitted.
		{"within the allowed set", `{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.20.0.0/16}}], ports: [{port: 443, protocol: TCP}, {port: 8050, endPort: 8060}]}]}`, nil},
		{"80 everywhere with the blocked excepted", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.0.0/16, 0.0.0.0/8]}}], ports: [{port: 80}]}]}`, nil},
		{"cluster DNS", `{podSelector: {}, egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}], ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}]}`, nil},
		{"listed resolver inside the blocked range", `{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 169.254.20.10/32}}], ports: [{port: 53, protocol: UDP}]}]}`, nil},
		{"ingress only", `{podSelector: {}, policyTypes: [Ingress], ingress: [{}]}`, nil},
		{"no rules: deny all", `{podSelector: {}, policyTypes: [Egress]}`, nil},
		{"selects other pods only", `{podSelector: {matchLabels: {role: db}}, egress: [{}]}`, nil},
		{"selects pods without the agent label", `{podSelector: {matchExpressions: [{key: role, operator: DoesNotExist}]}, egress: [{}]}`, nil},
		{"selects pods whose role is not agent", `{podSelector: {matchExpressions: [{key: role, operator: NotIn, values: [agent]}]}, egress: [{}]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := npFromYAML(t, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: team-a}\nspec: "+tc.spec)
			res := set.JudgeNetworkPolicy(np, ns)
			var got []string
			for _, v := range res.Violations {
				got = append(got, v.Field+": "+v.Found)
				if v.Check != CheckNetworkEgress || !strings.Contains(v.Message, "allowed: DNS (UDP and TCP 53) to kube-system pods k8s-app=kube-dns, 169.254.20.10/32; 10.0.0.0/8 TCP 443, TCP 8000-8100; 0.0.0.0/0 TCP 80; never 169.254.0.0/16") {
					t.Errorf("message does not say what is allowed: %s", v.Message)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations %q, want %q", len(got), got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("violation %d:\n got %s\nwant %s…", i, got[i], tc.want[i])
				}
			}
		})
	}

	// Outside the policy's namespaces, or with manage off, nothing is judged.
	if res := set.JudgeNetworkPolicy(npFromYAML(t, `{spec: {podSelector: {}, egress: [{}]}}`), Namespace{Name: "other", Labels: map[string]string{}}); len(res.Violations) != 0 || len(res.Matched) != 0 {
		t.Errorf("a namespace the policy does not select: %+v", res)
	}
	off, _ := Parse(networkPolicyDoc(`{manage: false, egress: {allow: [{cidr: 10.0.0.0/8}]}}`))
	if res := NewSet(off).JudgeNetworkPolicy(npFromYAML(t, `{spec: {podSelector: {}, egress: [{}]}}`), ns); len(res.Matched) != 0 {
		t.Errorf("manage: false judged: %+v", res)
	}
}

func TestNetworkWeakenings(t *testing.T) {
	base := `
manage: true
egress:
  dns: false
  dnsResolvers: [169.254.20.10]
  blocked: [10.96.0.0/12]
  allow: [{cidr: 10.0.0.0/8, ports: [{port: 443}]}]`
	old, errs := Parse(networkPolicyDoc(base))
	if errs != nil {
		t.Fatal(errs)
	}
	for _, tc := range []struct{ name, edit, want string }{
		{"manage off", strings.Replace(base, "manage: true", "manage: false", 1), "spec.network.manage: true -> false"},
		{"manage omitted", strings.Replace(base, "manage: true", "", 1), "spec.network.manage: true -> false"},
		{"allow grown", strings.Replace(base, "allow: [", "allow: [{cidr: 0.0.0.0/0}, ", 1), "spec.network.egress.allow[0]: (none) -> "},
		{"port changed", strings.Replace(base, "port: 443", "port: 22", 1), "spec.network.egress.allow[0]: (none) -> "},
		{"dns on", strings.Replace(base, "dns: false", "dns: true", 1), "spec.network.egress.dns: false -> true"},
		{"dns omitted (default on)", strings.Replace(base, "dns: false", "", 1), "spec.network.egress.dns: false -> true"},
		{"resolver added", strings.Replace(base, "[169.254.20.10]", "[169.254.20.10, 8.8.8.8]", 1), "spec.network.egress.dnsResolvers[1]: (none) -> "},
		{"blocked shrunk", strings.Replace(base, "blocked: [10.96.0.0/12]", "blocked: []", 1), "spec.network.egress.blocked[0]: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, errs := Parse(networkPolicyDoc(tc.edit))
			if errs != nil {
				t.Fatal(errs)
			}
			ws := Weakenings(old, cur)
			if len(ws) != 1 || !strings.HasPrefix(ws[0].String(), tc.want) || ws[0].Rule != "network" {
				t.Fatalf("got %v, want one %q…", ws, tc.want)
			}
		})
	}
	tighter, _ := Parse(networkPolicyDoc(strings.Replace(base, "allow: [{cidr: 10.0.0.0/8, ports: [{port: 443}]}]", "allow: []", 1)))
	if ws := Weakenings(old, tighter); len(ws) != 0 {
		t.Errorf("removing an allowed range is no weakening: %v", ws)
	}
}
