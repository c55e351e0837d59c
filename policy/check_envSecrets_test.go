package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckEnvSecrets(t *testing.T) {
	env := func(vars ...corev1.EnvVar) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, vars...) }
	}
	lit := func(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }
	const allowed = "unset: valueFrom.secretKeyRef"
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name: "secret-like names from a Secret",
			tweak: env(corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}),
		},
		{name: "secret-like name, empty value", tweak: env(lit("API_TOKEN", ""))},
		{name: "names that are not secret-like", tweak: env(lit("KEYBOARD", "us"), lit("MONKEY", "1"), lit("KEY_ID", "abc"), lit("PUBLIC_KEYRING", "x"))},
		{
			name:  "a literal password",
			tweak: env(lit("DB_PASSWORD", "hunter2")),
			want:  []string{"spec.containers[0].env[1].value | literal value (7 characters) | " + allowed},
			msgs: []string{"[envSecrets] environment variable DB_PASSWORD looks like a secret: keep it in a Secret and reference it with valueFrom.secretKeyRef " +
				"(found literal value (7 characters); allowed: " + allowed + ")"},
		},
		{
			name: "every pattern, in any case",
			tweak: env(lit("db_password", "x"), lit("Passwd", "x"), lit("GITHUB_TOKEN", "x"), lit("aws_secret_access_key", "x"),
				lit("MYAPIKEY", "x"), lit("api_key", "x"), lit("SSH_PRIVATE_KEY_FILE", "x"), lit("signing_key", "x"), lit("HOME", "/home/agent")),
			want: []string{
				"spec.containers[0].env[1].value | literal value (1 characters) | " + allowed,
				"spec.containers[0].env[2].value | literal value (1 characters) | " + allowed,
				"spec.containers[0].env[3].value | literal value (1 characters) | " + allowed,
				"spec.containers[0].env[4].value | literal value (1 characters) | " + allowed,
				"spec.containers[0].env[5].value | literal value (1 characters) | " + allowed,
				"spec.containers[0].env[6].value | literal value (1 characters) | " + allowed,
				// SSH_PRIVATE_KEY_FILE (env[7]) names a file: flagged before, a false positive.
				"spec.containers[0].env[8].value | literal value (1 characters) | " + allowed,
			},
		},
		{
			name:  "length in characters, not bytes",
			tweak: env(lit("ADMIN_PASSWORD", "pässwörd")),
			want:  []string{"spec.containers[0].env[1].value | literal value (8 characters) | " + allowed},
		},
		{name: "a policy that allows literals", policy: "env: {denyLiteralSecrets: false}", tweak: env(lit("DB_PASSWORD", "hunter2"))},
	}
	cases = append(cases, kindCases("literal token", "", func(c *corev1.Container) { c.Env = []corev1.EnvVar{lit("VAULT_TOKEN", "s.abcdef")} },
		func(path string) []string {
			return []string{path + ".env[0].value | literal value (8 characters) | " + allowed}
		})...)
	runCheckCases(t, checkEnvSecrets, cases)
}

