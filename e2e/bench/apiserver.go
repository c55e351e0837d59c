package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/e2e/load/corpus"
	"agentgate.io/agentgate/e2e/testcluster"
)

// The pod-create latency that agentgate adds, through a real kube-apiserver (the e2e control plane: etcd and
// kube-apiserver from bin/, driven by envtest). Creates alternate, one at a time, between an agent namespace
// (labelled agentgate.io/agents=true: both webhooks are called once registered) and a plain one (never
// called), so that the machine's load, which moves a lot on a shared machine, hits both series alike.
// Phase 1 runs before the webhook configurations exist (a control: the two namespaces cost the same), phase 2
// with them registered. The figure is, in phase 2, the median in the agent namespace minus the median in
// the plain one; the table also gives the agent namespace with minus without registration.

const benchWebhookName = "agentgate-bench"

type apiSeries struct {
	phase, pod, ns string // ns: "agents" or "plain"
	ms             []float64
}

type apiResult struct {
	n      int
	series []*apiSeries
	cmd    string
	// handled is agentgate's own time per review (the audit events' duration: from the request read to
	// the answer ready), by endpoint and pod, in the agent namespace.
	handled map[string][]float64
	// calls is the API server's own timing of its webhook calls during the measured creates of phase 2, by
	// pod, then webhook name (the floor's copies are named "floor.…").
	calls map[string]map[string]webhookTiming
}

// webhookTiming is a sum and count of apiserver_admission_webhook_admission_duration_seconds: the API server's
// time for one webhook call, from building the review to having decoded the answer.
type webhookTiming struct{ sum, count float64 }

func (t webhookTiming) meanMS() float64 {
	if t.count == 0 {
		return 0
	}
	return t.sum / t.count * 1000
}

// webhookTimings reads the API server's /metrics.
func webhookTimings(ctx context.Context, client kubernetes.Interface) (map[string]webhookTiming, error) {
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing the API server's metrics: %w", err)
	}
	out := map[string]webhookTiming{}
	for _, m := range families["apiserver_admission_webhook_admission_duration_seconds"].GetMetric() {
		var name string
		for _, l := range m.GetLabel() {
			if l.GetName() == "name" {
				name = l.GetValue()
			}
		}
		t := out[name]
		t.sum += m.GetHistogram().GetSampleSum()
		t.count += float64(m.GetHistogram().GetSampleCount())
		out[name] = t
	}
	return out, nil
}

func (a *apiResult) get(phase, pod, ns string) *apiSeries {
	for _, s := range a.series {
		if s.phase == phase && s.pod == pod && s.ns == ns {
			return s
		}
	}
	s := &apiSeries{phase: phase, pod: pod, ns: ns}
	a.series = append(a.series, s)
	return s
}

func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

// added is what agentgate adds to a create of pod: registered, agent namespace minus plain namespace.
func (a *apiResult) added(pod string) float64 { return a.addedBy("agents", pod) }

func (a *apiResult) addedBy(ns, pod string) float64 {
	return median(a.get(phaseWith, pod, ns).ms) - median(a.get(phaseWith, pod, "plain").ms)
}

// addedMS is the headline: the compliant pod as the corpus holds it (already hardened: /mutate has nothing
// to patch, /validate runs every check).
func (a *apiResult) addedMS() float64 { return a.added("hardened") }

const (
	phaseWithout = "1: no webhook configurations"
	phaseWith    = "2: webhooks registered"
)

