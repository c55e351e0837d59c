package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Requester is who sent the request to the API server: the AdmissionReview's request.userInfo. Exemptions and
// token allowances are anchored to it because a pod's author chooses everything in the pod (container names,
// images, serviceAccountName) but not who they are. The zero value is an unknown requester (agentgate check,
// offline): no requester-anchored exemption applies, the strict side.
type Requester struct {
	Username string
	// Groups are carried for logs and callers; no exemption is keyed on a group, because groups such as
	// system:serviceaccounts:NS or system:authenticated hold identities that any pod author can borrow.
	Groups []string
}

// serviceAccountUser is the username the API server gives a service account's requests.
func serviceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// requesters is a set of requesting usernames, each mapped to the policy field that lists it (for the
// exemption's record).
type requesters map[string]string

func (r requesters) match(rq Requester) (string, bool) {
	if rq.Username == "" {
		return "", false
	}
	f, ok := r[rq.Username]
	return f, ok
}

// containerExempt is one compiled spec.exempt.containers entry.
type containerExempt struct {
	name   string
	image  glob
	checks []string // sorted, the IDs this entry relaxes
	by     requesters
}

// containerExemptible lists the checks a container exemption may name: those that judge one container's own
// settings and that Pod Security "baseline" leaves alone. Every other check is refused at the exemption's path
// (exemptionRefusal says why), so that no policy can exempt a container from the host and privilege checks.
var containerExemptible = []string{
	"allowPrivilegeEscalation", "commands", "envSecrets", "images", "readOnlyRootFilesystem", "resources",
	"runAsNonRoot", "runAsUser",
}

// baselineChecks guard what Pod Security "baseline" forbids.
var baselineChecks = []string{
	"appArmor", "capabilities", "hostNamespaces", "hostPath", "hostPorts", "hostProbes", "privileged", "procMount",
	"seLinux", "seccomp", "sysctls", "windowsHostProcess",
}

// exemptionRefusal says why a check cannot be named by a container exemption, or "" when it can.
func exemptionRefusal(id string) string {
	switch {
	case slices.Contains(containerExemptible, id):
		return ""
	case slices.Contains(baselineChecks, id):
		return "guards what Pod Security \"baseline\" forbids (host access, privilege, kernel confinement): no container is ever exempted from it"
	case slices.Contains(CheckIDs(), id):
		return "judges the whole pod (its volumes, credentials, platform or totals), not one container: a container exemption cannot relax it"
	}
	return "not a check ID"
}

// compileExempt compiles spec.exempt. A requester anchor is required wherever a pod could otherwise claim the
// exemption by what it writes about itself.
func compileExempt(p *Policy, e Exempt, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	p.exemptNS = map[string]bool{}
	for i, ns := range e.Namespaces {
		if ns == "" {
			errs = append(errs, field.Required(fp.Child("namespaces").Index(i), "an empty namespace name exempts nothing"))
		}
		p.exemptNS[ns] = true
	}
	p.exemptBy = requesters{}
	errs = append(errs, compileRequesters(p.exemptBy, e.ServiceAccounts, e.Usernames, fp)...)
	for i, c := range e.Containers {
		cp := fp.Child("containers").Index(i)
		ce := containerExempt{name: c.Name, by: requesters{}}
		if c.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), "a container exemption names the container"))
		}
		if len(c.Checks) == 0 {
			errs = append(errs, field.Required(cp.Child("checks"), "name the checks this container may skip (any of "+
				strings.Join(containerExemptible, ", ")+"): an exemption from everything would include the host and privilege checks"))
		}
		for j, id := range c.Checks {
			switch why := exemptionRefusal(id); {
			case why == "not a check ID":
				errs = append(errs, field.NotSupported(cp.Child("checks").Index(j), id, containerExemptible))
			case why != "":
				errs = append(errs, field.Forbidden(cp.Child("checks").Index(j), "check "+quote(id)+" "+why))
			default:
				ce.checks = append(ce.checks, id)
			}
		}
		slices.Sort(ce.checks)
		ce.checks = slices.Compact(ce.checks)
		if len(c.ServiceAccounts) == 0 && len(c.Usernames) == 0 {
			errs = append(errs, field.Required(cp.Child("serviceAccounts"), "a container exemption names the requesting users it applies to "+
				"(serviceAccounts or usernames: the operator that creates these pods); a container's name and image alone are chosen by whoever writes the pod"))
		}
		errs = append(errs, compileRequesters(ce.by, c.ServiceAccounts, c.Usernames, cp)...)
		if c.Image == "" {
			errs = append(errs, field.Required(cp.Child("image"), `a container exemption names the image it trusts (a glob such as "docker.io/istio/proxyv2:*")`))
			continue
		}
		g, err := compileExemptImage(c.Image)
		if err != nil {
			errs = append(errs, field.Invalid(cp.Child("image"), c.Image, err.Error()))
			continue
		}
		ce.image = g
		p.exemptContainer = append(p.exemptContainer, ce)
	}
	return errs
}

// compileServiceAccountToken compiles spec.serviceAccountToken: the requesters whose pods may carry a token.
func compileServiceAccountToken(p *Policy, t ServiceAccountToken, fp *field.Path) field.ErrorList {
	p.tokenBy = requesters{}
	var errs field.ErrorList
	for i, sa := range t.AllowServiceAccounts {
		errs = append(errs, addServiceAccount(p.tokenBy, sa, fp.Child("allowServiceAccounts").Index(i))...)
	}
	return errs
}

