package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/internal/metricstest"
	"agentgate.io/agentgate/internal/testutil"
	"agentgate.io/agentgate/policy"
)

type testServer struct {
	t          *testing.T
	srv        *Server
	url        string
	metricsURL string
	client     *http.Client
	roots      *x509.CertPool
	caPEM      []byte
	logs       *testutil.LogBuffer
}

// startServer runs the real server on 127.0.0.1:0 over HTTPS with a fresh self-signed certificate, and a
// client that trusts its CA. It returns once /readyz says ready.
// selfSigned makes a self-signed serving certificate for 127.0.0.1 and returns it with its CA as a pool and
// as PEM.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool, []byte) {
	tb.Helper()
	certFile, keyFile, caFile, err := certs.SelfSigned(tb.TempDir(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		tb.Fatal(err)
	}
	roots, err := certs.PoolFromPEM(caPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return pair, roots, caPEM
}

func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	pair, roots, caPEM := selfSigned(t)
	logs := &testutil.LogBuffer{}
	opts.Addr = "127.0.0.1:0"
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "127.0.0.1:0"
	}
	if opts.GetCertificate == nil {
		opts.GetCertificate = StaticCertificate(pair)
	}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var client *http.Client
	t.Cleanup(func() {
		client.CloseIdleConnections() // else HTTP/2's graceful close waits a second for the client
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after cancel")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}}
	ts := &testServer{t: t, srv: srv, url: "https://" + srv.Addr().String(), roots: roots, caPEM: caPEM, logs: logs, client: client}
	if a := srv.MetricsAddr(); a != nil {
		ts.metricsURL = "http://" + a.String() + "/metrics"
	}
	ts.waitReady(opts.ClientCAs != nil)
	return ts
}

// waitReady polls /readyz over HTTPS, or on the metrics listener when the HTTPS one wants a client certificate.
func (ts *testServer) waitReady(plain bool) {
	ts.t.Helper()
	url, client := ts.url+"/readyz", ts.client
	if plain {
		url, client = strings.TrimSuffix(ts.metricsURL, "/metrics")+"/readyz", http.DefaultClient
	}
	testutil.WaitHTTPOK(ts.t, client, url, 10*time.Second)
}

// post sends body to path and returns the HTTP status, the decoded review (nil if the answer is not one)
// and the raw answer.
func (ts *testServer) post(path string, body []byte) (int, *admissionv1.AdmissionReview, []byte) {
	ts.t.Helper()
	return ts.do(http.MethodPost, path, "application/json", body)
}

func (ts *testServer) do(method, path, contentType string, body []byte) (int, *admissionv1.AdmissionReview, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	var rev admissionv1.AdmissionReview
	if resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &rev) == nil && rev.Response != nil {
		return resp.StatusCode, &rev, raw
	}
	return resp.StatusCode, nil, raw
}

// answer posts a review and requires a 200 with an AdmissionReview whose UID is echoed.
func (ts *testServer) answer(path string, r rv) *admissionv1.AdmissionResponse {
	ts.t.Helper()
	code, rev, raw := ts.post(path, r.body(ts.t))
	if code != http.StatusOK || rev == nil {
		ts.t.Fatalf("POST %s: HTTP %d: %s", path, code, raw)
	}
	if rev.Response.UID != types.UID(r.uidOr()) {
		ts.t.Errorf("uid %q not echoed: got %q", r.uidOr(), rev.Response.UID)
	}
	wantVersion := r.apiVersion
	if wantVersion == "" {
		wantVersion = reviewV1
	}
	if rev.APIVersion != wantVersion || rev.Kind != "AdmissionReview" {
		ts.t.Errorf("answered as %s %s, want %s AdmissionReview", rev.APIVersion, rev.Kind, wantVersion)
	}
	return rev.Response
}

