package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Weakening is one change of a policy after which some pod could be admitted that the old version denied,
// or be admitted less hardened (mutation filling less, or bounds set higher). The guard refuses such changes
// to everyone outside the admin groups, so that the right to edit a policy ConfigMap is not an off switch.
type Weakening struct {
	// Rule names the rule that found it: the Spec section ("mode", "images", …), or, for the ConfigMap
	// around the policy, RuleDelete, RuleLabel or RuleDocument.
	Rule string `json:"rule"`
	// Field is the path of the changed field: from the policy document's root (spec.images.allow[2]) in
	// Weakenings, from the ConfigMap's (data[policy.yaml].spec.images.allow[2]) in ConfigMapWeakenings; ""
	// for a delete. An added list entry is at its index in the new version, a removed one at its index in the
	// old version.
	Field string `json:"field,omitempty"`
	// Old and New are the field's values before and after, rendered: `"enforce"`, `["a", "b"]`, "(none)".
	Old string `json:"old"`
	New string `json:"new"`
	// Detail says what the change lets through.
	Detail string `json:"detail"`
}

func (w Weakening) String() string {
	s := fmt.Sprintf("%s -> %s: %s", w.Old, w.New, w.Detail)
	if w.Field != "" {
		s = w.Field + ": " + s
	}
	return s
}

// Rules of ConfigMapWeakenings: the ConfigMap around the policy.
const (
	RuleDelete   = "delete"
	RuleLabel    = "label"
	RuleDocument = "document"
)

// Weakenings lists every weakening from old to cur, rule by rule in the order of weakeningRules, and within
// a rule in field order. Both are parsed policies (Parse has applied the defaults, so an omitted field
// compares as its strict default: removing "mode: enforce" changes nothing). Nil when cur is as strict as
// old or stricter.
func Weakenings(old, cur *Policy) []Weakening {
	var out []Weakening
	for _, r := range weakeningRules {
		w := weakenings{rule: r.section}
		r.judge(old, cur, &w)
		out = append(out, w.out...)
	}
	return out
}

// weakeningRule judges one part of a policy. fields lists every Spec field it is responsible for, as JSON
// paths under spec ("[]" for the entries of a list); TestWeakeningRulesCoverSpec walks Spec by reflection and
// fails when a field is named by no rule, or by two. Adding a policy field therefore means saying here how a
// change of it weakens, or why it cannot.
type weakeningRule struct {
	section string
	fields  []string
	judge   func(old, cur *Policy, w *weakenings)
}

// weakeningRules is the complete definition of weakening, one section each; README "What counts as
// weakening a policy" says the same in words.
var weakeningRules = []weakeningRule{
	{"mode", []string{"mode"}, weakenMode},
	{"match", []string{"match.namespaceSelector", "match.podSelector"}, weakenMatch},
	{"exempt", []string{"exempt.namespaces", "exempt.serviceAccounts", "exempt.usernames", "exempt.containers[].name", "exempt.containers[].image",
		"exempt.containers[].checks", "exempt.containers[].serviceAccounts", "exempt.containers[].usernames"}, weakenExempt},
	{"images", []string{"images.allow", "images.deny", "images.denyTags", "images.requireDigest", "images.pinDigests",
		"images.pinRegistries[].registry", "images.pinRegistries[].localAddresses", "images.pinRegistries[].plainHTTP"}, weakenImages},
	{"securityContext", []string{"securityContext.readOnlyRootFilesystem", "securityContext.allowedCapabilities",
		"securityContext.allowPrivilegeEscalation", "securityContext.runAsNonRoot", "securityContext.seccompProfile"}, weakenSecurityContext},
	{"serviceAccountToken", []string{"serviceAccountToken.automount", "serviceAccountToken.allowServiceAccounts"}, weakenServiceAccountToken},
	{"resources", []string{"resources.defaults.requests", "resources.defaults.limits", "resources.max", "resources.maxPerPod",
		"resources.allowed", "resources.allowResourceClaims"}, weakenResources},
	{"commands", []string{"commands.blocked", "commands.allowed"}, weakenCommands},
	{"env", []string{"env.denyLiteralSecrets"}, weakenEnv},
	{"windows", []string{"windows"}, weakenWindows},
	{"runtime", []string{"runtime.runtimeClassNames", "runtime.defaultRuntimeClassName", "runtime.hostUsers"}, weakenRuntime},
	{"exec", []string{"exec.mode", "exec.allowGroups", "exec.interactive"}, weakenExec}, // policy/exec.go
	{"unknownFields", []string{"unknownFields"}, weakenUnknownFields},
	{"network", []string{"network.manage", "network.egress.allow[].cidr", "network.egress.allow[].ports[].port",
		"network.egress.allow[].ports[].endPort", "network.egress.allow[].ports[].protocol", "network.egress.dns",
		"network.egress.dnsResolvers", "network.egress.blocked"}, weakenNetwork},
	{"scheduling", []string{"scheduling.priorityClassNames", "scheduling.systemPriorityNamespaces"}, weakenScheduling},
}

