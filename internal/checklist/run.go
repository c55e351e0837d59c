package checklist

// The probes: read-only API calls (GET, LIST, SubjectAccessReview, discovery) and, for a webhook reached by
// URL, a TLS handshake. Each error becomes an unknown finding with its reason.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/policy"
)

// Options name what a full setup (manifests/base) is made of.
type Options struct {
	Namespace            string // agentgate's namespace: policy ConfigMaps, Deployment, Secret (agentgate-system)
	WebhookConfiguration string // name of both webhook configurations (agentgate)
	Deployment           string // agentgate's Deployment (agentgate)
	TLSSecret            string // Secret holding the serving certificate (agentgate-tls)
	Now                  time.Time
	DialTimeout          time.Duration
}

// remedies say what to do when an item is not a pass.
var remedies = map[string]string{
	"tls":        "install agentgate's webhook configurations (manifests/base/webhooks.yaml) with a caBundle that verifies the serving certificate; serve TLS 1.3; renew a certificate expiring within 30 days (agentgate serve --cert-secret rotates it)",
	"token":      "keep spec.serviceAccountToken.automount false in the policies and recreate the listed pods; delete the listed token Secrets (kubectl delete secret -n NS NAME); remove the RoleBindings/ClusterRoleBindings granting the listed permissions to the agent namespaces' service accounts (kubectl auth can-i --list --as=system:serviceaccount:NS:default)",
	"sandbox":    "set failurePolicy: Fail on agentgate's pod webhooks, route every request listed as unseen (manifests/base/webhooks.yaml has them all), set spec.mode: enforce in every policy, taint every Windows node node.kubernetes.io/os=windows:NoSchedule, and fix or delete the listed pods (agentgate audit lists their violations)",
	"resources":  "set spec.resources.defaults.limits and spec.resources.max (cpu and memory) in every policy, and recreate the listed pods so that limits are filled",
	"commands":   "set spec.commands.blocked (or spec.commands.allowed) and spec.exec.mode deny or audit in every policy",
	"network":    "create NetworkPolicy agentgate-egress (policyTypes [Egress]) in every agent namespace, blocking 169.254.0.0/16, and remove egress rules reaching it",
	"audit-logs": "run agentgate with --log-level info or debug, keep spec.exec.mode deny or audit, and keep the exec webhook (CONNECT pods/exec) registered",
	"alerts":     "install the monitoring component (manifests/components/monitoring) so the PrometheusRule agentgate exists",
	"rotation":   "run agentgate serve with --cert-secret (self-managed rotation) or manage the serving certificate with a cert-manager Certificate",
}

// state is what several items share: read once.
type state struct {
	o               Options
	c               kubernetes.Interface
	m               metadata.Interface // Secrets are read through it: their metadata, never their data
	set             *policy.Set
	setErr          string // why the policies could not be read; "" when read
	namespaces      []policy.Namespace
	nsErr           string
	pods            map[string][]*corev1.Pod // running pods by agent namespace
	podErr          map[string]string
	deploy          *appsv1.Deployment
	deployErr       string
	servingNotAfter time.Time
}

// Run judges every item against the cluster behind c. It does not fail: what cannot be read is unknown.
func Run(ctx context.Context, c kubernetes.Interface, m metadata.Interface, o Options) Report {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	s := &state{o: o, c: c, m: m, pods: map[string][]*corev1.Pod{}, podErr: map[string]string{}}
	s.load(ctx)
	var items []Item
	for _, id := range IDs {
		b := &builder{id: id, remedy: remedies[id]}
		switch id {
		case "tls":
			s.tls(ctx, b)
		case "token":
			s.token(ctx, b)
		case "sandbox":
			s.sandbox(ctx, b)
		case "resources":
			s.resources(b)
		case "commands":
			s.commands(b)
		case "network":
			s.network(ctx, b)
		case "audit-logs":
			s.auditLogs(ctx, b)
		case "alerts":
			s.alerts(ctx, b)
		case "rotation":
			s.rotation(ctx, b)
		}
		items = append(items, b.item())
	}
	return newReport(items)
}

func reason(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return "forbidden: " + err.Error()
	case apierrors.IsNotFound(err):
		return "not found: " + err.Error()
	}
	return err.Error()
}

