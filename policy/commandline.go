package policy

// The command-line judge: what spec.commands means, in one place, for every caller that has an argv (the
// commands check over a container's command and args, and the exec judge over a kubectl exec's command).
//
// A command line is read the way it runs. An argv whose executable is not a shell or a wrapper is one simple
// command. A shell's -c script is parsed (mvdan.cc/sh/v3/syntax, bash dialect) and every simple command in it
// is judged: lists, pipes, subshells, $(…) and backticks, bodies of if/for/while/case and functions, here-documents
// fed to a shell, the strings given to eval, trap, alias, su -c, watch and nested shells. Wrappers whose
// argument is a command (env, nice, nohup, timeout, sudo, busybox, xargs, find -exec, exec, command, …) are
// looked through, the wrapper judged as well. Words are expanded as the shell would (quotes, escapes,
// $'…', braces, the script's positional parameters, the container's literal environment); what only the
// running shell knows (an unknown variable, $(…) output, a pipe's data) is a run-time value, written
// internally as runTimeMark.
//
// A blocked entry, parsed once by the same parser, matches a simple command by meaning: same executable
// basename (a glob there, such as mkfs*, matches by path.Match), every flag of the entry present in any
// spelling (clusters, long names, unambiguous long prefixes, the aliases of flagTables), every operand present
// (paths compared cleaned, relative ones resolved against every directory the script may be in; a last
// segment made only of glob characters means "*"). A run-time value may stand for any flag or operand whose
// shape it does not rule out; such a command "may" run the entry and is judged as running it. A function
// that calls itself at least twice, one call in the background or a pipe, is a fork bomb, matched by a blocked
// entry that is itself one.
//
// What cannot be read is never admitted unjudged while the policy lists commands: a script that does not
// parse, an executable only known at run time ($CMD, $(…)), and a shell reading its script from a pipe.
// Scripts in files (sh run.sh, source) are programs like any other: their name is judged, not their content.