var specPath = field.NewPath("spec")

// weakenings collects one rule's findings.
type weakenings struct {
	rule string
	out  []Weakening
}

func (w *weakenings) add(at *field.Path, old, cur, detail string) {
	w.out = append(w.out, Weakening{Rule: w.rule, Field: at.String(), Old: old, New: cur, Detail: detail})
}

// mode: enforce -> warn or audit stops the policy denying anything. warn <-> audit is no weakening: both
// admit, and which one reports a violation (to the user, or to the log) is the policy owner's choice.
func weakenMode(old, cur *Policy, w *weakenings) {
	if old.Spec.Mode == ModeEnforce && cur.Spec.Mode != ModeEnforce {
		w.add(specPath.Child("mode"), quote(string(old.Spec.Mode)), quote(string(cur.Spec.Mode)),
			"the policy stops denying anything: its violations only "+map[Mode]string{ModeWarn: "warn", ModeAudit: "go to the audit log"}[cur.Spec.Mode])
	}
}

// match: a selector may only become provably broader. The new selector selects at least what the old one
// did when it is empty (it selects everything) or when each of its requirements is also one of the old
// selector's (a label selector is the AND of its requirements, so dropping some can only select more). Any
// other change (a value changed, a requirement added, In turned into NotIn) is a weakening, though it may
// select the same namespaces today: which labels they will carry is not known here.
func weakenMatch(old, cur *Policy, w *weakenings) {
	mp := specPath.Child("match")
	for _, s := range []struct {
		name     string
		old, cur labels.Selector
	}{
		{"namespaceSelector", old.nsSelector, cur.nsSelector},
		{"podSelector", old.podSelector, cur.podSelector},
	} {
		if selectsAtLeast(s.cur, s.old) {
			continue
		}
		w.add(mp.Child(s.name), renderSelector(s.old), renderSelector(s.cur),
			"the new selector is not provably as broad as the old one: pods the old one selected may escape the policy")
	}
}

// selectsAtLeast reports whether every object b selects is selected by a (nil selects everything).
func selectsAtLeast(a, b labels.Selector) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	aReqs, _ := a.Requirements()
	bReqs, _ := b.Requirements()
	have := map[string]bool{}
	for _, r := range bReqs {
		have[requirementKey(r)] = true
	}
	for _, r := range aReqs {
		if !have[requirementKey(r)] {
			return false
		}
	}
	return true
}

// requirementKey spells a requirement one way: matchLabels' "a=b" is "a in (b)", "a!=b" is "a notin (b)".
func requirementKey(r labels.Requirement) string {
	op := r.Operator()
	switch op {
	case selection.Equals, selection.DoubleEquals:
		op = selection.In
	case selection.NotEquals:
		op = selection.NotIn
	}
	vals := r.ValuesUnsorted()
	slices.Sort(vals)
	return r.Key() + " " + string(op) + " " + strings.Join(vals, ",")
}

