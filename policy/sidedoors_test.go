package policy

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestSideDoors is the red-team table of issue 11's exemption, credential, Windows and namespace classes: each
// row is an attempt to get around the checks, with the verdict and the exact field paths it must give. A pod
// goes the webhooks' way (Mutate, then Judge), sent by the row's requester.
func TestSideDoors(t *testing.T) {
	const (
		meshPolicy = "images: {allow: [\"registry.corp.example/**\"]}\n" + `exempt: {containers: [{name: istio-proxy, image: "docker.io/istio/proxyv2:*", checks: [images, runAsNonRoot, runAsUser], serviceAccounts: [mesh/operator]}]}`
		saPolicy   = `exempt: {serviceAccounts: [mesh/operator]}`
		tokPolicy  = `serviceAccountToken: {automount: false, allowServiceAccounts: [mesh/operator]}`
		proxyImage = "docker.io/istio/proxyv2:1.24.0"
	)
	stranger := Requester{Username: "system:serviceaccount:mesh:default"}
	withProxy := func(p *corev1.Pod) *corev1.Container {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: proxyImage,
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptrTo[int64](0)}})
		return &p.Spec.Containers[len(p.Spec.Containers)-1]
	}
	proxySC := func(f func(*corev1.SecurityContext)) func(*corev1.Pod) {
		return func(p *corev1.Pod) { f(withProxy(p).SecurityContext) }
	}
	tokenVolume := func(p *corev1.Pod, c *corev1.Container) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "istio-token", Audience: "istio-ca"}}}}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "istio-token", MountPath: "/var/run/secrets/tokens"})
	}
	secretRef := func(name string) *corev1.SecretKeySelector {
		return &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "token"}
	}
	osExpr := func(op corev1.NodeSelectorOperator, vs ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelOSStable, Operator: op, Values: vs}}}}}}}
		}
	}
	const affinityPath = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]"

	for _, tc := range []struct {
		name   string
		policy string
		by     Requester
		labels map[string]string // namespace labels; nil: unknown
		tokens []string          // the namespace's service-account token Secrets
		tweak  func(*corev1.Pod)
		// want: the enforce violations' field paths, every one (nil: admitted).
		want []string
	}{
		// Class 3: container exemptions.
		{name: "sidecar-shaped container sent by an agent's author", policy: meshPolicy, by: stranger, tweak: func(p *corev1.Pod) { withProxy(p) },
			want: []string{"spec.containers[1].securityContext.runAsUser", "spec.containers[1].image"}},
		{name: "the same container, requester unknown (offline)", policy: meshPolicy, tweak: func(p *corev1.Pod) { withProxy(p) },
			want: []string{"spec.containers[1].securityContext.runAsUser", "spec.containers[1].image"}},
		{name: "the operator's sidecar", policy: meshPolicy, by: meshOperator, tweak: func(p *corev1.Pod) { withProxy(p) }},
		{name: "exempt sidecar made privileged", policy: meshPolicy, by: meshOperator,
			tweak: proxySC(func(sc *corev1.SecurityContext) { sc.Privileged = ptrTo(true) }),
			want:  []string{"spec.containers[1].securityContext.privileged"}},
		{name: "exempt sidecar adds SYS_ADMIN", policy: meshPolicy, by: meshOperator,
			tweak: proxySC(func(sc *corev1.SecurityContext) {
				sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}
			}),
			want: []string{"spec.containers[1].securityContext.capabilities.add[0]"}},
		{name: "exempt sidecar unconfined by seccomp", policy: meshPolicy, by: meshOperator,
			tweak: proxySC(func(sc *corev1.SecurityContext) {
				sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
			}),
			want: []string{"spec.containers[1].securityContext.seccompProfile.type"}},
		{name: "exempt sidecar with an unmasked /proc", policy: meshPolicy, by: meshOperator,
			tweak: proxySC(func(sc *corev1.SecurityContext) { sc.ProcMount = ptrTo(corev1.UnmaskedProcMount) }),
			want:  []string{"spec.containers[1].securityContext.procMount"}},
		{name: "exempt sidecar binds a host port", policy: meshPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) {
				withProxy(p).Ports = []corev1.ContainerPort{{ContainerPort: 15001, HostPort: 15001}}
			},
			want: []string{"spec.containers[1].ports[0].hostPort"}},
		{name: "exempt sidecar AppArmor-unconfined by annotation", policy: meshPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) {
				withProxy(p)
				p.Annotations = map[string]string{corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix + "istio-proxy": "unconfined"}
			},
			want: []string{"metadata.annotations[container.apparmor.security.beta.kubernetes.io/istio-proxy]"}},
		{name: "exempt sidecar with a writable root filesystem (not a relaxed check)", policy: meshPolicy, by: meshOperator,
			tweak: proxySC(func(sc *corev1.SecurityContext) { sc.ReadOnlyRootFilesystem = ptrTo(false) }),
			want:  []string{"spec.containers[1].securityContext.readOnlyRootFilesystem"}},
		{name: "the exempt name with another registry's image", policy: meshPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) { withProxy(p).Image = "evil.example/istio/proxyv2:1.24.0" },
			want:  []string{"spec.containers[1].securityContext.runAsUser", "spec.containers[1].image"}},
		{name: "the exempt image under another name", policy: meshPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) { withProxy(p).Name = "istio-proxy2" },
			want:  []string{"spec.containers[1].securityContext.runAsUser", "spec.containers[1].image"}},
		{name: "a token only the exempt sidecar mounts", policy: meshPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) { tokenVolume(p, withProxy(p)) }},
		{name: "a token only the exempt sidecar mounts, process namespace shared", policy: meshPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) { tokenVolume(p, withProxy(p)); p.Spec.ShareProcessNamespace = ptrTo(true) },
			want:  []string{"spec.volumes[1].projected.sources[0].serviceAccountToken"}},
		{name: "a token only the exempt sidecar mounts, a debug container targets it", policy: meshPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) {
				tokenVolume(p, withProxy(p))
				debug := validContainer("debug")
				debug.Resources = corev1.ResourceRequirements{}
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon(debug), TargetContainerName: "istio-proxy"}}
			},
			want: []string{"spec.volumes[1].projected.sources[0].serviceAccountToken"}},
		{name: "a token the exempt sidecar mounts, sent by a stranger", policy: meshPolicy, by: stranger,
			tweak: func(p *corev1.Pod) { tokenVolume(p, withProxy(p)) },
			want:  []string{"spec.containers[1].securityContext.runAsUser", "spec.volumes[1].projected.sources[0].serviceAccountToken", "spec.containers[1].image"}},

		// Class 4: service-account exemptions and token allowances.
		{name: "a hostile pod naming the exempt service account", policy: saPolicy, by: stranger,
			tweak: func(p *corev1.Pod) {
				p.Spec.ServiceAccountName = "operator"
				p.Spec.HostNetwork = true
				p.Spec.Containers[0].SecurityContext.Privileged = ptrTo(true)
			},
			want: []string{"spec.hostNetwork", "spec.containers[0].securityContext.privileged"}},
		{name: "the exempt service account sends it", policy: saPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) { p.Spec.HostNetwork = true }},
		{name: "the exempt account's name as a plain username", policy: saPolicy, by: Requester{Username: "mesh/operator"},
			tweak: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, want: []string{"spec.hostNetwork"}},
		{name: "an account of the same name in another namespace", policy: saPolicy, by: Requester{Username: "system:serviceaccount:agents:operator"},
			tweak: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, want: []string{"spec.hostNetwork"}},
		{name: "the exempt account's groups without its name", policy: saPolicy,
			by:    Requester{Username: "bob", Groups: []string{"system:serviceaccounts:mesh", "system:serviceaccounts"}},
			tweak: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, want: []string{"spec.hostNetwork"}},
		{name: "a token for a pod naming the allowed account", policy: tokPolicy, by: stranger,
			tweak: func(p *corev1.Pod) {
				p.Spec.ServiceAccountName = "operator"
				p.Spec.AutomountServiceAccountToken = ptrTo(true)
			},
			want: []string{"spec.automountServiceAccountToken"}},
		{name: "a projected token for a pod naming the allowed account", policy: tokPolicy, by: stranger,
			tweak: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "operator"; tokenVolume(p, &p.Spec.Containers[0]) },
			want:  []string{"spec.volumes[1].projected.sources[0].serviceAccountToken"}},
		{name: "a token sent by the allowed requester", policy: tokPolicy, by: meshOperator,
			tweak: func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptrTo(true) }},

		// Class 5: service-account credentials the pod spec does not name as such.
		{name: "a token Secret as a volume", tokens: []string{"app-config"},
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-config"}}})
				p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "cfg", MountPath: "/cfg"})
			},
			want: []string{"spec.volumes[1].secret.secretName"}},
		{name: "a token Secret as a projected source", tokens: []string{"app-config"},
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}}}})
				p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "cfg", MountPath: "/cfg"})
			},
			want: []string{"spec.volumes[1].projected.sources[0].secret.name"}},
		{name: "a token Secret through env.valueFrom.secretKeyRef", tokens: []string{"app-config"},
			tweak: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "CFG", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: secretRef("app-config")}})
			},
			want: []string{"spec.containers[0].env[1].valueFrom.secretKeyRef.name"}},
		{name: "a token Secret through envFrom in an init container", tokens: []string{"app-config"},
			tweak: func(p *corev1.Pod) {
				init := validContainer("init")
				init.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}
				p.Spec.InitContainers = []corev1.Container{init}
			},
			want: []string{"spec.initContainers[0].envFrom[0].secretRef.name"}},
		{name: "an ordinary Secret", tokens: []string{"app-config"},
			tweak: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "DB", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: secretRef("db")}})
			}},
		{name: "a projected pod certificate",
			tweak: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "id", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/agents", KeyType: "ED25519", CredentialBundlePath: "b.pem"}}}}}})
				p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "id", MountPath: "/id"})
			},
			want: []string{"spec.volumes[1].projected.sources[0].podCertificate"}},

		// Class 7: Windows by scheduling constraints.
		{name: "nodeSelector kubernetes.io/os: windows", tweak: func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelOSStable: "windows"} },
			want: []string{"spec.nodeSelector[kubernetes.io/os]"}},
		{name: "required affinity NotIn [linux]", tweak: osExpr(corev1.NodeSelectorOpNotIn, "linux"), want: []string{affinityPath}},
		{name: "required affinity Exists", tweak: osExpr(corev1.NodeSelectorOpExists), want: []string{affinityPath}},
		{name: "required affinity In [windows]", tweak: osExpr(corev1.NodeSelectorOpIn, "windows"), want: []string{affinityPath}},
		{name: "required affinity In [linux]", tweak: osExpr(corev1.NodeSelectorOpIn, "linux")},
		{name: "a toleration of the Windows taint", tweak: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/os", Operator: corev1.TolerationOpExists}}
		}, want: []string{"spec.tolerations[0]"}},
		// spec.nodeName skips the scheduler: mutation pins spec.os.name: linux (TestHardenNodeName), and where it
		// cannot (windowsOptions, which the API server refuses beside it) the pod is denied at the field.
		{name: "spec.nodeName naming a Windows node", tweak: func(p *corev1.Pod) { p.Spec.NodeName = "win-node-1" }},
		{name: "spec.nodeName beside windowsOptions", tweak: func(p *corev1.Pod) {
			p.Spec.NodeName = "win-node-1"
			p.Spec.SecurityContext.WindowsOptions = &corev1.WindowsSecurityContextOptions{RunAsUserName: ptrTo("agent")}
		}, want: []string{"spec.nodeName"}},

		// Class 9: labels unknown (a stale cache the webhook could not refresh) select, the strict side.
		{name: "namespace labels unknown", labels: nil, tweak: func(p *corev1.Pod) { p.Spec.HostIPC = true }, want: []string{"spec.hostIPC"}},

		// Class 12: one allowPrivilegeEscalation rule.
		{name: "SYS_ADMIN allowed by the policy: false is filled beside it", policy: "securityContext: {allowedCapabilities: [SYS_ADMIN]}",
			tweak: func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
				p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
			}},
		{name: "CAP_SYS_ADMIN allowed by the policy: denied for its spelling, no escalation noise", policy: "securityContext: {allowedCapabilities: [SYS_ADMIN]}",
			tweak: func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
				p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"CAP_SYS_ADMIN"}
			},
			want: []string{"spec.containers[0].securityContext.capabilities.add[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSet(testPolicy(t, tc.policy))
			pod := validPod()
			pod.Namespace = "mesh"
			tc.tweak(pod)
			w, err := NewWorkload(pod)
			if err != nil {
				t.Fatal(err)
			}
			ns := Namespace{Name: "mesh", Labels: tc.labels}
			if tc.tokens != nil {
				ns.IsTokenSecret = func(name string) bool { return slices.Contains(tc.tokens, name) }
			}
			hardened, _ := set.Mutate(w, ns, tc.by)
			res := set.Judge(hardened, ns, tc.by)
			var got []string
			for _, v := range res.ByMode(ModeEnforce) {
				got = append(got, v.Field)
			}
			if res.Allowed() != (tc.want == nil) || !slices.Equal(got, tc.want) {
				t.Errorf("violations:\n got %s\nwant %s", strings.Join(got, ", "), strings.Join(tc.want, ", "))
			}
		})
	}
}