func (s *state) load(ctx context.Context) {
	policies, errs := cluster.ReadPolicies(ctx, s.c, s.o.Namespace)
	switch {
	case len(errs) > 0:
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		s.setErr = strings.Join(msgs, "; ")
	case len(policies) == 0:
		s.setErr = fmt.Sprintf("no policy ConfigMap in namespace %s (label %s)", s.o.Namespace, policy.ConfigMapSelector)
	default:
		s.set = policy.NewSet(policies...)
	}
	if s.set != nil {
		ns, err := cluster.AgentNamespaces(ctx, s.c, s.set)
		if err != nil {
			s.nsErr = reason(err)
		}
		s.namespaces = ns
		for _, n := range ns {
			err := cluster.EachWorkload(ctx, s.c, n.Name, func(kind string, obj []byte) error {
				if kind != "Pod" {
					return nil
				}
				var pod corev1.Pod
				if err := json.Unmarshal(obj, &pod); err != nil {
					return err
				}
				s.pods[n.Name] = append(s.pods[n.Name], &pod)
				return nil
			})
			if err != nil {
				s.podErr[n.Name] = reason(err)
			}
		}
	}
	d, err := s.c.AppsV1().Deployments(s.o.Namespace).Get(ctx, s.o.Deployment, metav1.GetOptions{})
	if err != nil {
		s.deployErr = fmt.Sprintf("Deployment %s/%s: %s", s.o.Namespace, s.o.Deployment, reason(err))
	} else {
		s.deploy = d
	}
}

// needPolicies records why policy-based findings cannot be made; false when they cannot.
func (s *state) needPolicies(b *builder) bool {
	if s.set == nil {
		b.unknown("policies: %s", s.setErr)
		return false
	}
	return true
}

// eachPod calls f for every running pod of every agent namespace; a namespace that could not be listed is an
// unknown finding.
func (s *state) eachPod(b *builder, f func(ns string, pod *corev1.Pod)) int {
	if s.nsErr != "" {
		b.unknown("agent namespaces: %s", s.nsErr)
	}
	n := 0
	for _, ns := range s.namespaces {
		if e, ok := s.podErr[ns.Name]; ok {
			b.unknown("pods in namespace %s: %s", ns.Name, e)
			continue
		}
		for _, p := range s.pods[ns.Name] {
			n++
			f(ns.Name, p)
		}
	}
	return n
}

// webhooks reads both configurations; a finding says why one is missing.
func (s *state) webhooks(ctx context.Context, b *builder) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	arv1 := s.c.AdmissionregistrationV1()
	m, err := arv1.MutatingWebhookConfigurations().Get(ctx, s.o.WebhookConfiguration, metav1.GetOptions{})
	if err != nil {
		s.missing(b, "MutatingWebhookConfiguration", err)
		m = nil
	}
	v, err := arv1.ValidatingWebhookConfigurations().Get(ctx, s.o.WebhookConfiguration, metav1.GetOptions{})
	if err != nil {
		s.missing(b, "ValidatingWebhookConfiguration", err)
		v = nil
	}
	return m, v
}

func (s *state) missing(b *builder, kind string, err error) {
	if apierrors.IsNotFound(err) {
		b.fail("%s %s does not exist: agent pods are not judged at admission", kind, s.o.WebhookConfiguration)
		return
	}
	b.unknown("%s %s: %s", kind, s.o.WebhookConfiguration, reason(err))
}

// hook is the part of a webhook entry the checklist reads, whichever configuration holds it.
type hook struct {
	kind, name        string
	clientConfig      admissionregistrationv1.WebhookClientConfig
	rules             []admissionregistrationv1.RuleWithOperations
	failurePolicy     *admissionregistrationv1.FailurePolicyType
	namespaceSelector *metav1.LabelSelector
	objectSelector    *metav1.LabelSelector
}

func hooks(m *admissionregistrationv1.MutatingWebhookConfiguration, v *admissionregistrationv1.ValidatingWebhookConfiguration) []hook {
	var out []hook
	if m != nil {
		for _, w := range m.Webhooks {
			out = append(out, hook{"MutatingWebhookConfiguration " + m.Name, w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.NamespaceSelector, w.ObjectSelector})
		}
	}
	if v != nil {
		for _, w := range v.Webhooks {
			out = append(out, hook{"ValidatingWebhookConfiguration " + v.Name, w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.NamespaceSelector, w.ObjectSelector})
		}
	}
	return out
}