func renderSelector(s labels.Selector) string {
	if s == nil {
		return "(every)"
	}
	return quote(s.String())
}

// exempt: every exemption added is a weakening: a namespace, a service account, a username, or a container
// entry that was not there before (an entry changed in any field counts as added, since a changed name, image
// pattern, check list or requester list exempts more). Removing exemptions only tightens.
func weakenExempt(old, cur *Policy, w *weakenings) {
	ep := specPath.Child("exempt")
	addedEntries(w, ep.Child("namespaces"), old.Spec.Exempt.Namespaces, cur.Spec.Exempt.Namespaces, identity,
		"pods in this namespace are no longer judged by the policy")
	addedEntries(w, ep.Child("serviceAccounts"), old.Spec.Exempt.ServiceAccounts, cur.Spec.Exempt.ServiceAccounts, identity,
		"what this service account sends is no longer judged by the policy")
	addedEntries(w, ep.Child("usernames"), old.Spec.Exempt.Usernames, cur.Spec.Exempt.Usernames, identity,
		"what this user sends is no longer judged by the policy")
	addedEntries(w, ep.Child("containers"), old.Spec.Exempt.Containers, cur.Spec.Exempt.Containers, jsonKey[ContainerExempt],
		"containers with this name and image are no longer judged by the checks the entry names, for the requesters it names")
}

// images: an allowlist may lose patterns but not gain one, nor become empty (an empty list allows every
// image); any new or changed pattern counts as broader, whatever it matches (patterns compare after the
// registry is normalised). The deny list and the denied tags may only grow; requireDigest and pinDigests may
// only be turned on.
func weakenImages(old, cur *Policy, w *weakenings) {
	ip := specPath.Child("images")
	o, c := old.Spec.Images, cur.Spec.Images
	allowList(w, ip.Child("allow"), o.Allow, c.Allow, globKey, "images matching it are admitted", "every image not denied is admitted")
	removedEntries(w, ip.Child("deny"), o.Deny, c.Deny, globKey, "images matching it are no longer denied")
	removedEntries(w, ip.Child("denyTags"), o.DenyTags, c.DenyTags, identity, "images with this tag are no longer denied")
	turnedOff(w, ip.Child("requireDigest"), o.RequireDigest, c.RequireDigest, "images referenced by a mutable tag are admitted")
	turnedOff(w, ip.Child("pinDigests"), o.PinDigests, c.PinDigests, "tags are no longer pinned to the digest they name at admission")
	// pinRegistries lets agentgate itself connect where it otherwise never does: a registry gaining either
	// permission (compared by normalised registry) is a weakening.
	for i, r := range c.PinRegistries {
		reg, _, err := normalizeRegistry(r.Registry)
		if err != nil {
			continue
		}
		before, at := old.pinAccess[reg], ip.Child("pinRegistries").Index(i)
		if r.LocalAddresses && !before.LocalAddresses {
			w.add(at.Child("localAddresses"), "false", "true", "digest pinning may connect to this registry at loopback, link-local, unspecified or multicast addresses")
		}
		if r.PlainHTTP && !before.PlainHTTP {
			w.add(at.Child("plainHTTP"), "false", "true", "digest pinning may ask this registry over plain HTTP")
		}
	}
}

