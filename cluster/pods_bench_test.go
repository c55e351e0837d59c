package cluster

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// runningAgentPod is a typical agent pod as the API server returns it once running: hardened spec, defaults,
// status with conditions and container statuses, managed fields and a last-applied annotation.
func runningAgentPod(i int) *corev1.Pod {
	f, tr := false, true
	p := agentPod(fmt.Sprintf("agent-%d", i))
	p.Namespace = "agents"
	p.UID = types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))
	p.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = string(make([]byte, 1500))
	c := &p.Spec.Containers[0]
	c.Args = []string{"--queue", "tasks", "--concurrency", "4"}
	c.Env = []corev1.EnvVar{{Name: "QUEUE_URL", Value: "https://queue.corp.example/tasks"}, {Name: "LOG_LEVEL", Value: "info"}}
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	c.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: &tr, AllowPrivilegeEscalation: &f,
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	c.TerminationMessagePath, c.ImagePullPolicy = "/dev/termination-log", corev1.PullIfNotPresent
	p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	p.Spec.AutomountServiceAccountToken = &f
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: &tr, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	p.Spec.NodeName, p.Spec.ServiceAccountName, p.Spec.DNSPolicy = "node-1", "default", corev1.DNSClusterFirst
	now := metav1.NewTime(time.Now())
	p.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 2000)}},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 1500)}},
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.1", PodIP: "10.1.0.7", StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "agent", Ready: true, Image: c.Image, ImageID: "registry.corp.example/agents/a@sha256:" + fmt.Sprintf("%064d", i),
			ContainerID: "containerd://" + fmt.Sprintf("%064d", i), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}},
	}
	return p
}

// BenchmarkPodCacheMemory reports the heap that 1,000 typical running agent pods take in the cache's store,
// with the transform (bytes-per-1000-pods) and without it (raw-bytes-per-1000-pods), measured as the live
// heap after a GC with the store filled minus before.
func BenchmarkPodCacheMemory(b *testing.B) {
	const n = 1000
	pod := func(i int) any { return runningAgentPod(i) }
	var kept, raw float64
	for range b.N {
		kept = storeHeap(b, n, pod, StripPod)
		raw = storeHeap(b, n, pod, func(o any) (any, error) { return o, nil })
	}
	b.ReportMetric(kept, "bytes-per-1000-pods")
	b.ReportMetric(raw, "raw-bytes-per-1000-pods")
}

// storeHeap is the live heap (after a GC) that n objects take in an informer's store, each made by object and
// passed through transform as the informer does: the decoded original is then garbage.
func storeHeap(b *testing.B, n int, object func(int) any, transform func(any) (any, error)) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for i := range n {
		obj, err := transform(object(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := store.Add(obj); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(store)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}