func (ts *testServer) healthy() {
	ts.t.Helper()
	resp, err := ts.client.Get(ts.url + "/healthz")
	if err != nil {
		ts.t.Fatalf("/healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ts.t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}

// metric sums the series of name whose label text contains every match.
func (ts *testServer) metric(name string, match ...string) float64 {
	ts.t.Helper()
	v, err := metricstest.Fetch(ts.metricsURL, name, match...)
	if err != nil {
		ts.t.Fatal(err)
	}
	return v
}

func (ts *testServer) readyStatus() (int, ReadyStatus) {
	ts.t.Helper()
	resp, err := ts.client.Get(ts.url + "/readyz")
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st ReadyStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, st
}

// rv builds an AdmissionReview request body.
type rv struct {
	apiVersion string // default admission.k8s.io/v1
	uid        string
	op         admissionv1.Operation // default CREATE
	gvk        metav1.GroupVersionKind
	namespace  string
	name       string
	sub        string
	user       string // request.userInfo.username; "tester" when empty
	obj, old   any    // marshalled with encoding/json; []byte is used as is
}

func (r rv) uidOr() string {
	if r.uid == "" {
		return "uid-" + r.name
	}
	return r.uid
}

func raw(t testing.TB, v any) json.RawMessage {
	t.Helper()
	if v == nil {
		return nil
	}
	if b, ok := v.([]byte); ok {
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r rv) body(t testing.TB) []byte {
	t.Helper()
	if r.apiVersion == "" {
		r.apiVersion = reviewV1
	}
	if r.op == "" {
		r.op = admissionv1.Create
	}
	req := map[string]any{
		"uid":       r.uidOr(),
		"kind":      r.gvk,
		"resource":  map[string]string{"group": r.gvk.Group, "version": r.gvk.Version, "resource": strings.ToLower(r.gvk.Kind) + "s"},
		"namespace": r.namespace,
		"name":      r.name,
		"operation": r.op,
		"userInfo":  map[string]any{"username": cmp.Or(r.user, "tester")},
	}
	if r.sub != "" {
		req["subResource"] = r.sub
	}
	if o := raw(t, r.obj); o != nil {
		req["object"] = o
	}
	if o := raw(t, r.old); o != nil {
		req["oldObject"] = o
	}
	b, err := json.Marshal(map[string]any{"apiVersion": r.apiVersion, "kind": "AdmissionReview", "request": req})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	podGVK = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	cmGVK  = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
)

const (
	agentsNS     = "agents"
	allowedImage = "registry.corp.example/agents/runner:1.4.2"
)

func podReview(p *corev1.Pod) rv {
	return rv{gvk: podGVK, namespace: p.Namespace, name: p.Name, obj: p}
}

// minimalPod is what an agent's author writes: the mutating webhook fills in the rest.
func minimalPod(name string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: agentsNS, Labels: map[string]string{"app": "agent"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "runner", Image: allowedImage, Command: []string{"/agent"}, Args: []string{"--queue", "tasks"},
		}}},
	}
}

func ptr[T any](v T) *T { return &v }

// compliantPod passes the default policy as it is.
func compliantPod(name string) *corev1.Pod {
	p := minimalPod(name)
	p.Spec.AutomountServiceAccountToken = ptr(false)
	p.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	c := &p.Spec.Containers[0]
	c.SecurityContext = &corev1.SecurityContext{
		ReadOnlyRootFilesystem:   ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	return p
}

// badPod breaks several checks at once; badPodFields are the paths every denial must carry.
func badPod(name string) *corev1.Pod {
	p := minimalPod(name)
	p.Spec.HostPID = true
	p.Spec.HostNetwork = true
	c := &p.Spec.Containers[0]
	c.Image = "docker.io/library/nginx:latest"
	c.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true), ReadOnlyRootFilesystem: ptr(false), RunAsUser: ptr(int64(0))}
	return p
}

var badPodFields = []string{
	"spec.hostNetwork",
	"spec.hostPID",
	"spec.containers[0].securityContext.privileged",
	"spec.containers[0].securityContext.readOnlyRootFilesystem",
	"spec.containers[0].securityContext.runAsUser",
	"spec.containers[0].image",
}