// securityContext: every forced setting may only stay or get stricter: readOnlyRootFilesystem and
// runAsNonRoot stay true, allowPrivilegeEscalation stays false, allowedCapabilities gains no capability
// (compared by the kernel's name, so "cap_sys_admin" is SYS_ADMIN). Any change of seccompProfile is a
// weakening: to Localhost, mutation stops filling RuntimeDefault in; to RuntimeDefault, pods that set no
// profile, denied under Localhost, are admitted.
func weakenSecurityContext(old, cur *Policy, w *weakenings) {
	sp := specPath.Child("securityContext")
	o, c := old.Spec.SecurityContext, cur.Spec.SecurityContext
	turnedOff(w, sp.Child("readOnlyRootFilesystem"), *o.ReadOnlyRootFilesystem, *c.ReadOnlyRootFilesystem,
		"containers may write their root filesystem, and mutation no longer makes it read-only")
	turnedOff(w, sp.Child("runAsNonRoot"), *o.RunAsNonRoot, *c.RunAsNonRoot, "containers may run as root, and mutation no longer forbids it")
	if !*o.AllowPrivilegeEscalation && *c.AllowPrivilegeEscalation {
		w.add(sp.Child("allowPrivilegeEscalation"), "false", "true", "processes may gain privileges (setuid), and mutation no longer forbids it")
	}
	addedEntries(w, sp.Child("allowedCapabilities"), o.AllowedCapabilities, c.AllowedCapabilities,
		func(c corev1.Capability) string { return string(normalizeCapability(c)) }, "containers may add this capability")
	if o.SeccompProfile != c.SeccompProfile {
		w.add(sp.Child("seccompProfile"), quote(string(o.SeccompProfile)), quote(string(c.SeccompProfile)),
			map[corev1.SeccompProfileType]string{
				corev1.SeccompProfileTypeLocalhost:      "mutation no longer fills in RuntimeDefault where a pod sets no profile",
				corev1.SeccompProfileTypeRuntimeDefault: "pods that set no seccomp profile, denied until now, are admitted",
			}[c.SeccompProfile])
	}
}

// serviceAccountToken: automount may not be let on, and no service account may be added to those allowed a
// token.
func weakenServiceAccountToken(old, cur *Policy, w *weakenings) {
	tp := specPath.Child("serviceAccountToken")
	o, c := old.Spec.ServiceAccountToken, cur.Spec.ServiceAccountToken
	if !*o.Automount && *c.Automount {
		w.add(tp.Child("automount"), "false", "true", "every pod may carry a service-account token, and mutation no longer turns automount off")
	}
	addedEntries(w, tp.Child("allowServiceAccounts"), o.AllowServiceAccounts, c.AllowServiceAccounts, identity,
		"pods running as this service account may carry a token")
}

// resources: every bound (a max, a default limit, a default request) may only be lowered or added; one
// removed or raised is a weakening. A raised default request is one too: pods reserve more of their node,
// which the sandbox bounds like everything else an agent gets.
func weakenResources(old, cur *Policy, w *weakenings) {
	rp := specPath.Child("resources")
	o, c := old.Spec.Resources, cur.Spec.Resources
	bounds(w, rp.Child("max"), o.Max, c.Max, "a container may ask for more")
	bounds(w, rp.Child("defaults", "requests"), o.Defaults.Requests, c.Defaults.Requests, "mutation fills a larger request, or none, where a container sets none")
	bounds(w, rp.Child("defaults", "limits"), o.Defaults.Limits, c.Defaults.Limits, "mutation fills a larger limit, or none, where a container sets none")
	bounds(w, rp.Child("maxPerPod"), o.MaxPerPod, c.MaxPerPod, "a pod's containers may add up to more")
	// allowed compares what each version admits (an unset list means cpu, memory and every name the section
	// gives a value), so naming a new ceiling is a weakening only through the name it lets in.
	for _, rn := range sortedAllowed(cur.resources.allowed) {
		if old.resources.allowed[rn] {
			continue
		}
		at := rp.Child("allowed")
		if i := slices.Index(c.Allowed, rn); i >= 0 {
			at = at.Index(i)
		}
		w.add(at, "(none)", quote(string(rn)), "containers and pods may request or limit "+string(rn))
	}
	if !o.AllowResourceClaims && c.AllowResourceClaims {
		w.add(rp.Child("allowResourceClaims"), "false", "true", "pods may claim devices (dynamic resource allocation) the policy cannot count")
	}
}

func sortedAllowed(m map[corev1.ResourceName]bool) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(m))
	for rn := range m {
		out = append(out, rn)
	}
	slices.Sort(out)
	return out
}

