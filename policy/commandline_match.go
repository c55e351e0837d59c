package policy

import (
	"errors"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// commandRules is spec.commands compiled: blocked entries indexed by executable, allowed executables by
// name and by path.
type commandRules struct {
	blocked  []blockedEntry
	byName   map[string][]int // exact basename → indexes into blocked
	globbed  []int            // entries whose executable is a pattern (mkfs*)
	forkBomb string           // the fork-bomb entry as written; "" when the policy has none

	allowList    bool
	allowedNames map[string]bool // bare names: found by a standard PATH lookup
	allowedPaths map[string]bool // absolute paths, cleaned
}

// blockedEntry is one commands.blocked entry, read like a command.
type blockedEntry struct {
	source   string
	exe      string // basename, or a path.Match pattern
	flags    []flagOcc
	operands []string // normalised (see normOperand)
}

type flagOcc struct {
	name     string // canonical: a flagTables name, or "-x" / "--long" for commands without a table
	value    string
	hasValue bool
}

// parsedArgs is a command's arguments read as flags and operands.
type parsedArgs struct {
	flags    []flagOcc
	operands []string
	runTime  []runTimeWord // words only known at run time
}

type runTimeWord struct {
	word     string
	mayFlags bool // before "--", and not ruled out by a literal start
}

// compileBlockedEntry reads one blocked entry with the shell parser the judge uses.
func compileBlockedEntry(src string) (e blockedEntry, forkBomb bool, err error) {
	f, perr := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if perr != nil {
		return e, false, errors.New("not a shell command: " + perr.Error())
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok && isForkBomb(fd) {
			forkBomb = true
		}
		return true
	})
	if forkBomb {
		return blockedEntry{source: src}, true, nil
	}
	const want = `one command with literal words, such as "rm -rf /" (or a fork bomb such as ":(){ :|:& };:")`
	if len(f.Stmts) != 1 {
		return e, false, errors.New("must be " + want)
	}
	st := f.Stmts[0]
	ce, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || st.Background || st.Negated || st.Coprocess || len(st.Redirs) > 0 || len(ce.Assigns) > 0 || len(ce.Args) == 0 {
		return e, false, errors.New("must be " + want)
	}
	sc := &scriptScope{assigned: map[string]bool{}, judge: &commandJudge{}}
	fields := expandWords(sc.expandConfig(), ce.Args)
	for _, fl := range fields {
		if strings.Contains(fl, runTimeMark) {
			return e, false, errors.New("must be " + want + ": no variables or command substitutions")
		}
	}
	if len(fields) == 0 || baseName(fields[0]) == "" {
		return e, false, errors.New("must be " + want)
	}
	e = blockedEntry{source: src, exe: baseName(fields[0])}
	if _, err := path.Match(e.exe, ""); err != nil {
		return e, false, errors.New("executable pattern " + quote(e.exe) + ": " + err.Error())
	}
	pa := parseArgs(flagTables[e.exe], fields[1:])
	e.flags = pa.flags
	for i := range e.flags {
		if e.flags[i].hasValue {
			e.flags[i].value = normOperand(e.flags[i].value)
		}
	}
	for _, o := range pa.operands {
		e.operands = append(e.operands, normOperand(o))
	}
	return e, false, nil
}

func isGlobPattern(s string) bool { return strings.ContainsAny(s, "*?[") }

// matches reports whether a command's arguments satisfy the entry; runTime when only because a run-time
// value may be what the entry needs.
func (e *blockedEntry) matches(pa *parsedArgs, cwds []string) (ok, runTime bool) {
	for _, rf := range e.flags {
		if slices.ContainsFunc(pa.flags, func(f flagOcc) bool {
			return f.name == rf.name && (!rf.hasValue || f.hasValue && operandEqual(f.value, rf.value, cwds))
		}) {
			continue
		}
		if !slices.ContainsFunc(pa.runTime, func(w runTimeWord) bool { return w.mayFlags }) {
			return false, false
		}
		runTime = true
	}
	for _, ro := range e.operands {
		if slices.ContainsFunc(pa.operands, func(o string) bool { return operandEqual(o, ro, cwds) }) {
			continue
		}
		if !slices.ContainsFunc(pa.runTime, func(w runTimeWord) bool { return mayEqual(w.word, ro) }) {
			return false, false
		}
		runTime = true
	}
	return true, runTime
}

