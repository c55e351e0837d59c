package policy

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"

	corev1 "k8s.io/api/core/v1"
)

// envSecrets: a secret written into a manifest is readable by anyone who can read the workload, and lands in
// etcd, audit logs and Git unencrypted.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].env[*].value
//	spec.{initContainers,containers,ephemeralContainers}[*].command[*]
//	spec.{initContainers,containers,ephemeralContainers}[*].args[*]
//
// Allowed values: no literal secret. Judged when the policy's env.denyLiteralSecrets is true (the default).
// A value made only of a reference ($(VAR), ${VAR}, $VAR) is not literal: that is how a Secret reaches a
// command line. envFrom is not judged: its values are not in the manifest. A violation says what kind of
// secret and where, and the length of the value, never the value.
//
//   - env[*].value, for a secret-like name: "" or unset (use valueFrom.secretKeyRef). A name is split into
//     words (at _ - . and lower-to-upper case changes) and is secret-like when a word is PASSWORD, PASSWD,
//     PASS, PWD (not the lone PWD, the working directory), PASSPHRASE, PASSCODE, SECRET(S), TOKEN(S), APIKEY,
//     PRIVATEKEY, CREDENTIAL(S), CRED(S), BEARER, AUTH, AUTHORIZATION; when a word ends with PASSWORD, PASSWD,
//     PASSPHRASE, TOKEN, SECRET, APIKEY, PRIVATEKEY or CREDENTIALS (MYAPIKEY); when KEY follows API, PRIVATE,
//     ACCESS, SECRET, SIGNING, ENCRYPTION, CLIENT or MASTER; or when KEY is the last of several words
//     (SIGNING_KEY). Not when the last of several words names something about the secret rather than the
//     secret: FILE, PATH, DIR, URL, ENDPOINT, HOST, PORT, ID, NAME, TYPE, MODE, ENABLED, LENGTH, TTL, … (see
//     harmlessLastWords: TOKEN_PATH, PASSWORD_FILE, KEY_ID, AUTH_URL), or when it starts with NO, SKIP,
//     DISABLE, ENABLE, USE, REQUIRE (a switch). AUTH alone is a mode more often than a secret, and SECRET after
//     CERT, TLS, CA, PULL, IMAGE, REGISTRY, … names a Kubernetes Secret: their value counts only when it is not
//     one lowercase word or object name (AUTH=basic and --cert-secret agentgate-tls pass, AUTH=user:pass does not).
//   - any env value, command or args element, whatever the name: no URL with a password in its user info
//     (postgres://u:p@h/db), no Authorization header with a credential, no PEM private key, no token in a
//     well-known format (ghp_…, glpat-…, xoxb-…, sk_live_…), no key=value pair whose key is secret-like
//     (--password=…, password=… in a libpq or ODBC connection string, ?token=… in a URL).
//   - command and args, read as command lines (shell scripts and wrappers as the commands check reads
//     them): no secret-like flag followed by a literal value (--token abc), and no password in the flags that
//     take one: mysql -pX, sshpass -p X, redis-cli -a X, docker/podman/helm login -p X, mongo -p X,
//     ldapsearch -w X, curl -u user:X, curl -H "X-Api-Key: X", smbclient -U user%X.
var checkEnvSecrets = check{id: "envSecrets", run: func(p *Policy, pod *podView, r *report) {
	if !*p.Spec.Env.DenyLiteralSecrets {
		return
	}
	for _, ca := range pod.containers {
		for j := range ca.c.Env {
			e := &ca.c.Env[j]
			if e.Value == "" {
				continue
			}
			if kind := valueSecret(e.Value); kind != "" {
				r.add("envSecrets", pod.path(ca).Child("env").Index(j).Child("value"),
					kind+" ("+runes(e.Value)+" characters)", "unset: valueFrom.secretKeyRef",
					"environment variable "+e.Name+" holds a secret: keep it in a Secret and reference it with valueFrom.secretKeyRef")
				continue
			}
			if secret, weak := secretLikeName(e.Name); secret && isLiteralSecret(e.Value, weak) {
				r.add("envSecrets", pod.path(ca).Child("env").Index(j).Child("value"),
					"literal value ("+runes(e.Value)+" characters)",
					"unset: valueFrom.secretKeyRef",
					"environment variable "+e.Name+" looks like a secret: keep it in a Secret and reference it with valueFrom.secretKeyRef")
			}
		}
		judgeCommandLineSecrets(pod, ca, r)
	}
}}