// scheduling: a priority class that the old version denied and the new one allows (a list emptied: every
// class but the system ones; a class added to a list; a system class listed where the list was empty), and a
// namespace added to systemPriorityNamespaces.
func weakenScheduling(old, cur *Policy, w *weakenings) {
	sp := specPath.Child("scheduling")
	o, c := old.Spec.Scheduling, cur.Spec.Scheduling
	allowedByOld := func(class string) bool {
		if len(o.PriorityClassNames) == 0 {
			return !strings.HasPrefix(class, systemPriorityClassPrefix)
		}
		return slices.Contains(o.PriorityClassNames, class)
	}
	switch {
	case len(o.PriorityClassNames) > 0 && len(c.PriorityClassNames) == 0:
		w.add(sp.Child("priorityClassNames"), renderList(o.PriorityClassNames), "[]", "the list is emptied: agent pods may use any priority class but the system ones")
	default:
		for i, class := range c.PriorityClassNames {
			if !allowedByOld(class) {
				w.add(sp.Child("priorityClassNames").Index(i), "(none)", quote(class), "agent pods may use this priority class")
			}
		}
	}
	addedEntries(w, sp.Child("systemPriorityNamespaces"), o.SystemPriorityNamespaces, c.SystemPriorityNamespaces, identity,
		"pods in this namespace may use the system priority classes")
}

func bounds(w *weakenings, at *field.Path, old, cur corev1.ResourceList, detail string) {
	for _, rn := range sortedResourceNames(old) {
		o := old[rn]
		c, ok := cur[rn]
		switch {
		case !ok:
			w.add(at.Key(string(rn)), o.String(), "(none)", "the bound is removed: "+detail)
		case c.Cmp(o) > 0:
			w.add(at.Key(string(rn)), o.String(), c.String(), "the bound is raised: "+detail)
		}
	}
}

// commands: a blocked entry may not be removed (compared with white space normalised, so a changed entry
// counts as removed); the allowed executables follow the allowlist rule of images: none added, and not
// emptied (an empty list allows every executable).
func weakenCommands(old, cur *Policy, w *weakenings) {
	cp := specPath.Child("commands")
	o, c := old.Spec.Commands, cur.Spec.Commands
	removedEntries(w, cp.Child("blocked"), o.Blocked, c.Blocked, func(s string) string { return strings.Join(strings.Fields(s), " ") },
		"command lines holding it are no longer denied")
	allowList(w, cp.Child("allowed"), o.Allowed, c.Allowed, identity, "containers may start this executable", "containers may start any executable")
}

// env: denyLiteralSecrets may not be turned off.
func weakenEnv(old, cur *Policy, w *weakenings) {
	turnedOff(w, specPath.Child("env", "denyLiteralSecrets"), *old.Spec.Env.DenyLiteralSecrets, *cur.Spec.Env.DenyLiteralSecrets,
		"secrets written as literal environment values are admitted")
}

// windows: deny -> skipLinuxChecks admits Windows pods, on which the Linux-only checks do not run.
func weakenWindows(old, cur *Policy, w *weakenings) {
	if old.Spec.Windows == WindowsDeny && cur.Spec.Windows != WindowsDeny {
		w.add(specPath.Child("windows"), quote(string(old.Spec.Windows)), quote(string(cur.Spec.Windows)),
			"Windows pods are admitted, without the Linux-only checks")
	}
}

// unknownFields: deny -> warn admits pods with pod-spec fields that no check has read.
func weakenUnknownFields(old, cur *Policy, w *weakenings) {
	if old.Spec.UnknownFields == UnknownFieldsDeny && cur.Spec.UnknownFields != UnknownFieldsDeny {
		w.add(specPath.Child("unknownFields"), quote(string(old.Spec.UnknownFields)), quote(string(cur.Spec.UnknownFields)),
			"pods with pod-spec fields agentgate's Kubernetes API does not know are admitted, those fields unjudged")
	}
}