// compileRequesters adds serviceAccounts ("namespace/name") and usernames, listed under fp, to set.
func compileRequesters(set requesters, serviceAccounts, usernames []string, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, sa := range serviceAccounts {
		errs = append(errs, addServiceAccount(set, sa, fp.Child("serviceAccounts").Index(i))...)
	}
	for i, u := range usernames {
		up := fp.Child("usernames").Index(i)
		if why := refusedUsername(u); why != "" {
			errs = append(errs, field.Invalid(up, u, why))
			continue
		}
		set[u] = up.String()
	}
	return errs
}

func addServiceAccount(set requesters, sa string, fp *field.Path) field.ErrorList {
	ns, name, ok := strings.Cut(sa, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return field.ErrorList{field.Invalid(fp, sa, `must be "namespace/name"`)}
	}
	if len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return field.ErrorList{field.Invalid(fp, sa, `must be "namespace/name" of a service account (lower-case DNS names, no wildcards)`)}
	}
	if ns == "kube-system" {
		return field.ErrorList{field.Invalid(fp, sa, "kube-system service accounts are the built-in controllers (replicaset-controller, job-controller, daemon-set-controller…), "+
			"which create the pods of every Deployment, Job and DaemonSet whoever wrote them: exempting one exempts everyone")}
	}
	set[serviceAccountUser(ns, name)] = fp.String()
	return nil
}

// refusedUsername says why a username cannot anchor an exemption, or "" when it can.
func refusedUsername(u string) string {
	switch {
	case u == "":
		return "an empty username exempts nothing"
	case strings.HasPrefix(u, "system:serviceaccount:"):
		return `list a service account under serviceAccounts as "namespace/name"`
	case u == "system:kube-controller-manager" || u == "system:kube-scheduler" || u == "system:apiserver":
		return "a control-plane identity creates pods on everyone's behalf: exempting it exempts everyone"
	case strings.HasPrefix(u, "system:node:") || u == "system:anonymous" || u == "system:kube-proxy":
		return "a node, proxy or anonymous identity cannot anchor an exemption"
	case strings.ContainsAny(u, "*?"):
		return "usernames are matched exactly; patterns are not supported"
	}
	return ""
}

// containerRelaxations returns the checks the policy's container exemptions relax for c when rq sends it
// (nil when none), and the entries that matched.
func (p *Policy) containerRelaxations(c *corev1.Container, rq Requester) []string {
	var out []string
	for i := range p.exemptContainer {
		e := &p.exemptContainer[i]
		if e.name != c.Name {
			continue
		}
		if _, ok := e.by.match(rq); !ok {
			continue
		}
		if img, err := parseImage(c.Image); err == nil && e.image.match(img.fullSegments()) {
			out = append(out, e.checks...)
		}
	}
	if len(out) > 1 {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out
}

// Exempt lists what a policy does not judge. Every exemption is anchored to something a pod's author cannot
// choose (README "Decisions"): its namespace, or the user who sends the request to the API server. A pod's own
// serviceAccountName, container names and images are chosen by whoever writes the pod, so none of them alone
// exempts anything.
type Exempt struct {
	Namespaces []string `json:"namespaces,omitempty"`
	// ServiceAccounts ("namespace/name") exempt what that service account itself sends to the API server (the
	// requesting user system:serviceaccount:namespace:name), as Pod Security Admission's exemptions.usernames
	// do; never a pod that merely names the account in spec.serviceAccountName. kube-system accounts (the
	// built-in controllers, which create the pods of every Deployment, Job…) are refused.
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`
	// Usernames exempt what these requesting users send. Controller and node identities are refused.
	Usernames  []string          `json:"usernames,omitempty"`
	Containers []ContainerExempt `json:"containers,omitempty"`
}

// ContainerExempt relaxes the checks it names for one container, when its name and image match and the
// request comes from one of the identities it names. It never relaxes what Pod Security "baseline" forbids
// (host namespaces, privileged, capabilities, host paths and ports, seccomp, AppArmor, SELinux…), nor a
// check that judges the whole pod rather than one container.
type ContainerExempt struct {
	Name  string `json:"name"`
	Image string `json:"image"` // glob over the whole normalised reference; "*" matches anything
	// Checks are the IDs of the checks this container is not judged by (at least one).
	Checks []string `json:"checks,omitempty"`
	// ServiceAccounts ("namespace/name") and Usernames: the requesting users for whom the entry applies (at
	// least one of them), as in Exempt.
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`
	Usernames       []string `json:"usernames,omitempty"`
}

type ServiceAccountToken struct {
	Automount *bool `json:"automount,omitempty"`
	// AllowServiceAccounts ("namespace/name"): the pods that service account itself creates (the requesting
	// user system:serviceaccount:namespace:name, an operator that starts pods whose job is to talk to the API
	// server) may carry a token even when automount is forced off. Keyed on the requester, not on the pod's own
	// serviceAccountName, which any pod author chooses. Every other check still applies.
	AllowServiceAccounts []string `json:"allowServiceAccounts,omitempty"`
}