func runes(s string) string { return strconv.Itoa(utf8.RuneCountInString(s)) }

const argSecretAllowed = "no literal secret: pass it as $(VAR) from an env var with valueFrom.secretKeyRef, or in a mounted file"

// judgeCommandLineSecrets reports at most one secret per command or args element.
func judgeCommandLineSecrets(pod *podView, ca containerAt, r *report) {
	c := ca.c
	n := len(c.Command) + len(c.Args)
	if n == 0 {
		return
	}
	var reported uint64 // elements already reported, for the first 64
	report := func(i int, kind, secret string) {
		if i < 64 {
			if reported&(1<<i) != 0 {
				return
			}
			reported |= 1 << i
		}
		name, idx := "command", i
		if i >= len(c.Command) {
			name, idx = "args", i-len(c.Command)
		}
		r.add("envSecrets", pod.path(ca).Child(name).Index(idx), kind+" ("+runes(secret)+" characters)", argSecretAllowed,
			"the command line holds a secret: keep it in a Secret and pass it through an environment variable or a mounted file")
	}
	base, _ := executableBase(firstOf(c.Command, c.Args))
	_, pf := passwordFlags[base]
	needFlags := pf || loginCommands[base] || shellNames[base] || wrappers[base] != nil || base == "busybox" ||
		base == "curl" || base == "wget" || base == "smbclient"
	for i := range n {
		e := argvAt(c, i)
		if kind, secret := textSecret(e); kind != "" {
			report(i, kind, secret)
		}
		if i > 0 && i+1 < n && strings.HasPrefix(e, "--") && !strings.Contains(e, "=") {
			needFlags = true // a flag whose value may be the next word
		}
	}
	if !needFlags {
		return
	}
	for _, f := range flagSecretsOf(c, n) {
		report(f.arg, f.kind, f.secret)
	}
}

func argvAt(c *corev1.Container, i int) string {
	if i < len(c.Command) {
		return c.Command[i]
	}
	return c.Args[i-len(c.Command)]
}

type argSecret struct {
	arg          int
	kind, secret string
}

// flagSecretsOf runs flagSecrets over every simple command of the container's command line, shells' scripts
// and wrappers' commands read as the commands check reads them.
func flagSecretsOf(c *corev1.Container, n int) []argSecret {
	argv := make([]string, n)
	for i := range n {
		argv[i] = argvAt(c, i)
	}
	var out []argSecret
	j := commandJudge{rules: noCommandRules, container: c, visit: func(sc simpleCommand) {
		flagSecrets(sc.fields, func(k int, kind, secret string) { out = append(out, argSecret{sc.elemOf(k), kind, secret}) })
	}}
	j.simple(simpleCommand{fields: argv, identity: true})
	return out
}

var noCommandRules = newCommandRules()

// textSecret finds a secret anywhere in a text (an env value, a command-line element, a script): what kind,
// and the secret itself (for its length only).
func textSecret(s string) (kind, secret string) {
	if strings.IndexByte(s, ':') >= 0 {
		if u := urlPassword(s); u != "" {
			return "a URL with a password in its user info", u
		}
		if h := authorizationCredential(s); h != "" {
			return "an Authorization header with a literal credential", h
		}
	}
	if k := pemPrivateKey(s); k != "" {
		return "a PEM private key", k
	}
	if p := knownToken(s); p != "" {
		return "a token in a known format (" + p + "…)", s
	}
	if t := jsonWebToken(s); t != "" {
		return "a JSON Web Token (a service-account token is one)", t
	}
	if strings.IndexByte(s, '=') >= 0 {
		if key, v := secretPair(s); v != "" {
			return "a literal value for " + quote(key), v
		}
	}
	return "", ""
}

// valueSecret is textSecret's kind for an env value.
func valueSecret(v string) string {
	kind, _ := textSecret(v)
	return kind
}

// urlPassword returns the password of the first scheme://user:password@host in s.
func urlPassword(s string) string {
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			return ""
		}
		rest := s[i+3:]
		end := indexAnyByte(rest, urlAuthorityEnd)
		if end < 0 {
			end = len(rest)
		}
		authority := rest[:end]
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(authority[:at], ":"); ok && pw != "" && !isReference(pw) {
				return pw
			}
		}
		s = rest
	}
}

