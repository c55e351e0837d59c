package policy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// envSecrets: a secret written into a manifest is readable by anyone who can read the workload, and lands in
// etcd, audit logs and Git unencrypted.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].env[*].value
//
// Allowed values: "" or unset (use valueFrom: secretKeyRef) for a variable whose name, in any case, contains
// PASSWORD, PASSWD, TOKEN, SECRET, APIKEY, API_KEY or PRIVATE_KEY, or ends with _KEY; anything for other names.
// Judged when the policy's env.denyLiteralSecrets is true (the default). envFrom is not judged: its values are
// not in the manifest. A violation never repeats the value, only its length.
var checkEnvSecrets = check{id: "envSecrets", run: func(p *Policy, pod *podView, r *report) {
	if !*p.Spec.Env.DenyLiteralSecrets {
		return
	}
	for _, ca := range pod.containers {
		for j := range ca.c.Env {
			e := &ca.c.Env[j]
			if e.Value == "" || !secretLikeName(e.Name) {
				continue
			}
			r.add("envSecrets", pod.path(ca).Child("env").Index(j).Child("value"),
				"literal value ("+strconv.Itoa(utf8.RuneCountInString(e.Value))+" characters)",
				"unset: valueFrom.secretKeyRef",
				"environment variable "+e.Name+" looks like a secret: keep it in a Secret and reference it with valueFrom.secretKeyRef")
		}
	}
}}

var secretNameParts = []string{"PASSWORD", "PASSWD", "TOKEN", "SECRET", "APIKEY", "API_KEY", "PRIVATE_KEY"}

// secretLikeName matches without allocating (no strings.ToUpper on the happy path).
func secretLikeName(name string) bool {
	for _, part := range secretNameParts {
		if containsFold(name, part) {
			return true
		}
	}
	return len(name) >= 4 && strings.EqualFold(name[len(name)-4:], "_KEY")
}

// containsFold reports whether upper, an ASCII upper-case word, occurs in s in any case.
func containsFold(s, upper string) bool {
	first := upper[0] | 0x20
	for i := 0; i+len(upper) <= len(s); i++ {
		// Cheap first-byte test (ASCII case folded) before the full comparison: env names are many, hits rare.
		if s[i]|0x20 == first && strings.EqualFold(s[i:i+len(upper)], upper) {
			return true
		}
	}
	return false
}