func (s *state) tls(ctx context.Context, b *builder) {
	m, v := s.webhooks(ctx, b)
	secretChain := map[string][]*x509.Certificate{} // by namespace/name, read once
	for _, h := range hooks(m, v) {
		where := fmt.Sprintf("%s, webhook %s", h.kind, h.name)
		cc := h.clientConfig
		switch {
		case cc.URL != nil:
			chain, version, err := s.dial(*cc.URL, cc.CABundle)
			if err != nil {
				b.fail("%s: %s: %v", where, *cc.URL, err)
				continue
			}
			u, _ := url.Parse(*cc.URL)
			if err := verifyServing(cc.CABundle, chain, u.Hostname(), s.o.Now); err != nil {
				b.fail("%s: %s: %v", where, *cc.URL, err)
				continue
			}
			if version != tls.VersionTLS13 {
				b.fail("%s: %s negotiated %s, not TLS 1.3", where, *cc.URL, tls.VersionName(version))
				continue
			}
			s.noteServing(chain[0])
			b.pass("%s: %s serves TLS 1.3 with a certificate the caBundle verifies, valid until %s", where, *cc.URL, chain[0].NotAfter.UTC().Format(time.RFC3339))
		case cc.Service != nil:
			svc := cc.Service
			key := svc.Namespace + "/" + s.o.TLSSecret
			chain, seen := secretChain[key]
			if !seen {
				sec, err := s.c.CoreV1().Secrets(svc.Namespace).Get(ctx, s.o.TLSSecret, metav1.GetOptions{})
				if err == nil {
					chain, err = certs.ParseCertificatesPEM(sec.Data[corev1.TLSCertKey])
				}
				if err != nil {
					b.unknown("%s: service %s/%s cannot be dialled from outside the cluster, and Secret %s: %s", where, svc.Namespace, svc.Name, key, reason(err))
					secretChain[key] = nil
					continue
				}
				secretChain[key] = chain
			}
			if chain == nil {
				continue
			}
			dns := svc.Name + "." + svc.Namespace + ".svc"
			if err := verifyServing(cc.CABundle, chain, dns, s.o.Now); err != nil {
				b.fail("%s: Secret %s: %v", where, key, err)
				continue
			}
			s.noteServing(chain[0])
			b.pass("%s: Secret %s's certificate verifies against the caBundle for %s, valid until %s (TLS version not seen: a Service cannot be dialled from outside)", where, key, dns, chain[0].NotAfter.UTC().Format(time.RFC3339))
		default:
			b.fail("%s: clientConfig has neither url nor service", where)
		}
	}
}

func (s *state) noteServing(c *x509.Certificate) {
	if s.servingNotAfter.IsZero() || c.NotAfter.Before(s.servingNotAfter) {
		s.servingNotAfter = c.NotAfter
	}
}

// dial completes a handshake trusting only caBundle and returns the chain served and the version negotiated.
func (s *state) dial(rawURL string, caBundle []byte) ([]*x509.Certificate, uint16, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, 0, err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	// Verification is done by verifyServing, which says why; the handshake only fetches the chain.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: s.o.DialTimeout}, "tcp", host, &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname()}) //nolint:gosec // verified below against the caBundle
	if err != nil {
		return nil, 0, fmt.Errorf("TLS handshake: %v", err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates, st.Version, nil
}

func (s *state) token(ctx context.Context, b *builder) {
	if !s.needPolicies(b) {
		return
	}
	n := s.eachPod(b, func(ns string, pod *corev1.Pod) {
		if problems := podTokenProblems(pod); len(problems) > 0 {
			b.fail("pod %s/%s carries a service-account token: %s", ns, pod.Name, strings.Join(problems, "; "))
		}
	})
	b.pass("%d running agent pods examined for service-account tokens", n)
	s.tokenSecrets(ctx, b)
	// What a token of an agent namespace could do if one leaked in anyway: any of these is more than an agent needs.
	attempts := []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "secrets"},
		{Verb: "list", Resource: "secrets"},
		{Verb: "watch", Resource: "secrets"},
		{Verb: "create", Resource: "pods"},
		{Verb: "create", Resource: "pods", Subresource: "exec"},
		{Verb: "get", Resource: "pods", Subresource: "exec"}, // a WebSocket exec is a GET
		{Verb: "create", Resource: "pods", Subresource: "attach"},
		{Verb: "create", Resource: "pods", Subresource: "portforward"},
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token"},
		{Verb: "create", Resource: "pods", Subresource: "binding"}, // a pod placed on any node, the scheduler skipped
		{Verb: "create", Resource: "bindings"},
		{Verb: "create", Group: "apps", Resource: "deployments"},
		{Verb: "create", Group: "batch", Resource: "jobs"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
	}
	for _, ns := range s.namespaces {
		user := "system:serviceaccount:" + ns.Name + ":default"
		var allowed []string
		failed := false
		for _, a := range attempts {
			a.Namespace = ns.Name
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               user,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns.Name, "system:authenticated"},
				ResourceAttributes: &a,
			}}
			got, err := s.c.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				b.unknown("SubjectAccessReview for %s: %s", user, reason(err))
				failed = true
				break
			}
			if got.Status.Allowed {
				allowed = append(allowed, verbString(a))
			}
		}
		switch {
		case failed:
		case len(allowed) > 0:
			b.fail("ServiceAccount %s/default may %s", ns.Name, strings.Join(allowed, ", "))
		default:
			b.pass("ServiceAccount %s/default may not read secrets, create pods, open sessions or mint tokens (%d SubjectAccessReviews)", ns.Name, len(attempts))
		}
	}
}