func authorizationCredential(s string) string {
	i := indexFold(s, "authorization:")
	if i < 0 {
		return ""
	}
	v := strings.TrimLeft(s[i+len("authorization:"):], " \t")
	if scheme, cred, ok := strings.Cut(v, " "); ok && len(scheme) < 16 && !strings.ContainsAny(scheme, "\"'$") {
		v = strings.TrimLeft(cred, " \t")
	}
	if end := strings.IndexAny(v, " \t\n\"'"); end >= 0 {
		v = v[:end]
	}
	if v == "" || isReference(v) {
		return ""
	}
	return v
}

// pemPrivateKey: a value that starts as a PEM private key block (RSA, EC, OPENSSH, ENCRYPTED, PGP …).
func pemPrivateKey(s string) string {
	t := s
	for t != "" && (t[0] == ' ' || t[0] == '\t' || t[0] == '\r' || t[0] == '\n' || t[0] == '"' || t[0] == '\'') {
		t = t[1:]
	}
	if strings.HasPrefix(t, "-----BEGIN ") && strings.Contains(t[:min(len(t), 64)], "PRIVATE KEY") {
		return t
	}
	return ""
}

// knownTokenPrefixes: formats whose prefix says "this is a credential", long enough not to be a word.
var knownTokenPrefixes = []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-", "xapp-",
	"sk_live_", "rk_live_", "sk-ant-", "npm_", "hf_"}

func knownToken(s string) string {
	if len(s) < 20 {
		return ""
	}
	switch s[0] { // the first letters of knownTokenPrefixes: most values stop here
	case 'g', 'x', 's', 'r', 'n', 'h':
	default:
		return ""
	}
	for _, p := range knownTokenPrefixes {
		if strings.HasPrefix(s, p) && !strings.ContainsAny(s, " \t\n") {
			return p
		}
	}
	return ""
}

// jsonWebToken finds a signed JWT in s: three base64url segments, the first a JSON header naming its "alg".
// Kubernetes service-account tokens (kubectl create token, a token Secret's data) are such tokens: pasted into
// a value, they hand tasks an identity whatever automountServiceAccountToken says.
func jsonWebToken(s string) string {
	// Every JWT header starts with `{"`, base64url "eyJ". Anchored on the rare 'J' rather than 'e': scripts are
	// long and full of e's, and this runs on every value and command-line element.
	for off := 0; ; {
		j := strings.IndexByte(s[off:], 'J')
		if j < 0 {
			return ""
		}
		start := off + j - 2
		off += j + 1
		if start < 0 || s[start] != 'e' || s[start+1] != 'y' {
			continue
		}
		end := start
		for end < len(s) && (isBase64URL(s[end]) || s[end] == '.') {
			end++
		}
		if t := s[start:end]; isJWT(t) {
			return t
		}
	}
}

func isJWT(t string) bool {
	parts := strings.Split(t, ".")
	if len(parts) != 3 || len(parts[0]) < 10 || len(parts[1]) == 0 || len(parts[2]) < 16 {
		return false
	}
	header, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(header, &h) == nil && h.Alg != ""
}

func isBase64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '='
}

// secretPair finds key=value in s (separated by space, ;, &, ?, or at the start) whose key is secret-like
// and whose value is literal.
func secretPair(s string) (key, value string) {
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return "", ""
		}
		start := lastIndexAnyByte(s[:eq], pairStart) + 1
		k := strings.TrimLeft(s[start:eq], "-")
		rest := s[eq+1:]
		end := indexAnyByte(rest, pairEnd)
		if end < 0 {
			end = len(rest)
		}
		v := strings.Trim(rest[:end], `"'`)
		if secret, weak := secretLikeName(k); secret && isLiteralSecret(v, weak) && !looksLikePath(v) {
			return s[start:eq], v
		}
		s = rest
	}
	return "", ""
}

// byteSet replaces strings.IndexAny's per-call set for the few fixed sets used on every env value.
type byteSet [256]bool

func newByteSet(chars string) *byteSet {
	var b byteSet
	for i := 0; i < len(chars); i++ {
		b[chars[i]] = true
	}
	return &b
}