func (a *apiResult) markdown(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Through the real API server\n\n")
	w("`%s`: etcd + kube-apiserver from bin/ (envtest), `agentgate serve` as a child process (self-signed,\n", a.cmd)
	w("embedded default policy, namespace labels from the cluster, audit log to a file), its two webhook\n")
	w("configurations from manifests/base/webhooks.yaml pointed at it on loopback. Pod creates one at a time\n")
	w("(client-go round trip), n = %d per series, rotating between an agent namespace (agentgate's webhooks select\n", a.n)
	w("it), a floor namespace (a copy of the same configurations points at the decode-only floor) and a plain one,\n")
	w("so that load from other work on the machine hits all alike. \"hardened\" is the corpus\n")
	w("small pod (what a compliant client sends: /mutate returns no patch, /validate runs every check); \"as\n")
	w("written\" is one container with nothing set (/mutate returns a patch that the API server applies, then\n")
	w("/validate judges the result). Neither server offers HTTP/2, so the API server calls both over HTTP/1.1\n")
	w("keep-alive, as it calls every webhook behind a Service (on a loopback URL it would use HTTP/2 if offered).\n\n")
	w("| phase | pod | namespace | median ms | p90 ms | p99 ms |\n|---|---|---|---|---|---|\n")
	for _, s := range a.series {
		w("| %s | %s | %s | %.3f | %.3f | %.3f |\n", s.phase, s.pod, s.ns, median(s.ms), quantile(s.ms, 0.9), quantile(s.ms, 0.99))
	}
	w("\n**Added by the floor (the same two webhook calls to a server that only decodes and allows), median in\n")
	w("its namespace minus the plain one: hardened pod %.3f ms, pod as written %.3f ms. agentgate minus the floor:\n",
		a.addedBy("floor", "hardened"), a.addedBy("floor", "as written"))
	w("%.3f ms and %.3f ms.**\n\n", a.added("hardened")-a.addedBy("floor", "hardened"), a.added("as written")-a.addedBy("floor", "as written"))
	w("\n**Added by agentgate, median in the agent namespace minus median in the plain one with the webhooks\n")
	w("registered: hardened pod %.3f ms, pod as written %.3f ms.** Control (no webhooks): %.3f ms and %.3f ms.\n\n",
		a.added("hardened"), a.added("as written"),
		median(a.get(phaseWithout, "hardened", "agents").ms)-median(a.get(phaseWithout, "hardened", "plain").ms),
		median(a.get(phaseWithout, "as written", "agents").ms)-median(a.get(phaseWithout, "as written", "plain").ms))
	w("Agent namespace, registered minus not: hardened %.3f ms, as written %.3f ms (phases run at different\n",
		median(a.get(phaseWith, "hardened", "agents").ms)-median(a.get(phaseWithout, "hardened", "agents").ms),
		median(a.get(phaseWith, "as written", "agents").ms)-median(a.get(phaseWithout, "as written", "agents").ms))
	w("moments, so load drift is in this one).\n\n")
	w("Floor namespace, the same difference: hardened %.3f ms, as written %.3f ms.\n\n",
		median(a.get(phaseWith, "hardened", "floor").ms)-median(a.get(phaseWithout, "hardened", "floor").ms),
		median(a.get(phaseWith, "as written", "floor").ms)-median(a.get(phaseWithout, "as written", "floor").ms))
	if len(a.handled) > 0 {
		w("agentgate's own handling time of these reviews (audit events' `duration`: body read to answer ready), median:")
		keys := make([]string, 0, len(a.handled))
		for k := range a.handled {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			sep := ","
			if i == len(keys)-1 {
				sep = "."
			}
			w(" %s %.3f ms (n=%d)%s", k, median(a.handled[k]), len(a.handled[k]), sep)
		}
		w("\n")
	}
	if len(a.calls) > 0 {
		w("\nThe API server's own timing of each webhook call during the measured creates of phase 2\n")
		w("(`apiserver_admission_webhook_admission_duration_seconds`, sum over count: from building the review to\n")
		w("having decoded the answer; a mean, so slow outliers weigh in):\n\n")
		w("| pod | webhook | calls | mean ms |\n|---|---|---|---|\n")
		for _, pod := range []string{"hardened", "as written"} {
			names := make([]string, 0, len(a.calls[pod]))
			for name := range a.calls[pod] {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names {
				t := a.calls[pod][name]
				w("| %s | %s | %.0f | %.3f |\n", pod, name, t.count, t.meanMS())
			}
		}
		w("\n")
	}
	w("What is left of the added time once the calls are counted is the API server's admission work around\n")
	w("them (converting the object for the review, applying a patch and decoding the result) and the scheduling\n")
	w("of three busy processes on the machine's cores.\n\n")
}

// readHandled collects the duration of every admission event in ns from agentgate's JSON log.
func readHandled(logPath, ns string) map[string][]float64 {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return nil
	}
	out := map[string][]float64{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var ev struct {
			Event, Endpoint, Namespace string
			Duration                   float64
			Patch                      []string
		}
		if json.Unmarshal(line, &ev) != nil || ev.Namespace != ns || !strings.HasPrefix(ev.Event, "admission.") || ev.Duration == 0 {
			continue
		}
		key := "/" + ev.Endpoint
		if ev.Endpoint == "mutate" {
			key += map[bool]string{true: " (patch)", false: " (no patch)"}[len(ev.Patch) > 0]
		}
		out[key] = append(out[key], ev.Duration*1000)
	}
	return out
}

