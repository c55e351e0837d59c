package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"agentgate.io/agentgate/internal/testutil"
)

// Side doors around the checks, through the real API server (DESIGN.md, "The sandbox has no side doors"): who
// sends a pod is the API server's word (userInfo), not the pod's; Secrets' types and namespaces' labels are the
// API server's too.

var dryRunCreate = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

// operatorClient acts as the service account ns/name (client-go impersonation), allowed by RBAC to create
// pods in ns: an operator that a policy's requester-anchored exemptions name.
func operatorClient(t *testing.T, ns, name string) kubernetes.Interface {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := env.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get"}},
	}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
	if _, err := env.client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	return kubernetes.NewForConfigOrDie(cfg)
}

// withDefaultPolicy replaces text in the default policy ConfigMap until the test ends, and waits until served:
// until ready (a dry-run probe) stops failing.
func withDefaultPolicy(t *testing.T, ready func() error, oldNew ...string) {
	t.Helper()
	cms := env.client.CoreV1().ConfigMaps(systemNamespace)
	orig, err := cms.Get(ctx, defaultPolicyCM, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc := orig.Data["policy.yaml"]
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(doc, oldNew[i]) {
			t.Fatalf("test setup: the default policy has no %q", oldNew[i])
		}
		doc = strings.Replace(doc, oldNew[i], oldNew[i+1], 1)
	}
	updated := orig.DeepCopy()
	updated.Data["policy.yaml"] = doc
	if _, err := cms.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the default policy: %v", err)
	}
	t.Cleanup(func() {
		cur, err := cms.Get(ctx, defaultPolicyCM, metav1.GetOptions{})
		if err == nil {
			cur.Data = orig.Data
			_, _ = cms.Update(ctx, cur, metav1.UpdateOptions{})
		}
	})
	testutil.Eventually(t, 30*time.Second, "the policy change to be served", ready)
}

// hostilePod asks for everything baseline forbids.
func hostilePod(name string) *corev1.Pod {
	pod := agentPod(name)
	pod.Spec.HostNetwork = true
	pod.Spec.HostPID = true
	pod.Spec.ServiceAccountName = "operator"
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	pod.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	return pod
}

// meshedPod has an istio-proxy sidecar that runs as root with an image outside the allowlist.
func meshedPod(name string) *corev1.Pod {
	pod := agentPod(name)
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.24.0",
		SecurityContext: &corev1.SecurityContext{RunAsUser: ptr[int64](0)}})
	return pod
}

func TestSideDoorsExemptionsFollowTheRequester(t *testing.T) {
	requireServer(t)
	ns := agentNamespace(t)
	// Two operators: one exempt as a whole, one whose sidecar is exempt from three checks and whose pods may carry
	// a token.
	operator, mesh := operatorClient(t, ns, "operator"), operatorClient(t, ns, "mesh")
	withDefaultPolicy(t, func() error {
		_, err := operator.CoreV1().Pods(ns).Create(ctx, hostilePod("probe"), dryRunCreate)
		return err
	},
		"    serviceAccounts: []", "    serviceAccounts: ["+ns+"/operator]",
		"    containers: []", "    containers: [{name: istio-proxy, image: \"docker.io/istio/proxyv2:*\", checks: [images, runAsNonRoot, runAsUser], serviceAccounts: ["+ns+"/mesh]}]",
		"    allowServiceAccounts: []", "    allowServiceAccounts: ["+ns+"/mesh]")

	t.Run("a pod naming the exempt service account, sent by someone else", func(t *testing.T) {
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, hostilePod("claims-operator"), metav1.CreateOptions{})
		if err == nil {
			t.Fatal("a hostNetwork, hostPID, privileged, hostPath: / pod naming the exempt account was admitted")
		}
		assertCauses(t, err, []string{"spec.hostNetwork", "spec.hostPID", "spec.containers[0].securityContext.privileged", "spec.volumes[0].hostPath"})
	})
	t.Run("the exempt service account itself", func(t *testing.T) {
		if _, err := operator.CoreV1().Pods(ns).Create(ctx, hostilePod("by-operator"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("the exempt requester was refused: %v", err)
		}
	})
	t.Run("a container exemption claimed by an agent's author", func(t *testing.T) {
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, meshedPod("claims-mesh"), metav1.CreateOptions{})
		if err == nil {
			t.Fatal("a sidecar-shaped container outside the allowlist, running as root, was admitted for a stranger")
		}
		assertCauses(t, err, []string{"spec.containers[1].image", "spec.containers[1].securityContext.runAsUser"})
	})
	t.Run("the container exemption for the operator relaxes only its checks", func(t *testing.T) {
		stored, err := mesh.CoreV1().Pods(ns).Create(ctx, meshedPod("meshed"), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("the mesh operator's meshed pod was refused: %v", err)
		}
		// runAsNonRoot: true is set on the judged container, not on the pod: the sidecar runs as root.
		if sc := stored.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot != nil {
			t.Errorf("pod-level runAsNonRoot set although the exempt sidecar runs as root: %+v", sc)
		}
		if sc := stored.Spec.Containers[0].SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("the agent container did not get runAsNonRoot: true: %+v", sc)
		}
		// What the exemption does not name is still forced on the sidecar.
		if sc := stored.Spec.Containers[1].SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil {
			t.Errorf("the sidecar was not hardened for the checks its exemption does not name: %+v", sc)
		}
		privileged := meshedPod("meshed-privileged")
		privileged.Spec.Containers[1].SecurityContext.Privileged = ptr(true)
		privileged.Spec.Containers[1].SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}
		_, err = mesh.CoreV1().Pods(ns).Create(ctx, privileged, metav1.CreateOptions{})
		if err == nil {
			t.Fatal("a privileged SYS_ADMIN sidecar was admitted through a container exemption")
		}
		assertCauses(t, err, []string{"spec.containers[1].securityContext.privileged", "spec.containers[1].securityContext.capabilities.add[0]"})
	})
	t.Run("a token for a pod naming the allowed account, sent by someone else", func(t *testing.T) {
		pod := agentPod("token-claim")
		pod.Spec.ServiceAccountName = "mesh"
		pod.Spec.AutomountServiceAccountToken = ptr(true)
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			t.Fatal("a token was admitted for a pod that merely names the allowed account")
		}
		assertCauses(t, err, []string{"spec.automountServiceAccountToken"})
	})
	t.Run("a token sent by the allowed requester", func(t *testing.T) {
		pod := agentPod("token-by-mesh")
		pod.Spec.ServiceAccountName = "mesh"
		pod.Spec.AutomountServiceAccountToken = ptr(true)
		if _, err := mesh.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("the allowed requester's pod with a token was refused: %v", err)
		}
	})
}