var (
	urlAuthorityEnd = newByteSet("/?# \t\n\"'")
	pairStart       = newByteSet(" \t\n;&?,")
	pairEnd         = newByteSet(" \t\n;&,")
)

func indexAnyByte(s string, set *byteSet) int {
	for i := 0; i < len(s); i++ {
		if set[s[i]] {
			return i
		}
	}
	return -1
}

func lastIndexAnyByte(s string, set *byteSet) int {
	for i := len(s) - 1; i >= 0; i-- {
		if set[s[i]] {
			return i
		}
	}
	return -1
}

func looksLikePath(v string) bool {
	return strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./") || strings.HasPrefix(v, "~/") || strings.HasPrefix(v, "@")
}

// isReference: a value that starts with a $(VAR), ${VAR} or $VAR reference (quotes around it allowed), or
// that the shell only knows at run time: not a literal.
func isReference(v string) bool {
	return strings.HasPrefix(strings.TrimLeft(v, `"'`), "$") || strings.Contains(v, runTimeMark)
}

// isLiteralSecret: a value that is a secret when its name says so. Booleans and references are not; a weak
// name (AUTH alone) needs more than one plain word.
func isLiteralSecret(v string, weak bool) bool {
	t := strings.TrimSpace(v)
	if t == "" || isReference(t) {
		return false
	}
	switch strings.ToLower(t) {
	case "true", "false", "yes", "no", "none", "null", "on", "off", "enabled", "disabled":
		return false
	}
	if weak { // one lowercase word or object name ("basic", "agentgate-tls") is a mode or a name
		for i := 0; i < len(t); i++ {
			if c := t[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				return true
			}
		}
		return false
	}
	return true
}

// Name words. Compared in any case.
var (
	harmlessLastWords = set(`FILE FILES PATH DIR DIRECTORY URL URI ENDPOINT HOST HOSTNAME PORT ID IDS NAME NAMES TYPE MODE
		METHOD ENABLED DISABLED ENABLE DISABLE REQUIRED LENGTH LEN SIZE TTL EXPIRY EXPIRES EXPIRATION TIMEOUT FORMAT
		VERSION PROVIDER DOMAIN REALM ISSUER AUDIENCE SCOPE SCOPES REF NAMESPACE LOCATION MOUNT STDIN PROMPT HEADER
		KIND ALGORITHM ALG ROTATION INTERVAL COUNT LIMIT PREFIX SUFFIX FIELD KEYRING`)
	switchFirstWords = set("NO SKIP DISABLE ENABLE USE REQUIRE ASK")
	keyQualifiers    = set("API PRIVATE ACCESS SECRET SIGNING ENCRYPTION CLIENT MASTER")
	// secretObjects: SECRET after these names a Kubernetes Secret (--cert-secret agentgate-tls), not a secret.
	secretObjects  = set("CERT CERTS TLS SSL CA PULL IMAGE REGISTRY WEBHOOK KUBE K8S KUBERNETES")
	secretSuffixes = []string{"PASSWORD", "PASSWD", "PASSPHRASE", "TOKEN", "SECRET", "APIKEY", "PRIVATEKEY", "CREDENTIALS"}
)

type wordClass uint8

const (
	wordPlain wordClass = iota
	wordSecret
	wordAuth
	wordKey
	wordPWD
)

// classify sorts one name word without allocating: most words of most names are plain, decided by length
// and one comparison.
func classify(w string) wordClass {
	is := func(words ...string) bool {
		for _, x := range words {
			if strings.EqualFold(w, x) {
				return true
			}
		}
		return false
	}
	switch len(w) {
	case 3:
		switch {
		case is("KEY"):
			return wordKey
		case is("PWD"):
			return wordPWD
		}
	case 4:
		switch {
		case is("PASS", "CRED"):
			return wordSecret
		case is("AUTH"):
			return wordAuth
		}
	case 5:
		if is("TOKEN", "CREDS") {
			return wordSecret
		}
	case 6:
		if is("SECRET", "PASSWD", "TOKENS", "BEARER", "APIKEY") {
			return wordSecret
		}
	case 7:
		if is("SECRETS") {
			return wordSecret
		}
	case 8:
		if is("PASSWORD", "PASSCODE") {
			return wordSecret
		}
	case 10:
		if is("PASSPHRASE", "PRIVATEKEY", "CREDENTIAL") {
			return wordSecret
		}
	case 11:
		if is("CREDENTIALS") {
			return wordSecret
		}
	case 13:
		if is("AUTHORIZATION") {
			return wordSecret
		}
	}
	if len(w) > 5 {
		for _, suf := range secretSuffixes {
			if len(w) > len(suf) && w[len(w)-1]|0x20 == suf[len(suf)-1]|0x20 && strings.EqualFold(w[len(w)-len(suf):], suf) {
				return wordSecret // glued: MYAPIKEY, DBPASSWORD
			}
		}
	}
	return wordPlain
}