import (
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// runTimeMark stands, inside an expanded word, for text only the running process knows. A private-use rune:
// a manifest that writes it literally is only judged more strictly.
const (
	runTimeRune = '\uE000'
	runTimeMark = "\uE000"
)

// maxSimpleCommands bounds the work on one command line (wrappers read two ways, find's roots, braces):
// past it the command line is judged unreadable, never admitted unjudged.
const maxSimpleCommands = 2000

// maxCommandDepth bounds nesting (sh -c 'eval "sh -c …"'); deeper is judged unreadable, never skipped.
const maxCommandDepth = 12

type commandFindingKind uint8

const (
	// findingBlocked: a blocked entry matches (or may match, when Reason says which value is only known
	// at run time).
	findingBlocked commandFindingKind = iota + 1
	// findingNotAllowed: commands.allowed is set and the executable is not on it.
	findingNotAllowed
	// findingUnreadable: what runs cannot be read from the command line (Reason says why).
	findingUnreadable
)

// commandFinding is one reason a command line breaks spec.commands.
type commandFinding struct {
	Arg     int // index in the argv of the element where the simple command starts
	Kind    commandFindingKind
	Entry   string // findingBlocked: the entry as written; findingNotAllowed: the executable as written
	Command string // the simple command, as written in its script or argv
	Reason  string // findingUnreadable: why; findingBlocked: "" or which value is only known at run time
}

// judgeCommandLine judges one argv against spec.commands: every finding, in the order the command line
// runs them, at most one per element, kind and entry. in is the container the command line runs in (its
// literal environment and working directory are then known), or nil when nothing is known about it.
func (p *Policy) judgeCommandLine(argv []string, in *corev1.Container) []commandFinding {
	cr := p.commands
	if cr == nil || !cr.active() || len(argv) == 0 || !cr.mayFind(argv[0]) {
		return nil
	}
	j := commandJudge{rules: cr, container: in}
	j.simple(simpleCommand{fields: argv, identity: true})
	return j.out
}

// mayFind is the fast path: an executable that is neither listed, nor blocked, nor a shell or wrapper, runs
// one simple command that nothing in the policy concerns.
func (r *commandRules) mayFind(exe string) bool {
	if r.allowList || strings.Contains(exe, "$(") {
		return true
	}
	base, known := executableBase(exe)
	if !known || shellNames[base] || wrappers[base] != nil || base == "busybox" || base == "toybox" || len(r.byName[base]) > 0 {
		return true
	}
	for _, i := range r.globbed {
		if ok, _ := path.Match(r.blocked[i].exe, base); ok {
			return true
		}
	}
	return false
}

type commandJudge struct {
	rules     *commandRules
	container *corev1.Container
	env       *containerEnv // of container, built when a script first needs it
	out       []commandFinding
	// visit, when set, sees every simple command before it is judged (the envSecrets check reads flags).
	visit     func(simpleCommand)
	judged    int  // simple commands so far
	exhausted bool // maxSimpleCommands reached: stop
}

func (j *commandJudge) containerEnv() *containerEnv {
	if j.env == nil {
		j.env = newContainerEnv(j.container)
	}
	return j.env
}

func (j *commandJudge) add(f commandFinding) {
	f.Command = strings.ReplaceAll(f.Command, runTimeMark, "$…")
	for _, o := range j.out {
		if o.Arg == f.Arg && o.Kind == f.Kind && o.Entry == f.Entry {
			return
		}
	}
	j.out = append(j.out, f)
}

// stdinSource is what a command reads on its standard input, as far as a shell running it cares.
type stdinSource struct {
	script string // a here-document or here-string, expanded
	has    bool   // script is set
	piped  bool   // another command's output, only known at run time
}

// simpleCommand is one command to judge: its expanded words and where they come from.
type simpleCommand struct {
	fields []string
	// first is the argv element of fields[0]; with identity, fields[k] comes from element first+k (a
	// top-level argv), otherwise every field comes from element first (a script).
	first    int
	identity bool
	text     string       // as written; "" for an argv (rendered from fields)
	script   *scriptScope // nil outside a shell script
	stdin    stdinSource
	// pathChanged: this command's own assignments (PATH=… cmd, env PATH=… cmd) change PATH.
	pathChanged bool
	depth       int
}

func (c simpleCommand) elemOf(k int) int {
	if c.identity {
		return c.first + k
	}
	return c.first
}

// sub is the command that starts at fields[k] (a wrapper's command).
func (c simpleCommand) sub(k int) simpleCommand {
	s := c
	s.fields = c.fields[k:]
	s.first = c.elemOf(k)
	s.text = ""
	s.depth = c.depth + 1
	return s
}

func (c simpleCommand) render() string {
	if c.text != "" {
		return c.text
	}
	var b strings.Builder
	for i, f := range c.fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(renderWord(f))
	}
	return b.String()
}

// renderWord writes a word as a shell would read it back, a run-time value as "$…".
func renderWord(f string) string {
	f = strings.ReplaceAll(f, runTimeMark, "$…")
	if f != "" && !strings.ContainsAny(f, " \t\n'\"\\;&|<>()`*?[]{}!#~") {
		return f
	}
	if q, err := syntax.Quote(f, syntax.LangBash); err == nil {
		return q
	}
	return strconv.Quote(f)
}

func (j *commandJudge) unreadable(c simpleCommand, reason string) {
	j.add(commandFinding{Arg: c.first, Kind: findingUnreadable, Command: c.render(), Reason: reason})
}

// simple judges one simple command, then what it runs (a wrapper's command, a shell's script).
func (j *commandJudge) simple(c simpleCommand) {
	if len(c.fields) == 0 {
		return
	}
	if c.depth > maxCommandDepth {
		j.unreadable(c, "commands nested more than "+strconv.Itoa(maxCommandDepth)+" deep")
		return
	}
	if j.exhausted {
		return
	}
	if j.judged++; j.judged > maxSimpleCommands {
		j.exhausted = true
		j.unreadable(c, "more than "+strconv.Itoa(maxSimpleCommands)+" commands to judge")
		return
	}
	if j.visit != nil {
		j.visit(c)
	}
	exe := c.fields[0]
	base, known := executableBase(exe)
	if !known {
		j.unreadable(c, "the executable is only known at run time")
		return
	}
	if j.rules.allowList && !j.allowedExecutable(c, exe, base) {
		j.add(commandFinding{Arg: c.first, Kind: findingNotAllowed, Entry: exe, Command: c.render()})
	}
	j.matchBlocked(c, base)
	j.inner(c, base)
}