// tokenSecrets fails for the service-account token Secrets of agent namespaces that the policies would refuse
// at their CREATE now: tokens that never expire, which any pod of the namespace may name. They predate the rule
// (or the namespace's label). Only their metadata is read: no Secret data.
func (s *state) tokenSecrets(ctx context.Context, b *builder) {
	found := 0
	for _, ns := range s.namespaces {
		names, err := cluster.TokenSecretNames(ctx, s.m, ns.Name)
		if err != nil {
			b.unknown("service-account token Secrets of namespace %s: %s", ns.Name, reason(err))
			continue
		}
		for _, name := range names {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}, Type: corev1.SecretTypeServiceAccountToken}
			if res := s.set.JudgeTokenSecret(secret, ns, policy.Requester{}); !res.Allowed() {
				found++
				b.fail("Secret %s/%s holds a service-account token that never expires; any pod of the namespace may name it (policy %s refuses creating one now)",
					ns.Name, name, res.Violations[0].Policy)
			}
		}
	}
	if found == 0 && len(s.namespaces) > 0 {
		b.pass("no service-account token Secret in the %d agent namespaces", len(s.namespaces))
	}
}

func verbString(a authorizationv1.ResourceAttributes) string {
	r := a.Resource
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	if a.Group != "" {
		r += "." + a.Group
	}
	return a.Verb + " " + r
}

// podHook says whether a webhook entry judges pod creation: the same rule matching as the side doors'.
func podHook(h hook) bool {
	return routes(h.rules, sideDoor{resource: "pods", op: admissionregistrationv1.Create})
}

func (s *state) sandbox(ctx context.Context, b *builder) {
	m, v := s.webhooks(ctx, b)
	all := hooks(m, v)
	if s.needPolicies(b) {
		for _, p := range s.set.Policies {
			if p.Spec.Mode != policy.ModeEnforce {
				b.fail("policy %s: spec.mode is %s, not enforce: violations are admitted", p.Name, p.Spec.Mode)
			} else {
				b.pass("policy %s: spec.mode enforce", p.Name)
			}
		}
		for _, ns := range s.namespaces {
			for _, cfg := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
				if (cfg == "MutatingWebhookConfiguration" && m == nil) || (cfg == "ValidatingWebhookConfiguration" && v == nil) {
					continue
				}
				judged := false
				for _, h := range all {
					if !strings.HasPrefix(h.kind, cfg) || !podHook(h) || !selects(h.namespaceSelector, ns) {
						continue
					}
					judged = true
					if h.failurePolicy != nil && *h.failurePolicy != admissionregistrationv1.Fail {
						b.fail("%s, webhook %s: failurePolicy %s for agent namespace %s: pods are admitted unjudged while agentgate is down", h.kind, h.name, *h.failurePolicy, ns.Name)
					}
					if sel := h.objectSelector; sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0) {
						b.fail("%s, webhook %s: objectSelector %s: a pod author chooses its labels and so whether it is judged", h.kind, h.name, metav1.FormatLabelSelector(sel))
					}
				}
				if !judged {
					b.fail("%s %s: no webhook judges pod creation in agent namespace %s", cfg, s.o.WebhookConfiguration, ns.Name)
				}
			}
		}
		if len(s.namespaces) > 0 {
			b.pass("webhooks judge pod creation in the %d agent namespaces", len(s.namespaces))
		}
		if v != nil {
			s.sideDoors(b, all)
		}
		s.windowsNodes(ctx, b)
		denied := 0
		n := s.eachPod(b, func(ns string, pod *corev1.Pod) {
			res := s.judgePod(ns, pod)
			if res == nil {
				return
			}
			for _, viol := range res.Violations {
				denied++
				b.fail("pod %s/%s: %s %s: found %s, allowed %s (policy %s)", ns, pod.Name, viol.Check, viol.Field, viol.Found, viol.Allowed, viol.Policy)
			}
		})
		if denied == 0 {
			b.pass("%d running agent pods admitted by the current policies", n)
		}
	}
}

