package e2e

// Sandbox depth through the real API server: agent-sandbox's Sandbox and SandboxTemplate (its own CRDs,
// e2e/testdata/agent-sandbox), a pod-making kind declared with --pod-template-kind (a CRD of the project's
// own), and spec.runtime (runtime classes, user namespaces) on pods and templates.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"agentgate.io/agentgate/internal/testutil"
)

var (
	sandboxV1beta1         = schema.GroupVersionResource{Group: "agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxes"}
	sandboxV1alpha1        = schema.GroupVersionResource{Group: "agents.x-k8s.io", Version: "v1alpha1", Resource: "sandboxes"}
	sandboxTemplateV1beta1 = schema.GroupVersionResource{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxtemplates"}
	agentJobV1             = schema.GroupVersionResource{Group: "example.agentgate.io", Version: "v1", Resource: "agentjobs"}
)

// installCRDs installs agent-sandbox's Sandbox and SandboxTemplate CRDs and the AgentJob CRD once, and waits
// until the API server serves them. agent-sandbox's conversion webhook does not run here, so conversion
// between its versions is None (the pod template is at the same path in both).
func installCRDs(t *testing.T) {
	t.Helper()
	installCRDFiles(t, "e2e/testdata/agent-sandbox/agents.x-k8s.io_sandboxes.yaml",
		"e2e/testdata/agent-sandbox/extensions.agents.x-k8s.io_sandboxtemplates.yaml", "e2e/testdata/agentjob-crd.yaml")
}

var (
	crdsMu        sync.Mutex
	crdsInstalled = map[string]error{}
)

// installCRDFiles installs the CRDs of these files (paths from the repository root) once per test process, and
// waits until the API server serves them.
func installCRDFiles(t *testing.T, files ...string) {
	t.Helper()
	crdsMu.Lock()
	defer crdsMu.Unlock()
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		if err, done := crdsInstalled[f]; done {
			if err != nil {
				t.Fatalf("installing the CRD of %s: %v", f, err)
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(env.root, f))
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter}
		crds = append(crds, &crd)
	}
	if len(crds) == 0 {
		return
	}
	_, err := envtest.InstallCRDs(env.cfg, envtest.CRDInstallOptions{CRDs: crds})
	for _, f := range files {
		if _, done := crdsInstalled[f]; !done {
			crdsInstalled[f] = err
		}
	}
	if err != nil {
		t.Fatalf("installing the CRDs of %v: %v", files, err)
	}
}

// object reads a YAML manifest into an unstructured object.
func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return &unstructured.Unstructured{Object: m}
}

// sandboxDoc is an agent-sandbox object whose single container gets extra YAML lines (indented under it).
func sandboxDoc(apiVersion, kind, name, image, extra string) string {
	return fmt.Sprintf(`apiVersion: %s
kind: %s
metadata: {name: %s}
spec:
  podTemplate:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: %s
        command: [/agent]
        args: [--queue, tasks]
%s`, apiVersion, kind, name, image, extra)
}

func TestSandboxRefusedAtCreateWithTemplatePaths(t *testing.T) {
	installCRDs(t)
	ns := agentNamespace(t)
	dyn := dynamic.NewForConfigOrDie(env.cfg)
	for _, tc := range []struct {
		gvr              schema.GroupVersionResource
		apiVersion, kind string
	}{
		{sandboxV1beta1, "agents.x-k8s.io/v1beta1", "Sandbox"},
		{sandboxV1alpha1, "agents.x-k8s.io/v1alpha1", "Sandbox"},
		{sandboxTemplateV1beta1, "extensions.agents.x-k8s.io/v1beta1", "SandboxTemplate"},
	} {
		t.Run(tc.apiVersion+"/"+tc.kind, func(t *testing.T) {
			privileged := object(t, sandboxDoc(tc.apiVersion, tc.kind, "privileged", allowedImage, "        securityContext: {privileged: true}\n"))
			_, err := dyn.Resource(tc.gvr).Namespace(ns).Create(ctx, privileged, metav1.CreateOptions{})
			if err == nil {
				t.Fatalf("a %s with a privileged template was stored", tc.kind)
			}
			t.Logf("the API server said: %v", err)
			assertCauses(t, err, []string{"spec.podTemplate.spec.containers[0].securityContext.privileged"})

			unlisted := object(t, sandboxDoc(tc.apiVersion, tc.kind, "unlisted", "docker.io/library/busybox:1.36", ""))
			_, err = dyn.Resource(tc.gvr).Namespace(ns).Create(ctx, unlisted, metav1.CreateOptions{})
			if err == nil {
				t.Fatalf("a %s with an unlisted image was stored", tc.kind)
			}
			assertCauses(t, err, []string{"spec.podTemplate.spec.containers[0].image"})
		})
	}
}