// executableBase is the basename of an executable word; known is false when run time decides it.
func executableBase(exe string) (base string, known bool) {
	b := baseName(exe)
	if b == "" || strings.Contains(b, runTimeMark) {
		return "", false
	}
	return b, true
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

// standardPathDirs is where a bare name is found when PATH is the usual one.
var standardPathDirs = map[string]bool{
	"/usr/local/sbin": true, "/usr/local/bin": true, "/usr/sbin": true, "/usr/bin": true, "/sbin": true, "/bin": true,
}

func (j *commandJudge) allowedExecutable(c simpleCommand, exe, base string) bool {
	r := j.rules
	if !strings.Contains(exe, "/") {
		if c.script != nil && (shellBuiltins[exe] || c.script.functions[exe]) {
			return true // not an executable: the shell runs it itself
		}
		pathChanged := c.pathChanged || (c.script != nil && c.script.assigned["PATH"]) || j.containerEnv().pathChanged
		return r.allowedNames[exe] && !pathChanged
	}
	if strings.Contains(exe, runTimeMark) || !strings.HasPrefix(exe, "/") {
		return false
	}
	clean := path.Clean(exe)
	return r.allowedPaths[clean] || (r.allowedNames[base] && standardPathDirs[path.Dir(clean)])
}

// shellBuiltins run inside the shell, so commands.allowed does not list them. Those that run another command
// (exec, command, eval, trap, builtin, alias) are looked through like wrappers.
var shellBuiltins = map[string]bool{}

func init() {
	for _, b := range strings.Fields(`: . [ alias bg break builtin caller cd command compgen complete continue declare dirs
		disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile
		popd printf pushd pwd read readarray readonly return set shift shopt source suspend test times trap true type
		typeset ulimit umask unalias unset wait`) {
		shellBuiltins[b] = true
	}
}

// matchBlocked reports every blocked entry for this executable that the command's words satisfy.
func (j *commandJudge) matchBlocked(c simpleCommand, base string) {
	r := j.rules
	idx := r.byName[base]
	if len(r.globbed) == 0 && len(idx) == 0 {
		return
	}
	var pa *parsedArgs
	try := func(i int) {
		e := &r.blocked[i]
		if pa == nil {
			pa = parseArgs(flagTables[base], c.fields[1:])
		}
		if ok, runTime := e.matches(pa, j.cwds(c)); ok {
			reason := ""
			if runTime {
				reason = "an argument is only known at run time"
			}
			j.add(commandFinding{Arg: c.first, Kind: findingBlocked, Entry: e.source, Command: c.render(), Reason: reason})
		}
	}
	for _, i := range idx {
		try(i)
	}
	for _, i := range r.globbed {
		if ok, _ := path.Match(r.blocked[i].exe, base); ok {
			try(i)
		}
	}
}

// cwds lists every directory a relative operand may be resolved against: the container's working directory
// ("/" when the image decides), and every directory the script changes to ("/" for one only known at run time).
func (j *commandJudge) cwds(c simpleCommand) []string {
	first := "/"
	if j.container != nil && strings.HasPrefix(j.container.WorkingDir, "/") {
		first = path.Clean(j.container.WorkingDir)
	}
	if c.script == nil || len(c.script.dirs) == 0 {
		return []string{first}
	}
	return append([]string{first}, c.script.dirs...)
}

// inner judges what a shell or wrapper runs.
func (j *commandJudge) inner(c simpleCommand, base string) {
	if shellNames[base] {
		j.shell(c)
		return
	}
	if base == "busybox" || base == "toybox" {
		if len(c.fields) > 1 && !strings.HasPrefix(c.fields[1], "-") {
			j.simple(c.sub(1))
		}
		return
	}
	w, ok := wrappers[base]
	if !ok {
		return
	}
	w(j, c)
}

var shellNames = map[string]bool{
	"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true, "pdksh": true,
	"yash": true, "posh": true, "rbash": true, "lksh": true, "oksh": true, "loksh": true, "fish": true,
	"csh": true, "tcsh": true, "hush": true,
}

// shell judges the script a shell runs: its -c argument, or a here-document on its standard input. A script
// file is a program like any other; standard input from a pipe is a script only known at run time.
func (j *commandJudge) shell(c simpleCommand) {
	args := c.fields[1:]
	cmode := false
	i := 0
scan:
	for i < len(args) {
		w := args[i]
		switch {
		case w == "--" || w == "-":
			i++
			break scan
		case strings.HasPrefix(w, "--"):
			i++
			if w == "--rcfile" || w == "--init-file" {
				i++
			}
		case len(w) > 1 && (w[0] == '-' || w[0] == '+'):
			i++
			for _, ch := range w[1:] {
				switch ch {
				case 'c':
					cmode = true
				case 'o', 'O':
					i++ // -o pipefail
				}
			}
		default:
			break scan
		}
	}
	switch {
	case cmode && i < len(args):
		var positional []string
		if i+1 < len(args) {
			positional = args[i+1:]
		} else {
			positional = []string{c.fields[0]}
		}
		j.script(args[i], c.elemOf(1+i), positional, true, c)
	case cmode:
		// sh -c with no script: the shell refuses to start.
	case i < len(args):
		// a script file: judged by its name only.
	case c.stdin.has:
		j.script(c.stdin.script, c.first, nil, false, c)
	case c.stdin.piped:
		j.unreadable(c, "the shell reads its script from a pipe at run time")
	}
}

// script parses one script and judges every simple command in it. positional is $0, $1, … when known.
func (j *commandJudge) script(src string, elem int, positional []string, knownPositional bool, parent simpleCommand) {
	at := simpleCommand{first: elem, depth: parent.depth + 1, text: src}
	if at.depth > maxCommandDepth {
		j.unreadable(at, "commands nested more than "+strconv.Itoa(maxCommandDepth)+" deep")
		return
	}
	if j.exhausted {
		return
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		j.unreadable(at, "not a shell script agentgate can parse: "+err.Error())
		return
	}
	sc := newScriptScope(f, positional, knownPositional, parent.script, j)
	cfg := sc.expandConfig()
	piped := 0 // how many enclosing statements read a pipe
	pipedStmts := map[*syntax.Stmt]bool{}
	var stack []syntax.Node
	syntax.Walk(f, func(n syntax.Node) bool {
		if n == nil {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if s, ok := top.(*syntax.Stmt); ok && pipedStmts[s] {
				piped--
			}
			return true
		}
		stack = append(stack, n)
		switch n := n.(type) {
		case *syntax.Stmt:
			if pipedStmts[n] {
				piped++
			}
		case *syntax.BinaryCmd:
			if n.Op == syntax.Pipe || n.Op == syntax.PipeAll {
				pipedStmts[n.Y] = true
			}
		case *syntax.FuncDecl:
			if j.rules.forkBomb != "" && isForkBomb(n) {
				j.add(commandFinding{Arg: elem, Kind: findingBlocked, Entry: j.rules.forkBomb, Command: sourceOf(src, n)})
			}
		case *syntax.CallExpr:
			var stmt *syntax.Stmt
			if len(stack) >= 2 {
				stmt, _ = stack[len(stack)-2].(*syntax.Stmt)
			}
			j.call(n, stmt, src, elem, sc, cfg, piped > 0, parent.depth+1)
		}
		return true
	})
}

// call judges one simple command of a script.
func (j *commandJudge) call(ce *syntax.CallExpr, stmt *syntax.Stmt, src string, elem int, sc *scriptScope, cfg *expand.Config, piped bool, depth int) {
	c := simpleCommand{first: elem, text: sourceOf(src, ce), script: sc, depth: depth, stdin: stdinSource{piped: piped}}
	for _, a := range ce.Assigns {
		if a.Name != nil && a.Name.Value == "PATH" {
			c.pathChanged = true
		}
	}
	c.fields = expandWords(cfg, ce.Args)
	if stmt != nil {
		for _, r := range stmt.Redirs {
			switch r.Op {
			case syntax.Hdoc, syntax.DashHdoc:
				if r.Hdoc != nil {
					c.stdin = stdinSource{script: expandDocument(cfg, r.Hdoc), has: true}
				}
			case syntax.WordHdoc:
				c.stdin = stdinSource{script: expandDocument(cfg, r.Word), has: true}
			case syntax.RdrIn:
				c.stdin = stdinSource{} // a file: a program like any other
			}
		}
	}
	j.simple(c)
}

func sourceOf(src string, n syntax.Node) string {
	start, end := int(n.Pos().Offset()), int(n.End().Offset())
	if start < 0 || end > len(src) || start > end {
		return src
	}
	return src[start:end]
}

// expandWords expands words into fields as the shell would; a word that cannot be expanded statically, or
// whose brace expansion would be large ({1..99999999}, {a,b}{a,b}…), is one run-time value.
func expandWords(cfg *expand.Config, words []*syntax.Word) []string {
	out := make([]string, 0, len(words))
	for _, w := range words {
		if largeBraces(w) {
			out = append(out, runTimeMark)
			continue
		}
		fs, err := expand.Fields(cfg, w)
		if err != nil {
			out = append(out, runTimeMark)
			continue
		}
		out = append(out, fs...)
	}
	return out
}

func largeBraces(w *syntax.Word) bool {
	braces := 0
	for _, p := range w.Parts {
		if l, ok := p.(*syntax.Lit); ok {
			if strings.Contains(l.Value, "..") && strings.Contains(l.Value, "{") {
				return true
			}
			braces += strings.Count(l.Value, "{")
		}
	}
	return braces > 6
}

func expandDocument(cfg *expand.Config, w *syntax.Word) string {
	s, err := expand.Document(cfg, w)
	if err != nil {
		return runTimeMark
	}
	return s
}

// scriptScope is what holds for the whole of one script.
type scriptScope struct {
	judge      *commandJudge
	positional []string // $0, $1, …; nil when unknown
	assigned   map[string]bool
	functions  map[string]bool
	dirs       []string // every directory the script may cd to
}

func newScriptScope(f *syntax.File, positional []string, known bool, parent *scriptScope, j *commandJudge) *scriptScope {
	sc := &scriptScope{judge: j, assigned: map[string]bool{}, functions: map[string]bool{}}
	if known {
		sc.positional = positional
	}
	if parent != nil {
		// A nested shell inherits the environment and working directory its parent may have changed.
		sc.dirs = parent.dirs
		for k := range parent.assigned {
			sc.assigned[k] = true
		}
	}
	// Which variables the script may change, and where it may cd: a variable it assigns is a run-time
	// value everywhere (control flow decides which assignment ran).
	lit := func(w *syntax.Word) string {
		if w == nil {
			return ""
		}
		return w.Lit()
	}
	setters := map[string]bool{"read": true, "getopts": true, "declare": true, "typeset": true, "local": true,
		"export": true, "readonly": true, "mapfile": true, "readarray": true, "unset": true, "printf": true}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Assign:
			if n.Name != nil {
				sc.assigned[n.Name.Value] = true
			}
		case *syntax.ForClause:
			if wi, ok := n.Loop.(*syntax.WordIter); ok && wi.Name != nil {
				sc.assigned[wi.Name.Value] = true
			}
		case *syntax.FuncDecl:
			if n.Name != nil {
				sc.functions[n.Name.Value] = true
			}
		case *syntax.CallExpr:
			if len(n.Args) == 0 {
				return true
			}
			name := lit(n.Args[0])
			switch {
			case setters[name]:
				for _, a := range n.Args[1:] {
					if v := lit(a); v != "" && !strings.HasPrefix(v, "-") {
						k, _, _ := strings.Cut(v, "=")
						sc.assigned[k] = true
					}
				}
			case name == "set" || name == "shift":
				sc.positional = nil
			case name == "cd" || name == "pushd" || name == "popd":
				dir := "/"
				if len(n.Args) > 1 {
					if d := lit(n.Args[len(n.Args)-1]); strings.HasPrefix(d, "/") {
						dir = path.Clean(d)
					}
				}
				if !slices.Contains(sc.dirs, dir) {
					sc.dirs = append(slices.Clip(sc.dirs), dir)
				}
			}
		}
		return true
	})
	return sc
}