func runAPIServerCmd(ctx context.Context, args []string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("bench apiserver", flag.ContinueOnError)
	n := fs.Int("n", 300, "pod creates per phase")
	bin := fs.String("agentgate", filepath.Join(root, "bin", "agentgate"), "agentgate binary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := measureAPIServer(ctx, root, *bin, *n, func(string) {})
	if err != nil {
		return err
	}
	var b strings.Builder
	res.markdown(&b)
	fmt.Print(b.String())
	return nil
}

func measureAPIServer(ctx context.Context, root, bin string, n int, record func(string)) (*apiResult, error) {
	res := &apiResult{n: n, cmd: fmt.Sprintf("go run ./e2e/bench apiserver -n %d", n)}
	record(res.cmd + "   # (also run by make bench when bin/kube-apiserver exists)")
	assets := filepath.Join(root, "bin")
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("%s not in bin/: make controlplane", b)
		}
	}
	tmp, err := os.MkdirTemp("", "agentgate-bench-api-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() { _ = env.Stop() }()
	rc := rest.CopyConfig(cfg)
	rc.WarningHandler = rest.NoWarnings{} // the corpus pod's duplicate port names draw a warning per create
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(tmp, "kubeconfig")
	if err := testcluster.WriteKubeconfig(cfg, kubeconfig); err != nil {
		return nil, err
	}
	certDir := filepath.Join(tmp, "certs")
	_, _, caFile, err := certs.SelfSigned(certDir, nil)
	if err != nil {
		return nil, err
	}
	caBundle, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// Namespace labels come from the cluster, as in production (the namespaceSelector is evaluated).
	ag := &server{name: "agentgate", base: "https://" + addr, caFile: caFile,
		argv: []string{bin, "serve", "--addr", addr, "--metrics-addr", "0", "--cert-dir", certDir, "--kubeconfig", kubeconfig}}
	if err := ag.start(filepath.Join(tmp, "agentgate.log")); err != nil {
		return nil, err
	}
	defer ag.stop()
	var quiet recorder
	floorBin, err := buildTool(ctx, root, tmp, "./e2e/load/floor", &quiet)
	if err != nil {
		return nil, err
	}
	fl, err := startFloor(floorBin, tmp, false, false)
	if err != nil {
		return nil, err
	}
	defer fl.stop()

	namespaces := map[string]string{}
	for _, kind := range []string{"agents", "floor", "plain"} {
		labels := map[string]string{}
		switch kind {
		case "agents":
			labels["agentgate.io/agents"] = "true"
		case "floor":
			labels[floorLabel] = "true"
		}
		nsObj, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			GenerateName: kind + "-bench-", Labels: labels}}, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		namespaces[kind] = nsObj.Name
	}
	pods := map[string]func(name, ns string) *corev1.Pod{"hardened": hardenedPod, "as written": writtenPod}
	seq := 0
	create := func(phase, pod, kind string, record bool) error {
		seq++
		obj := pods[pod](fmt.Sprintf("bench-%05d", seq), namespaces[kind])
		start := time.Now()
		created, err := client.CoreV1().Pods(namespaces[kind]).Create(ctx, obj, metav1.CreateOptions{})
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: creating a pod in %s: %w", phase, kind, err)
		}
		// The pod as written comes back hardened exactly when agentgate was called.
		if hooked, hardened := phase == phaseWith && kind == "agents", created.Spec.AutomountServiceAccountToken != nil; pod == "as written" && hooked != hardened {
			return fmt.Errorf("%s: the pod in %s came back hardened: %v, want %v", phase, kind, hardened, hooked)
		}
		if record {
			s := res.get(phase, pod, kind)
			s.ms = append(s.ms, float64(d)/float64(time.Millisecond))
		}
		return nil
	}
	phase := func(name string) error {
		for _, pod := range []string{"hardened", "as written"} {
			var before map[string]webhookTiming
			for i := range n + 10 { // 10 unmeasured pairs first: connections, caches
				if i == 10 && name == phaseWith {
					var err error
					if before, err = webhookTimings(ctx, client); err != nil {
						return err
					}
				}
				order := []string{"agents", "floor", "plain"}
				order = append(order[i%3:], order[:i%3]...) // rotate: each namespace goes first in turn
				for _, kind := range order {
					if err := create(name, pod, kind, i >= 10); err != nil {
						return err
					}
				}
			}
			if before != nil {
				after, err := webhookTimings(ctx, client)
				if err != nil {
					return err
				}
				calls := map[string]webhookTiming{}
				for name, t := range after {
					if d := (webhookTiming{t.sum - before[name].sum, t.count - before[name].count}); d.count > 0 {
						calls[name] = d
					}
				}
				if res.calls == nil {
					res.calls = map[string]map[string]webhookTiming{}
				}
				res.calls[pod] = calls
			}
			fmt.Fprintf(os.Stderr, "bench: api-server %s, %s: agents %.3f ms, floor %.3f ms, plain %.3f ms\n", name, pod,
				median(res.get(name, pod, "agents").ms), median(res.get(name, pod, "floor").ms), median(res.get(name, pod, "plain").ms))
		}
		return nil
	}
	if err := phase(phaseWithout); err != nil {
		return nil, err
	}
	hooks := testcluster.Webhooks{Name: benchWebhookName, BaseURL: "https://" + addr, CABundle: caBundle}
	if err := hooks.Install(ctx, client, root); err != nil {
		return nil, err
	}
	if err := waitForWebhooks(ctx, client, namespaces["agents"]); err != nil {
		return nil, err
	}
	if err := registerFloor(ctx, root, client, fl, namespaces["floor"]); err != nil {
		return nil, err
	}
	if err := phase(phaseWith); err != nil {
		return nil, err
	}
	res.handled = readHandled(filepath.Join(tmp, "agentgate.log"), namespaces["agents"])
	return res, nil
}