// parseArgs reads arguments as flags and operands: short clusters split (-rf is -r -f), long names and
// their unambiguous prefixes resolved through the command's table, "--" ending the flags, flags anywhere
// before it (GNU order).
func parseArgs(t *flagTable, args []string) *parsedArgs {
	pa := &parsedArgs{}
	endFlags := false
	for i := 0; i < len(args); i++ {
		w := args[i]
		if strings.Contains(w, runTimeMark) {
			pre, _, _ := strings.Cut(w, runTimeMark)
			pa.runTime = append(pa.runTime, runTimeWord{word: w, mayFlags: !endFlags && (pre == "" || strings.HasPrefix(pre, "-"))})
			continue
		}
		switch {
		case endFlags || w == "-" || !strings.HasPrefix(w, "-"):
			pa.operands = append(pa.operands, w)
		case w == "--":
			endFlags = true
		case strings.HasPrefix(w, "--"):
			name, val, hasEq := strings.Cut(w[2:], "=")
			canon, takes := t.long(name)
			switch {
			case hasEq:
				pa.flags = append(pa.flags, flagOcc{name: canon, value: val, hasValue: true})
			case takes && i+1 < len(args):
				pa.flags = append(pa.flags, flagOcc{name: canon, value: args[i+1], hasValue: true})
				i++
			default:
				pa.flags = append(pa.flags, flagOcc{name: canon})
			}
		default:
			for k := 1; k < len(w); k++ {
				canon, takes := t.short(w[k])
				if !takes {
					pa.flags = append(pa.flags, flagOcc{name: canon})
					continue
				}
				val := w[k+1:]
				if val == "" && i+1 < len(args) {
					val = args[i+1]
					i++
				}
				pa.flags = append(pa.flags, flagOcc{name: canon, value: val, hasValue: true})
				break
			}
		}
	}
	return pa
}

// normOperand cleans what a path means: "//", "/.", "/tmp/.." are "/"; a last segment made only of glob
// characters ("*", "?*", "[a-z]*") is "*". key=value operands (dd if=/dev/zero) clean their value.
func normOperand(o string) string {
	if strings.HasPrefix(o, "/") {
		return normPath(o)
	}
	if k, v, ok := strings.Cut(o, "="); ok && k != "" && !strings.Contains(k, "/") && strings.HasPrefix(v, "/") {
		return k + "=" + normPath(v)
	}
	return o
}

func normPath(p string) string {
	c := path.Clean(p)
	if b := path.Base(c); b != "*" && allGlob(b) {
		c = path.Join(path.Dir(c), "*")
	}
	return c
}

// allGlob: a segment that matches (nearly) every name: glob characters only, at least one "*".
func allGlob(seg string) bool {
	star := false
	for i := 0; i < len(seg); i++ {
		switch seg[i] {
		case '*':
			star = true
		case '?':
		case '[':
			j := strings.IndexByte(seg[i+1:], ']')
			if j < 0 {
				return false
			}
			i += j + 1
		default:
			return false
		}
	}
	return star
}

// operandEqual compares a literal argument with a normalised entry operand; a relative path is resolved
// against every directory the command may run in.
func operandEqual(o, r string, cwds []string) bool {
	if strings.Contains(o, runTimeMark) {
		return mayEqual(o, r)
	}
	if o == r {
		return true
	}
	if strings.HasPrefix(r, "/") {
		if strings.HasPrefix(o, "/") {
			return normPath(o) == r
		}
		if strings.Contains(o, "=") {
			return false
		}
		for _, d := range cwds {
			if normPath(d+"/"+o) == r {
				return true
			}
		}
		return false
	}
	if rk, rv, ok := strings.Cut(r, "="); ok {
		if ok2 := strings.HasPrefix(o, rk+"="); ok2 {
			return operandEqual(o[len(rk)+1:], rv, cwds)
		}
	}
	return false
}

// mayEqual reports whether a word with run-time parts may be the normalised operand r. A path's run-time
// part may hold "..", so only a literal last segment rules a path out.
func mayEqual(w, r string) bool {
	pre := w[:strings.Index(w, runTimeMark)]
	suf := w[strings.LastIndex(w, runTimeMark)+len(runTimeMark):]
	if strings.HasPrefix(r, "/") || strings.HasPrefix(pre, "/") {
		if strings.Contains("/"+suf+"/", "/../") {
			return true
		}
		t := suf
		for {
			n := strings.TrimSuffix(strings.TrimSuffix(t, "/"), "/.")
			if n == t {
				break
			}
			t = n
		}
		if t == "" || t == "." {
			return true
		}
		rb := path.Base(r)
		i := strings.LastIndexByte(t, '/')
		if i < 0 { // the tail of the last segment only
			return strings.HasSuffix(rb, t) || rb == "*"
		}
		seg := t[i+1:]
		return seg == rb || (rb == "*" && allGlob(seg))
	}
	if rk, rv, ok := strings.Cut(r, "="); ok {
		if pk, pv, ok := strings.Cut(pre, "="); ok {
			return pk == rk && mayEqual(pv+w[len(pre):], rv)
		}
	}
	return len(r) >= len(pre)+len(suf) && strings.HasPrefix(r, pre) && strings.HasSuffix(r, suf)
}

