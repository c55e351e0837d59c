package policy

import (
	"strings"
)

// Wrappers: commands whose arguments are another command (or a script). Each knows which of its options
// take a value, so that the command is found where the wrapper finds it. For an option a table does not
// know, both readings (with and without a value) are judged: a guess never hides a command.

type wrapperSpec struct {
	valueShort, plainShort string          // short options with and without a value
	valueLong, plainLong   map[string]bool // long options with and without a value
	fixed                  int             // operands before the command (timeout DURATION, chroot DIR)
	assigns                bool            // NAME=value words before the command (env, sudo)
	digits                 bool            // -NUM is an option (nice -10)
	scriptShort            string          // options whose value is a shell script (su -c)
	scriptLong             map[string]bool
	noRun                  string // short options after which nothing runs (command -v)
	noCommand              bool   // runs only scripts given by option (su)
}

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

type wrapperFunc func(j *commandJudge, c simpleCommand)

var wrappers map[string]wrapperFunc

func init() {
	specs := map[string]wrapperSpec{
		"env": {valueShort: "uCS", plainShort: "i0v", valueLong: set("unset chdir split-string"),
			plainLong: set("ignore-environment null debug default-signal ignore-signal block-signal list-signal-handling"), assigns: true},
		"nice":    {valueShort: "n", valueLong: set("adjustment"), digits: true},
		"nohup":   {},
		"setsid":  {plainShort: "cfw", plainLong: set("ctty fork wait")},
		"timeout": {valueShort: "ks", plainShort: "fpv", valueLong: set("kill-after signal"), plainLong: set("foreground preserve-status verbose"), fixed: 1},
		"sudo": {valueShort: "CDghpRrTtUu", plainShort: "AbEeHiKklnPSsVv", assigns: true,
			valueLong: set("close-from chdir group host prompt chroot role type command-timeout other-user user"),
			plainLong: set("askpass background preserve-env edit set-home login remove-timestamp reset-timestamp non-interactive preserve-groups stdin shell validate")},
		"doas":         {valueShort: "uC", plainShort: "nsL"},
		"su":           {valueShort: "sgGw", plainShort: "lmpfP", valueLong: set("shell group supp-group whitelist-environment"), scriptShort: "c", scriptLong: set("command session-command"), noCommand: true},
		"runuser":      {valueShort: "ugGsw", plainShort: "lmpfP", valueLong: set("user group supp-group shell whitelist-environment"), scriptShort: "c", scriptLong: set("command session-command")},
		"stdbuf":       {valueShort: "ioe", valueLong: set("input output error")},
		"chroot":       {valueLong: set("userspec groups"), plainLong: set("skip-chdir"), fixed: 1},
		"unshare":      {valueShort: "SGRw", plainShort: "imnpuUCTrfck", valueLong: set("setuid setgid root wd map-user map-group")},
		"nsenter":      {valueShort: "tSG", plainShort: "amuinpUCTrwFZe", valueLong: set("target setuid setgid")},
		"ionice":       {valueShort: "cnpPu", plainShort: "th", valueLong: set("class classdata pid pgid uid")},
		"chrt":         {valueShort: "TPD", plainShort: "bdfiorRamvpe", fixed: 1},
		"taskset":      {plainShort: "acpV", fixed: 1},
		"strace":       {valueShort: "abeEIoOpPsSUXu", plainShort: "cdfFhiqrtTvVwxyzkCDZ"},
		"ltrace":       {valueShort: "aeAlLnoOpsuxX", plainShort: "bcCDfhiStTV"},
		"tini":         {valueShort: "ep", plainShort: "svwgl"},
		"dumb-init":    {valueShort: "r", plainShort: "cv", valueLong: set("rewrite"), plainLong: set("single-child verbose")},
		"catatonit":    {plainShort: "gLP"},
		"gosu":         {fixed: 1},
		"su-exec":      {fixed: 1},
		"setuidgid":    {fixed: 1},
		"s6-setuidgid": {fixed: 1},
		"setpriv": {valueLong: set("reuid regid groups inh-caps ambient-caps bounding-set securebits pdeathsig selinux-label apparmor-profile landlock-access landlock-rule"),
			plainLong: set("clear-groups keep-groups init-groups no-new-privs nnp reset-env dump"), plainShort: "d"},
		"time":        {valueShort: "fo", plainShort: "pavqV"},
		"exec":        {valueShort: "a", plainShort: "cl"},
		"command":     {plainShort: "p", noRun: "vV"},
		"builtin":     {},
		"unbuffer":    {},
		"systemd-run": {valueShort: "pEM", plainShort: "tqGrS", valueLong: set("unit property description slice uid gid working-directory setenv machine")},
		"script":      {valueShort: "ETIOBm", plainShort: "aefqt", valueLong: set("log-io log-in log-out log-timing output-limit echo logging-format"), scriptShort: "c", scriptLong: set("command"), noCommand: true},
		"watch":       {},
	}
	wrappers = map[string]wrapperFunc{}
	for name, spec := range specs {
		wrappers[name] = func(j *commandJudge, c simpleCommand) { j.wrapped(c, spec) }
	}
	wrappers["env"] = judgeEnv
	wrappers["xargs"] = judgeXargs
	wrappers["find"] = judgeFind
	wrappers["watch"] = judgeWatch
	wrappers["flock"] = judgeFlock
	wrappers["eval"] = func(j *commandJudge, c simpleCommand) {
		if len(c.fields) > 1 {
			j.script(strings.Join(c.fields[1:], " "), c.elemOf(1), nil, false, c)
		}
	}
	wrappers["trap"] = func(j *commandJudge, c simpleCommand) {
		ops := operandsAfterOptions(c.fields[1:])
		if len(ops) >= 2 && ops[0] != "-" {
			j.script(ops[0], c.first, nil, false, c)
		}
	}
	wrappers["alias"] = func(j *commandJudge, c simpleCommand) {
		for _, a := range c.fields[1:] {
			if _, v, ok := strings.Cut(a, "="); ok {
				j.script(v, c.first, nil, false, c)
			}
		}
	}
}