// TestGoodSandboxIsStoredAsSent: a Sandbox whose pod will be hardened is admitted and never mutated; an
// update that leaves its template alone is admitted, one that breaks the template is refused.
func TestGoodSandboxIsStoredAsSent(t *testing.T) {
	installCRDs(t)
	ns := agentNamespace(t)
	sandboxes := dynamic.NewForConfigOrDie(env.cfg).Resource(sandboxV1beta1).Namespace(ns)
	sent := object(t, sandboxDoc("agents.x-k8s.io/v1beta1", "Sandbox", "good", allowedImage, ""))
	created, err := sandboxes.Create(ctx, sent.DeepCopy(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a Sandbox whose pod will be hardened was refused: %v", err)
	}
	stored, err := sandboxes.Get(ctx, created.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := unstructured.NestedMap(sent.Object, "spec", "podTemplate")
	got, _, _ := unstructured.NestedMap(stored.Object, "spec", "podTemplate")
	if !sameJSON(t, got, want) {
		t.Errorf("the stored pod template differs from the one sent:\n got %v\nwant %v", got, want)
	}

	stored.SetLabels(map[string]string{"team": "agents"})
	if stored, err = sandboxes.Update(ctx, stored, metav1.UpdateOptions{}); err != nil {
		t.Errorf("a label-only update was refused: %v", err)
	}
	containers, _, _ := unstructured.NestedSlice(stored.Object, "spec", "podTemplate", "spec", "containers")
	containers[0].(map[string]any)["securityContext"] = map[string]any{"runAsUser": int64(0)}
	if err := unstructured.SetNestedSlice(stored.Object, containers, "spec", "podTemplate", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	_, err = sandboxes.Update(ctx, stored, metav1.UpdateOptions{})
	if err == nil {
		t.Fatal("an update to a root template was stored")
	}
	assertCauses(t, err, []string{"spec.podTemplate.spec.containers[0].securityContext.runAsUser"})
}

// TestDeclaredPodTemplateKind: a second agentgate runs with --pod-template-kind for the AgentJob CRD (and two
// declarations the API server does not serve, which it warns about and keeps running); a webhook rule for
// agentjobs, as an admin would add one, sends them to it.
func TestDeclaredPodTemplateKind(t *testing.T) {
	requireServer(t)
	installCRDs(t)
	p := startDeclaredKindServer(t,
		"--pod-template-kind", "example.agentgate.io/v1/AgentJob=spec.runner.template",
		"--pod-template-kind", "example.agentgate.io/v1/AgentTask=spec.template",
		"--pod-template-kind", "example.agentgate.io/v2/AgentJob=spec.template")
	for _, want := range []string{
		`"event":"kinds.served","kind":"example.agentgate.io/v1/AgentJob=spec.runner.template"`,
		`"event":"kinds.not_served","kind":"example.agentgate.io/v1/AgentTask=spec.template"`,
		`"event":"kinds.not_served","kind":"example.agentgate.io/v2/AgentJob=spec.template"`,
	} {
		waitForLog(t, p, want)
	}
	installAgentJobWebhook(t, p.addr)

	ns := agentNamespace(t)
	jobs := dynamic.NewForConfigOrDie(env.cfg).Resource(agentJobV1).Namespace(ns)
	job := func(name, template string) *unstructured.Unstructured {
		return object(t, fmt.Sprintf("apiVersion: example.agentgate.io/v1\nkind: AgentJob\nmetadata: {name: %s}\nspec:\n  parallelism: 2\n  runner:\n    retries: 1\n%s", name, template))
	}
	const badTemplate = `    template:
      spec:
        hostPID: true
        containers:
        - {name: a, image: ` + allowedImage + `, securityContext: {privileged: true}}
`
	// The API server applies a new webhook configuration asynchronously: wait until it calls this server.
	testutil.Eventually(t, 30*time.Second, "the API server sending AgentJobs to agentgate", func() error {
		return refusedNaming(jobs.Create(ctx, job("probe", badTemplate), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}))("spec.runner.template.spec.hostPID")
	})

	_, err := jobs.Create(ctx, job("bad", badTemplate), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("an AgentJob with a hostPID, privileged template was stored")
	}
	t.Logf("the API server said: %v", err)
	assertCauses(t, err, []string{"spec.runner.template.spec.hostPID", "spec.runner.template.spec.containers[0].securityContext.privileged"})

	for _, tc := range []struct {
		name, template, field string
	}{
		// The CRD keeps unknown fields in the template: agentgate's strict decoding meets the typo.
		{"misspelt field", "    template:\n      spec:\n        containers:\n        - {name: a, image: " + allowedImage + ", securityContex: {privileged: true}}\n",
			"spec.runner.template.spec.containers[0].securityContex"},
		{"no template at the declared path", "", "spec.runner.template"},
		{"a pod spec where the template belongs", "    template:\n      containers:\n      - {name: a, image: " + allowedImage + "}\n",
			"spec.runner.template.containers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jobs.Create(ctx, job("bad-input", tc.template), metav1.CreateOptions{})
			if err == nil {
				t.Fatal("stored")
			}
			t.Logf("the API server said: %v", err)
			assertCauses(t, err, []string{tc.field})
		})
	}

	const goodTemplate = "    template:\n      metadata: {labels: {app: job}}\n      spec:\n        containers:\n        - {name: a, image: " + allowedImage + ", command: [/agent]}\n"
	sent := job("good", goodTemplate)
	created, err := jobs.Create(ctx, sent.DeepCopy(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a good AgentJob was refused: %v", err)
	}
	want, _, _ := unstructured.NestedMap(sent.Object, "spec")
	got, _, _ := unstructured.NestedMap(created.Object, "spec")
	if !sameJSON(t, got, want) {
		t.Errorf("the stored spec differs from the one sent:\n got %v\nwant %v", got, want)
	}
}

// sameJSON compares two decoded objects as JSON: numbers decoded from YAML (float64) and from the API
// server (int64) are the same value.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// startDeclaredKindServer runs a second `agentgate serve` with extra flags, on the suite's certificate, and
// waits until it is ready.
func startDeclaredKindServer(t *testing.T, args ...string) *serverProcess {
	t.Helper()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{bin: env.server.bin, certDir: env.server.certDir, kubeconfig: env.kubeconfig, addr: addr, metricsAddr: metricsAddr,
		logPath: filepath.Join(t.TempDir(), "declared.log")}
	if p.log, err = os.Create(p.logPath); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, append([]string{"serve", "--addr", addr, "--metrics-addr", metricsAddr, "--cert-dir", p.certDir,
		"--kubeconfig", p.kubeconfig, "--watch-configmaps", "--namespace", systemNamespace}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- declared-kind server log ---\n%s", certLogTail(p.logPath, 8000))
		}
	})
	if err := p.waitReady(); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitForLog waits until the server's log holds want (its events are written as they happen).
func waitForLog(t *testing.T, p *serverProcess, want string) {
	t.Helper()
	testutil.EventuallyTrue(t, 15*time.Second, "the log saying "+want, func() bool {
		data, _ := os.ReadFile(p.logPath)
		return strings.Contains(string(data), want)
	})
}

// refusedNaming turns a create's result into a condition: refused with a message naming field.
func refusedNaming[T any](_ T, err error) func(field string) error {
	return func(field string) error {
		switch {
		case err == nil:
			return fmt.Errorf("admitted")
		case !strings.Contains(err.Error(), field):
			return err
		}
		return nil
	}
}

// installAgentJobWebhook adds the rule an admin adds for a declared kind: agentjobs in agent namespaces to
// /validate, failing closed.
func installAgentJobWebhook(t *testing.T, addr string) {
	t.Helper()
	url := "https://" + addr + "/validate"
	fail, none, equivalent := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.NamespacedScope
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "agentgate-e2e-agentjobs"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "validate.agentjobs.agentgate.io",
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: env.caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"example.agentgate.io"}, APIVersions: []string{"v1"}, Resources: []string{"agentjobs"}, Scope: &scope},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{agentLabel: "true"}},
			FailurePolicy:     &fail, SideEffects: &none, MatchPolicy: &equivalent, TimeoutSeconds: ptr(int32(5)),
		}},
	}
	arv1 := env.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := arv1.Create(ctx, c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = arv1.Delete(ctx, c.Name, metav1.DeleteOptions{}) })
}

