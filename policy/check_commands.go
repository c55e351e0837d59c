package policy

import (
	"strings"
)

// commands: an agent's entrypoint must not be a command the cluster admins have ruled out, and, when they list
// the executables agents may start, must be one of them. A guard rail against careless tasks and templates,
// not a sandbox boundary: a shell script can always build a command these rules never see (variables, eval,
// a downloaded script). The sandbox itself is everything the other checks enforce.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].command[*]
//	spec.{initContainers,containers,ephemeralContainers}[*].args[*]
//
// Allowed values:
//   - blocked: command and args are joined and split on white space (an element may be a whole shell script,
//     as in sh -c "rm -rf / ; reboot"). A blocked entry matches where its own tokens appear as a contiguous run
//     of those tokens. Tokens compare exactly, except that a token's trailing shell separators (; & |) and
//     surrounding quotes are ignored (on both sides), and that a token's path basename also counts
//     (/sbin/reboot matches reboot). So "rm -rf /tmp/x" does not match "rm -rf /", while "/bin/rm -rf / ;" does.
//     Reported at the command or args element where the match starts, once per blocked entry and element.
//   - allowed (when non-empty): command[0], or its basename, must be listed. An unset command runs the image's
//     entrypoint, which the policy cannot see: denied at …command.
var checkCommands = check{id: "commands", run: func(p *Policy, pod *podView, r *report) {
	if len(p.blocked) == 0 && len(p.allowedExec) == 0 {
		return
	}
	var buf [64]cmdToken
	for _, ca := range pod.containers {
		c := ca.c
		if len(p.allowedExec) > 0 {
			switch {
			case len(c.Command) == 0:
				r.add("commands", pod.path(ca).Child("command"), "unset (the image's entrypoint)",
					"an executable in "+patternList(p.Spec.Commands.Allowed),
					"the policy lists the executables agents may start: write the command explicitly")
			case !p.allowedExec[c.Command[0]] && !p.allowedExec[baseName(c.Command[0])]:
				r.add("commands", pod.path(ca).Child("command").Index(0), quote(c.Command[0]),
					"an executable in "+patternList(p.Spec.Commands.Allowed),
					"executable "+quote(c.Command[0])+" is not on the policy's list")
			}
		}
		if len(p.blocked) == 0 {
			continue
		}
		toks := tokenize(buf[:0], c.Command, 0)
		toks = tokenize(toks, c.Args, 1)
		for _, bc := range p.blocked {
			pat := bc.tokens
			last := -1 // the element last reported for this pattern, as list<<32|index
			for start := 0; start+len(pat) <= len(toks); start++ {
				if !matchTokens(pat, toks[start:start+len(pat)]) {
					continue
				}
				t := toks[start]
				if key := t.list<<32 | t.index; key != last {
					last = key
					reportBlocked(pod, ca, r, bc, t)
				}
			}
		}
	}
}}

// cmdToken is one white-space separated token of a container's command line and the element it comes from.
type cmdToken struct {
	s     string // normalised: see normToken
	list  int    // 0: command, 1: args
	index int
}

func tokenize(toks []cmdToken, elems []string, list int) []cmdToken {
	for i, e := range elems {
		for f := range strings.FieldsSeq(e) {
			toks = append(toks, cmdToken{s: normToken(f), list: list, index: i})
		}
	}
	return toks
}

// normToken drops trailing shell separators and surrounding quotes; a token made only of them stays as it is.
func normToken(t string) string {
	s := strings.TrimRight(t, ";&|")
	s = strings.Trim(s, `"'`)
	if s == "" {
		return t
	}
	return s
}

// blockedCommand is a blocked entry, its tokens normalised once at parse time (see normToken).
type blockedCommand struct {
	tokens []string
	source string
}

func matchTokens(pat []string, toks []cmdToken) bool {
	for i, pt := range pat {
		if s := toks[i].s; s != pt && baseName(s) != pt {
			return false
		}
	}
	return true
}

// baseName is path.Base without allocating ("" stays "").
func baseName(s string) string {
	t := strings.TrimRight(s, "/")
	if t == "" {
		if s == "" {
			return ""
		}
		return "/"
	}
	if i := strings.LastIndexByte(t, '/'); i >= 0 {
		return t[i+1:]
	}
	return t
}

func reportBlocked(pod *podView, ca containerAt, r *report, bc blockedCommand, t cmdToken) {
	name, elems := "command", ca.c.Command
	if t.list == 1 {
		name, elems = "args", ca.c.Args
	}
	blocked := strings.Join(strings.Fields(bc.source), " ")
	r.add("commands", pod.path(ca).Child(name).Index(t.index), quote(elems[t.index]), "commands without "+quote(blocked),
		"blocked command "+quote(blocked)+" in the container's command line")
}