func operandsAfterOptions(args []string) []string {
	for i, a := range args {
		if a == "--" {
			return args[i+1:]
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return args[i:]
		}
	}
	return nil
}

// wrapped judges what a wrapper runs: its command, at every place the options allow, and its scripts.
func (j *commandJudge) wrapped(c simpleCommand, spec wrapperSpec) {
	starts, scripts := scanWrapper(spec, c.fields, 1, 0)
	for _, k := range scripts {
		j.script(c.fields[k], c.elemOf(k), nil, false, c)
	}
	if spec.noCommand {
		return
	}
	for _, k := range starts {
		if k >= len(c.fields) {
			continue
		}
		sub := c.sub(k)
		if spec.assigns {
			for _, a := range c.fields[1:k] {
				if strings.HasPrefix(a, "PATH=") {
					sub.pathChanged = true
				}
			}
		}
		j.simple(sub)
	}
}

// scanWrapper finds where a wrapper's command starts (every reading an unknown option leaves open) and
// which fields are scripts.
func scanWrapper(spec wrapperSpec, f []string, i, branches int) (starts, scripts []int) {
	for i < len(f) {
		w := f[i]
		switch {
		case w == "--":
			i++
			return append(starts, i+spec.fixed), scripts
		case spec.assigns && isAssignment(w):
			i++
		case w == "-" || !strings.HasPrefix(w, "-"):
			return append(starts, i+spec.fixed), scripts
		case strings.HasPrefix(w, "--"):
			name, _, hasEq := strings.Cut(w[2:], "=")
			switch {
			case spec.scriptLong[name]:
				if hasEq {
					scripts = append(scripts, i) // rare: --command=script; judged as a whole word
				} else if i+1 < len(f) {
					scripts = append(scripts, i+1)
				}
				i += 2
				if hasEq {
					i--
				}
			case hasEq || spec.plainLong[name]:
				i++
			case spec.valueLong[name]:
				i += 2
			default:
				return branch(spec, f, i, branches, starts, scripts)
			}
		default:
			if spec.digits && strings.Trim(w[1:], "0123456789") == "" {
				i++
				continue
			}
			next := i + 1
			for k := 1; k < len(w); k++ {
				ch := w[k]
				switch {
				case strings.IndexByte(spec.noRun, ch) >= 0:
					return nil, scripts
				case strings.IndexByte(spec.scriptShort, ch) >= 0:
					if k+1 < len(w) {
						scripts = append(scripts, i) // -c'script' attached: judged as the whole word
					} else if i+1 < len(f) {
						scripts = append(scripts, i+1)
						next = i + 2
					}
				case strings.IndexByte(spec.valueShort, ch) >= 0:
					if k+1 == len(w) {
						next = i + 2
					}
				case strings.IndexByte(spec.plainShort, ch) >= 0:
					continue
				default:
					return branch(spec, f, i, branches, starts, scripts)
				}
				break
			}
			i = next
		}
	}
	return starts, scripts
}

