package policy

// exec: kubectl exec, attach and port-forward into agent pods (the CONNECT requests on pods/exec, pods/attach
// and pods/portforward). Nothing in a pod's spec says who may open a session into it, so spec.exec is judged
// per request, against the pod the session opens into:
//
//	spec.exec.mode: deny | audit | allow (default audit)
//	  allow: every session is admitted (and recorded by the webhook); commands are not judged.
//	  audit: every session is admitted but an exec whose command spec.commands refuses (blocked, not on the
//	         allowed list, or unreadable: the very rule of the commands check, judgeCommandLine).
//	  deny:  only members of allowGroups open sessions at all; their exec commands are judged as in audit.
//	spec.exec.allowGroups: the groups that may open sessions when mode is deny, and interactive ones when
//	  interactive is deny.
//	spec.exec.interactive: allow | deny (default allow): deny refuses, to everyone outside allowGroups, an exec
//	  or attach with stdin or a TTY. An interactive shell is judged by its first argv only (kubectl exec -it pod
//	  -- sh is "sh"); what is typed into it afterwards never reaches admission, so where that matters the only
//	  rule that holds is not to open the session: interactive: deny.
//
// spec.mode (enforce, warn, audit) is about admitting pods and does not apply here: spec.exec.mode is the exec
// switch, and its allow is the report-only setting. Of spec.exempt only namespaces apply: the other exemptions
// are claimed by the user who creates a pod, and the user who opens a session into it is not that user.

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ExecMode says what a policy does with sessions into the pods it selects.
type ExecMode string

const (
	ExecDeny  ExecMode = "deny"
	ExecAudit ExecMode = "audit"
	ExecAllow ExecMode = "allow"
)

// ExecInteractive says whether sessions with stdin or a TTY may be opened.
type ExecInteractive string

const (
	InteractiveAllow ExecInteractive = "allow"
	InteractiveDeny  ExecInteractive = "deny"
)

// Exec is spec.exec.
type Exec struct {
	Mode        ExecMode        `json:"mode,omitempty"`
	AllowGroups []string        `json:"allowGroups,omitempty"`
	Interactive ExecInteractive `json:"interactive,omitempty"`
}

// The subresources of a session, as the API server names them.
const (
	SubresourceExec        = "exec"
	SubresourceAttach      = "attach"
	SubresourcePortForward = "portforward"
)

// ExecRequest is one CONNECT into a pod, as the API server describes it to admission.
type ExecRequest struct {
	Subresource string // SubresourceExec, SubresourceAttach or SubresourcePortForward
	Container   string // as requested; "" lets the API server pick the pod's only container
	Command     []string
	TTY, Stdin  bool
	User        string
	Groups      []string
	Ports       []int32
}

// Interactive: a session whose standard input reaches the container.
func (r ExecRequest) Interactive() bool {
	return r.Subresource != SubresourcePortForward && (r.TTY || r.Stdin)
}

// The reasons a session is refused, from the most specific to the least.
const (
	ExecReasonCommand     = "command"     // spec.commands refuses the exec's command
	ExecReasonMode        = "mode"        // spec.exec.mode deny, and the user is in none of allowGroups
	ExecReasonInteractive = "interactive" // spec.exec.interactive deny, and the user is in none of allowGroups
)

// ExecDenial is one reason a policy refuses a session.
type ExecDenial struct {
	Policy  string `json:"policy"`
	Reason  string `json:"reason"` // ExecReason*
	Rule    string `json:"rule"`   // the policy field that decides, such as spec.commands.blocked[3]
	Message string `json:"message"`
}

// ExecResult is the verdict of a Set on one session.
type ExecResult struct {
	// Matched lists the policies that select the pod.
	Matched []string
	// Container is the container the session opens into ("" when it cannot be told from the pod).
	Container string
	Denials   []ExecDenial
	// Exemptions are the policies that left the pod out (an exempt namespace).
	Exemptions []Exemption
}

// Allowed is true when no selecting policy refuses the session.
func (r *ExecResult) Allowed() bool { return len(r.Denials) == 0 }

// Blocked says whether a command rule refused the session (rather than who opens it, or how).
func (r *ExecResult) Blocked() bool {
	return slices.ContainsFunc(r.Denials, func(d ExecDenial) bool { return d.Reason == ExecReasonCommand })
}

