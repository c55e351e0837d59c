package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Issue 11, classes 1 and 2, through the real API server: in-place resize, pod-level resources, extended
// resources and priority classes. Every assertion is on what the API server answered or stored.

func quantities(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

// requireAgentgateDenial: the refusal is agentgate's (its message, a cause per field), not the API server's.
func requireAgentgateDenial(t *testing.T, err error, fields ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want agentgate to deny %v", fields)
	}
	if !strings.Contains(err.Error(), "agentgate: Pod") {
		t.Fatalf("refused, but not by agentgate: %v", err)
	}
	assertCauses(t, err, fields)
}

// requireAPIServerRefusal: the API server itself refuses the request, before or without agentgate.
func requireAPIServerRefusal(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted; want the API server to refuse it")
	}
	if strings.Contains(err.Error(), "agentgate") || !strings.Contains(err.Error(), want) {
		t.Fatalf("refusal %q; want the API server's own, containing %q", err, want)
	}
}

func TestResizeIsJudged(t *testing.T) {
	ns := agentNamespace(t)
	pods := env.client.CoreV1().Pods(ns)
	created, err := pods.Create(ctx, agentPod("resized"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	limits := func(p *corev1.Pod) string {
		l := p.Spec.Containers[0].Resources.Limits
		return l.Cpu().String() + "/" + l.Memory().String()
	}
	if got := limits(created); got != "1/512Mi" {
		t.Fatalf("stored limits %s, want the defaults 1/512Mi", got)
	}

	// The reproducer: same requests (same QoS class), limits raised to 64 CPU / 256Gi.
	big := created.DeepCopy()
	big.Spec.Containers[0].Resources.Limits = quantities("cpu", "64", "memory", "256Gi")
	_, err = pods.UpdateResize(ctx, created.Name, big, metav1.UpdateOptions{})
	requireAgentgateDenial(t, err, "spec.containers[0].resources.limits[cpu]", "spec.containers[0].resources.limits[memory]",
		"spec.resources.limits[memory]")

	// The same through a patch on the subresource, as kubectl patch --subresource resize and the VPA do.
	patch := `{"spec":{"containers":[{"name":"runner","resources":{"limits":{"cpu":"64000m"}}}]}}`
	_, err = pods.Patch(ctx, created.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "resize")
	requireAgentgateDenial(t, err, "spec.containers[0].resources.limits[cpu]")

	// A GPU cannot be added by resize either (the API server refuses new resource names in a resize, or
	// agentgate does).
	gpu := created.DeepCopy()
	gpu.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"] = resource.MustParse("1")
	if _, err = pods.UpdateResize(ctx, created.Name, gpu, metav1.UpdateOptions{}); err == nil {
		t.Error("a resize adding nvidia.com/gpu was admitted")
	}

	stored, err := pods.Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := limits(stored); got != "1/512Mi" {
		t.Fatalf("denied resizes changed the stored limits to %s", got)
	}

	// Within the policy: admitted and stored.
	ok := stored.DeepCopy()
	ok.Spec.Containers[0].Resources.Limits = quantities("cpu", "2", "memory", "1Gi")
	resized, err := pods.UpdateResize(ctx, created.Name, ok, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("a resize within the policy: %v", err)
	}
	if got := limits(resized); got != "2/1Gi" {
		t.Fatalf("resized limits %s, want 2/1Gi", got)
	}
}

// TestOnlyResizeChangesResources is why pods/resize is the one more subresource routed to /validate: the
// other ways to write a running pod cannot change its resources. Each is tried for real.
func TestOnlyResizeChangesResources(t *testing.T) {
	ns := agentNamespace(t)
	pods := env.client.CoreV1().Pods(ns)
	created, err := pods.Create(ctx, agentPod("fixed"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raised := func(p *corev1.Pod) *corev1.Pod {
		p = p.DeepCopy()
		p.Spec.Containers[0].Resources.Limits = quantities("cpu", "64", "memory", "256Gi")
		return p
	}

	// pods (UPDATE and PATCH): resources are immutable there.
	_, err = pods.Update(ctx, raised(created), metav1.UpdateOptions{})
	requireAPIServerRefusal(t, err, "pod updates may not change fields other than")

	// pods/status: the status strategy keeps the stored spec, whatever the request carries.
	st := raised(created)
	st.Status.Message = "written through pods/status"
	if _, err := pods.UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("status update: %v", err)
	}

	// pods/ephemeralcontainers: an ephemeral container may not carry resources at all.
	withDebug, err := pods.Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	withDebug.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debug", Image: allowedImage, Resources: corev1.ResourceRequirements{Limits: quantities("cpu", "64")},
	}}}
	_, err = pods.UpdateEphemeralContainers(ctx, created.Name, withDebug, metav1.UpdateOptions{})
	requireAPIServerRefusal(t, err, "resources")

	stored, err := pods.Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.Spec.Containers[0].Resources.Limits.Cpu().String(); got != "1" {
		t.Errorf("stored cpu limit %s after the attempts, want 1", got)
	}
	if stored.Status.Message != "written through pods/status" {
		t.Errorf("the status update did not land (message %q): the test proved nothing about pods/status", stored.Status.Message)
	}
}