// branch: an option the table does not know. Judge both readings: it takes no value, or the next word.
func branch(spec wrapperSpec, f []string, i, branches int, starts, scripts []int) ([]int, []int) {
	if branches >= 4 {
		// Many unknown options: every later word may start the command.
		for k := i + 1; k < len(f); k++ {
			starts = append(starts, k)
		}
		return starts, scripts
	}
	s1, c1 := scanWrapper(spec, f, i+1, branches+1)
	s2, c2 := scanWrapper(spec, f, i+2, branches+1)
	for _, k := range append(s1, s2...) {
		if !containsInt(starts, k) {
			starts = append(starts, k)
		}
	}
	for _, k := range append(c1, c2...) {
		if !containsInt(scripts, k) {
			scripts = append(scripts, k)
		}
	}
	return starts, scripts
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	if !ok || k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if !(ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || i > 0 && ch >= '0' && ch <= '9') {
			return false
		}
	}
	return true
}

// judgeEnv: env [-i] [-u NAME] [NAME=value]… [-S "command line"] command…
func judgeEnv(j *commandJudge, c simpleCommand) {
	f := c.fields
	pathChanged := false
	for i := 1; i < len(f); i++ {
		w := f[i]
		var split string
		switch {
		case w == "--":
			j.envCommand(c, i+1, pathChanged)
			return
		case isAssignment(w):
			pathChanged = pathChanged || strings.HasPrefix(w, "PATH=")
			continue
		case w == "-S" || w == "--split-string":
			if i+1 < len(f) {
				split = f[i+1]
				i++
			}
		case strings.HasPrefix(w, "--split-string="):
			split = w[len("--split-string="):]
		case strings.HasPrefix(w, "-S"):
			split = w[2:]
		case w == "-u" || w == "-C" || w == "--unset" || w == "--chdir":
			i++
			continue
		case strings.HasPrefix(w, "-") && w != "-":
			continue
		default:
			j.envCommand(c, i, pathChanged)
			return
		}
		// env -S splits its string into words and runs them, then the rest.
		words := append(strings.Fields(split), f[i+1:]...)
		sub := c.sub(i)
		sub.fields = words
		sub.identity = false
		sub.pathChanged = pathChanged
		j.simple(sub)
		return
	}
}

func (j *commandJudge) envCommand(c simpleCommand, k int, pathChanged bool) {
	if k < len(c.fields) {
		sub := c.sub(k)
		sub.pathChanged = pathChanged
		j.simple(sub)
	}
}