// secretLikeName reports whether a variable or flag name names a secret (see the check's head comment); weak
// when only AUTH says so.
func secretLikeName(name string) (secret, weak bool) {
	if !mayNameSecret(name) {
		return false, false
	}
	var buf [16]string
	words := nameWords(name, buf[:0])
	n := len(words)
	secret, auth := false, false
	for i, w := range words {
		switch classify(w) {
		case wordSecret:
			if i > 0 && inSetFold(secretObjects, words[i-1]) && (strings.EqualFold(w, "SECRET") || strings.EqualFold(w, "SECRETS")) {
				auth = true // weak: a value shaped like an object name names the Secret
				continue
			}
			secret = true
		case wordPWD:
			secret = secret || n > 1
		case wordAuth:
			auth = true
		case wordKey:
			secret = secret || n > 1 && (i == n-1 || i > 0 && inSetFold(keyQualifiers, words[i-1]))
		}
	}
	if !secret && !auth {
		return false, false
	}
	if n > 1 && (inSetFold(harmlessLastWords, words[n-1]) || inSetFold(switchFirstWords, words[0])) {
		return false, false
	}
	return true, !secret
}

// mayNameSecret is secretLikeName's fast rejection, one pass over the name: every secret word contains PASS,
// PWD, SECRET, TOKEN, KEY, CRED, BEARER or AUTH.
func mayNameSecret(s string) bool {
	has := func(i int, upper string) bool {
		return i+len(upper) <= len(s) && strings.EqualFold(s[i:i+len(upper)], upper)
	}
	for i := 0; i < len(s); i++ {
		switch s[i] | 0x20 {
		case 'p':
			if has(i, "PASS") || has(i, "PWD") {
				return true
			}
		case 's':
			if has(i, "SECRET") {
				return true
			}
		case 't':
			if has(i, "TOKEN") {
				return true
			}
		case 'k':
			if has(i, "KEY") {
				return true
			}
		case 'c':
			if has(i, "CRED") {
				return true
			}
		case 'b':
			if has(i, "BEARER") {
				return true
			}
		case 'a':
			if has(i, "AUTH") {
				return true
			}
		}
	}
	return false
}

// nameWords splits at _ - . and at lower-to-upper case changes (dbPassword), without allocating.
func nameWords(s string, out []string) []string {
	start := 0
	for i := 0; i <= len(s); i++ {
		sep := i == len(s) || s[i] == '_' || s[i] == '-' || s[i] == '.'
		camel := !sep && i > start && s[i] >= 'A' && s[i] <= 'Z' && s[i-1] >= 'a' && s[i-1] <= 'z'
		if sep || camel {
			if i > start && len(out) < cap(out) {
				out = append(out, s[start:i])
			}
			start = i
			if sep {
				start = i + 1
			}
		}
	}
	return out
}

func inSetFold(m map[string]bool, w string) bool {
	if len(w) > 16 {
		return false
	}
	var b [16]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return m[string(b[:len(w)])]
}

func indexFold(s, lower string) int {
	for i := 0; i+len(lower) <= len(s); i++ {
		if s[i]|0x20 == lower[0] && strings.EqualFold(s[i:i+len(lower)], lower) {
			return i
		}
	}
	return -1
}

