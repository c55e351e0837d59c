package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckAppArmor(t *testing.T) {
	prof := func(t corev1.AppArmorProfileType) *corev1.AppArmorProfile {
		p := &corev1.AppArmorProfile{Type: t}
		if t == corev1.AppArmorProfileTypeLocalhost {
			p.LocalhostProfile = ptrTo("agents")
		}
		return p
	}
	const (
		prefix          = "container.apparmor.security.beta.kubernetes.io/"
		typeAllowed     = "RuntimeDefault, Localhost, unset"
		annAllowed      = `runtime/default, localhost/<profile>, ""`
		exemptMeshAgent = `exempt: {containers: [{name: mesh, image: "docker.io/istio/proxyv2:*", checks: [images, runAsNonRoot], serviceAccounts: [mesh/operator]}]}`
	)
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{
			name: "allowed types everywhere", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.AppArmorProfile = prof(corev1.AppArmorProfileTypeRuntimeDefault)
				for _, k := range containerKinds {
					sc(k.get(p)).AppArmorProfile = prof(corev1.AppArmorProfileTypeLocalhost)
				}
			},
		},
		{
			name: "allowed annotations",
			tweak: func(p *corev1.Pod) {
				p.Annotations = map[string]string{
					prefix + "agent": "runtime/default", prefix + "init": "localhost/agents", prefix + "debug": "",
					"example.com/unconfined": "unconfined",
				}
			},
		},
		{
			name: "pod Unconfined",
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.AppArmorProfile = prof(corev1.AppArmorProfileTypeUnconfined)
			},
			want: []string{"spec.securityContext.appArmorProfile.type | Unconfined | " + typeAllowed},
			msgs: []string{"[appArmor] agent containers must stay confined by AppArmor: remove the profile or use RuntimeDefault " +
				"(found Unconfined; allowed: RuntimeDefault, Localhost, unset)"},
		},
		{
			name:  "annotation unconfined",
			tweak: func(p *corev1.Pod) { p.Annotations = map[string]string{prefix + "agent": "unconfined"} },
			want:  []string{`metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent] | "unconfined" | ` + annAllowed},
			msgs: []string{`[appArmor] agent containers must stay confined by AppArmor: remove the annotation, or set securityContext.appArmorProfile.type: RuntimeDefault ` +
				`(found "unconfined"; allowed: runtime/default, localhost/<profile>, "")`},
		},
		{
			name: "everything at once, annotations in key order", allKinds: true,
			tweak: func(p *corev1.Pod) {
				p.Spec.SecurityContext.AppArmorProfile = prof(corev1.AppArmorProfileTypeUnconfined)
				for _, k := range containerKinds {
					sc(k.get(p)).AppArmorProfile = prof(corev1.AppArmorProfileTypeUnconfined)
				}
				p.Annotations = map[string]string{prefix + "init": "unconfined", prefix + "agent": "docker/default", prefix + "debug": "runtime/default"}
			},
			want: []string{
				"spec.securityContext.appArmorProfile.type | Unconfined | " + typeAllowed,
				"spec.initContainers[0].securityContext.appArmorProfile.type | Unconfined | " + typeAllowed,
				"spec.containers[0].securityContext.appArmorProfile.type | Unconfined | " + typeAllowed,
				"spec.ephemeralContainers[0].securityContext.appArmorProfile.type | Unconfined | " + typeAllowed,
				`metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent] | "docker/default" | ` + annAllowed,
				`metadata.annotations[container.apparmor.security.beta.kubernetes.io/init] | "unconfined" | ` + annAllowed,
			},
		},
		{
			name: "an annotation for an exempt container is judged (AppArmor is a baseline check); one for no container too", policy: exemptMeshAgent,
			requester: meshOperator,
			tweak: func(p *corev1.Pod) {
				mesh := validContainer("mesh")
				mesh.Image = "docker.io/istio/proxyv2:1.24.0"
				p.Spec.Containers = append(p.Spec.Containers, mesh)
				p.Annotations = map[string]string{prefix + "mesh": "unconfined", prefix + "ghost": "unconfined"}
			},
			want: []string{
				`metadata.annotations[container.apparmor.security.beta.kubernetes.io/ghost] | "unconfined" | ` + annAllowed,
				`metadata.annotations[container.apparmor.security.beta.kubernetes.io/mesh] | "unconfined" | ` + annAllowed,
			},
		},
	}
	cases = append(cases, kindCases("container Unconfined", "", func(c *corev1.Container) {
		sc(c).AppArmorProfile = prof(corev1.AppArmorProfileTypeUnconfined)
	}, func(path string) []string {
		return []string{path + ".securityContext.appArmorProfile.type | Unconfined | " + typeAllowed}
	})...)
	runCheckCases(t, checkAppArmor, cases)
}

func TestCheckAppArmorTemplatePath(t *testing.T) {
	// A controller's template: the annotation path starts at the template's metadata.
	w := &Workload{
		Kind: "Deployment", PodMeta: &validPod().ObjectMeta, PodMetaPath: templatePath.Child("metadata"),
		Spec: &validPod().Spec, SpecPath: templatePath.Child("spec"),
	}
	w.PodMeta.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/agent": "unconfined"}
	p := Default()
	r := &report{policy: p}
	checkAppArmor.run(p, newPodView(p, w, Requester{}, nil), r)
	if len(r.out) != 1 || r.out[0].Field != "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/agent]" {
		t.Errorf("got %v", r.out)
	}
}