// JudgeExec judges a session into pod, a pod of namespace ns. A nil pod (it could not be looked up) is judged
// by every policy whose namespace rules select ns, the strict side: its labels, service account and containers
// are then unknown, so no podSelector or exemption can leave it out.
func (s *Set) JudgeExec(pod *corev1.Pod, ns Namespace, req ExecRequest) ExecResult {
	var res ExecResult
	var c *corev1.Container
	if pod != nil {
		c = execContainer(pod, req.Container)
		if c != nil {
			res.Container = c.Name
		}
	}
	for _, p := range s.Policies {
		if !p.selectsSession(pod, ns, &res) {
			continue
		}
		res.Matched = append(res.Matched, p.Name)
		res.Denials = append(res.Denials, p.judgeExec(c, req)...)
	}
	return res
}

// selectsSession is selects for a pod that may be unknown.
func (p *Policy) selectsSession(pod *corev1.Pod, ns Namespace, res *ExecResult) bool {
	if pod != nil {
		w, err := NewWorkload(pod)
		if err == nil {
			// No requester: exemptions name who creates pods (an operator's service account), and the user
			// opening a session is someone else. Only an exempt namespace leaves a session out.
			ok, ex := p.selects(w, ns, Requester{})
			if ex != nil {
				res.Exemptions = append(res.Exemptions, *ex)
			}
			return ok
		}
	}
	if p.nsSelector != nil && ns.Labels != nil && !p.nsSelector.Matches(labels.Set(ns.Labels)) {
		return false
	}
	if p.exemptNS[ns.Name] {
		res.Exemptions = append(res.Exemptions, Exemption{Policy: p.Name, Reason: "namespace", Field: "metadata.namespace", Detail: "namespace " + ns.Name + " is exempt"})
		return false
	}
	return true
}

// judgeExec is one policy's verdict on a session into container c (nil when unknown).
func (p *Policy) judgeExec(c *corev1.Container, req ExecRequest) []ExecDenial {
	e := p.Spec.Exec
	if e.Mode == ExecAllow {
		return nil
	}
	var out []ExecDenial
	member := p.execMember(req.Groups)
	if e.Mode == ExecDeny && !member {
		out = append(out, ExecDenial{Policy: p.Name, Reason: ExecReasonMode, Rule: "spec.exec.mode",
			Message: "exec.mode is deny: only members of allowGroups " + groupList(e.AllowGroups) +
				" may " + sessionVerb(req.Subresource) + " agent pods, and user " + strconv.Quote(req.User) + " is in none of them"})
	}
	if e.Interactive == InteractiveDeny && req.Interactive() && !member {
		out = append(out, ExecDenial{Policy: p.Name, Reason: ExecReasonInteractive, Rule: "spec.exec.interactive",
			Message: "exec.interactive is deny: a session with " + interactiveWhat(req) + " is refused outside allowGroups " +
				groupList(e.AllowGroups) + " (what is typed into it cannot be judged)"})
	}
	if req.Subresource == SubresourceExec {
		out = append(out, p.judgeExecCommand(c, req.Command)...)
	}
	return out
}

// judgeExecCommand applies spec.commands to the exec's argv, exactly as the commands check applies it to a
// container's command line (judgeCommandLine), in the container's environment when it is known.
func (p *Policy) judgeExecCommand(c *corev1.Container, argv []string) []ExecDenial {
	var out []ExecDenial
	for _, f := range p.judgeCommandLine(argv, c) {
		d := ExecDenial{Policy: p.Name, Reason: ExecReasonCommand}
		switch f.Kind {
		case findingBlocked:
			d.Rule = "spec.commands.blocked"
			if i := slices.Index(p.Spec.Commands.Blocked, f.Entry); i >= 0 {
				d.Rule += "[" + strconv.Itoa(i) + "]"
			}
			blocked := strings.Join(strings.Fields(f.Entry), " ")
			d.Message = "blocked command " + quote(blocked) + " in the exec's command: " + quote(f.Command)
			if f.Reason != "" {
				d.Message += " may be it (" + f.Reason + ")"
			}
		case findingNotAllowed:
			d.Rule = "spec.commands.allowed"
			d.Message = "executable " + quote(f.Entry) + " is not on the policy's list " + patternList(p.Spec.Commands.Allowed)
		case findingUnreadable:
			d.Rule = "spec.commands"
			d.Message = "cannot judge " + quote(f.Command) + ": " + f.Reason + "; the policy lists commands, so what runs must be readable"
		}
		out = append(out, d)
	}
	return out
}

// execMember says whether one of groups is in spec.exec.allowGroups.
func (p *Policy) execMember(groups []string) bool {
	for _, g := range groups {
		if slices.Contains(p.Spec.Exec.AllowGroups, g) {
			return true
		}
	}
	return false
}

