package e2e

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var ctx = context.Background()

func TestAgentPodIsStoredHardened(t *testing.T) {
	ns := agentNamespace(t)
	created, err := env.client.CoreV1().Pods(ns).Create(ctx, agentPod("agent-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a compliant agent pod: %v", err)
	}
	stored, err := env.client.CoreV1().Pods(ns).Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := stored.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %v, want false", spec.AutomountServiceAccountToken)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("pod runAsNonRoot not forced: %+v", spec.SecurityContext)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile not RuntimeDefault: %+v", spec.SecurityContext)
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem not forced: %+v", sc)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation not false: %+v", sc)
	}
	if sc == nil || sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities.drop = %+v, want [ALL]", sc)
	}
	if c.Resources.Limits.Cpu().String() != "1" || c.Resources.Limits.Memory().String() != "512Mi" ||
		c.Resources.Requests.Cpu().String() != "100m" || c.Resources.Requests.Memory().String() != "128Mi" {
		t.Errorf("default resources not injected: %+v", c.Resources)
	}

	// The same pod again: mutation is deterministic, so the stored spec is identical.
	second, err := env.client.CoreV1().Pods(ns).Create(ctx, agentPod("agent-2"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(second.Spec, stored.Spec) {
		t.Errorf("a second identical create stored a different spec:\nfirst:  %+v\nsecond: %+v", stored.Spec, second.Spec)
	}
}

func TestBadPodIsRefusedWithEveryFieldPath(t *testing.T) {
	ns := agentNamespace(t)
	pod := agentPod("bad")
	pod.Spec.HostNetwork = true
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "docker.io/library/busybox:1.36",
		SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}}
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr(false),
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}}}

	_, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a privileged hostNetwork pod was admitted")
	}
	t.Logf("the API server said: %v", err)
	want := []string{
		"spec.hostNetwork",
		"spec.initContainers[0].securityContext.privileged",
		"spec.initContainers[0].image",
		"spec.containers[0].securityContext.readOnlyRootFilesystem",
		"spec.containers[0].securityContext.capabilities.add[0]",
		"spec.volumes[0].hostPath",
	}
	assertCauses(t, err, want)
}

// assertCauses checks that the API server's refusal carries a cause for every field path.
func assertCauses(t *testing.T, err error, fields []string) {
	t.Helper()
	status, ok := err.(apierrors.APIStatus)
	if !ok {
		t.Fatalf("not an API status error: %v", err)
	}
	st := status.Status()
	if st.Code != 422 && st.Code != 403 && st.Code != 400 {
		t.Errorf("status code %d, want a refusal", st.Code)
	}
	got := map[string]bool{}
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			got[c.Field] = true
		}
	}
	for _, f := range fields {
		if !got[f] {
			t.Errorf("no cause for %s; causes: %v", f, got)
		}
		if !strings.Contains(st.Message, f) {
			t.Errorf("message does not name %s: %s", f, st.Message)
		}
	}
}

func TestBadDeploymentIsRefusedAtCreate(t *testing.T) {
	ns := agentNamespace(t)
	d := deployment("bad-deploy", agentPod("x").Spec)
	d.Spec.Template.Spec.HostPID = true
	d.Spec.Template.Spec.Containers[0].Image = "docker.io/library/nginx:latest"
	_, err := env.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a hostPID Deployment was admitted")
	}
	t.Logf("the API server said: %v", err)
	assertCauses(t, err, []string{"spec.template.spec.hostPID", "spec.template.spec.containers[0].image"})
}

func TestGoodDeploymentIsStoredAsSent(t *testing.T) {
	ns := agentNamespace(t)
	// Not hardened by its author: validation judges the template as its pods will be after mutation, and
	// mutation never touches controllers, so GitOps tools see no drift.
	d := deployment("good-deploy", agentPod("x").Spec)
	created, err := env.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a Deployment whose pods will be hardened was refused: %v", err)
	}
	c := created.Spec.Template.Spec.Containers[0]
	if c.SecurityContext != nil || created.Spec.Template.Spec.AutomountServiceAccountToken != nil || len(c.Resources.Limits) != 0 {
		t.Errorf("the Deployment's template was mutated: %+v", created.Spec.Template.Spec)
	}
}

func deployment(name string, spec corev1.PodSpec) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

func TestOtherNamespacesAreNeverSentToAgentgate(t *testing.T) {
	requireServer(t)
	before := env.server.metric(t, "agentgate_admission_requests_total")
	for _, ns := range []string{plainNamespace(t), "kube-system"} {
		pod := agentPod("untouched")
		pod.GenerateName, pod.Name = "untouched-", ""
		pod.Spec.HostNetwork = true // agentgate would deny it; nobody asks agentgate here
		created, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a pod in %s: %v", ns, err)
		}
		if created.Spec.Containers[0].SecurityContext != nil || created.Spec.AutomountServiceAccountToken != nil {
			t.Errorf("pod in %s was mutated: %+v", ns, created.Spec)
		}
		_ = env.client.CoreV1().Pods(ns).Delete(ctx, created.Name, metav1.DeleteOptions{})
	}
	// Label the namespace with something else: still not an agent namespace.
	after := env.server.metric(t, "agentgate_admission_requests_total")
	if after != before {
		t.Errorf("agentgate received %v admission requests for namespaces outside its scope", after-before)
	}
}