// windowsNodes fails for each Windows node without the Windows taint while a policy denies Windows pods: an
// agent pod that says nothing about its OS is a Linux pod to agentgate (as to Pod Security), and only the taint
// keeps the scheduler from placing it where its Linux-only security fields mean nothing.
func (s *state) windowsNodes(ctx context.Context, b *builder) {
	if !slices.ContainsFunc(s.set.Policies, func(p *policy.Policy) bool { return p.Spec.Windows == policy.WindowsDeny }) {
		return
	}
	nodes, err := s.c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: corev1.LabelOSStable + "=windows"})
	if err != nil {
		b.unknown("Windows nodes: %s", reason(err))
		return
	}
	tainted := 0
	for _, n := range nodes.Items {
		if slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
			return t.Key == policy.WindowsTaintKey && t.Value == string(corev1.Windows) && (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute)
		}) {
			tainted++
			continue
		}
		b.fail("Node %s runs Windows without the taint node.kubernetes.io/os=windows:NoSchedule: an agent pod that says nothing about its OS may be scheduled there, where its Linux-only security fields mean nothing", n.Name)
	}
	switch {
	case len(nodes.Items) == 0:
		b.pass("no Windows node")
	case tainted == len(nodes.Items):
		b.pass("%d Windows nodes, every one tainted node.kubernetes.io/os=windows", tainted)
	}
}

// sideDoor is a request besides pod creation that agentgate must see in agent namespaces, with what passes
// unjudged while no webhook sends it.
type sideDoor struct {
	group, resource string
	op              admissionregistrationv1.OperationType
	unjudged        string
}

// sideDoors are the webhook rules of manifests/base/webhooks.yaml that close a way around a check (the rules on
// pod-making kinds only judge earlier what pod creation judges anyway).
var sideDoors = []sideDoor{
	{"", "pods", admissionregistrationv1.Update, "a running pod's images and tolerations change unjudged"},
	{"", "pods/ephemeralcontainers", admissionregistrationv1.Update, "kubectl debug adds containers unjudged"},
	{"", "pods/resize", admissionregistrationv1.Update, "an in-place resize goes past resources.max"},
	{"", "pods/status", admissionregistrationv1.Update, "a running pod is relabelled out of a policy (pods/status writes labels)"},
	{"", "secrets", admissionregistrationv1.Create, "a service-account token Secret named by a running pod is filled with a token"},
	{"networking.k8s.io", "networkpolicies", admissionregistrationv1.Create, "a NetworkPolicy opens agent pods' egress past network.egress"},
	{"networking.k8s.io", "networkpolicies", admissionregistrationv1.Update, "a NetworkPolicy is widened past network.egress"},
	{"", "pods/exec", admissionregistrationv1.Connect, "kubectl exec runs commands unjudged and unrecorded"},
	{"", "pods/attach", admissionregistrationv1.Connect, "kubectl attach is unrecorded"},
	{"", "pods/portforward", admissionregistrationv1.Connect, "port-forwards are unrecorded"},
}

// sideDoors fails for each side door no validating webhook of the configuration sends, for an agent namespace,
// with failurePolicy Fail.
func (s *state) sideDoors(b *builder, all []hook) {
	unseen := 0
	for _, d := range sideDoors {
		for _, ns := range s.namespaces {
			seen := slices.ContainsFunc(all, func(h hook) bool {
				return strings.HasPrefix(h.kind, "ValidatingWebhookConfiguration") && selects(h.namespaceSelector, ns) &&
					(h.failurePolicy == nil || *h.failurePolicy == admissionregistrationv1.Fail) && routes(h.rules, d)
			})
			if !seen {
				unseen++
				b.fail("ValidatingWebhookConfiguration %s: no webhook with failurePolicy Fail sees %s %s in agent namespace %s: %s",
					s.o.WebhookConfiguration, d.op, groupResource(d), ns.Name, d.unjudged)
				break // one line per side door, not per namespace
			}
		}
	}
	if unseen == 0 && len(s.namespaces) > 0 {
		b.pass("every side door is routed to agentgate (%d requests besides pod creation)", len(sideDoors))
	}
}

