package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const c0 = "spec.containers[0]."

func cmdTweak(command []string, args ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Command, p.Spec.Containers[0].Args = command, args }
}

func shTweak(script string) func(*corev1.Pod) { return cmdTweak([]string{"sh", "-c", script}) }

// blockedRow is the rendered violation of a blocked entry at element field (under spec.containers[0]).
func blockedRow(field, element, entry string) string {
	return c0 + field + " | " + quote(element) + " | commands without " + quote(entry)
}

func scriptBlocked(script string, entries ...string) []string {
	var out []string
	for _, e := range entries {
		out = append(out, blockedRow("command[2]", script, e))
	}
	return out
}

const unreadableAllowed = "a command line that names every command it runs"

func unreadableRow(field, element string) string {
	return c0 + field + " | " + quote(element) + " | " + unreadableAllowed
}

func TestCheckCommands(t *testing.T) {
	cmd, sh := cmdTweak, shTweak
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "no command, no args", tweak: cmd(nil)},
		{
			name:  "a script",
			tweak: sh("rm -rf / ; reboot"),
			want:  scriptBlocked("rm -rf / ; reboot", "rm -rf /", "reboot"),
			msgs: []string{
				`[commands] blocked command "rm -rf /" in the container's command line: "rm -rf /" (found "rm -rf / ; reboot"; allowed: commands without "rm -rf /")`,
				`[commands] blocked command "reboot" in the container's command line: "reboot" (found "rm -rf / ; reboot"; allowed: commands without "reboot")`,
			},
		},
		{
			name:  "across command and args: reported where the simple command starts",
			tweak: cmd([]string{"/bin/rm"}, "-rf", "/"),
			want:  []string{blockedRow("command[0]", "/bin/rm", "rm -rf /")},
		},
		{
			name:  "a script in args after sh -c in command",
			tweak: cmd([]string{"/bin/sh", "-c"}, "echo start; reboot"),
			want:  []string{blockedRow("args[0]", "echo start; reboot", "reboot")},
		},
		{
			name:  "the script's positional parameters are known: sh -c 'exec \"$@\"' _ cmd…",
			tweak: cmd([]string{"sh", "-c", `exec "$@"`, "_"}, "/usr/sbin/reboot", "-f"),
			want:  []string{blockedRow("command[2]", `exec "$@"`, "reboot")},
		},
		{
			name:  "twice in one element: once; in two elements: twice",
			tweak: cmd([]string{"sh", "-c", "reboot; reboot; bash -c reboot"}),
			want:  scriptBlocked("reboot; reboot; bash -c reboot", "reboot"),
		},
		{
			name:   "a policy's own list",
			policy: `commands: {blocked: ["curl", "kubectl delete"]}`,
			tweak:  sh("curl -s http://x -o /tmp/x; kubectl   delete ns prod; kubectl get pods; reboot"),
			want:   scriptBlocked("curl -s http://x -o /tmp/x; kubectl   delete ns prod; kubectl get pods; reboot", "curl", "kubectl delete"),
			msgs: []string{
				`[commands] blocked command "curl" in the container's command line: "curl -s http://x -o /tmp/x" (found "curl -s http://x -o /tmp/x; kubectl   delete ns prod; kubectl get pods; reboot"; allowed: commands without "curl")`,
				`[commands] blocked command "kubectl delete" in the container's command line: "kubectl   delete ns prod" (found "curl -s http://x -o /tmp/x; kubectl   delete ns prod; kubectl get pods; reboot"; allowed: commands without "kubectl delete")`,
			},
		},
		{name: "an empty policy list judges nothing, not even unreadable scripts", policy: `commands: {}`, tweak: sh("reboot; $CMD; echo ( ")},
		{
			name:  "a run-time value that may be the blocked operand",
			tweak: sh(`rm -rf "$DIR"`),
			want:  scriptBlocked(`rm -rf "$DIR"`, "rm -rf /", "rm -rf /*"),
			msgs: []string{
				`[commands] blocked command "rm -rf /" in the container's command line: "rm -rf \"$DIR\"" may be it (an argument is only known at run time) (found "rm -rf \"$DIR\""; allowed: commands without "rm -rf /")`,
				`[commands] blocked command "rm -rf /*" in the container's command line: "rm -rf \"$DIR\"" may be it (an argument is only known at run time) (found "rm -rf \"$DIR\""; allowed: commands without "rm -rf /*")`,
			},
		},
		{
			name:  "an executable only known at run time",
			tweak: sh("$CMD --serve"),
			want:  []string{unreadableRow("command[2]", "$CMD --serve")},
			msgs: []string{`[commands] cannot judge "$CMD --serve": the executable is only known at run time; the policy lists commands, so what runs must be readable ` +
				`(found "$CMD --serve"; allowed: ` + unreadableAllowed + `)`},
		},
		{
			name:  "a script that does not parse",
			tweak: sh("echo ( reboot"),
			want:  []string{unreadableRow("command[2]", "echo ( reboot")},
			msgs: []string{`[commands] cannot judge "echo ( reboot": not a shell script agentgate can parse: 1:1: ` + "`foo(`" + ` must be followed by ` + "`)`" +
				`; the policy lists commands, so what runs must be readable (found "echo ( reboot"; allowed: ` + unreadableAllowed + `)`},
		},
	}
	cases = append(cases, kindCases("blocked", "", func(c *corev1.Container) { c.Command = []string{"/bin/sh", "-c", "iptables -F"} },
		func(path string) []string {
			return []string{path + `.command[2] | "iptables -F" | commands without "iptables"`}
		})...)

	// Allowed executables.
	const allowed = `commands: {allowed: [/bin/agent, python3, sh]}`
	const allowedList = `an executable in ["/bin/agent", "python3", "sh"]`
	notAllowed := func(field, element string) string { return c0 + field + " | " + quote(element) + " | " + allowedList }
	cases = append(cases,
		checkCase{name: "allowed executable", policy: allowed, allKinds: true},
		checkCase{name: "allowed by a standard PATH directory", policy: allowed, tweak: cmd([]string{"/usr/bin/python3", "-m", "agent"})},
		checkCase{name: "allowed: a shell and its script's commands, builtins and functions", policy: allowed,
			tweak: sh(`cd /work && f(){ echo "$1"; }; f hi; export X=1; exec python3 -m agent`)},
		checkCase{
			name: "not allowed", policy: allowed, tweak: cmd([]string{"bash", "-c", "true"}),
			want: []string{notAllowed("command[0]", "bash")},
			msgs: []string{`[commands] executable "bash" is not on the policy's list (found "bash"; allowed: ` + allowedList + `)`},
		},
		checkCase{
			name: "a listed path is not a basename", policy: allowed, tweak: cmd([]string{"agent"}),
			want: []string{notAllowed("command[0]", "agent")},
		},
		checkCase{
			name: "the image's entrypoint", policy: allowed, tweak: cmd(nil, "--serve"),
			want: []string{c0 + `command | unset (the image's entrypoint) | ` + allowedList},
			msgs: []string{`[commands] the policy lists the executables agents may start: write the command explicitly ` +
				`(found unset (the image's entrypoint); allowed: ` + allowedList + `)`},
		},
		checkCase{
			name: "not allowed and blocked", policy: `commands: {allowed: [/bin/agent], blocked: [reboot]}`, tweak: cmd([]string{"reboot"}),
			want: []string{
				c0 + `command[0] | "reboot" | an executable in ["/bin/agent"]`,
				c0 + `command[0] | "reboot" | commands without "reboot"`,
			},
		},
	)
	cases = append(cases, kindCases("entrypoint", allowed, func(c *corev1.Container) { c.Command = nil },
		func(path string) []string {
			return []string{path + `.command | unset (the image's entrypoint) | ` + allowedList}
		})...)
	runCheckCases(t, checkCommands, cases)
}

