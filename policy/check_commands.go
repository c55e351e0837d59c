package policy

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// commands: an agent's command line must not run a command the cluster admins have ruled out, and, when they
// list the executables agents may start, must run only those. A guard rail against careless tasks and
// templates, not a sandbox boundary: a program can always run what no manifest shows (python -c, a script
// file, a downloaded binary). The sandbox itself is everything the other checks enforce.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].command[*]
//	spec.{initContainers,containers,ephemeralContainers}[*].args[*]
//
// The command line is command followed by args, after the kubelet's $(VAR) expansion with the container's
// literal env (a value from valueFrom or envFrom is only known at run time). With command unset, args are
// judged as a command line too (entrypoint scripts commonly run "$@"). How it is read and compared is
// judgeCommandLine's (commandline.go): shells' scripts and wrappers' commands are judged simple command by
// simple command, by meaning.
//
// Allowed values:
//   - blocked: no simple command the entry matches (or may match through a run-time value). Reported at the
//     command or args element where that simple command starts, once per entry and element.
//   - allowed (when non-empty): every executable run is listed: a listed name matches that name looked up in
//     a standard PATH (the bare name, or an absolute path in /usr/local/sbin, /usr/local/bin, /usr/sbin,
//     /usr/bin, /sbin, /bin; not when the container or script changes PATH), a listed absolute path matches
//     that path, cleaned. A shell and every command of its script must be listed; shell builtins and the
//     script's own functions need not. An unset command runs the image's entrypoint, which the policy cannot
//     see: denied at …command.
//   - with either list set: a command line whose commands cannot all be read (a script that does not
//     parse, an executable only known at run time, a shell reading its script from a pipe) is denied.
var checkCommands = check{id: "commands", run: func(p *Policy, pod *podView, r *report) {
	cr := p.commands
	if !cr.active() {
		return
	}
	for _, ca := range pod.containers {
		c := ca.c
		if cr.allowList && len(c.Command) == 0 {
			r.add("commands", pod.path(ca).Child("command"), "unset (the image's entrypoint)",
				"an executable in "+patternList(p.Spec.Commands.Allowed),
				"the policy lists the executables agents may start: write the command explicitly")
		}
		if exe := firstOf(c.Command, c.Args); exe == "" || !cr.mayFind(exe) {
			continue
		}
		argv := append([]string(nil), c.Command...)
		argv = append(argv, c.Args...)
		if len(argv) == 0 {
			continue
		}
		expanded := argv
		for i, a := range argv {
			if strings.Contains(a, "$(") {
				if expanded == nil || &expanded[0] == &argv[0] {
					expanded = append([]string(nil), argv...)
				}
				expanded[i] = expandKubelet(a, newContainerEnv(c))
			}
		}
		for _, f := range p.judgeCommandLine(expanded, c) {
			if f.Kind == findingNotAllowed && len(c.Command) == 0 {
				continue // the unset command is the finding
			}
			name, idx := "command", f.Arg
			if idx >= len(c.Command) {
				name, idx = "args", idx-len(c.Command)
			}
			fp := pod.path(ca).Child(name).Index(idx)
			found := quote(argv[f.Arg])
			switch f.Kind {
			case findingBlocked:
				blocked := strings.Join(strings.Fields(f.Entry), " ")
				why := "blocked command " + quote(blocked) + " in the container's command line: " + quote(f.Command)
				if f.Reason != "" {
					why += " may be it (" + f.Reason + ")"
				}
				r.add("commands", fp, found, "commands without "+quote(blocked), why)
			case findingNotAllowed:
				r.add("commands", fp, found, "an executable in "+patternList(p.Spec.Commands.Allowed),
					"executable "+quote(f.Entry)+" is not on the policy's list")
			case findingUnreadable:
				r.add("commands", fp, found, "a command line that names every command it runs",
					"cannot judge "+quote(f.Command)+": "+f.Reason+"; the policy lists commands, so what runs must be readable")
			}
		}
	}
}}

func firstOf(command, args []string) string {
	if len(command) > 0 {
		return command[0]
	}
	if len(args) > 0 {
		return args[0]
	}
	return ""
}

// containerEnv is what a container's environment holds as far as its manifest tells.
type containerEnv struct {
	vars map[string]string // literal values, kubelet-expanded; runTimeMark where only run time knows
	// refsUnknown: $(NAME) of a variable not in env may still be set (envFrom), so it is a run-time value.
	refsUnknown bool
	// pathChanged: PATH may not be the image's standard one.
	pathChanged bool
}

func newContainerEnv(c *corev1.Container) *containerEnv {
	e := &containerEnv{vars: map[string]string{}}
	if c == nil {
		return e
	}
	e.refsUnknown = len(c.EnvFrom) > 0
	e.pathChanged = len(c.EnvFrom) > 0
	for _, v := range c.Env {
		val := runTimeMark
		if v.ValueFrom == nil {
			val = expandKubelet(v.Value, e)
		}
		e.vars[v.Name] = val
	}
	if pv, ok := e.vars["PATH"]; ok {
		for _, d := range strings.Split(pv, ":") {
			if !standardPathDirs[path.Clean(d)] {
				e.pathChanged = true
			}
		}
	}
	return e
}

// expandKubelet expands $(NAME) as the kubelet does in command, args and env values: "$$" is "$", a
// defined NAME its value, an undefined one stays as written (or is a run-time value when envFrom may set it).
func expandKubelet(s string, env *containerEnv) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env.vars[name]; ok {
				b.WriteString(v)
			} else if env.refsUnknown {
				b.WriteString(runTimeMark)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// compileCommands compiles spec.commands. Each blocked entry is read once with the shell parser the judge
// uses; an entry the judge could not apply is refused with its path, never silently dropped.
func compileCommands(s Commands, fp *field.Path) (*commandRules, field.ErrorList) {
	var errs field.ErrorList
	r := newCommandRules()
	for i, b := range s.Blocked {
		bp := fp.Child("blocked").Index(i)
		if strings.TrimSpace(b) == "" {
			errs = append(errs, field.Required(bp, "an empty blocked command would match nothing"))
			continue
		}
		e, forkBomb, err := compileBlockedEntry(b)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(bp, b, err.Error()))
		case forkBomb:
			if r.forkBomb == "" {
				r.forkBomb = b
			}
		default:
			r.addBlocked(e)
		}
	}
	for i, a := range s.Allowed {
		ap := fp.Child("allowed").Index(i)
		switch {
		case strings.TrimSpace(a) == "" || strings.ContainsAny(a, " \t\n"):
			errs = append(errs, field.Invalid(ap, a, "an executable name or absolute path without arguments"))
		case isGlobPattern(a) || strings.Contains(a, "$"):
			errs = append(errs, field.Invalid(ap, a, "an executable name or absolute path, not a pattern or variable"))
		case strings.Contains(a, "/") && !strings.HasPrefix(a, "/"):
			errs = append(errs, field.Invalid(ap, a, `an executable name ("python3", found in the standard PATH) or an absolute path ("/opt/agent/bin/run"); a relative path depends on the working directory`))
		case strings.HasPrefix(a, "/"):
			r.allowedPaths[path.Clean(a)] = true
		default:
			r.allowedNames[a] = true
		}
	}
	r.allowList = len(s.Allowed) > 0
	return r, errs
}

// active: the policy has something to judge command lines by.
func (r *commandRules) active() bool {
	return r != nil && (len(r.blocked) > 0 || r.forkBomb != "" || r.allowList)
}

type Commands struct {
	Blocked []string `json:"blocked,omitempty"`
	Allowed []string `json:"allowed,omitempty"`
}