func TestPolicyConfigMapUpdateChangesVerdicts(t *testing.T) {
	ns := agentNamespace(t)
	cms := env.client.CoreV1().ConfigMaps(systemNamespace)
	orig, err := cms.Get(ctx, defaultPolicyCM, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cur, err := cms.Get(ctx, defaultPolicyCM, metav1.GetOptions{})
		if err == nil {
			cur.Data = orig.Data
			_, _ = cms.Update(ctx, cur, metav1.UpdateOptions{})
		}
	})
	pod := agentPod("busybox")
	pod.Spec.Containers[0].Image = "docker.io/library/busybox:1.36"
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, dryRun); err == nil {
		t.Fatal("docker.io image admitted before the policy allows it")
	}

	updated := orig.DeepCopy()
	updated.Data["policy.yaml"] = strings.Replace(orig.Data["policy.yaml"],
		`allow: ["registry.corp.example/agents/**"]`, `allow: ["registry.corp.example/agents/**", "docker.io/library/*"]`, 1)
	if updated.Data["policy.yaml"] == orig.Data["policy.yaml"] {
		t.Fatal("test setup: the default policy's allow line changed; update this test")
	}
	changed := time.Now()
	stored, err := cms.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := changed.Add(2 * time.Second)
	for {
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, dryRun)
		if err == nil {
			t.Logf("new verdict served %s after the ConfigMap update", time.Since(changed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy update did not change the verdict within 2s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// An invalid policy is refused by the API server itself, with every field error.
	bad := stored.DeepCopy()
	bad.Data["policy.yaml"] = strings.NewReplacer("mode: enforce", "mode: sometimes", "windows: deny", "windows: maybe").Replace(orig.Data["policy.yaml"])
	_, err = cms.Update(ctx, bad, metav1.UpdateOptions{})
	if err == nil {
		t.Fatal("an invalid policy ConfigMap was accepted")
	}
	t.Logf("the API server said: %v", err)
	for _, f := range []string{"spec.mode", "spec.windows"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("refusal does not name %s: %v", f, err)
		}
	}
}

// warningCollector records the warnings the API server relays from admission webhooks.
type warningCollector struct {
	mu       sync.Mutex
	messages []string
}

func (w *warningCollector) HandleWarningHeader(code int, agent, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, message)
}

func (w *warningCollector) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.messages...)
}

func TestWarnModeShowsWarningsToTheClient(t *testing.T) {
	ns := agentNamespace(t)
	cms := env.client.CoreV1().ConfigMaps(systemNamespace)
	warnPolicy := `apiVersion: agentgate.io/v1alpha1
kind: AgentPolicy
metadata: {name: digests}
spec:
  mode: warn
  images:
    allow: ["registry.corp.example/**"]
    requireDigest: true
`
	if _, err := cms.Create(ctx, policyConfigMap("agentgate-policy-digests", warnPolicy), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cms.Delete(ctx, "agentgate-policy-digests", metav1.DeleteOptions{}) })

	collector := &warningCollector{}
	cfg := rest.CopyConfig(env.cfg)
	cfg.WarningHandler = collector
	client := kubernetes.NewForConfigOrDie(cfg)
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		pod := agentPod("warned")
		pod.Name = pod.Name + "-" + string(rune('a'+i%26))
		_, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("a warn-mode violation must not deny: %v", err)
		}
		if ws := collector.all(); len(ws) > 0 {
			joined := strings.Join(ws, "\n")
			t.Logf("warnings: %s", joined)
			if !strings.Contains(joined, "spec.containers[0].image") || !strings.Contains(joined, "digests") {
				t.Errorf("warning does not name the field and the policy: %s", joined)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no warning reached the client within 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPrivilegedEphemeralContainerIsRefused(t *testing.T) {
	ns := agentNamespace(t)
	pod, err := env.client.CoreV1().Pods(ns).Create(ctx, agentPod("debug-me"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What `kubectl debug --profile=sysadmin` sends.
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "debugger", Image: allowedImage, Stdin: true, TTY: true,
			SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)},
		},
		TargetContainerName: "runner",
	})
	_, err = env.client.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, pod.Name, pod, metav1.UpdateOptions{})
	if err == nil {
		t.Fatal("a privileged ephemeral container was added")
	}
	t.Logf("the API server said: %v", err)
	assertCauses(t, err, []string{"spec.ephemeralContainers[0].securityContext.privileged"})
}

func TestWebhookDownFailsClosedOnlyForAgentNamespaces(t *testing.T) {
	requireServer(t)
	agents := agentNamespace(t)
	plain := plainNamespace(t)
	env.server.stop()
	t.Cleanup(func() {
		if err := env.server.start(); err != nil {
			t.Fatalf("restarting agentgate: %v", err)
		}
		if err := env.waitForWebhook(ctx); err != nil {
			t.Fatal(err)
		}
	})
	_, err := env.client.CoreV1().Pods(agents).Create(ctx, agentPod("while-down"), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a pod was admitted into an agent namespace while agentgate was down (fail-open)")
	}
	t.Logf("agent namespace, webhook down: %v", err)
	if _, err := env.client.CoreV1().Pods(plain).Create(ctx, agentPod("while-down"), metav1.CreateOptions{}); err != nil {
		t.Errorf("a namespace outside agentgate's scope was blocked while agentgate was down: %v", err)
	}
	if _, err := env.client.CoreV1().Pods("kube-system").Create(ctx, agentPod("while-down-ks"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("kube-system was blocked while agentgate was down: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