// TestCommandsBypasses: attempts to run a blocked or unlisted command past the default policy (or the named
// one), each with the exact verdict and field path. "admitted" rows must stay admitted.
func TestCommandsBypasses(t *testing.T) {
	sh := shTweak
	type row struct {
		name   string
		policy string
		tweak  func(*corev1.Pod)
		want   []string
	}
	s := func(script string, entries ...string) row {
		return row{name: script, tweak: sh(script), want: scriptBlocked(script, entries...)}
	}
	unread := func(script string) row {
		return row{name: script, tweak: sh(script), want: []string{unreadableRow("command[2]", script)}}
	}
	admitted := func(script string) row { return row{name: "admitted: " + script, tweak: sh(script)} }
	argv := func(name string, argv []string, want ...string) row {
		return row{name: name, tweak: cmdTweak(argv), want: want}
	}
	rows := []row{
		// The examples.
		s("echo hi; rm -rf /", "rm -rf /"),
		s("true&&reboot", "reboot"),
		s("rm -fr /", "rm -rf /"),
		s("rm -r -f /", "rm -rf /"),
		s("rm -rf --no-preserve-root /", "rm -rf /"),
		argv("an absolute path", []string{"/usr/sbin/reboot"}, blockedRow("command[0]", "/usr/sbin/reboot", "reboot")),
		s("halt", "halt"),
		s("poweroff -f", "poweroff"),
		// Flag spellings and operand forms.
		s("rm -R -f /", "rm -rf /"),
		s("rm --recursive --force /", "rm -rf /"),
		s("rm --rec --for /", "rm -rf /"),
		s("rm / -rf", "rm -rf /"),
		s("rm -rf -- /", "rm -rf /"),
		s("rm -rfv //", "rm -rf /"),
		s("rm -rf /.", "rm -rf /"),
		s("rm -rf /tmp/..", "rm -rf /"),
		s(`rm -rf "/"`, "rm -rf /"),
		s("rm -rf /*", "rm -rf /*"),
		s("rm -rf /?*", "rm -rf /*"),
		s("rm -rf /{tmp,}", "rm -rf /"),
		s("rm -rf .", "rm -rf /"), // the image's working directory may be /
		s("dd of=/x bs=1M if=/dev/zero", "dd if=/dev/zero"),
		s("dd if=//dev/./zero of=/dev/sda", "dd if=/dev/zero"),
		s("systemctl --force poweroff", "systemctl poweroff"),
		s("/sbin/init 0", "init 0"),
		s("telinit 6", "telinit 6"),
		s("mkfs.ext4 /dev/sda1", "mkfs*"),
		// Quoting and escapes.
		s("re''boot", "reboot"),
		s(`"re"boot`, "reboot"),
		s(`\reboot`, "reboot"),
		s(`$'\x72eboot'`, "reboot"),
		s("{reboot,echo}", "reboot"),
		// Shell structure.
		s("(reboot)", "reboot"),
		s("{ reboot; }", "reboot"),
		s("if true; then reboot; fi", "reboot"),
		s("for i in 1; do reboot; done", "reboot"),
		s("while :; do halt; done", "halt"),
		s("case x in x) reboot;; esac", "reboot"),
		s("f(){ reboot; }", "reboot"),
		s("echo $(reboot)", "reboot"),
		s("echo `reboot`", "reboot"),
		s("cat <(reboot)", "reboot"),
		s("! reboot", "reboot"),
		s("reboot &", "reboot"),
		s("coproc reboot", "reboot"),
		s("time reboot", "reboot"),
		s("X=1 reboot", "reboot"),
		s("echo ok | reboot", "reboot"),
		s("sh -c 'bash -c \"reboot\"'", "reboot"),
		s("sh <<EOF\nreboot\nEOF", "reboot"),
		s("bash <<< 'rm -fr /'", "rm -rf /"),
		s("eval reboot", "reboot"),
		s("eval 'rm -rf' /", "rm -rf /"),
		s("trap reboot EXIT", "reboot"),
		s("alias r=reboot", "reboot"),
		// Wrappers.
		s("exec reboot", "reboot"),
		s("exec -a x reboot", "reboot"),
		s("command reboot", "reboot"),
		s("env -i PATH=/x reboot", "reboot"),
		s("env -S 'rm -rf /'", "rm -rf /"),
		s("nice -n 5 reboot", "reboot"),
		s("nice -10 reboot", "reboot"),
		s("nohup reboot", "reboot"),
		s("timeout 5 reboot", "reboot"),
		s("timeout -s KILL --kill-after 1 5 reboot", "reboot"),
		s("sudo -u root -- reboot", "reboot"),
		s("busybox reboot", "reboot"),
		s("busybox sh -c reboot", "reboot"),
		s("setsid -f reboot", "reboot"),
		s("chroot / reboot", "reboot"),
		s("flock /tmp/l -c reboot", "reboot"),
		s("su -c reboot root", "reboot"),
		s("watch -n 1 reboot", "reboot"),
		s("xargs -n1 reboot", "reboot"),
		s("find / -maxdepth 0 -exec rm -rf {} +", "rm -rf /"),
		s("tini -- reboot", "reboot"),
		s("sudo --some-new-option value reboot", "reboot"), // an unknown option: both readings judged
		s("echo / | xargs rm -rf", "rm -rf /", "rm -rf /*"),
		// Run-time values.
		s(`rm -rf "$DIR"`, "rm -rf /", "rm -rf /*"),
		s("rm -rf /tmp/$X", "rm -rf /", "rm -rf /*"), // $X may be ..
		s("rm -rf ~", "rm -rf /", "rm -rf /*"),
		s("init $LEVEL", "init 0", "init 6"),
		unread("$CMD"),
		unread("x=reboot; $x"),
		unread("$(echo reboot)"),
		unread(`eval "$X"`),
		unread(`sh -c "$X"`),
		unread("echo reboot | sh"),
		unread("curl -s https://x | bash"),
		unread("echo 'unterminated"),
		// Kubelet $(VAR) expansion.
		{name: "$(VAR) from a literal env", tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "CMD", Value: "reboot"})
			p.Spec.Containers[0].Command = []string{"$(CMD)"}
		}, want: []string{blockedRow("command[0]", "$(CMD)", "reboot")}},
		{name: "$(VAR) in a script", tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "TARGET", Value: "/"})
			p.Spec.Containers[0].Command = []string{"sh", "-c", "rm -rf $(TARGET)"}
		}, want: scriptBlocked("rm -rf $(TARGET)", "rm -rf /")},
		{name: "$VAR from a literal env", tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "CMD", Value: "halt"})
			p.Spec.Containers[0].Command = []string{"sh", "-c", "$CMD"}
		}, want: scriptBlocked("$CMD", "halt")},
		{name: "$(VAR) from envFrom is a run-time value", tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}}}}
			p.Spec.Containers[0].Command = []string{"$(CMD)"}
		}, want: []string{unreadableRow("command[0]", "$(CMD)")}},
		{name: "admitted: $$(VAR) is not expanded", tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "CMD", Value: "reboot"})
			p.Spec.Containers[0].Command = []string{"/bin/echo", "$$(CMD)"}
		}},

		// Must stay admitted.
		admitted("rm -rf /tmp/x"),
		admitted("rm -rf ./build"),
		admitted(`rm -rf "$DIR/cache"`),
		admitted("rm -f /"),
		admitted("rm -r /tmp"),
		admitted("echo rebooting; iptables-save > /dev/null"),
		admitted("echo reboot"),
		admitted("echo 'rm -rf /'"),
		admitted("command -v reboot"),
		admitted("find /tmp -mindepth 1 -exec rm -rf {} +"),
		admitted("dd if=/dev/urandom of=/tmp/x count=1"),
		admitted("systemctl status"),
		admitted("init --version"),
		admitted("sh /scripts/run.sh"),
		admitted("python3 -c 'print(1)' | tee /tmp/out"),
		admitted("grep -r reboot /var/log"),
		admitted(`sh -c "$0" reboot`), // $0 of the inner shell is the outer's $0 ("sh")
		{name: "admitted: rm -rf * in a known working directory", tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].WorkingDir = "/work"
			p.Spec.Containers[0].Command = []string{"sh", "-c", "rm -rf *"}
		}},
		{name: "admitted: a non-shell's arguments are data", tweak: cmdTweak([]string{"/bin/agent"}, "--then", "shutdown -h now")},
	}

	// allowed: [python3] and its neighbours.
	const py = `commands: {allowed: [python3]}`
	const pyList = `an executable in ["python3"]`
	na := func(field, element string) string { return c0 + field + " | " + quote(element) + " | " + pyList }
	rows = append(rows,
		row{name: "admitted: bare python3", policy: py, tweak: cmdTweak([]string{"python3", "app.py"})},
		row{name: "admitted: /usr/bin/python3", policy: py, tweak: cmdTweak([]string{"/usr/bin/python3"})},
		row{name: "admitted: /usr/local/bin//python3", policy: py, tweak: cmdTweak([]string{"/usr/local/bin//python3"})},
		row{name: "/scratch/python3", policy: py, tweak: cmdTweak([]string{"/scratch/python3"}), want: []string{na("command[0]", "/scratch/python3")}},
		row{name: "./python3", policy: py, tweak: cmdTweak([]string{"./python3"}), want: []string{na("command[0]", "./python3")}},
		row{name: "/usr/bin/../../scratch/python3", policy: py, tweak: cmdTweak([]string{"/usr/bin/../../scratch/python3"}),
			want: []string{na("command[0]", "/usr/bin/../../scratch/python3")}},
		row{name: "PATH changed by the container", policy: py, tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "PATH", Value: "/scratch:/usr/bin"})
			p.Spec.Containers[0].Command = []string{"python3"}
		}, want: []string{na("command[0]", "python3")}},
		row{name: "a shell not listed, its script's command listed", policy: py, tweak: sh("python3 app.py"),
			want: []string{na("command[0]", "sh")}},
		row{name: "PATH changed by the script", policy: `commands: {allowed: [python3, sh]}`, tweak: sh("PATH=/scratch:$PATH python3"),
			want: []string{c0 + `command[2] | "PATH=/scratch:$PATH python3" | an executable in ["python3", "sh"]`}},
		row{name: "an unlisted command in a listed shell's script", policy: `commands: {allowed: [python3, sh]}`, tweak: sh("python3 app.py && /scratch/python3"),
			want: []string{c0 + `command[2] | "python3 app.py && /scratch/python3" | an executable in ["python3", "sh"]`}},
		row{name: "a wrapper is an executable too", policy: py, tweak: cmdTweak([]string{"nice", "python3"}),
			want: []string{na("command[0]", "nice")}},
		row{name: "an unlisted command behind a listed wrapper", policy: `commands: {allowed: [env, python3]}`, tweak: cmdTweak([]string{"env", "X=1", "/scratch/python3"}),
			want: []string{c0 + `command[2] | "/scratch/python3" | an executable in ["env", "python3"]`}},
		row{name: "a run-time executable under allowed", policy: `commands: {allowed: [sh]}`, tweak: sh("$PY app.py"),
			want: []string{unreadableRow("command[2]", "$PY app.py")}},
	)

	n := 0
	for _, r := range rows {
		if !strings.HasPrefix(r.name, "admitted") {
			n++
		}
	}
	if n < 40 {
		t.Errorf("%d bypass attempts, want at least 40", n)
	}
	cases := make([]checkCase, len(rows))
	for i, r := range rows {
		cases[i] = checkCase{name: r.name, policy: r.policy, tweak: r.tweak, want: r.want}
	}
	runCheckCases(t, checkCommands, cases)
}