// routes says whether a webhook's rules match the side door's request (v1, any scope).
func routes(rules []admissionregistrationv1.RuleWithOperations, d sideDoor) bool {
	main, sub, _ := strings.Cut(d.resource, "/")
	for _, r := range rules {
		if !slices.Contains(r.APIGroups, d.group) && !slices.Contains(r.APIGroups, "*") {
			continue
		}
		if !slices.Contains(r.APIVersions, "v1") && !slices.Contains(r.APIVersions, "*") {
			continue
		}
		if !slices.Contains(r.Operations, d.op) && !slices.Contains(r.Operations, admissionregistrationv1.OperationAll) {
			continue
		}
		if slices.ContainsFunc(r.Resources, func(res string) bool {
			rMain, rSub, _ := strings.Cut(res, "/")
			return (rMain == main || rMain == "*") && (rSub == sub || sub != "" && rSub == "*")
		}) {
			return true
		}
	}
	return false
}

func groupResource(d sideDoor) string {
	if d.group == "" {
		return d.resource
	}
	return d.resource + "." + d.group
}

func selects(sel *metav1.LabelSelector, ns policy.Namespace) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	lbls := map[string]string{"kubernetes.io/metadata.name": ns.Name}
	for k, v := range ns.Labels {
		lbls[k] = v
	}
	return s.Matches(labels.Set(lbls))
}

// judgePod judges a running pod as the webhooks would judge it now (policy.Set.Judge, no requester exemption).
func (s *state) judgePod(ns string, pod *corev1.Pod) *policy.Result {
	data, err := json.Marshal(pod)
	if err != nil {
		return nil
	}
	w, err := policy.DecodeWorkload(schema.GroupKind{Kind: "Pod"}, data)
	if err != nil {
		return nil
	}
	nsv := policy.Namespace{Name: ns}
	for _, n := range s.namespaces {
		if n.Name == ns {
			nsv = n
		}
	}
	res := s.set.Judge(w, nsv, policy.Requester{})
	return &res
}

func (s *state) resources(b *builder) {
	if !s.needPolicies(b) {
		return
	}
	s.eachPolicy(b, policyResourceProblems, func(p *policy.Policy) string {
		return fmt.Sprintf("policy %s: defaults.limits and max set for cpu and memory", p.Name)
	})
	missing := 0
	n := s.eachPod(b, func(ns string, pod *corev1.Pod) {
		for _, m := range podMissingLimits(pod) {
			missing++
			b.fail("pod %s/%s: %s", ns, pod.Name, m)
		}
	})
	if missing == 0 {
		b.pass("%d running agent pods all have cpu and memory limits", n)
	}
}

func (s *state) commands(b *builder) {
	if !s.needPolicies(b) {
		return
	}
	s.eachPolicy(b, policyCommandProblems, func(p *policy.Policy) string {
		return fmt.Sprintf("policy %s: %d blocked, %d allowed commands; exec.mode %s", p.Name, len(p.Spec.Commands.Blocked), len(p.Spec.Commands.Allowed), p.Spec.Exec.Mode)
	})
}

// eachPolicy fails the item with every problem of each policy, or passes it with that policy's evidence.
func (s *state) eachPolicy(b *builder, problems func(*policy.Policy) []string, evidence func(*policy.Policy) string) {
	for _, p := range s.set.Policies {
		found := problems(p)
		for _, pr := range found {
			b.fail("%s", pr)
		}
		if len(found) == 0 {
			b.pass("%s", evidence(p))
		}
	}
}

func (s *state) network(ctx context.Context, b *builder) {
	if !s.needPolicies(b) {
		return
	}
	if s.nsErr != "" {
		b.unknown("agent namespaces: %s", s.nsErr)
	}
	for _, ns := range s.namespaces {
		list, err := s.c.NetworkingV1().NetworkPolicies(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.unknown("NetworkPolicies in namespace %s: %s", ns.Name, reason(err))
			continue
		}
		_, problems, evidence := namespaceEgress(ns.Name, list.Items)
		for _, p := range problems {
			b.fail("%s", p)
		}
		if len(problems) == 0 {
			b.pass("%s; 169.254.0.0/16 not reachable by any egress rule", evidence)
		}
	}
}