// TestEnvSecretsBypasses: secrets written where the old name list did not look, each with its exact field
// path and what is said instead of the value. "admitted" rows must stay admitted.
func TestEnvSecretsBypasses(t *testing.T) {
	const envAllowed = "unset: valueFrom.secretKeyRef"
	env := func(name, value string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	named := func(name, value string) checkCase {
		return checkCase{name: name, tweak: env(name, value),
			want: []string{"spec.containers[0].env[1].value | literal value (" + runes(value) + " characters) | " + envAllowed}}
	}
	valued := func(name, value, kind string) checkCase {
		return checkCase{name: name + "=" + kind, tweak: env(name, value),
			want: []string{"spec.containers[0].env[1].value | " + kind + " (" + runes(value) + " characters) | " + envAllowed}}
	}
	argv := func(name string, command []string, field, kind, secret string) checkCase {
		return checkCase{name: name, tweak: cmdTweak(command),
			want: []string{"spec.containers[0]." + field + " | " + kind + " (" + runes(secret) + " characters) | " + argSecretAllowed}}
	}
	admitted := func(name string, tweak func(*corev1.Pod)) checkCase {
		return checkCase{name: "admitted: " + name, tweak: tweak}
	}
	// A service-account token's shape: header {"alg":"RS256","kid":"x"}, a payload, a signature.
	const saToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWdlbnRzOmRlZmF1bHQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
	const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
	cases := []checkCase{
		// The names.
		named("PRIVATEKEY", "abc"),
		named("DB_PASS", "hunter2"),
		named("PASSPHRASE", "open sesame"),
		named("CREDENTIALS", "u:p"),
		named("BEARER", "eyJhbGciOi"),
		named("GCP_CREDENTIALS", "{}"),
		named("DOCKER_CREDS", "x"),
		named("CLIENT_SECRET", "s3cr3t"),
		named("ACCESS_KEY", "AKIAxxxx"),
		named("API_KEY_VALUE", "k"),
		named("dbPassword", "hunter2"),
		named("MYSQL_ROOT_PWD", "root"),
		named("HTTP_AUTH", "user:pass"),
		named("x-api-key", "k"),
		// Values, whatever the name.
		valued("DATABASE_URL", "postgres://app:hunter2@db:5432/app", "a URL with a password in its user info"),
		valued("UPSTREAM", "https://u:tok@git.example.com/x.git", "a URL with a password in its user info"),
		valued("CONN", "Server=db;User Id=sa;Password=hunter2;", "a literal value for \"Password\""),
		valued("PGCONN", "host=db user=app password=hunter2", "a literal value for \"password\""),
		valued("HEADER_VALUE", "Authorization: Bearer abcdef", "an Authorization header with a literal credential"),
		valued("TLS", pem, "a PEM private key"),
		valued("GH", "ghp_0123456789abcdefghijklmnopqrstuvwxyz", "a token in a known format (ghp_…)"),
		valued("CONFIG", saToken, "a JSON Web Token (a service-account token is one)"),
		valued("KUBE", "Bearer "+saToken, "a JSON Web Token (a service-account token is one)"),
		argv("a JWT as an argument", []string{"/bin/agent", "--kube-token=" + saToken}, "command[1]", "a JSON Web Token (a service-account token is one)", saToken),
		argv("a JWT in a script", []string{"sh", "-c", "kubectl --token " + saToken + " get pods"}, "command[2]", "a JSON Web Token (a service-account token is one)", saToken),
		// Command lines.
		argv("--password=", []string{"/bin/agent", "--password=hunter2"}, "command[1]", "a literal value for \"--password\"", "hunter2"),
		argv("--token value", []string{"/bin/agent", "--token", "abc123", "--serve"}, "command[2]", "a literal value for \"--token\"", "abc123"),
		argv("a URL with credentials", []string{"git", "clone", "https://x:ghtok@github.com/o/r"}, "command[2]", "a URL with a password in its user info", "ghtok"),
		argv("mysql -p", []string{"mysql", "-uroot", "-phunter2", "app"}, "command[2]", "a password in \"-p\" of mysql", "hunter2"),
		argv("sshpass -p", []string{"sshpass", "-p", "hunter2", "ssh", "h"}, "command[2]", "a password in \"-p\" of sshpass", "hunter2"),
		argv("redis-cli -a", []string{"redis-cli", "-a", "hunter2", "ping"}, "command[2]", "a password in \"-a\" of redis-cli", "hunter2"),
		argv("docker login -p", []string{"docker", "login", "-u", "me", "-p", "hunter2", "r.example"}, "command[5]", "a password in \"-p\" of docker login", "hunter2"),
		argv("curl -u", []string{"curl", "-u", "me:hunter2", "https://x"}, "command[2]", "a password in \"-u\" user:password", "hunter2"),
		argv("curl -H Authorization", []string{"curl", "-H", "Authorization: Bearer abc.def", "https://x"}, "command[2]",
			"an Authorization header with a literal credential", "abc.def"),
		argv("curl -H X-Api-Key", []string{"curl", "--header", "X-Api-Key: k123", "https://x"}, "command[2]", "a header \"X-Api-Key\" with a literal credential", "k123"),
		argv("in a shell script", []string{"sh", "-c", "mysql -phunter2 app < /x.sql"}, "command[2]", "a password in \"-p\" of mysql", "hunter2"),
		argv("an export in a script", []string{"sh", "-c", "export DB_PASSWORD=hunter2; exec app"}, "command[2]", "a literal value for \"DB_PASSWORD\"", "hunter2"),
		argv("behind a wrapper", []string{"env", "X=1", "sshpass", "-phunter2", "ssh", "h"}, "command[3]", "a password in \"-p\" of sshpass", "hunter2"),
		argv("a query token", []string{"/bin/agent", "https://api.example.com/v1?token=abc123"}, "command[1]", "a literal value for \"token\"", "abc123"),

		// Must stay admitted.
		admitted("eyJ that is no token", env("GREETING", "eyJust.kidding.here")),
		admitted("a JWT-shaped word without a header", env("ID", "eyJzZWVk.c2VlZA.c2lnbmF0dXJlLXNpZ25hdHVyZQ")),
		admitted("TOKEN_PATH", env("TOKEN_PATH", "/var/run/secrets/token")),
		admitted("DB_PASSWORD_FILE", env("DB_PASSWORD_FILE", "/run/secrets/db")),
		admitted("KEY_ID", env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")),
		admitted("AUTH_URL", env("AUTH_URL", "https://login.example.com")),
		admitted("AUTH=basic", env("AUTH", "basic")),
		admitted("PWD", env("PWD", "/work")),
		admitted("PASSENGER_COUNT", env("PASSENGER_COUNT", "4")),
		admitted("AUTHOR", env("AUTHOR", "me")),
		admitted("TOKENIZER_MODEL", env("TOKENIZER_MODEL", "bert")),
		admitted("USE_TOKEN", env("USE_TOKEN", "true")),
		admitted("a reference", env("DB_PASSWORD", "$(PG_PASSWORD)")),
		admitted("a URL without a password", env("DATABASE_URL", "postgres://app@db:5432/app")),
		admitted("a URL with a referenced password", env("DATABASE_URL", "postgres://app:$(DB_PASSWORD)@db/app")),
		admitted("--password-file", cmdTweak([]string{"/bin/agent", "--password-file", "/run/secrets/pw"})),
		admitted("--token=$(TOKEN)", cmdTweak([]string{"/bin/agent", "--token=$(TOKEN)"})),
		admitted("mysql -p prompts", cmdTweak([]string{"mysql", "-p", "app"})),
		admitted("mysql --password then a database", cmdTweak([]string{"mysql", "--password", "app"})),
		admitted("curl -H Authorization from env", cmdTweak([]string{"sh", "-c", `curl -H "Authorization: Bearer $TOKEN" https://x`})),
		admitted("ps -p", cmdTweak([]string{"ps", "-p", "1"})),
		admitted("--cert-secret names a Secret", cmdTweak([]string{"/agentgate", "serve", "--cert-secret", "agentgate-tls"})),
		admitted("TLS_SECRET names a Secret", env("TLS_SECRET", "agentgate-tls")),
		argv("--cert-secret with a credential", []string{"/agentgate", "--cert-secret", "Xk9$2!pQ"}, "command[2]", "a literal value for \"--cert-secret\"", "Xk9$2!pQ"),
	}
	n := 0
	for _, c := range cases {
		if !strings.HasPrefix(c.name, "admitted") {
			n++
		}
	}
	if n < 15 {
		t.Errorf("%d bypass attempts, want at least 15", n)
	}
	runCheckCases(t, checkEnvSecrets, cases)
}

func TestCheckEnvSecretsNeverEchoesTheValue(t *testing.T) {
	const secret = "correct-horse-battery-staple"
	pod := validPodAllKinds()
	for _, k := range containerKinds {
		k.get(pod).Env = []corev1.EnvVar{{Name: "PASSWORD", Value: secret}, {Name: "X_API_KEY", Value: secret}}
	}
	w, err := NewWorkload(pod)
	if err != nil {
		t.Fatal(err)
	}
	res := NewSet(Default()).Judge(w, Namespace{Name: "agents"}, Requester{})
	n := 0
	for _, v := range res.Violations {
		if v.Check == "envSecrets" {
			n++
		}
		for _, s := range []string{v.Field, v.Found, v.Allowed, v.Message, v.FieldError().Error()} {
			if strings.Contains(s, secret) {
				t.Errorf("violation echoes the secret: %q", s)
			}
		}
	}
	if n != 6 {
		t.Errorf("%d envSecrets violations, want 6", n)
	}
}