func TestCommandsManyElements(t *testing.T) {
	// Long command lines are judged to the end, at the right element.
	p := Default()
	pod := validPod()
	args := make([]string, 200)
	for i := range args {
		args[i] = "echo hello world"
	}
	args[150] = "sleep 1; reboot"
	pod.Spec.Containers[0].Command = []string{"sh", "-c", "for s; do sh -c \"$s\"; done", "_"}
	pod.Spec.Containers[0].Args = args
	// The loop's "$s" is a run-time value: the nested shell's script cannot be read.
	vs := runCheck(t, p, checkCommands, pod)
	if len(vs) != 1 || vs[0].Field != "spec.containers[0].command[2]" {
		t.Errorf("got %v", vs)
	}
	pod.Spec.Containers[0].Command = []string{"/bin/busybox", "sh", "-c"}
	pod.Spec.Containers[0].Args = []string{strings.Repeat("echo hello; ", 500) + "reboot"}
	vs = runCheck(t, p, checkCommands, pod)
	if len(vs) != 1 || vs[0].Field != "spec.containers[0].args[0]" {
		t.Errorf("got %v", vs)
	}
}

func TestCommandsNestingIsBounded(t *testing.T) {
	script := "reboot"
	for range 20 {
		script = "sh -c " + quote(script)
	}
	fs := Default().judgeCommandLine([]string{"sh", "-c", script}, nil)
	if len(fs) != 1 || fs[0].Kind != findingUnreadable || !strings.Contains(fs[0].Reason, "nested more than") {
		t.Errorf("got %+v", fs)
	}
}

