package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCheckTokenSecrets(t *testing.T) {
	const (
		allowed    = "Secrets of other types"
		exemptMesh = `exempt: {containers: [{name: mesh, image: "docker.io/istio/proxyv2:*", checks: [images], serviceAccounts: [mesh/operator]}]}`
	)
	tokens := []string{"default-token-x7k2p", "innocent-name"}
	secretVolume := func(p *corev1.Pod, name, secret string, c *corev1.Container) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: "/var/run/" + name})
	}
	keyRef := func(secret string) corev1.EnvVar {
		return corev1.EnvVar{Name: "KUBE_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "token"}}}
	}
	withMesh := func(p *corev1.Pod) *corev1.Container {
		mesh := validContainer("mesh")
		mesh.Image = "docker.io/istio/proxyv2:1.24.0"
		p.Spec.Containers = append(p.Spec.Containers, mesh)
		return &p.Spec.Containers[len(p.Spec.Containers)-1]
	}
	found := func(name string) string { return "service-account token Secret " + quote(name) }
	runCheckCases(t, checkTokenSecrets, []checkCase{
		{name: "valid", tokenSecrets: tokens},
		{
			name: "a token Secret as a volume", tokenSecrets: tokens,
			tweak: func(p *corev1.Pod) { secretVolume(p, "t", "default-token-x7k2p", &p.Spec.Containers[0]) },
			want:  []string{"spec.volumes[1].secret.secretName | " + found("default-token-x7k2p") + " | " + allowed},
			msgs: []string{`[serviceAccountTokenSecrets] a service-account token Secret hands tasks that account's Kubernetes identity, and never expires: agent pods must not read one (found ` +
				found("default-token-x7k2p") + "; allowed: " + allowed + ")"},
		},
		{
			name: "a token Secret with an innocent name (the type decides, not the name)", tokenSecrets: tokens,
			tweak: func(p *corev1.Pod) { secretVolume(p, "db", "innocent-name", &p.Spec.Containers[0]) },
			want:  []string{"spec.volumes[1].secret.secretName | " + found("innocent-name") + " | " + allowed},
		},
		{
			name: "a Secret named like a token that is not one", tokenSecrets: tokens,
			tweak: func(p *corev1.Pod) { secretVolume(p, "db", "db-token-abcde", &p.Spec.Containers[0]) },
		},
		{
			name: "a token Secret as a projected source", tokenSecrets: tokens,
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "bundle", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "ca"}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "default-token-x7k2p"}}},
				}}}})
				p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "bundle", MountPath: "/b"})
			},
			want: []string{"spec.volumes[1].projected.sources[1].secret.name | " + found("default-token-x7k2p") + " | " + allowed},
		},
		{
			name: "a token Secret through env and envFrom, in every container kind", tokenSecrets: tokens, allKinds: true,
			tweak: func(p *corev1.Pod) {
				for _, k := range containerKinds {
					c := k.get(p)
					c.Env = append(c.Env, keyRef("default-token-x7k2p"))
					c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "innocent-name"}}}}
				}
			},
			want: []string{
				"spec.initContainers[0].env[1].valueFrom.secretKeyRef.name | " + found("default-token-x7k2p") + " | " + allowed,
				"spec.initContainers[0].envFrom[0].secretRef.name | " + found("innocent-name") + " | " + allowed,
				"spec.containers[0].env[1].valueFrom.secretKeyRef.name | " + found("default-token-x7k2p") + " | " + allowed,
				"spec.containers[0].envFrom[0].secretRef.name | " + found("innocent-name") + " | " + allowed,
				"spec.ephemeralContainers[0].env[1].valueFrom.secretKeyRef.name | " + found("default-token-x7k2p") + " | " + allowed,
				"spec.ephemeralContainers[0].envFrom[0].secretRef.name | " + found("innocent-name") + " | " + allowed,
			},
		},
		{
			name:  "Secrets unknown (offline): not judged",
			tweak: func(p *corev1.Pod) { secretVolume(p, "t", "default-token-x7k2p", &p.Spec.Containers[0]) },
		},
		{
			name: "a requester that may carry a token", tokenSecrets: tokens, policy: "serviceAccountToken: {allowServiceAccounts: [ops/operator]}",
			requester: Requester{Username: "system:serviceaccount:ops:operator"},
			tweak:     func(p *corev1.Pod) { secretVolume(p, "t", "default-token-x7k2p", &p.Spec.Containers[0]) },
		},
		{
			name: "a token Secret only an exempt container reads", tokenSecrets: tokens, policy: exemptMesh, requester: meshOperator,
			tweak: func(p *corev1.Pod) {
				mesh := withMesh(p)
				mesh.Env = append(mesh.Env, keyRef("default-token-x7k2p"))
			},
		},
		{
			name: "a token Secret only an exempt container reads, in a pod sharing its process namespace", tokenSecrets: tokens, policy: exemptMesh, requester: meshOperator,
			tweak: func(p *corev1.Pod) {
				p.Spec.ShareProcessNamespace = ptrTo(true)
				mesh := withMesh(p)
				mesh.Env = append(mesh.Env, keyRef("default-token-x7k2p"))
			},
			want: []string{"spec.containers[1].env[1].valueFrom.secretKeyRef.name | " + found("default-token-x7k2p") + " | " + allowed},
		},
		{
			name: "the same pod sent by a stranger: the mesh container is judged", tokenSecrets: tokens, policy: exemptMesh,
			requester: Requester{Username: "bob"},
			tweak: func(p *corev1.Pod) {
				mesh := withMesh(p)
				secretVolume(p, "t", "default-token-x7k2p", mesh)
			},
			want: []string{"spec.volumes[1].secret.secretName | " + found("default-token-x7k2p") + " | " + allowed},
		},
	})
}