// floorLabel selects the namespace whose creates go through the floor (e2e/load/floor: decode and allow)
// instead of agentgate: the least any webhook adds, through the same API server, in the same run.
const floorLabel = "agentgate.io/bench-floor"

// registerFloor installs a copy of the webhook configurations that points at the floor and selects the
// floor namespace. The floor admits everything, so there is no denial to poll for: the copy first points at
// a closed port, and once creates fail the API server uses it; then it is pointed at the floor, and once
// creates succeed again the floor is being called.
func registerFloor(ctx context.Context, root string, client kubernetes.Interface, fl *server, ns string) error {
	pem, err := os.ReadFile(fl.caFile)
	if err != nil {
		return err
	}
	dead, err := freeAddr()
	if err != nil {
		return err
	}
	hooks := testcluster.Webhooks{Name: benchWebhookName + "-floor", BaseURL: "https://" + dead, CABundle: pem,
		NamespaceSelector: map[string]string{floorLabel: "true"}, NamePrefix: "floor."}
	if err := hooks.Install(ctx, client, root); err != nil {
		return err
	}
	creates := func() bool {
		_, err := client.CoreV1().Pods(ns).Create(ctx, writtenPod("probe", ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil
	}
	if err := poll(ctx, func() bool { return !creates() }, "the floor's webhook configurations never took effect"); err != nil {
		return err
	}
	for _, del := range []func() error{
		func() error {
			return client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, hooks.Name, metav1.DeleteOptions{})
		},
		func() error {
			return client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, hooks.Name, metav1.DeleteOptions{})
		},
	} {
		if err := del(); err != nil {
			return err
		}
	}
	hooks.BaseURL = fl.base
	if err := hooks.Install(ctx, client, root); err != nil {
		return err
	}
	return poll(ctx, creates, "creates in the floor namespace never succeeded through the floor")
}

// hardenedPod is the corpus small pod, minus what this bare control plane cannot satisfy (a PriorityClass,
// which the Priority admission plugin resolves).
func hardenedPod(name, ns string) *corev1.Pod {
	obj, err := corpus.Object(corpus.Small)
	if err != nil {
		panic(err)
	}
	p := obj.(*corev1.Pod)
	p.Name, p.Namespace = name, ns
	p.Spec.PriorityClassName, p.Spec.Priority, p.Spec.PreemptionPolicy = "", nil, nil
	return p
}

// writtenPod is an agent pod as users write it: agentgate's mutating webhook fills the rest.
func writtenPod(name, ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "agent"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "runner", Image: "registry.corp.example/agents/runner:1.4.2",
			Command: []string{"/agent"}, Args: []string{"--queue", "tasks"},
		}}},
	}
}

// webhooksActive asks with a dry-run create of a pod agentgate denies.
func webhooksActive(ctx context.Context, client kubernetes.Interface, ns string) bool {
	p := writtenPod("probe", ns)
	p.Spec.HostNetwork = true
	_, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err != nil && strings.Contains(err.Error(), "hostNetwork")
}

func waitForWebhooks(ctx context.Context, client kubernetes.Interface, ns string) error {
	return poll(ctx, func() bool { return webhooksActive(ctx, client, ns) }, "the API server never called agentgate")
}

func poll(ctx context.Context, ok func() bool, msg string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New(msg)
}
