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
				"spec.containers[0].env[7].value | literal value (1 characters) | " + allowed,
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
	res := NewSet(Default()).Judge(w, Namespace{Name: "agents"})
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