func TestSideDoorsServiceAccountTokenSecret(t *testing.T) {
	requireServer(t)
	// The token Secret was there before the namespace became an agent namespace: agentgate refuses creating
	// one in an agent namespace (below), so the watch is what knows of those that predate the label.
	ns := plainNamespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "build-bot", Namespace: ns}}
	if _, err := env.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Any name: the type is what makes it a token (the tokens controller fills it, non-expiring).
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ci-settings", Namespace: ns,
		Annotations: map[string]string{corev1.ServiceAccountNameKey: "build-bot"}}, Type: corev1.SecretTypeServiceAccountToken}
	if _, err := env.client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	plain := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-credentials", Namespace: ns}, StringData: map[string]string{"password": "x"}}
	if _, err := env.client.CoreV1().Secrets(ns).Create(ctx, plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, labelPatch(agentLabel, ptr("true")), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	mounting := func(name, secretName string) *corev1.Pod {
		pod := agentPod(name)
		pod.Spec.Volumes = []corev1.Volume{
			{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secretName}}},
			{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}}}}}}},
		}
		c := &pod.Spec.Containers[0]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "s", MountPath: "/s"}, {Name: "p", MountPath: "/p"}}
		c.Env = []corev1.EnvVar{{Name: "KUBE", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: "token"}}}}
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}}}}
		return pod
	}
	// The informer learns of the Secret asynchronously: wait until agentgate knows it (a positive condition).
	var err error
	testutil.Eventually(t, 30*time.Second, "agentgate to know the token Secret", func() error {
		if _, err = env.client.CoreV1().Pods(ns).Create(ctx, mounting("probe", "ci-settings"), dryRunCreate); err == nil {
			return errNotYet
		}
		return nil
	})
	assertCauses(t, err, []string{
		"spec.volumes[0].secret.secretName",
		"spec.volumes[1].projected.sources[0].secret.name",
		"spec.containers[0].env[0].valueFrom.secretKeyRef.name",
		"spec.containers[0].envFrom[0].secretRef.name",
	})
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, mounting("db", "db-credentials"), metav1.CreateOptions{}); err != nil {
		t.Errorf("a pod reading an ordinary Secret was refused: %v", err)
	}

	// The other order: the pod names a Secret that does not exist yet (admitted: the name means nothing), and
	// the token Secret of that name comes after. Its CREATE is refused, under any name, by anyone the policy
	// does not let carry a token.
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, mounting("early", "comes-later"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a pod naming a Secret that does not exist was refused: %v", err)
	}
	later := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "comes-later", Namespace: ns,
		Annotations: map[string]string{corev1.ServiceAccountNameKey: "build-bot"}}, Type: corev1.SecretTypeServiceAccountToken}
	_, err = env.client.CoreV1().Secrets(ns).Create(ctx, later, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a service-account token Secret named by a running pod was created in an agent namespace")
	}
	assertCauses(t, err, []string{"type"})
	if !strings.Contains(err.Error(), "serviceAccountTokenSecrets") {
		t.Errorf("the refusal does not name its check: %v", err)
	}
	if _, err := env.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "comes-later", Namespace: ns},
		StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("an ordinary Secret was refused: %v", err)
	}
}