// execContainer is the container a session opens into: the named one (regular, init or ephemeral), or, with
// no name, the pod's only container, as the API server picks it. nil when it cannot be told.
func execContainer(pod *corev1.Pod, name string) *corev1.Container {
	s := &pod.Spec
	if name == "" {
		if len(s.Containers) == 1 {
			return &s.Containers[0]
		}
		return nil
	}
	for i := range s.Containers {
		if s.Containers[i].Name == name {
			return &s.Containers[i]
		}
	}
	for i := range s.InitContainers {
		if s.InitContainers[i].Name == name {
			return &s.InitContainers[i]
		}
	}
	for i := range s.EphemeralContainers {
		if s.EphemeralContainers[i].Name == name {
			return (*corev1.Container)(&s.EphemeralContainers[i].EphemeralContainerCommon)
		}
	}
	return nil
}

func sessionVerb(sub string) string {
	switch sub {
	case SubresourceAttach:
		return "attach to"
	case SubresourcePortForward:
		return "port-forward to"
	}
	return "exec into"
}

func interactiveWhat(r ExecRequest) string {
	switch {
	case r.TTY && r.Stdin:
		return "stdin and a TTY"
	case r.TTY:
		return "a TTY"
	}
	return "stdin"
}

func groupList(gs []string) string {
	if len(gs) == 0 {
		return "(none)"
	}
	q := make([]string, len(gs))
	for i, g := range gs {
		q[i] = strconv.Quote(g)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// defaultExec fills spec.exec: sessions are recorded and their commands judged unless a policy says otherwise.
func defaultExec(e *Exec) {
	if e.Mode == "" {
		e.Mode = ExecAudit
	}
	if e.Interactive == "" {
		e.Interactive = InteractiveAllow
	}
}

// compileExec validates spec.exec.
func compileExec(e Exec, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch e.Mode {
	case ExecDeny, ExecAudit, ExecAllow:
	default:
		errs = append(errs, field.NotSupported(fp.Child("mode"), e.Mode, []ExecMode{ExecDeny, ExecAudit, ExecAllow}))
	}
	switch e.Interactive {
	case InteractiveAllow, InteractiveDeny:
	default:
		errs = append(errs, field.NotSupported(fp.Child("interactive"), e.Interactive, []ExecInteractive{InteractiveAllow, InteractiveDeny}))
	}
	for i, g := range e.AllowGroups {
		gp := fp.Child("allowGroups").Index(i)
		switch {
		case strings.TrimSpace(g) == "":
			errs = append(errs, field.Required(gp, "an empty group name admits nobody"))
		case g != strings.TrimSpace(g):
			errs = append(errs, field.Invalid(gp, g, "a group name without surrounding spaces: the API server's groups never have them, so this one would admit nobody"))
		case g == "system:authenticated" || g == "system:unauthenticated" || g == "system:serviceaccounts":
			errs = append(errs, field.Invalid(gp, g, "every user (or every service account) is in this group: with it, mode deny would refuse nobody; use mode audit to say so"))
		case slices.Contains(e.AllowGroups[:i], g):
			errs = append(errs, field.Duplicate(gp, g))
		}
	}
	return errs
}

// execModeStrictness orders exec.mode: deny admits fewer sessions than audit, audit fewer than allow (it
// refuses blocked commands).
var execModeStrictness = map[ExecMode]int{ExecAllow: 0, ExecAudit: 1, ExecDeny: 2}

// weakenExec (a weakening rule, weaken.go): exec.mode towards allow, a group added to allowGroups (its members
// may open sessions, or interactive ones, that others may not), interactive deny -> allow.
func weakenExec(old, cur *Policy, w *weakenings) {
	xp := specPath.Child("exec")
	o, c := old.Spec.Exec, cur.Spec.Exec
	if execModeStrictness[c.Mode] < execModeStrictness[o.Mode] {
		detail := "sessions outside allowGroups are admitted"
		if c.Mode == ExecAllow {
			detail = "exec commands are no longer judged by spec.commands"
			if o.Mode == ExecDeny {
				detail = "sessions outside allowGroups are admitted, and exec commands are no longer judged by spec.commands"
			}
		}
		w.add(xp.Child("mode"), quote(string(o.Mode)), quote(string(c.Mode)), detail)
	}
	addedEntries(w, xp.Child("allowGroups"), o.AllowGroups, c.AllowGroups, identity,
		"members of this group may open the sessions that exec.mode or exec.interactive deny refuses others")
	if o.Interactive == InteractiveDeny && c.Interactive != InteractiveDeny {
		w.add(xp.Child("interactive"), quote(string(o.Interactive)), quote(string(c.Interactive)),
			"interactive sessions (stdin or a TTY), whose typed commands cannot be judged, are admitted outside allowGroups")
	}
}