// judgeXargs: the command gets words read at run time appended.
func judgeXargs(j *commandJudge, c simpleCommand) {
	spec := wrapperSpec{valueShort: "aEeIiLlnPsd", plainShort: "0prtx",
		valueLong: set("arg-file eof replace max-lines max-args max-procs max-chars delimiter process-slot-var"),
		plainLong: set("null interactive no-run-if-empty verbose exit open-tty show-limits")}
	starts, _ := scanWrapper(spec, c.fields, 1, 0)
	for _, k := range starts {
		sub := c.sub(k)
		if k >= len(c.fields) {
			sub.fields = []string{"echo"}
		}
		sub.fields = append(append([]string(nil), sub.fields...), runTimeMark)
		sub.identity = false
		j.simple(sub)
	}
}

// judgeFind: every -exec/-execdir/-ok/-okdir command, {} standing for each starting point (what find
// passes first, and the parent of everything else it passes).
func judgeFind(j *commandJudge, c simpleCommand) {
	f := c.fields
	i := 1
	for i < len(f) && (f[i] == "-H" || f[i] == "-L" || f[i] == "-P" || f[i] == "-D" || f[i] == "-O" || strings.HasPrefix(f[i], "-O")) {
		if f[i] == "-D" || f[i] == "-O" {
			i++
		}
		i++
	}
	var roots []string
	for i < len(f) && !strings.HasPrefix(f[i], "-") && f[i] != "(" && f[i] != "!" {
		roots = append(roots, f[i])
		i++
	}
	if len(roots) == 0 {
		roots = []string{"."}
	}
	for ; i < len(f); i++ {
		switch f[i] {
		case "-exec", "-execdir", "-ok", "-okdir":
		default:
			continue
		}
		start := i + 1
		end := start
		for end < len(f) && f[end] != ";" && f[end] != "+" {
			end++
		}
		for _, root := range roots {
			words := make([]string, 0, end-start)
			for _, w := range f[start:end] {
				words = append(words, strings.ReplaceAll(w, "{}", root))
			}
			sub := c.sub(start)
			sub.fields = words
			sub.identity = false
			j.simple(sub)
		}
		i = end
	}
}

// judgeWatch: watch runs its arguments joined as an sh -c script (directly with -x).
func judgeWatch(j *commandJudge, c simpleCommand) {
	spec := wrapperSpec{valueShort: "nq", plainShort: "bcdegprtwx", valueLong: set("interval equexit"),
		plainLong: set("beep color no-color differences errexit chgexit precise no-rerun no-title no-wrap exec no-linewrap")}
	starts, _ := scanWrapper(spec, c.fields, 1, 0)
	exec := false
	for _, w := range c.fields[1:] {
		if w == "-x" || w == "--exec" {
			exec = true
		}
	}
	for _, k := range starts {
		if k >= len(c.fields) {
			continue
		}
		if exec {
			j.simple(c.sub(k))
			continue
		}
		j.script(strings.Join(c.fields[k:], " "), c.elemOf(k), nil, false, c)
	}
}

// judgeFlock: flock [options] FILE command… | flock [options] FILE -c script.
func judgeFlock(j *commandJudge, c simpleCommand) {
	spec := wrapperSpec{valueShort: "wEc", plainShort: "sxenuoFv", valueLong: set("timeout conflict-exit-code"),
		plainLong: set("shared exclusive nonblock nb unlock close no-fork verbose"), scriptShort: "c", scriptLong: set("command"), fixed: 1}
	starts, scripts := scanWrapper(spec, c.fields, 1, 0)
	for _, k := range scripts {
		j.script(c.fields[k], c.elemOf(k), nil, false, c)
	}
	for _, k := range starts {
		if k >= len(c.fields) {
			continue
		}
		if w := c.fields[k]; (w == "-c" || w == "--command") && k+1 < len(c.fields) {
			j.script(c.fields[k+1], c.elemOf(k+1), nil, false, c)
			continue
		}
		j.simple(c.sub(k))
	}
}
