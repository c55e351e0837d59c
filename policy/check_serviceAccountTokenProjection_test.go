package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckTokenProjection(t *testing.T) {
	const (
		allowed    = "projected sources other than serviceAccountToken and podCertificate"
		exemptMesh = `exempt: {containers: [{name: mesh, image: "docker.io/istio/proxyv2:*", checks: [images], serviceAccounts: [mesh/operator]}]}`
	)
	tokenVolume := func(name string, sources ...corev1.VolumeProjection) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}}}
	}
	token := func(path string) corev1.VolumeProjection {
		return corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: path, Audience: "vault"}}
	}
	cm := corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "ca"}}}
	mount := func(c *corev1.Container, volume string) {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volume, MountPath: "/var/run/" + volume})
	}
	withMesh := func(p *corev1.Pod) *corev1.Container {
		mesh := validContainer("mesh")
		mesh.Image = "docker.io/istio/proxyv2:1.24.0"
		p.Spec.Containers = append(p.Spec.Containers, mesh)
		return &p.Spec.Containers[len(p.Spec.Containers)-1]
	}
	runCheckCases(t, checkTokenProjection, []checkCase{
		{name: "valid"},
		{
			name: "projected without a token",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("ca", cm))
				mount(&p.Spec.Containers[0], "ca")
			},
		},
		{
			name: "a token source",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("token", cm, token("vault-token")))
				mount(&p.Spec.Containers[0], "token")
			},
			want: []string{`spec.volumes[1].projected.sources[1].serviceAccountToken | a serviceAccountToken source (path "vault-token") | ` + allowed},
			msgs: []string{`[serviceAccountTokenProjection] a projected token or pod certificate hands tasks the pod's identity and bypasses automountServiceAccountToken: false ` +
				`(found a serviceAccountToken source (path "vault-token"); allowed: ` + allowed + `)`},
		},
		{
			name: "two tokens, one volume not mounted at all",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("a", token("t1"), token("t2")), tokenVolume("unmounted", token("t3")))
				mount(&p.Spec.Containers[0], "a")
			},
			want: []string{
				`spec.volumes[1].projected.sources[0].serviceAccountToken | a serviceAccountToken source (path "t1") | ` + allowed,
				`spec.volumes[1].projected.sources[1].serviceAccountToken | a serviceAccountToken source (path "t2") | ` + allowed,
				`spec.volumes[2].projected.sources[0].serviceAccountToken | a serviceAccountToken source (path "t3") | ` + allowed,
			},
		},
		{
			name: "a token under a policy that automounts", policy: "serviceAccountToken: {automount: true}",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("token", token("token")))
				mount(&p.Spec.Containers[0], "token")
			},
		},
		{
			name: "a token only an exempt container mounts", policy: exemptMesh, requester: meshOperator,
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("istio-token", token("istio-token")))
				mount(withMesh(p), "istio-token")
			},
		},
		{
			name: "a token only the mesh container mounts, sent by someone the exemption does not name", policy: exemptMesh,
			requester: Requester{Username: "system:serviceaccount:agents:default"},
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("istio-token", token("istio-token")))
				mount(withMesh(p), "istio-token")
			},
			want: []string{`spec.volumes[1].projected.sources[0].serviceAccountToken | a serviceAccountToken source (path "istio-token") | ` + allowed},
		},
		{
			name: "a token only an exempt container mounts, in a pod sharing its process namespace", policy: exemptMesh, requester: meshOperator,
			tweak: func(p *corev1.Pod) {
				p.Spec.ShareProcessNamespace = ptrTo(true)
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("istio-token", token("istio-token")))
				mount(withMesh(p), "istio-token")
			},
			want: []string{`spec.volumes[1].projected.sources[0].serviceAccountToken | a serviceAccountToken source (path "istio-token") | ` + allowed},
		},
		{
			name: "a token only an exempt container mounts, targeted by a debug container", policy: exemptMesh, requester: meshOperator, allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("istio-token", token("istio-token")))
				mount(withMesh(p), "istio-token")
				p.Spec.EphemeralContainers[0].TargetContainerName = "mesh"
			},
			want: []string{`spec.volumes[1].projected.sources[0].serviceAccountToken | a serviceAccountToken source (path "istio-token") | ` + allowed},
		},
		{
			name: "a token an exempt and a judged container mount", policy: exemptMesh, requester: meshOperator, allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("istio-token", token("istio-token")))
				mount(withMesh(p), "istio-token")
				mount((*corev1.Container)(&p.Spec.EphemeralContainers[0].EphemeralContainerCommon), "istio-token")
			},
			want: []string{`spec.volumes[1].projected.sources[0].serviceAccountToken | a serviceAccountToken source (path "istio-token") | ` + allowed},
		},
		{
			name: "a pod certificate",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("cert", corev1.VolumeProjection{PodCertificate: &corev1.PodCertificateProjection{
					SignerName: "example.com/agents", KeyType: "ED25519", CredentialBundlePath: "bundle.pem"}}))
				mount(&p.Spec.Containers[0], "cert")
			},
			want: []string{`spec.volumes[1].projected.sources[0].podCertificate | a podCertificate source (signer "example.com/agents") | ` + allowed},
		},
		{
			name: "a pod certificate sent by a requester that may carry a token", policy: "serviceAccountToken: {allowServiceAccounts: [ops/operator]}",
			requester: Requester{Username: "system:serviceaccount:ops:operator"},
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("cert", corev1.VolumeProjection{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/agents"}}))
				mount(&p.Spec.Containers[0], "cert")
			},
		},
		{
			name: "a token mounted by an init container",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, tokenVolume("token", token("token")))
				p.Spec.InitContainers = []corev1.Container{validContainer("init")}
				mount(&p.Spec.InitContainers[0], "token")
			},
			want: []string{`spec.volumes[1].projected.sources[0].serviceAccountToken | a serviceAccountToken source (path "token") | ` + allowed},
		},
	})
}
