package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
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
