package policy

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzCommandLine: judging any command line never panics, ends, and gives the same findings every time, each
// at an element of the argv. The secrets reader never panics on the same input either.
//
//	go test ./policy/ -run '^$' -fuzz FuzzCommandLine -fuzztime 1m
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"echo hi; rm -rf /", "true&&reboot", "rm -fr /", ":(){ :|:& };:", `sh -c 'exec "$@"' _ reboot`, "echo (",
		"find / -exec rm -rf {} +", "env -S 'rm -rf /'", "eval \"$X\"", "xargs -I{} sh -c {}", "sudo --x y reboot",
		"sh <<EOF\nreboot\nEOF", "${x:0:1}${y/#/z}$((1+$a))", "a=(1 2); ${a[@]}", "$'\\x72'eboot", "{a,b}{c,d}",
		"mysql -phunter2; curl -u a:b -H 'Authorization: Bearer x' https://u:p@h", "f(){ f|f& }", "`", "$(",
	} {
		f.Add(s, "sh")
	}
	policies := []*Policy{
		Default(),
		testPolicy(f, `commands: {blocked: ["rm -rf /", "kubectl delete", "curl -o /etc/x", "mkfs*"], allowed: [sh, python3, /bin/agent]}`),
	}
	f.Fuzz(func(t *testing.T, script, exe string) {
		argvs := [][]string{
			{exe, "-c", script},
			append([]string{exe}, strings.Fields(script)...),
			{"env", "-S", script},
		}
		for _, p := range policies {
			for _, argv := range argvs {
				a := p.judgeCommandLine(argv, nil)
				b := p.judgeCommandLine(argv, nil)
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("%q: not deterministic:\n%+v\n%+v", argv, a, b)
				}
				for _, fd := range a {
					if fd.Arg < 0 || fd.Arg >= len(argv) || fd.Kind < findingBlocked || fd.Kind > findingUnreadable {
						t.Fatalf("%q: finding %+v", argv, fd)
					}
				}
				flagSecrets(argv, func(k int, kind, secret string) {
					if k < 0 || k >= len(argv) || kind == "" {
						t.Fatalf("%q: secret at %d, kind %q", argv, k, kind)
					}
				})
			}
		}
		_, _ = textSecret(script)
		_, _ = secretLikeName(exe)
		_, _, _ = compileBlockedEntry(script)
	})
}