var errNotYet = apierrors.NewServiceUnavailable("not yet")

// A namespace labelled a moment ago: the API server sends its pods to agentgate at once, and agentgate must not
// let a cache that has not seen the label yet make the pod unselected. Each attempt whose pod reached agentgate
// must be denied; an attempt the API server did not send (its own cache stale) proves nothing and is repeated.
func TestSideDoorsFreshlyLabelledNamespace(t *testing.T) {
	requireServer(t)
	reached := 0
	for attempt := 0; attempt < 20 && reached < 5; attempt++ {
		ns := plainNamespace(t)
		before := env.server.metric(t, "agentgate_admission_requests_total", `endpoint="validate"`, `kind="Pod"`)
		patch := labelPatch(agentLabel, ptr("true"))
		if _, err := env.client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := agentPod("right-away")
		pod.Spec.HostNetwork = true
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		after := env.server.metric(t, "agentgate_admission_requests_total", `endpoint="validate"`, `kind="Pod"`)
		if after == before {
			if err != nil {
				t.Fatalf("refused without agentgate: %v", err)
			}
			continue // the API server's own namespace cache had not seen the label: not agentgate's decision
		}
		reached++
		if err == nil {
			t.Fatalf("attempt %d: a hostNetwork pod in a namespace labelled a moment ago was admitted by agentgate", attempt)
		}
		assertCauses(t, err, []string{"spec.hostNetwork"})
	}
	if reached == 0 {
		t.Fatal("the API server never sent a pod of a freshly labelled namespace to agentgate")
	}
}

func TestSideDoorsWindowsBySchedulingConstraints(t *testing.T) {
	ns := agentNamespace(t)
	bySelector := agentPod("win-selector")
	bySelector.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"}
	_, err := env.client.CoreV1().Pods(ns).Create(ctx, bySelector, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a pod scheduled on Windows by nodeSelector was admitted")
	}
	assertCauses(t, err, []string{"spec.nodeSelector[kubernetes.io/os]"})

	byAffinity := agentPod("win-affinity")
	byAffinity.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"linux"}}}}}}}}
	_, err = env.client.CoreV1().Pods(ns).Create(ctx, byAffinity, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a pod scheduled on Windows by node affinity NotIn [linux] was admitted")
	}
	assertCauses(t, err, []string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]"})

	// spec.nodeName skips the scheduler and every constraint above. The pod is stored with spec.os.name: linux,
	// which the kubelet of a Windows node refuses (and which cannot change afterwards).
	byName, err := env.client.CoreV1().Pods(ns).Create(ctx, func() *corev1.Pod {
		p := agentPod("win-by-name")
		p.Spec.NodeName = "win-node-1"
		return p
	}(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a pod bound by name was refused instead of pinned to Linux: %v", err)
	}
	if byName.Spec.OS == nil || byName.Spec.OS.Name != corev1.Linux {
		t.Errorf("stored spec.os = %+v, want name linux", byName.Spec.OS)
	}
	pinned := []byte(`{"spec":{"os":null}}`)
	if _, err := env.client.CoreV1().Pods(ns).Patch(ctx, byName.Name, types.StrategicMergePatchType, pinned, metav1.PatchOptions{}); err == nil {
		t.Error("spec.os of a running pod was removed")
	}
	// Where spec.os.name: linux cannot be set (windowsOptions: the API server refuses both), it is denied.
	withWindowsOptions := agentPod("win-by-name-options")
	withWindowsOptions.Spec.NodeName = "win-node-1"
	withWindowsOptions.Spec.SecurityContext = &corev1.PodSecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{RunAsUserName: ptr("agent")}}
	_, err = env.client.CoreV1().Pods(ns).Create(ctx, withWindowsOptions, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a pod bound by name with windowsOptions was admitted")
	}
	assertCauses(t, err, []string{"spec.nodeName"})
}

// A Deployment UPDATE that only adds AppArmor "unconfined" to its template is judged like the same CREATE.
func TestSideDoorsTemplateAnnotationUpdate(t *testing.T) {
	ns := agentNamespace(t)
	d := deployment("annotated", agentPod("x").Spec)
	if _, err := env.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"container.apparmor.security.beta.kubernetes.io/runner":"unconfined"}}}}}`)
	_, err := env.client.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err == nil {
		t.Fatal("a template annotation making the agent AppArmor-unconfined was admitted by an UPDATE")
	}
	assertCauses(t, err, []string{"spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/runner]"})
}