// judgeCommandLine serves callers with only an argv (kubectl exec): nothing known about the container.
func TestJudgeCommandLineWithoutContainer(t *testing.T) {
	p := Default()
	for _, tc := range []struct {
		argv []string
		want string // kind:entry@arg, "" for none
	}{
		{[]string{"ls", "-l"}, ""},
		{[]string{"reboot"}, "1:reboot@0"},
		{[]string{"env", "FOO=1", "rm", "-fr", "/"}, "1:rm -rf /@2"},
		{[]string{"bash", "-lc", "ls; halt"}, "1:halt@2"},
		{[]string{"sh", "-c", "$HOME/bin/x"}, ""}, // the basename is literal
		{[]string{"sh", "-c", "$X"}, "3:@2"},
	} {
		fs := p.judgeCommandLine(tc.argv, nil)
		got := ""
		for _, f := range fs {
			got += strings.Join([]string{string('0' + rune(f.Kind)), f.Entry}, ":") + "@" + string('0'+rune(f.Arg))
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.argv, got, tc.want)
		}
	}
}

func TestCompileBlockedEntries(t *testing.T) {
	for _, tc := range []struct {
		entry, exe string
		flags      []string
		operands   []string
		forkBomb   bool
	}{
		{"rm -rf /", "rm", []string{"=recursive", "=force"}, []string{"/"}, false},
		{"rm -fr //", "rm", []string{"=force", "=recursive"}, []string{"/"}, false},
		{"/usr/sbin/reboot", "reboot", nil, nil, false},
		{"dd if=/dev//zero", "dd", nil, []string{"if=/dev/zero"}, false},
		{"curl --output=/etc/x", "curl", []string{"=output=/etc/x"}, nil, false},
		{"mkfs*", "mkfs*", nil, nil, false},
		{"tool -ab --long x", "tool", []string{"-a", "-b", "--long"}, []string{"x"}, false},
		{":(){ :|:& };:", "", nil, nil, true},
		{"bomb() { bomb | bomb & }", "", nil, nil, true},
	} {
		e, fb, err := compileBlockedEntry(tc.entry)
		if err != nil {
			t.Errorf("%q: %v", tc.entry, err)
			continue
		}
		var flags []string
		for _, f := range e.flags {
			s := f.name
			if f.hasValue {
				s += "=" + f.value
			}
			flags = append(flags, s)
		}
		if fb != tc.forkBomb || e.exe != tc.exe || strings.Join(flags, " ") != strings.Join(tc.flags, " ") ||
			strings.Join(e.operands, " ") != strings.Join(tc.operands, " ") {
			t.Errorf("%q: exe %q flags %q operands %q forkBomb %v", tc.entry, e.exe, flags, e.operands, fb)
		}
	}
}

func TestNormPath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "//": "/", "/.": "/", "/tmp/..": "/", "/*": "/*", "/?*": "/*", "/[a-z]*": "/*", "/tmp/*": "/tmp/*",
		"/tmp/x": "/tmp/x", "/?": "/?", "/a*b": "/a*b",
	} {
		if got := normPath(in); got != want {
			t.Errorf("normPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMayEqual(t *testing.T) {
	m := runTimeMark
	for _, tc := range []struct {
		w, r string
		want bool
	}{
		{m, "/", true},
		{"/tmp/" + m, "/", true},
		{m + "/cache", "/", false},
		{m + "/..", "/", true},
		{m + "/", "/", true},
		{m + "/x", "/*", false},
		{m + "/*", "/*", true},
		{"if=" + m, "if=/dev/zero", true},
		{"of=" + m, "if=/dev/zero", false},
		{"re" + m, "reboot", true},
		{"x" + m, "reboot", false},
	} {
		if got := mayEqual(tc.w, tc.r); got != tc.want {
			t.Errorf("mayEqual(%q, %q) = %v", tc.w, tc.r, got)
		}
	}
}