// TestWindowsPodsAreNotHardenedForLinux: a pod that the scheduling constraints send to Windows gets no
// Linux-only field from hardening, under either windows mode.
func TestWindowsPodsAreNotHardenedForLinux(t *testing.T) {
	for _, policy := range []string{"", "windows: skipLinuxChecks"} {
		set := NewSet(testPolicy(t, policy))
		pod := validPod()
		pod.Spec.NodeSelector = map[string]string{corev1.LabelOSStable: "windows"}
		pod.Spec.SecurityContext = nil
		pod.Spec.Containers[0].SecurityContext = nil
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		set.Harden(w, testNS, Requester{})
		if sc := pod.Spec.SecurityContext; sc != nil && sc.SeccompProfile != nil {
			t.Errorf("%q: pod seccompProfile added to a Windows pod", policy)
		}
		if c := pod.Spec.Containers[0]; c.SecurityContext != nil {
			t.Errorf("%q: container securityContext added to a Windows pod: %+v", policy, c.SecurityContext)
		}
	}
}

// TestUnselects: relabelling a running pod out of a policy's podSelector is seen, whatever the selector's form;
// a relabelling that keeps it selected, or one into a policy, is not.
func TestUnselects(t *testing.T) {
	agents := testPolicy(t, "match: {podSelector: {matchLabels: {app: agent}}}")
	agents.Name = "agents"
	notQuarantined := testPolicy(t, "match: {podSelector: {matchExpressions: [{key: quarantine, operator: DoesNotExist}]}}")
	notQuarantined.Name = "not-quarantined"
	set := NewSet(agents, notQuarantined)
	pod := func(labels map[string]string) *Workload {
		p := validPod()
		p.Labels = labels
		w, err := NewWorkload(p)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	ns := Namespace{Name: "agents", Labels: map[string]string{}}
	for _, c := range []struct {
		name     string
		old, cur map[string]string
		want     []string
	}{
		{"app changed", map[string]string{"app": "agent"}, map[string]string{"app": "other"}, []string{"agents"}},
		{"app removed", map[string]string{"app": "agent"}, map[string]string{}, []string{"agents"}},
		{"quarantine label added", map[string]string{"app": "agent"}, map[string]string{"app": "agent", "quarantine": "yes"}, []string{"not-quarantined"}},
		{"both at once", map[string]string{"app": "agent"}, map[string]string{"quarantine": "yes"}, []string{"agents", "not-quarantined"}},
		{"another label added", map[string]string{"app": "agent"}, map[string]string{"app": "agent", "team": "a"}, nil},
		{"into a policy", map[string]string{"app": "other"}, map[string]string{"app": "agent"}, nil},
	} {
		if got := set.Unselects(pod(c.old), pod(c.cur), ns, Requester{}); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
