package policy

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// priorityClass: an agent pod must not claim the node's own priority. system-node-critical and
// system-cluster-critical (2000001000 and 2000000000) preempt every other pod and are the last the kubelet
// evicts under pressure: a runaway task with them outlives the node's own agents.
//
// Restricted fields:
//
//	spec.priorityClassName
//
// Allowed values: unset (the cluster's global default class applies); with spec.scheduling.priorityClassNames
// set, one of them; otherwise any class whose name does not start with "system-", the prefix Kubernetes
// reserves for its system classes (no one can create another class with it), and those too in the namespaces
// of spec.scheduling.systemPriorityNamespaces.
//
// The integer spec.priority cannot be chosen apart from the class: the Priority admission plugin, which runs
// before webhooks, refuses a pod whose priority differs from its class's, and the class name is immutable.
var checkPriorityClass = check{id: "priorityClass", run: func(p *Policy, pod *podView, r *report) {
	name := pod.spec.PriorityClassName
	rules := &p.priorityClasses
	system := strings.HasPrefix(name, systemPriorityClassPrefix)
	switch {
	case name == "" || system && rules.systemNamespaces[pod.namespace]:
	case rules.allowed != nil:
		if !rules.allowed[name] {
			r.add("priorityClass", pod.specPath.Child("priorityClassName"), quote(name), "unset or one of "+rules.allowedText,
				"agent pods may use only the priority classes the policy lists (spec.scheduling.priorityClassNames)")
		}
	case system:
		r.add("priorityClass", pod.specPath.Child("priorityClassName"), quote(name),
			"unset or any class not starting with "+quote(systemPriorityClassPrefix),
			"the system priority classes preempt every other pod and are evicted last: they belong to the node's own agents")
	}
}}

// systemPriorityClassPrefix is reserved by Kubernetes (k8s.io/kubernetes/pkg/apis/scheduling
// SystemPriorityClassPrefix) for system-node-critical and system-cluster-critical.
const systemPriorityClassPrefix = "system-"

// priorityClassRules is spec.scheduling.priorityClassNames compiled.
type priorityClassRules struct {
	allowed          map[string]bool // nil: any class but the system ones
	allowedText      string
	systemNamespaces map[string]bool
}

// compileScheduling validates spec.scheduling and compiles it.
func compileScheduling(s *Scheduling, fp *field.Path) (priorityClassRules, field.ErrorList) {
	var errs field.ErrorList
	rules := priorityClassRules{systemNamespaces: map[string]bool{}}
	np := fp.Child("systemPriorityNamespaces")
	for i, ns := range s.SystemPriorityNamespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, field.Invalid(np.Index(i), ns, "a namespace name: "+strings.Join(msgs, "; ")))
		}
		if rules.systemNamespaces[ns] {
			errs = append(errs, field.Duplicate(np.Index(i), ns))
		}
		rules.systemNamespaces[ns] = true
	}
	if len(s.PriorityClassNames) == 0 {
		return rules, errs
	}
	allowed := map[string]bool{}
	quoted := make([]string, len(s.PriorityClassNames))
	pp := fp.Child("priorityClassNames")
	for i, n := range s.PriorityClassNames {
		quoted[i] = quote(n)
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			errs = append(errs, field.Invalid(pp.Index(i), n, "a PriorityClass name: "+strings.Join(msgs, "; ")))
		}
		if allowed[n] {
			errs = append(errs, field.Duplicate(pp.Index(i), n))
		}
		allowed[n] = true
	}
	rules.allowed, rules.allowedText = allowed, strings.Join(quoted, ", ")
	return rules, errs
}

// Scheduling bounds what an agent pod may claim of the scheduler.
type Scheduling struct {
	// PriorityClassNames are the only classes spec.priorityClassName may name (unset always passes: the
	// cluster's global default applies). Empty: any class but the system ones (the reserved "system-" prefix:
	// system-node-critical, system-cluster-critical), which let a pod preempt and outlive the node's own agents.
	PriorityClassNames []string `json:"priorityClassNames,omitempty"`
	// SystemPriorityNamespaces may use the system classes all the same: agentgate's own namespace (the API
	// server waits on agentgate, which must not be preempted). Keyed by namespace, which a pod author in an
	// agent namespace cannot choose, and relaxing nothing else.
	SystemPriorityNamespaces []string `json:"systemPriorityNamespaces,omitempty"`
}