// flagTable knows the spellings of one command's flags.
type flagTable struct {
	shorts    map[byte]string
	longs     map[string]string
	takes     map[string]bool
	longNames []string // sorted, for unambiguous prefixes
}

func (t *flagTable) short(c byte) (string, bool) {
	if t != nil {
		if n, ok := t.shorts[c]; ok {
			return n, t.takes[n]
		}
	}
	return "-" + string(c), false
}

func (t *flagTable) long(name string) (string, bool) {
	if t == nil {
		return "--" + name, false
	}
	if n, ok := t.longs[name]; ok {
		return n, t.takes[n]
	}
	// getopt_long accepts any unambiguous prefix: rm --rec --for /.
	match := ""
	for _, l := range t.longNames {
		if strings.HasPrefix(l, name) && name != "" {
			if match != "" && t.longs[match] != t.longs[l] {
				return "--" + name, false
			}
			match = l
		}
	}
	if match != "" {
		n := t.longs[match]
		return n, t.takes[n]
	}
	return "--" + name, false
}

// newFlagTable reads "r,R,recursive f,force o,output:": each group one flag, its spellings comma-separated
// (one letter: a short flag), ":" when it takes a value.
func newFlagTable(spec string) *flagTable {
	t := &flagTable{shorts: map[byte]string{}, longs: map[string]string{}, takes: map[string]bool{}}
	for _, g := range strings.Fields(spec) {
		takes := strings.HasSuffix(g, ":")
		names := strings.Split(strings.TrimSuffix(g, ":"), ",")
		canon := names[0]
		for _, n := range names {
			if len(n) > 1 {
				canon = n
				break
			}
		}
		canon = "=" + canon // cannot collide with "-x" / "--x" of table-less commands
		t.takes[canon] = takes
		for _, n := range names {
			if len(n) == 1 {
				t.shorts[n[0]] = canon
			} else {
				t.longs[n] = canon
				t.longNames = append(t.longNames, n)
			}
		}
	}
	slices.Sort(t.longNames)
	return t
}

// flagTables: the commands whose flag spellings blocked entries are likely to name.
var flagTables = map[string]*flagTable{}

func init() {
	chmod := "R,recursive f,silent,quiet v,verbose c,changes h,no-dereference H L P reference: from: dereference preserve-root no-preserve-root"
	power := "p,poweroff f,force w,wtmp-only d,no-wtmp n,no-sync no-wall halt reboot"
	ipt := "A,append: C,check: D,delete: I,insert: R,replace: L,list S,list-rules F,flush Z,zero N,new-chain: X,delete-chain " +
		"P,policy: E,rename-chain: t,table: j,jump: p,protocol: s,source: d,destination: i,in-interface: o,out-interface: w,wait v,verbose n,numeric"
	for names, spec := range map[string]string{
		"rm":                     "r,R,recursive f,force d,dir i I interactive v,verbose no-preserve-root preserve-root one-file-system",
		"chmod chown chgrp":      chmod,
		"shutdown":               "H,halt P,poweroff r,reboot h k c,cancel no-wall show",
		"reboot halt poweroff":   power,
		"iptables ip6tables":     ipt,
		"curl":                   "k,insecure o,output: O,remote-name s,silent S,show-error L,location H,header: d,data: X,request: u,user: x,proxy: T,upload-file: f,fail",
		"wget":                   "O,output-document: q,quiet no-check-certificate",
		"systemctl":              "f,force i,ignore-inhibitors q,quiet no-block no-wall now",
		"kubectl":                "n,namespace: A,all-namespaces context: kubeconfig: s,server: token:",
		"chattr mkfs mke2fs dd":  "",
		"wipefs":                 "a,all f,force",
		"shred":                  "u,remove z,zero f,force n,iterations: v,verbose",
		"find":                   "",
		"crontab":                "r,remove e,edit l,list u,user:",
		"nft":                    "f,file: i,interactive",
		"mount umount":           "t,types: o,options: a,all f,force l,lazy",
		"userdel useradd passwd": "r,remove f,force",
	} {
		t := newFlagTable(spec)
		for _, n := range strings.Fields(names) {
			flagTables[n] = t
		}
	}
}

func newCommandRules() *commandRules {
	return &commandRules{byName: map[string][]int{}, allowedNames: map[string]bool{}, allowedPaths: map[string]bool{}}
}

func (r *commandRules) addBlocked(e blockedEntry) {
	i := len(r.blocked)
	r.blocked = append(r.blocked, e)
	if isGlobPattern(e.exe) {
		r.globbed = append(r.globbed, i)
		return
	}
	r.byName[e.exe] = append(r.byName[e.exe], i)
}