// passwordFlags: commands whose short flag takes a password (attached: mysql -pX; or also the next word).
var passwordFlags = map[string]struct {
	flag     byte
	nextWord bool
}{
	"mysql": {'p', false}, "mysqldump": {'p', false}, "mysqladmin": {'p', false}, "mariadb": {'p', false}, "mariadb-dump": {'p', false},
	"mysqlimport": {'p', false}, "mysqlcheck": {'p', false}, "mysqlshow": {'p', false},
	"sshpass": {'p', true}, "redis-cli": {'a', true}, "mongo": {'p', true}, "mongosh": {'p', true}, "mongodump": {'p', true},
	"mongorestore": {'p', true}, "mongoexport": {'p', true}, "mongoimport": {'p', true},
	"ldapsearch": {'w', true}, "ldapadd": {'w', true}, "ldapmodify": {'w', true}, "ldapdelete": {'w', true}, "ldapwhoami": {'w', true},
}

var loginCommands = set("docker podman nerdctl buildah skopeo helm oras crane regctl")

// flagSecrets judges one simple command's words: secret-like flags with a literal value in the next word,
// and the password flags of passwordFlags, curl and the registry clients' login.
func flagSecrets(argv []string, report func(k int, kind, secret string)) {
	if len(argv) == 0 {
		return
	}
	base := baseName(argv[0])
	pf, hasPF := passwordFlags[base]
	login := loginCommands[base] && len(argv) > 1 && slicesContains(argv[1:], "login")
	for k := 1; k < len(argv); k++ {
		w := argv[k]
		next := ""
		if k+1 < len(argv) {
			next = argv[k+1]
		}
		switch {
		case strings.HasPrefix(w, "--") && !strings.Contains(w, "="):
			if strings.HasPrefix(base, "mysql") || strings.HasPrefix(base, "mariadb") {
				continue // mysql --password prompts; the next word is a database
			}
			if secret, weak := secretLikeName(w[2:]); secret && next != "" && !strings.HasPrefix(next, "-") &&
				isLiteralSecret(next, weak) && !looksLikePath(next) {
				report(k+1, "a literal value for "+quote(w), next)
			}
			if (base == "curl" && (w == "--user" || w == "--proxy-user")) || ((base == "curl" || base == "wget") && w == "--header") {
				if kind, s := curlCredential(w, next); kind != "" {
					report(k+1, kind, s)
				}
			}
		case len(w) > 1 && w[0] == '-' && w[1] != '-':
			switch {
			case hasPF && w[1] == pf.flag:
				if len(w) > 2 && !isReference(w[2:]) {
					report(k, "a password in "+quote("-"+string(pf.flag))+" of "+base, w[2:])
				} else if len(w) == 2 && pf.nextWord && next != "" && !isReference(next) {
					report(k+1, "a password in "+quote("-"+string(pf.flag))+" of "+base, next)
				}
			case login && w == "-p" && next != "" && !isReference(next):
				report(k+1, "a password in \"-p\" of "+base+" login", next)
			case login && strings.HasPrefix(w, "-p") && len(w) > 2 && !isReference(w[2:]):
				report(k, "a password in \"-p\" of "+base+" login", w[2:])
			case base == "curl" && (w == "-u" || w == "-U" || w == "-H"):
				if kind, s := curlCredential(w, next); kind != "" {
					report(k+1, kind, s)
				}
			case base == "smbclient" && w == "-U":
				if _, pw, ok := strings.Cut(next, "%"); ok && pw != "" && !isReference(pw) {
					report(k+1, "a password in \"-U user%password\" of smbclient", pw)
				}
			}
		}
	}
}

func curlCredential(flag, v string) (kind, secret string) {
	switch flag {
	case "-u", "-U", "--user", "--proxy-user":
		if _, pw, ok := strings.Cut(v, ":"); ok && pw != "" && !isReference(pw) {
			return "a password in " + quote(flag) + " user:password", pw
		}
	case "-H", "--header":
		name, val, ok := strings.Cut(v, ":")
		val = strings.TrimSpace(val)
		if !ok || val == "" || isReference(val) {
			return "", ""
		}
		if strings.EqualFold(strings.TrimSpace(name), "authorization") {
			if cred := authorizationCredential(v); cred != "" && !isReference(cred) {
				return "an Authorization header with a literal credential", cred
			}
			return "", ""
		}
		if secret, weak := secretLikeName(strings.TrimSpace(name)); secret && isLiteralSecret(val, weak) {
			return "a header " + quote(strings.TrimSpace(name)) + " with a literal credential", val
		}
	}
	return "", ""
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

type Env struct {
	DenyLiteralSecrets *bool `json:"denyLiteralSecrets,omitempty"`
}