func (sc *scriptScope) expandConfig() *expand.Config {
	return &expand.Config{
		Env: scopeEnviron{sc},
		CmdSubst: func(w io.Writer, _ *syntax.CmdSubst) error {
			_, err := io.WriteString(w, runTimeMark)
			return err
		},
		ProcSubst: func(*syntax.ProcSubst) (string, error) { return "/dev/fd/" + runTimeMark, nil },
	}
}

// scopeEnviron gives the shell's expansion what is known and a run-time value for everything else.
type scopeEnviron struct{ sc *scriptScope }

func (e scopeEnviron) Get(name string) expand.Variable {
	sc := e.sc
	str := func(s string) expand.Variable { return expand.Variable{Set: true, Kind: expand.String, Str: s} }
	switch name {
	case "IFS":
		return expand.Variable{} // the default; a script that changes it is judged as if it did not
	case "@", "*":
		if sc.positional == nil {
			return expand.Variable{Set: true, Kind: expand.Indexed, List: []string{runTimeMark}}
		}
		return expand.Variable{Set: true, Kind: expand.Indexed, List: sc.positional[1:]}
	case "#":
		if sc.positional == nil {
			return str(runTimeMark)
		}
		return str(strconv.Itoa(len(sc.positional) - 1))
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		if sc.positional == nil {
			return str(runTimeMark)
		}
		if n < len(sc.positional) {
			return str(sc.positional[n])
		}
		return expand.Variable{}
	}
	if !sc.assigned[name] {
		if v, ok := sc.judge.containerEnv().vars[name]; ok {
			return str(v)
		}
	}
	return str(runTimeMark)
}