func (s *state) agentgateArgs(b *builder) ([]string, bool) {
	if s.deploy == nil {
		b.unknown("%s (agentgate's flags are read from its Deployment; --deployment names another)", s.deployErr)
		return nil, false
	}
	for _, c := range s.deploy.Spec.Template.Spec.Containers {
		if slices.Contains(c.Args, "serve") || slices.Contains(c.Command, "serve") || c.Name == "agentgate" {
			return append(slices.Clone(c.Command), c.Args...), true
		}
	}
	b.fail("Deployment %s/%s has no container running agentgate serve", s.deploy.Namespace, s.deploy.Name)
	return nil, false
}

func (s *state) auditLogs(ctx context.Context, b *builder) {
	if args, ok := s.agentgateArgs(b); ok {
		level, set := flagValue(args, "log-level")
		switch {
		case !set:
			b.pass("Deployment %s/%s: --log-level not set (info): admission and exec events are logged", s.o.Namespace, s.o.Deployment)
		case level == "warn" || level == "error":
			b.fail("Deployment %s/%s: --log-level=%s drops the info-level audit events of admissions and sessions", s.o.Namespace, s.o.Deployment, level)
		default:
			b.pass("Deployment %s/%s: --log-level=%s", s.o.Namespace, s.o.Deployment, level)
		}
	}
	if s.needPolicies(b) {
		for _, p := range s.set.Policies {
			if p.Spec.Exec.Mode == policy.ExecAllow {
				b.fail("policy %s: spec.exec.mode allow: sessions into agent pods are not recorded as judged", p.Name)
			} else {
				b.pass("policy %s: spec.exec.mode %s: sessions are judged and recorded", p.Name, p.Spec.Exec.Mode)
			}
		}
	}
	v, err := s.c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, s.o.WebhookConfiguration, metav1.GetOptions{})
	if err != nil {
		b.unknown("ValidatingWebhookConfiguration %s: %s", s.o.WebhookConfiguration, reason(err))
		return
	}
	for _, w := range v.Webhooks {
		for _, r := range w.Rules {
			if slices.Contains(r.Operations, admissionregistrationv1.Connect) && slices.Contains(r.Resources, "pods/exec") {
				b.pass("ValidatingWebhookConfiguration %s, webhook %s receives CONNECT pods/exec: exec events are on", v.Name, w.Name)
				return
			}
		}
	}
	b.fail("ValidatingWebhookConfiguration %s: no webhook receives CONNECT pods/exec: no exec event is ever recorded", v.Name)
}

// groupServed says whether the API server serves group/version; err for anything but a clean "no".
func (s *state) groupServed(gv string) (bool, error) {
	_, err := s.c.Discovery().ServerResourcesForGroupVersion(gv)
	if err == nil {
		return true, nil
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return false, err
}

// ruleGroup is a PrometheusRule's group, as far as its alert names.
type ruleGroup struct {
	Rules []struct {
		Alert string `json:"alert"`
	} `json:"rules"`
}

// hasAlert says whether the group defines the alert.
func (g ruleGroup) hasAlert(name string) bool {
	for _, r := range g.Rules {
		if r.Alert == name {
			return true
		}
	}
	return false
}

type objectList struct {
	Items []struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
		// Spec is what a PrometheusRule says: its alerts.
		Spec struct {
			Groups []ruleGroup `json:"groups"`
		} `json:"spec"`
		Status struct {
			NotAfter    string `json:"notAfter"`
			RenewalTime string `json:"renewalTime"`
		} `json:"status"`
	} `json:"items"`
}

func (s *state) listRaw(ctx context.Context, path string) (*objectList, error) {
	data, err := s.c.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var l objectList
	return &l, json.Unmarshal(data, &l)
}

func isAgentgate(m metav1.ObjectMeta) bool {
	return strings.Contains(m.Name, "agentgate") || m.Labels["app.kubernetes.io/name"] == "agentgate"
}

