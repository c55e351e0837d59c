package policy

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestDigestTargets(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pinning := testPolicy(t, `images: {allow: ["registry.corp.example/**"], pinDigests: true}
exempt: {containers: [{name: mesh, image: "registry.corp.example/mesh/proxy:*", checks: [images], serviceAccounts: [mesh/operator]}]}`)
	pod := validPod()
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "registry.corp.example/agents/init:1"}}
	pod.Spec.Containers = append(pod.Spec.Containers,
		corev1.Container{Name: "pinned", Image: "registry.corp.example/agents/tool:2@" + digest},
		corev1.Container{Name: "mesh", Image: "registry.corp.example/mesh/proxy:1.20"},
	)
	w, err := NewWorkload(pod)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, dt := range NewSet(pinning).DigestTargets(w, Namespace{Name: "agents"}, meshOperator) {
		got = append(got, dt.Field+"="+dt.Container.Image)
	}
	want := []string{
		"spec.initContainers[0].image=registry.corp.example/agents/init:1",
		"spec.containers[0].image=" + pod.Spec.Containers[0].Image,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets:\n got %v\nwant %v", got, want)
	}
	if n := len(NewSet(Default()).DigestTargets(w, Namespace{Name: "agents"}, Requester{})); n != 0 {
		t.Errorf("the default policy does not pin, yet %d targets", n)
	}
	if got := PinnedReference("registry.corp.example/agents/init:1", digest); got != "registry.corp.example/agents/init:1@"+digest {
		t.Errorf("PinnedReference = %s", got)
	}
}