// network: manage may not be turned off (agentgate stops keeping agentgate-egress, and stops judging other
// NetworkPolicies); no allow entry may be added or changed (a changed CIDR or port list counts as added,
// whatever it covers); dns may not be turned on, no resolver added, no blocked range removed.
func weakenNetwork(old, cur *Policy, w *weakenings) {
	np := specPath.Child("network")
	o, c := old.Spec.Network, cur.Spec.Network
	turnedOff(w, np.Child("manage"), o.Manage, c.Manage, "agentgate stops keeping the default-deny NetworkPolicy agentgate-egress, and agent pods may reach anything")
	ep := np.Child("egress")
	addedEntries(w, ep.Child("allow"), o.Egress.Allow, c.Egress.Allow, jsonKey[EgressAllow], "agent pods may reach this range")
	if !old.network.dns && cur.network.dns {
		w.add(ep.Child("dns"), "false", "true", "agent pods may reach the cluster DNS (and name lookups carry data out)")
	}
	addedEntries(w, ep.Child("dnsResolvers"), o.Egress.DNSResolvers, c.Egress.DNSResolvers, identity, "agent pods may reach this address on port 53")
	removedEntries(w, ep.Child("blocked"), o.Egress.Blocked, c.Egress.Blocked, identity, "this range is no longer excepted from the allowed ones")
}

// addedEntries reports each entry of cur whose key no entry of old has, at its index in cur.
func addedEntries[T any](w *weakenings, at *field.Path, old, cur []T, key func(T) string, detail string) {
	have := keySet(old, key)
	for i, e := range cur {
		if !have[key(e)] {
			w.add(at.Index(i), "(none)", renderEntry(e), detail)
		}
	}
}

// removedEntries reports each entry of old whose key no entry of cur has, at its index in old.
func removedEntries[T any](w *weakenings, at *field.Path, old, cur []T, key func(T) string, detail string) {
	have := keySet(cur, key)
	for i, e := range old {
		if !have[key(e)] {
			w.add(at.Index(i), renderEntry(e), "(removed)", detail)
		}
	}
}

// allowList judges an allowlist, where empty means "anything": from empty nothing can weaken it; emptied it
// is a weakening; otherwise an entry added is.
func allowList(w *weakenings, at *field.Path, old, cur []string, key func(string) string, addedDetail, emptiedDetail string) {
	switch {
	case len(old) == 0:
	case len(cur) == 0:
		w.add(at, renderList(old), "[]", "the allowlist is emptied: "+emptiedDetail)
	default:
		addedEntries(w, at, old, cur, key, addedDetail)
	}
}

// turnedOff reports a setting that was on and is off.
func turnedOff(w *weakenings, at *field.Path, old, cur bool, detail string) {
	if old && !cur {
		w.add(at, "true", "false", detail)
	}
}

func keySet[T any](entries []T, key func(T) string) map[string]bool {
	out := make(map[string]bool, len(entries))
	for _, e := range entries {
		out[key(e)] = true
	}
	return out
}

func identity(s string) string { return s }

// globKey compares image patterns after the registry is normalised ("docker.io/x/*" is "index.docker.io/x/*").
// The policies given to Weakenings parsed, so every pattern compiles.
func globKey(pattern string) string {
	g, err := compileImagePattern(pattern, false)
	if err != nil {
		return "\x00" + pattern
	}
	return strings.Join(g.segments, "/")
}

// jsonKey compares whole entries: a field added to an entry type later is compared too, without a change here.
func jsonKey[T any](e T) string {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Sprintf("%#v", e)
	}
	return string(b)
}

func renderEntry(e any) string {
	if s, ok := e.(string); ok {
		return strconv.Quote(s)
	}
	if reflect.TypeOf(e).Kind() == reflect.String {
		return strconv.Quote(reflect.ValueOf(e).String())
	}
	return jsonKey(e)
}

func renderList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
