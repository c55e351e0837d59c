package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	agtest "agentgate.io/agentgate/internal/testutil"
	"agentgate.io/agentgate/policy"
)

// TestBackgroundAudit: the running pods the policies select are judged; the metric counts failing pods by
// policy and check; one audit.violation per failing pod up to the cap, then one audit.truncated; a policy change
// runs it again.
func TestBackgroundAudit(t *testing.T) {
	pod := func(ns, name string, edit func(*corev1.Pod)) *corev1.Pod {
		p := runningAgentPod(0)
		p.Namespace, p.Name = ns, name
		if edit != nil {
			edit(p)
		}
		return p
	}
	bigLimit := func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("16Gi")
	}
	otherRegistry := func(p *corev1.Pod) { p.Spec.Containers[0].Image = "elsewhere.example/x:1" }
	client := fake.NewClientset(
		pod("agents", "good", nil), pod("agents", "big", bigLimit), pod("agents", "foreign", otherRegistry),
		pod("agents", "both", func(p *corev1.Pod) { bigLimit(p); otherRegistry(p) }),
		pod("plain", "foreign", otherRegistry), // not selected: no agent label
		pod("agents", "done", func(p *corev1.Pod) { otherRegistry(p); p.Status.Phase = corev1.PodSucceeded }),
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pods, err := StartPodCache(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	// The policies in force, as webhook.Snapshot gives them: a set and a channel closed when it is replaced.
	var mu sync.Mutex
	current, replaced := policy.NewSet(parsePolicy(t)), make(chan struct{})
	source := func() (*policy.Set, <-chan struct{}) {
		mu.Lock()
		defer mu.Unlock()
		return current, replaced
	}
	swap := func(s *policy.Set) {
		mu.Lock()
		defer mu.Unlock()
		current = s
		close(replaced)
		replaced = make(chan struct{})
	}
	logs := &agtest.LogBuffer{}
	a := &BackgroundAudit{
		Pods: pods, Policies: source, MaxEvents: 2,
		Namespaces: Namespaces{Labels: labelsOf(map[string]map[string]string{"agents": agentNS, "plain": {}})},
		Logger:     slog.New(slog.NewJSONHandler(logs, nil)),
	}
	reg := prometheus.NewRegistry()
	if err := a.Register(reg); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()

	agtest.EventuallyTrue(t, 10*time.Second, "the first run", func() bool { return len(logs.Events("audit.completed")) == 1 })
	// gauge reads a series without creating it: absent is -1.
	gauge := func(p, check string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "agentgate_audit_violations" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["policy"] == p && l["check"] == check {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1
	}
	if got, want := [2]float64{gauge("agents", "resources"), gauge("agents", "images")}, [2]float64{2, 2}; got != want {
		t.Errorf("violations resources, images = %v, want %v", got, want)
	}
	if n := testutil.CollectAndCount(a.violations); n != 2 {
		t.Errorf("%d violation series, want 2 (policy, check)", n)
	}
	if ts := testutil.ToFloat64(a.lastRun); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last run timestamp %v", ts)
	}
	var logged []string
	for _, e := range logs.Events("audit.violation") {
		logged = append(logged, e["namespace"].(string)+"/"+e["pod"].(string))
	}
	if !slices.Equal(logged, []string{"agents/big", "agents/both"}) {
		t.Errorf("audit.violation for %v, want the first two failing pods by name", logged)
	}
	if tr := logs.Events("audit.truncated"); len(tr) != 1 || tr[0]["unlogged"] != float64(1) {
		t.Errorf("audit.truncated: %v", tr)
	}
	if c := logs.Events("audit.completed")[0]; c["judged"] != float64(4) || c["violating"] != float64(3) {
		t.Errorf("audit.completed: %v", c)
	}

	// A change of policy: the audit runs again at once and reports by the new set.
	swap(policy.NewSet(parsePolicy(t, "max: {cpu: \"4\", memory: 8Gi}", "max: {cpu: \"4\", memory: 32Gi}")))
	agtest.EventuallyTrue(t, 10*time.Second, "the run after the change", func() bool { return len(logs.Events("audit.completed")) == 2 })
	if got := [2]float64{gauge("agents", "resources"), gauge("agents", "images")}; got != [2]float64{-1, 2} {
		t.Errorf("after the change, resources, images = %v, want no resources series and 2", got)
	}
	cancel()
	<-done
	if n := testutil.CollectAndCount(a.violations); n != 0 {
		t.Errorf("%d violation series after Run returned: a replica that stopped leading must not report", n)
	}
}

// TestBackgroundAuditJudgesNetworkPolicies: beside the running pods, the NetworkPolicies of their namespaces
// are judged by the policy that manages the network there: one written before the namespace was managed that
// widens the pods' egress is counted, logged and reported like a failing pod; one within the policy is not.
func TestBackgroundAuditJudgesNetworkPolicies(t *testing.T) {
	ctx := t.Context()
	runner := runningAgentPod(1)
	pods, err := StartPodCache(ctx, fake.NewClientset(runner))
	if err != nil {
		t.Fatal(err)
	}
	net, errs := policy.Parse([]byte(netPolicy("agentgate.io/agents", "{cidr: 10.0.0.0/8, ports: [{port: 443}]}")))
	if errs != nil {
		t.Fatal(errs)
	}
	set := policy.NewSet(parsePolicy(t), net)
	np := func(name string, egress []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "agents", UID: types.UID("uid-" + name)},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, Egress: egress}}
	}
	port := intstr.FromInt32(443)
	within := np("api-only", []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.1.0.0/16"}}},
		Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
	}})
	open := np("legacy-open", []networkingv1.NetworkPolicyEgressRule{{}})
	logs := &agtest.LogBuffer{}
	a := &BackgroundAudit{
		Pods: pods, Policies: func() (*policy.Set, <-chan struct{}) { return set, nil },
		Namespaces: Namespaces{Labels: labelsOf(map[string]map[string]string{"agents": agentNS})},
		NetworkPolicies: func(ns string) []*networkingv1.NetworkPolicy {
			if ns == "agents" {
				return []*networkingv1.NetworkPolicy{within, open}
			}
			return nil
		},
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	}
	reg := prometheus.NewRegistry()
	if err := a.Register(reg); err != nil {
		t.Fatal(err)
	}
	agtest.EventuallyTrue(t, 10*time.Second, "the pod cache", func() bool { return len(pods.Running("agents")) == 1 })
	sum := a.RunOnce(ctx)
	if sum.Judged != 1 || sum.NetworkPolicies != 2 || sum.Violating != 1 {
		t.Fatalf("summary %+v: want the pod and both NetworkPolicies judged, legacy-open failing", sum)
	}
	evs := logs.Events("audit.violation")
	if len(evs) != 1 || evs[0]["networkpolicy"] != "legacy-open" || evs[0]["namespace"] != "agents" {
		t.Errorf("audit.violation events %v", evs)
	}
	if got := testutil.ToFloat64(a.violations.WithLabelValues("net", policy.CheckNetworkEgress)); got != 1 {
		t.Errorf("agentgate_audit_violations{net, networkEgress} = %v, want 1", got)
	}
}