// TestPodLevelResources: the two examples are stored hardened (hardening used to fill container
// defaults that the API server refused), and pod-level resources are bounded like container ones.
func TestPodLevelResources(t *testing.T) {
	ns := agentNamespace(t)
	pods := env.client.CoreV1().Pods(ns)
	twoContainers := func(name string, podLevel corev1.ResourceRequirements) *corev1.Pod {
		p := agentPod(name)
		second := p.Spec.Containers[0]
		second.Name = "helper"
		p.Spec.Containers = append(p.Spec.Containers, second)
		p.Spec.Resources = &podLevel
		return p
	}
	hardened := func(t *testing.T, p *corev1.Pod) {
		t.Helper()
		for _, c := range p.Spec.Containers {
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: not hardened: %+v", c.Name, sc)
			}
		}
	}
	resources := func(p *corev1.Pod) string {
		b, _ := json.Marshal(map[string]any{"pod": p.Spec.Resources, "c0": p.Spec.Containers[0].Resources, "c1": p.Spec.Containers[1].Resources})
		return string(b)
	}

	t.Run("pod limits 500m/256Mi, two containers", func(t *testing.T) {
		stored, err := pods.Create(ctx, twoContainers("pod-limits", corev1.ResourceRequirements{Limits: quantities("cpu", "500m", "memory", "256Mi")}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		hardened(t, stored)
		// The pod-level limit bounds both containers: no container default (1 CPU) above it.
		for _, c := range stored.Spec.Containers {
			if len(c.Resources.Limits) != 0 || len(c.Resources.Requests) != 0 {
				t.Errorf("%s: container resources filled beside a pod-level limit: %s", c.Name, resources(stored))
			}
		}
		t.Logf("stored: %s", resources(stored))
	})

	t.Run("pod request 150m, two containers", func(t *testing.T) {
		stored, err := pods.Create(ctx, twoContainers("pod-request", corev1.ResourceRequirements{Requests: quantities("cpu", "150m")}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		hardened(t, stored)
		var sum resource.Quantity
		for _, c := range stored.Spec.Containers {
			if c.Resources.Limits.Cpu().String() != "1" || c.Resources.Limits.Memory().String() != "512Mi" {
				t.Errorf("%s: default limits not filled: %s", c.Name, resources(stored))
			}
			sum.Add(*c.Resources.Requests.Cpu())
		}
		if sum.Cmp(resource.MustParse("150m")) > 0 {
			t.Errorf("container cpu requests add up to %s, above the pod-level 150m: %s", sum.String(), resources(stored))
		}
		t.Logf("stored: %s", resources(stored))
	})

	t.Run("pod request 150m, five containers", func(t *testing.T) {
		p := twoContainers("pod-request-5", corev1.ResourceRequirements{Requests: quantities("cpu", "150m")})
		for i := range 3 {
			c := *p.Spec.Containers[0].DeepCopy()
			c.Name = fmt.Sprint("extra-", i)
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		// The API server sets the pod-level limit to the containers' sum (5 x the default 1 CPU), above max:
		// only the per-pod ceiling bounds it, since every container has its own limit.
		stored, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		hardened(t, stored)
		t.Logf("stored: %s", resources(stored))
	})

	t.Run("pod-level 60 CPU / 400Gi", func(t *testing.T) {
		_, err := pods.Create(ctx, twoContainers("pod-huge", corev1.ResourceRequirements{Limits: quantities("cpu", "60", "memory", "400Gi")}), metav1.CreateOptions{})
		// The API server defaults the pod-level requests from the limits: both are reported.
		requireAgentgateDenial(t, err, "spec.resources.limits[cpu]", "spec.resources.limits[memory]",
			"spec.resources.requests[cpu]", "spec.resources.requests[memory]")
	})

	t.Run("5 containers x 4 CPU", func(t *testing.T) {
		p := agentPod("many")
		base := p.Spec.Containers[0]
		base.Resources.Limits = quantities("cpu", "4")
		p.Spec.Containers = nil
		for i := range 5 {
			c := *base.DeepCopy()
			c.Name = fmt.Sprint("worker-", i)
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		// The API server defaults each request from its limit: 20 CPU requested and limited.
		requireAgentgateDenial(t, err, "spec.resources.requests[cpu]", "spec.resources.limits[cpu]")
	})

	t.Run("nvidia.com/gpu", func(t *testing.T) {
		p := agentPod("gpu")
		p.Spec.Containers[0].Resources.Limits = quantities("nvidia.com/gpu", "1")
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		requireAgentgateDenial(t, err, "spec.containers[0].resources.limits[nvidia.com/gpu]", "spec.containers[0].resources.requests[nvidia.com/gpu]")
	})

	t.Run("hugepages", func(t *testing.T) {
		p := agentPod("hugepages")
		p.Spec.Containers[0].Resources.Limits = quantities("hugepages-2Mi", "1Gi", "memory", "1Gi", "cpu", "1")
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		requireAgentgateDenial(t, err, "spec.containers[0].resources.limits[hugepages-2Mi]")
	})

	t.Run("a request above the pod-level limit", func(t *testing.T) {
		p := agentPod("over")
		p.Spec.Resources = &corev1.ResourceRequirements{Limits: quantities("cpu", "1")}
		p.Spec.Containers[0].Resources.Requests = quantities("cpu", "2")
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		requireAPIServerRefusal(t, err, "spec.resources.requests")
	})
}

func TestSystemPriorityClassDenied(t *testing.T) {
	ns := agentNamespace(t)
	for _, class := range []string{"system-node-critical", "system-cluster-critical"} {
		p := agentPod("critical")
		p.Spec.PriorityClassName = class
		_, err := env.client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		requireAgentgateDenial(t, err, "spec.priorityClassName")
		if status, ok := err.(apierrors.APIStatus); ok && !strings.Contains(status.Status().Message, class) {
			t.Errorf("the denial does not name %s: %s", class, status.Status().Message)
		}
	}
}