func (s *state) alerts(ctx context.Context, b *builder) {
	served, err := s.groupServed("monitoring.coreos.com/v1")
	if err != nil {
		b.unknown("discovery of monitoring.coreos.com/v1: %s", reason(err))
		return
	}
	if !served {
		b.unknown("CRD prometheusrules.monitoring.coreos.com is not installed: no Prometheus Operator to load agentgate's alerts (with another Prometheus, load manifests/components/monitoring/prometheusrule.yaml's groups by hand)")
		return
	}
	l, err := s.listRaw(ctx, "/apis/monitoring.coreos.com/v1/prometheusrules")
	if err != nil {
		b.unknown("listing PrometheusRules: %s", reason(err))
		return
	}
	found := false
	for _, it := range l.Items {
		if !isAgentgate(it.Metadata) {
			continue
		}
		found = true
		var missing []string
		for _, want := range Alerts {
			if !slices.ContainsFunc(it.Spec.Groups, func(g ruleGroup) bool { return g.hasAlert(want) }) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			b.fail("PrometheusRule %s/%s lacks %s: apply this release's manifests/components/monitoring", it.Metadata.Namespace, it.Metadata.Name, strings.Join(missing, ", "))
			continue
		}
		b.pass("PrometheusRule %s/%s holds agentgate's %d alerts", it.Metadata.Namespace, it.Metadata.Name, len(Alerts))
	}
	if !found {
		b.fail("no PrometheusRule for agentgate among %d PrometheusRules", len(l.Items))
	}
}

// Alerts are the alerts of manifests/components/monitoring/prometheusrule.yaml (a manifests test keeps the two
// equal): a PrometheusRule without one of them is an older release's, or an edited one.
var Alerts = []string{
	"AgentgateWebhookErrors", "AgentgateWebhookDown", "AgentgateDenialSpike", "AgentgatePolicyReloadFailed",
	"AgentgateCertificateExpiresSoon", "AgentgateGuardedChange", "AgentgateExecBlockedCommand", "AgentgateExecByNonAdmin",
	"AgentgateNetworkPolicyReconcileFailing", "AgentgateRunningWorkloadsViolatePolicy", "AgentgateAuditStale",
}

func (s *state) rotation(ctx context.Context, b *builder) {
	if !s.servingNotAfter.IsZero() {
		b.pass("serving certificate NotAfter %s", s.servingNotAfter.UTC().Format(time.RFC3339))
	}
	args, ok := s.agentgateArgs(b)
	if !ok {
		return
	}
	if secret, set := flagValue(args, "cert-secret"); set {
		sec, err := s.c.CoreV1().Secrets(s.o.Namespace).Get(ctx, secret, metav1.GetOptions{})
		if err != nil {
			b.unknown("self-managed rotation (--cert-secret=%s), but Secret %s/%s: %s", secret, s.o.Namespace, secret, reason(err))
			return
		}
		evidence := fmt.Sprintf("self-managed rotation (--cert-secret=%s): agentgate renews the serving certificate before expiry and rotates the CA with overlap", secret)
		if t := sec.Annotations[certs.AnnotationNextCAPromoteAfter]; t != "" {
			evidence += "; next CA promoted after " + t
		}
		if chain, err := certs.ParseCertificatesPEM(sec.Data[corev1.TLSCertKey]); err == nil && len(chain) > 0 {
			evidence += "; serving certificate valid until " + chain[0].NotAfter.UTC().Format(time.RFC3339)
		}
		b.pass("%s", evidence)
		return
	}
	served, err := s.groupServed("cert-manager.io/v1")
	if err != nil {
		b.unknown("discovery of cert-manager.io/v1: %s", reason(err))
		return
	}
	if served {
		l, err := s.listRaw(ctx, "/apis/cert-manager.io/v1/namespaces/"+s.o.Namespace+"/certificates")
		if err != nil {
			b.unknown("listing cert-manager Certificates in %s: %s", s.o.Namespace, reason(err))
			return
		}
		for _, it := range l.Items {
			if isAgentgate(it.Metadata) {
				b.pass("cert-manager Certificate %s/%s renews the serving certificate (notAfter %s, renewal %s)", s.o.Namespace, it.Metadata.Name, it.Status.NotAfter, it.Status.RenewalTime)
				return
			}
		}
	}
	b.fail("Deployment %s/%s: no --cert-secret and no cert-manager Certificate for agentgate in %s: nothing renews the serving certificate", s.o.Namespace, s.o.Deployment, s.o.Namespace)
}