// policyDoc returns the default policy with replacements applied (old, new pairs), failing if one is absent.
func policyDoc(t *testing.T, replacements ...string) []byte {
	t.Helper()
	doc := string(policy.DefaultPolicyYAML())
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(doc, replacements[i]) {
			t.Fatalf("default policy has no %q: update the test", replacements[i])
		}
		doc = strings.Replace(doc, replacements[i], replacements[i+1], 1)
	}
	return []byte(doc)
}

func staticPolicy(t *testing.T, replacements ...string) Options {
	return Options{Sources: []Source{StaticSource{"test:agents": policyDoc(t, replacements...)}}}
}

// causes returns the field paths of a denial's causes.
func causes(resp *admissionv1.AdmissionResponse) map[string]bool {
	out := map[string]bool{}
	if resp.Result != nil && resp.Result.Details != nil {
		for _, c := range resp.Result.Details.Causes {
			out[c.Field] = true
		}
	}
	return out
}

func requireDenied(t *testing.T, resp *admissionv1.AdmissionResponse, fields ...string) {
	t.Helper()
	if resp.Allowed {
		t.Fatalf("admitted; want denied with causes %v", fields)
	}
	if resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Reason != metav1.StatusReasonInvalid {
		t.Fatalf("denial is not a 422 Invalid status: %+v", resp.Result)
	}
	got := causes(resp)
	for _, f := range fields {
		if !got[f] {
			t.Errorf("no cause for %s; causes: %v", f, got)
		}
		if !strings.Contains(resp.Result.Message, f) {
			t.Errorf("message does not name %s: %s", f, resp.Result.Message)
		}
	}
}

func requireAllowed(t *testing.T, resp *admissionv1.AdmissionResponse) {
	t.Helper()
	if !resp.Allowed {
		msg := ""
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		t.Fatalf("denied: %s", msg)
	}
}

// Controllers wrapping a pod spec, for the template-path tests.
func controllers(spec corev1.PodSpec) map[string]struct {
	gvk      metav1.GroupVersionKind
	obj      any
	specPath string
} {
	labels := map[string]string{"app": "agent"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	meta := func(kind, apiVersion string) (metav1.TypeMeta, metav1.ObjectMeta) {
		return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, metav1.ObjectMeta{Name: strings.ToLower(kind), Namespace: agentsNS}
	}
	type entry = struct {
		gvk      metav1.GroupVersionKind
		obj      any
		specPath string
	}
	out := map[string]entry{}
	tm, om := meta("Deployment", "apps/v1")
	out["Deployment"] = entry{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		&appsv1.Deployment{TypeMeta: tm, ObjectMeta: om, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}}, "spec.template.spec"}
	tm, om = meta("ReplicaSet", "apps/v1")
	out["ReplicaSet"] = entry{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
		&appsv1.ReplicaSet{TypeMeta: tm, ObjectMeta: om, Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl}}, "spec.template.spec"}
	tm, om = meta("StatefulSet", "apps/v1")
	out["StatefulSet"] = entry{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"},
		&appsv1.StatefulSet{TypeMeta: tm, ObjectMeta: om, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}}, "spec.template.spec"}
	tm, om = meta("DaemonSet", "apps/v1")
	out["DaemonSet"] = entry{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"},
		&appsv1.DaemonSet{TypeMeta: tm, ObjectMeta: om, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, "spec.template.spec"}
	tm, om = meta("Job", "batch/v1")
	out["Job"] = entry{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		&batchv1.Job{TypeMeta: tm, ObjectMeta: om, Spec: batchv1.JobSpec{Template: tmpl}}, "spec.template.spec"}
	tm, om = meta("CronJob", "batch/v1")
	out["CronJob"] = entry{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"},
		&batchv1.CronJob{TypeMeta: tm, ObjectMeta: om, Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}}, "spec.jobTemplate.spec.template.spec"}
	tm, om = meta("ReplicationController", "v1")
	out["ReplicationController"] = entry{metav1.GroupVersionKind{Version: "v1", Kind: "ReplicationController"},
		&corev1.ReplicationController{TypeMeta: tm, ObjectMeta: om, Spec: corev1.ReplicationControllerSpec{Selector: labels, Template: &tmpl}}, "spec.template.spec"}
	return out
}