// TestJudgeTokenSecret: a token Secret written into a selected namespace is refused, whatever its name, unless
// the policy lets the requester's pods carry a token or exempts the requester. The attempts kept here: a token
// Secret created after the pod that names it (only the Secret's own CREATE can be judged then), under a
// harmless name, in a namespace a podSelector-narrowed policy selects, by the pod author's own account.
func TestJudgeTokenSecret(t *testing.T) {
	tokenSecret := func(name, sa string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "agents", Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}
	}
	agents := Namespace{Name: "agents", Labels: map[string]string{"agentgate.io/agents": "true"}}
	author := Requester{Username: "system:serviceaccount:agents:default"}
	operator := Requester{Username: "system:serviceaccount:ops:operator"}
	cases := []struct {
		name           string
		policy         string
		secret         *corev1.Secret
		ns             Namespace
		rq             Requester
		wantViolations int
		wantMatched    bool
		wantExempt     bool
	}{
		{name: "a token Secret under a harmless name", secret: tokenSecret("db-credentials", "default"), ns: agents, rq: author, wantViolations: 1, wantMatched: true},
		{name: "with no service-account annotation", secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Type: corev1.SecretTypeServiceAccountToken}, ns: agents, rq: author, wantViolations: 1, wantMatched: true},
		{name: "a policy narrowed by podSelector still judges it (any pod may name it)", policy: "match: {podSelector: {matchLabels: {app: agent}}}",
			secret: tokenSecret("t", "default"), ns: agents, rq: author, wantViolations: 1, wantMatched: true},
		{name: "namespace labels unknown: the strict side", policy: "match: {namespaceSelector: {matchLabels: {team: a}}}",
			secret: tokenSecret("t", "default"), ns: Namespace{Name: "agents"}, rq: author, wantViolations: 1, wantMatched: true},
		{name: "a namespace the policy does not select", policy: "match: {namespaceSelector: {matchLabels: {team: a}}}",
			secret: tokenSecret("t", "default"), ns: agents, rq: author},
		{name: "an opaque Secret", secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Type: corev1.SecretTypeOpaque}, ns: agents, rq: author},
		{name: "a type the tokens controller does not fill (case differs)", secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Type: "Kubernetes.io/service-account-token"}, ns: agents, rq: author},
		{name: "a requester whose pods may carry a token", policy: "serviceAccountToken: {allowServiceAccounts: [ops/operator]}",
			secret: tokenSecret("t", "operator"), ns: agents, rq: operator, wantMatched: true},
		{name: "another requester under the same policy", policy: "serviceAccountToken: {allowServiceAccounts: [ops/operator]}",
			secret: tokenSecret("t", "operator"), ns: agents, rq: author, wantViolations: 1, wantMatched: true},
		{name: "a policy that lets every pod carry a token", policy: "serviceAccountToken: {automount: true}",
			secret: tokenSecret("t", "default"), ns: agents, rq: author, wantMatched: true},
		{name: "an exempt requester", policy: "exempt: {serviceAccounts: [ops/operator]}",
			secret: tokenSecret("t", "default"), ns: agents, rq: operator, wantExempt: true},
		{name: "an exempt namespace", policy: "exempt: {namespaces: [agents]}",
			secret: tokenSecret("t", "default"), ns: agents, rq: author, wantExempt: true},
		{name: "audit mode: logged, not refused", policy: "mode: audit", secret: tokenSecret("t", "default"), ns: agents, rq: author, wantViolations: 1, wantMatched: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := NewSet(testPolicy(t, c.policy)).JudgeTokenSecret(c.secret, c.ns, c.rq)
			if len(res.Violations) != c.wantViolations || (len(res.Matched) > 0) != c.wantMatched || (len(res.Exemptions) > 0) != c.wantExempt {
				t.Fatalf("violations %v, matched %v, exemptions %v", res.Violations, res.Matched, res.Exemptions)
			}
			for _, v := range res.Violations {
				if v.Check != "serviceAccountTokenSecrets" || v.Field != "type" || v.Allowed == "" || v.Found == "" {
					t.Errorf("violation %+v does not name its check, field, found and allowed", v)
				}
			}
			if wantAllowed := c.wantViolations == 0 || c.policy == "mode: audit"; res.Allowed() != wantAllowed {
				t.Errorf("allowed %v under %q", res.Allowed(), c.policy)
			}
		})
	}
}
