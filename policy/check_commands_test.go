package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckCommands(t *testing.T) {
	cmd := func(command []string, args ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Containers[0].Command, p.Spec.Containers[0].Args = command, args }
	}
	sh := func(script string) func(*corev1.Pod) { return cmd([]string{"sh", "-c", script}) }
	const c0 = "spec.containers[0]."
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "rm -rf under /tmp is not rm -rf /", tweak: sh("rm -rf /tmp/x")},
		{name: "rm -rf of a relative path", tweak: sh("rm -rf ./build")},
		{name: "a word that contains a blocked one", tweak: sh("echo rebooting; iptables-save > /dev/null")},
		{name: "no command, no args", tweak: cmd(nil)},
		{
			name:  "a script",
			tweak: sh("rm -rf / ; reboot"),
			want: []string{
				c0 + `command[2] | "rm -rf / ; reboot" | commands without "rm -rf /"`,
				c0 + `command[2] | "rm -rf / ; reboot" | commands without "reboot"`,
			},
			msgs: []string{
				`[commands] blocked command "rm -rf /" in the container's command line (found "rm -rf / ; reboot"; allowed: commands without "rm -rf /")`,
				`[commands] blocked command "reboot" in the container's command line (found "rm -rf / ; reboot"; allowed: commands without "reboot")`,
			},
		},
		{
			name:  "a trailing separator, no space",
			tweak: sh("rm -rf /; echo done"),
			want:  []string{c0 + `command[2] | "rm -rf /; echo done" | commands without "rm -rf /"`},
		},
		{
			name:  "/* is its own entry, not /",
			tweak: sh("rm -rf /*"),
			want:  []string{c0 + `command[2] | "rm -rf /*" | commands without "rm -rf /*"`},
		},
		{
			name:  "a path basename counts",
			tweak: cmd([]string{"/sbin/reboot"}),
			want:  []string{c0 + `command[0] | "/sbin/reboot" | commands without "reboot"`},
		},
		{
			name:  "a path and doubled slashes",
			tweak: cmd([]string{"/bin/rm", "-rf", "//"}),
			want:  []string{c0 + `command[0] | "/bin/rm" | commands without "rm -rf /"`},
		},
		{
			name:  "across command and args: reported where the match starts",
			tweak: cmd([]string{"/bin/sh", "-c", "rm"}, "-rf", "/"),
			want:  []string{c0 + `command[2] | "rm" | commands without "rm -rf /"`},
		},
		{
			name:  "in args",
			tweak: cmd([]string{"/bin/agent"}, "--then", "shutdown -h now"),
			want:  []string{c0 + `args[1] | "shutdown -h now" | commands without "shutdown"`},
		},
		{
			name:  "quoted inside a script",
			tweak: sh(`bash -c "reboot"`),
			want:  []string{c0 + `command[2] | "bash -c \"reboot\"" | commands without "reboot"`},
		},
		{
			name:  "a fork bomb",
			tweak: sh(":(){ :|:& };:"),
			want:  []string{c0 + `command[2] | ":(){ :|:& };:" | commands without ":(){ :|:& };:"`},
		},
		{
			name:  "dd",
			tweak: sh("dd if=/dev/zero of=/dev/sda bs=1M"),
			want:  []string{c0 + `command[2] | "dd if=/dev/zero of=/dev/sda bs=1M" | commands without "dd if=/dev/zero"`},
		},
		{
			name:  "twice in one element: once; in two elements: twice",
			tweak: cmd([]string{"sh", "-c", "reboot; reboot"}, "reboot"),
			want: []string{
				c0 + `command[2] | "reboot; reboot" | commands without "reboot"`,
				c0 + `args[0] | "reboot" | commands without "reboot"`,
			},
		},
		{
			name: "a policy's own list", policy: `commands: {blocked: ["curl", "kubectl delete"]}`,
			tweak: sh("curl -s http://x | sh; kubectl   delete ns prod; reboot"),
			want: []string{
				c0 + `command[2] | "curl -s http://x | sh; kubectl   delete ns prod; reboot" | commands without "curl"`,
				c0 + `command[2] | "curl -s http://x | sh; kubectl   delete ns prod; reboot" | commands without "kubectl delete"`,
			},
		},
		{name: "an empty policy list", policy: `commands: {}`, tweak: sh("reboot")},
	}
	cases = append(cases, kindCases("blocked", "", func(c *corev1.Container) { c.Args = []string{"iptables -F"} },
		func(path string) []string {
			return []string{path + `.args[0] | "iptables -F" | commands without "iptables"`}
		})...)

	// Allowed executables.
	const allowed = `commands: {allowed: [/bin/agent, python3]}`
	const allowedList = `an executable in ["/bin/agent", "python3"]`
	cases = append(cases,
		checkCase{name: "allowed executable", policy: allowed, allKinds: true},
		checkCase{name: "allowed by basename", policy: allowed, tweak: cmd([]string{"/usr/bin/python3", "-m", "agent"})},
		checkCase{
			name: "not allowed", policy: allowed, tweak: cmd([]string{"bash", "-c", "true"}),
			want: []string{c0 + `command[0] | "bash" | ` + allowedList},
			msgs: []string{`[commands] executable "bash" is not on the policy's list (found "bash"; allowed: ` + allowedList + `)`},
		},
		checkCase{
			name: "a listed path is not a basename", policy: allowed, tweak: cmd([]string{"agent"}),
			want: []string{c0 + `command[0] | "agent" | ` + allowedList},
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

func TestCommandTokens(t *testing.T) {
	for _, tc := range []struct{ in, norm, base string }{
		{"reboot", "reboot", "reboot"},
		{"reboot;", "reboot", "reboot"},
		{"reboot&&", "reboot", "reboot"},
		{"reboot|", "reboot", "reboot"},
		{`"reboot"`, "reboot", "reboot"},
		{"';'", ";", ";"},
		{";", ";", ";"},
		{"&&", "&&", "&&"},
		{"/sbin/reboot", "/sbin/reboot", "reboot"},
		{"/", "/", "/"},
		{"//", "//", "/"},
		{"/tmp/", "/tmp/", "tmp"},
		{"/*", "/*", "*"},
	} {
		if got := normToken(tc.in); got != tc.norm {
			t.Errorf("normToken(%q) = %q, want %q", tc.in, got, tc.norm)
		}
		if got := baseName(normToken(tc.in)); got != tc.base {
			t.Errorf("baseName(%q) = %q, want %q", tc.norm, got, tc.base)
		}
	}
}

func TestCommandsManyTokens(t *testing.T) {
	// More tokens than the stack buffer holds still match, at the right element.
	p := Default()
	pod := validPod()
	args := make([]string, 200)
	for i := range args {
		args[i] = "echo hello world"
	}
	args[150] = "sleep 1; reboot"
	pod.Spec.Containers[0].Args = args
	vs := runCheck(t, p, checkCommands, pod)
	if len(vs) != 1 || vs[0].Field != "spec.containers[0].args[150]" {
		t.Errorf("got %v", vs)
	}
}