const runtimeLabel = "e2e.agentgate.io/runtime"

// TestRuntimeClassAndUserNamespaces: a second policy with spec.runtime selects one namespace. Pods there are
// stored with the default RuntimeClass and hostUsers: false filled in (and the API server's RuntimeClass and
// user-namespace validation accept them); pods and templates that name another RuntimeClass or hostUsers:
// true are refused with their field paths; a RuntimeClass that does not exist is the API server's to refuse.
func TestRuntimeClassAndUserNamespaces(t *testing.T) {
	installCRDs(t)
	rcs := env.client.NodeV1().RuntimeClasses()
	for name, handler := range map[string]string{"e2e-gvisor": "runsc", "e2e-runc": "runc"} {
		if _, err := rcs.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rcs.Delete(ctx, name, metav1.DeleteOptions{}) })
	}

	doc, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runtimeDoc := strings.NewReplacer("name: agents\n", "name: runtime\n", `agentgate.io/agents: "true"`, runtimeLabel+`: "true"`).Replace(string(doc)) +
		"  runtime:\n    runtimeClassNames: [e2e-gvisor]\n    defaultRuntimeClassName: e2e-gvisor\n    hostUsers: false\n"
	cms := env.client.CoreV1().ConfigMaps(systemNamespace)
	if _, err := cms.Create(ctx, policyConfigMap("agentgate-policy-runtime", runtimeDoc), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the runtime policy: %v", err)
	}
	t.Cleanup(func() { _ = cms.Delete(ctx, "agentgate-policy-runtime", metav1.DeleteOptions{}) })

	nsObj, err := env.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "runtime-", Labels: map[string]string{agentLabel: "true", runtimeLabel: "true"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	pods := env.client.CoreV1().Pods(ns)

	rootful := agentPod("rootful")
	rootful.Spec.HostUsers = ptr(true)
	testutil.Eventually(t, 10*time.Second, "the runtime policy served", func() error {
		return refusedNaming(pods.Create(ctx, rootful, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}))("spec.hostUsers")
	})

	created, err := pods.Create(ctx, agentPod("sandboxed"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("an agent pod was refused under the runtime policy: %v", err)
	}
	if rc := created.Spec.RuntimeClassName; rc == nil || *rc != "e2e-gvisor" {
		t.Errorf("runtimeClassName = %v, want e2e-gvisor", rc)
	}
	if hu := created.Spec.HostUsers; hu == nil || *hu {
		t.Errorf("hostUsers = %v, want false", hu)
	}

	_, err = pods.Create(ctx, rootful, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a pod with hostUsers: true was admitted")
	}
	assertCauses(t, err, []string{"spec.hostUsers"})

	runc := agentPod("runc")
	runc.Spec.RuntimeClassName = ptr("e2e-runc")
	_, err = pods.Create(ctx, runc, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a pod with an unlisted RuntimeClass was admitted")
	}
	t.Logf("the API server said: %v", err)
	assertCauses(t, err, []string{"spec.runtimeClassName"})

	// A pod that shares the node's PID namespace is refused by agentgate, with agentgate's causes: its
	// hostUsers is not filled, which the API server would refuse beside hostPID with a message of its own.
	hostPID := agentPod("hostpid")
	hostPID.Spec.HostPID = true
	_, err = pods.Create(ctx, hostPID, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a hostPID pod was admitted")
	}
	assertCauses(t, err, []string{"spec.hostPID", "spec.hostUsers"})

	d := deployment("rootful", agentPod("x").Spec)
	d.Spec.Template.Spec.HostUsers = ptr(true)
	_, err = env.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a Deployment with hostUsers: true was stored")
	}
	assertCauses(t, err, []string{"spec.template.spec.hostUsers"})
	good, err := env.client.AppsV1().Deployments(ns).Create(ctx, deployment("sandboxed", agentPod("x").Spec), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a Deployment whose pods will get the runtime class was refused: %v", err)
	}
	if good.Spec.Template.Spec.RuntimeClassName != nil || good.Spec.Template.Spec.HostUsers != nil {
		t.Errorf("the Deployment's template was mutated: %+v", good.Spec.Template.Spec)
	}

	sandbox := object(t, sandboxDoc("agents.x-k8s.io/v1beta1", "Sandbox", "runc", allowedImage, ""))
	if err := unstructured.SetNestedField(sandbox.Object, "e2e-runc", "spec", "podTemplate", "spec", "runtimeClassName"); err != nil {
		t.Fatal(err)
	}
	_, err = dynamic.NewForConfigOrDie(env.cfg).Resource(sandboxV1beta1).Namespace(ns).Create(ctx, sandbox, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a Sandbox with an unlisted RuntimeClass was stored")
	}
	assertCauses(t, err, []string{"spec.podTemplate.spec.runtimeClassName"})

	// agentgate does not look RuntimeClasses up: the API server's RuntimeClass admission refuses a pod whose
	// filled-in RuntimeClass does not exist, with its own message.
	if err := rcs.Delete(ctx, "e2e-gvisor", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pods.Create(ctx, agentPod("no-runtimeclass"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), `RuntimeClass "e2e-gvisor" not found`) {
		t.Errorf("a pod filled with a RuntimeClass that does not exist: %v; want the API server's refusal", err)
	}
}