func (scopeEnviron) Each(func(string, expand.Variable) bool) {}

// isForkBomb: a function that calls itself at least twice, one of the calls in the background or in a pipe,
// spawns processes without end.
func isForkBomb(fd *syntax.FuncDecl) bool {
	if fd.Name == nil || fd.Body == nil {
		return false
	}
	name := fd.Name.Value
	calls, concurrent := 0, false
	inPipe := map[*syntax.Stmt]bool{}
	var stmts []*syntax.Stmt
	syntax.Walk(fd.Body, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Stmt:
			stmts = append(stmts, n)
		case *syntax.BinaryCmd:
			if n.Op == syntax.Pipe || n.Op == syntax.PipeAll {
				inPipe[n.X], inPipe[n.Y] = true, true
			}
		}
		return true
	})
	for _, s := range stmts {
		ce, ok := s.Cmd.(*syntax.CallExpr)
		if !ok || len(ce.Args) == 0 || ce.Args[0].Lit() != name {
			continue
		}
		calls++
		if s.Background || inPipe[s] || s.Coprocess {
			concurrent = true
		}
	}
	// A pipe or a background statement that holds the calls counts too: f(){ (f; f) & }.
	if calls >= 2 && !concurrent {
		syntax.Walk(fd.Body, func(n syntax.Node) bool {
			if s, ok := n.(*syntax.Stmt); ok && (s.Background || inPipe[s]) && s != fd.Body && callsIn(s, name) > 0 {
				concurrent = true
			}
			return true
		})
	}
	return calls >= 2 && concurrent
}

func callsIn(n syntax.Node, name string) int {
	k := 0
	syntax.Walk(n, func(n syntax.Node) bool {
		if ce, ok := n.(*syntax.CallExpr); ok && len(ce.Args) > 0 && ce.Args[0].Lit() == name {
			k++
		}
		return true
	})
	return k
}
