package policy

import (
	"fmt"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// TestDigestTargetsOnlyAdmittedNames: pinning asks a registry only about images that every selecting policy
// admits by name; what it asks is the normalised reference, with what the pinning policies allow to reach it.
func TestDigestTargetsOnlyAdmittedNames(t *testing.T) {
	pinning := testPolicy(t, `images:
  allow: ["registry.corp.example/**", "localhost:5000/**"]
  deny: ["registry.corp.example/agents/untrusted/**"]
  pinDigests: true
  pinRegistries: [{registry: "LOCALHOST:5000", localAddresses: true, plainHTTP: true}]`)
	strict := NewSet(pinning)
	pod := validPod()
	pod.Spec.Containers = []corev1.Container{
		{Name: "allowed", Image: "REGISTRY.CORP.EXAMPLE:443/agents/tool:2"},
		{Name: "off-list", Image: "localhost:15000/agents/tool:2"},
		{Name: "loopback-ip", Image: "127.0.0.1:5000/agents/tool:2"},
		{Name: "denied", Image: "registry.corp.example/agents/untrusted/tool:2"},
		{Name: "unparseable", Image: "registry.corp.example/agents/../tool:2"},
		{Name: "listed", Image: "localhost:5000/agents/tool:2"},
	}
	w, err := NewWorkload(pod)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, dt := range strict.DigestTargets(w, Namespace{Name: "agents"}, Requester{}) {
		got = append(got, fmt.Sprintf("%s=%s %+v", dt.Field, dt.Reference, dt.Access))
	}
	want := []string{
		"spec.containers[0].image=registry.corp.example/agents/tool:2 {LocalAddresses:false PlainHTTP:false}",
		"spec.containers[5].image=localhost:5000/agents/tool:2 {LocalAddresses:true PlainHTTP:true}",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets:\n got %q\nwant %q", got, want)
	}

	// Another selecting policy that denies the name vetoes the lookup, and one that pins without listing
	// the registry takes its access away.
	narrower := testPolicy(t, `images: {allow: ["localhost:5000/**"]}`)
	narrower.Name = "narrower"
	otherPin := testPolicy(t, `images: {pinDigests: true, pinRegistries: [{registry: "localhost:5000", localAddresses: true}]}`)
	otherPin.Name = "other-pin"
	got = nil
	for _, dt := range NewSet(pinning, narrower, otherPin).DigestTargets(w, Namespace{Name: "agents"}, Requester{}) {
		got = append(got, fmt.Sprintf("%s=%s %+v", dt.Field, dt.Reference, dt.Access))
	}
	want = []string{"spec.containers[5].image=localhost:5000/agents/tool:2 {LocalAddresses:true PlainHTTP:false}"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets with three policies:\n got %q\nwant %q", got, want)
	}
}

// TestRequireDigestWithPinDigests: a controller's template may carry tags that its policy will pin at pod
// creation; the pod itself, judged after the mutating webhook, may not. Names the policy denies, image
// volumes, and policies that require digests without pinning them get no such allowance.
func TestRequireDigestWithPinDigests(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pinAndRequire := NewSet(testPolicy(t, `images: {allow: ["registry.corp.example/**"], requireDigest: true, pinDigests: true}`))
	requireOnly := NewSet(testPolicy(t, `images: {allow: ["registry.corp.example/**"], requireDigest: true}`))
	deployment := func(images ...string) *Workload {
		pod := validPod()
		pod.Spec.Containers = nil
		for i, img := range images {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
		}
		d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: "agents", Namespace: "agents"},
			Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}}}
		w, err := NewWorkload(d)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	ns := Namespace{Name: "agents"}
	judge := func(set *Set, w *Workload) []string {
		var out []string
		for _, v := range set.Judge(w, ns, Requester{}).Violations {
			if v.Check == "images" {
				out = append(out, v.Field+": "+v.Allowed)
			}
		}
		return out
	}
	if got := judge(pinAndRequire, deployment("registry.corp.example/agents/a:1", "registry.corp.example/agents/b:2@"+digest)); len(got) != 0 {
		t.Errorf("a Deployment whose tags will be pinned is denied: %q", got)
	}
	requireDigest := "a reference with @sha256:… digest"
	if got, want := judge(requireOnly, deployment("registry.corp.example/agents/a:1")), []string{"spec.template.spec.containers[0].image: " + requireDigest}; !reflect.DeepEqual(got, want) {
		t.Errorf("requireDigest without pinDigests: got %q, want %q", got, want)
	}
	if got, want := judge(pinAndRequire, deployment("ghcr.io/x/y:1")), []string{
		`spec.template.spec.containers[0].image: images matching ["registry.corp.example/**"]`,
		"spec.template.spec.containers[0].image: " + requireDigest,
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("a name the policy denies is not pinned, so it still needs its digest: got %q, want %q", got, want)
	}
	volume := deployment("registry.corp.example/agents/a:1")
	volume.Spec.Volumes = append(volume.Spec.Volumes, corev1.Volume{Name: "tools", VolumeSource: corev1.VolumeSource{
		Image: &corev1.ImageVolumeSource{Reference: "registry.corp.example/agents/tools:1"}}})
	if got, want := judge(pinAndRequire, volume), []string{fmt.Sprintf("spec.template.spec.volumes[%d].image.reference: %s", len(volume.Spec.Volumes)-1, requireDigest)}; !reflect.DeepEqual(got, want) {
		t.Errorf("image volumes are never pinned: got %q, want %q", got, want)
	}

	// The pod at /validate, after the mutating webhook: a tag that was not pinned is denied.
	pod := validPod()
	pod.Spec.Containers[0].Image = "registry.corp.example/agents/a:1"
	w, err := NewWorkload(pod)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := judge(pinAndRequire, w), []string{"spec.containers[0].image: " + requireDigest}; !reflect.DeepEqual(got, want) {
		t.Errorf("an unpinned pod: got %q, want %q", got, want)
	}
}
