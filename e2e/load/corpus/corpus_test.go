package corpus

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"agentgate.io/agentgate/policy"
)

// strictDecode fails on fields the typed struct does not know, so a corpus
// cannot carry a misspelt field that a webhook would silently ignore.
func strictDecode(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %T: %v", v, err)
	}
}

func TestSizes(t *testing.T) {
	targets := map[string]int{Small: 6 << 10, Violating: 6 << 10, Deployment: 6 << 10, Large: 42 << 10}
	for _, name := range Names() {
		b, err := Corpus(name)
		if err != nil {
			t.Fatal(err)
		}
		want := targets[name]
		if lo, hi := want*3/4, want*5/4; len(b) < lo || len(b) > hi {
			t.Errorf("%s: %d bytes, want %d..%d", name, len(b), lo, hi)
		}
	}
}

// podSpecOf decodes a corpus into its typed kind and returns its pod spec.
func podSpecOf(t *testing.T, name string) (*corev1.PodSpec, string) {
	t.Helper()
	b, err := Corpus(name)
	if err != nil {
		t.Fatal(err)
	}
	if name == Deployment {
		var d appsv1.Deployment
		strictDecode(t, b, &d)
		if d.APIVersion != "apps/v1" || d.Kind != "Deployment" || d.Namespace != Namespace {
			t.Fatalf("%s: got %s %s in %q", name, d.APIVersion, d.Kind, d.Namespace)
		}
		return &d.Spec.Template.Spec, name
	}
	var p corev1.Pod
	strictDecode(t, b, &p)
	if p.APIVersion != "v1" || p.Kind != "Pod" || p.Namespace != Namespace {
		t.Fatalf("%s: got %s %s in %q", name, p.APIVersion, p.Kind, p.Namespace)
	}
	return &p.Spec, name
}

func TestShapes(t *testing.T) {
	containers := map[string]int{Small: 2, Violating: 2, Large: 11, Deployment: 2}
	for _, name := range Names() {
		spec, _ := podSpecOf(t, name)
		if got := len(spec.Containers); got != containers[name] {
			t.Errorf("%s: %d containers, want %d", name, got, containers[name])
		}
		for _, c := range spec.Containers {
			if c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s/%s: no resource limits", name, c.Name)
			}
			if name != Violating && !strings.HasPrefix(c.Image, "registry.corp.example/agents/") {
				t.Errorf("%s/%s: image %s outside the allowlist", name, c.Image, c.Name)
			}
		}
	}
	v, _ := podSpecOf(t, Violating)
	if !v.HostNetwork || !slices.ContainsFunc(v.Volumes, func(vol corev1.Volume) bool { return vol.HostPath != nil }) {
		t.Error("violating: want hostNetwork and a hostPath volume")
	}
	if sc := v.Containers[0].SecurityContext; sc.Privileged == nil || !*sc.Privileged {
		t.Error("violating: want a privileged container")
	}
	if !slices.ContainsFunc(v.Containers, func(c corev1.Container) bool { return strings.HasPrefix(c.Image, "docker.io/") }) {
		t.Error("violating: want an image from docker.io")
	}
}

// Pod Security "restricted" is an independent oracle of "compliant": the
// agentgate default policy is a strict superset of it.
func TestPodSecurityRestricted(t *testing.T) {
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, name := range Names() {
		obj, err := Object(name)
		if err != nil {
			t.Fatal(err)
		}
		var res []psapolicy.CheckResult
		switch o := obj.(type) {
		case *corev1.Pod:
			res = eval.EvaluatePod(lv, &o.ObjectMeta, &o.Spec)
		case *appsv1.Deployment:
			res = eval.EvaluatePod(lv, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec)
		}
		agg := psapolicy.AggregateCheckResults(res)
		if name == Violating {
			if agg.Allowed {
				t.Errorf("%s: allowed by restricted, want forbidden", name)
			}
			continue
		}
		if !agg.Allowed {
			t.Errorf("%s: forbidden by restricted: %s: %s", name, agg.ForbiddenReason(), agg.ForbiddenDetail())
		}
	}
}

func TestReview(t *testing.T) {
	const uid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
	kinds := map[string]string{Small: "Pod", Violating: "Pod", Large: "Pod", Deployment: "Deployment"}
	for _, name := range Names() {
		b, err := Review(name, uid)
		if err != nil {
			t.Fatal(err)
		}
		var r admissionv1.AdmissionReview
		strictDecode(t, b, &r)
		if r.APIVersion != "admission.k8s.io/v1" || r.Kind != "AdmissionReview" || r.Request == nil {
			t.Fatalf("%s: not an AdmissionReview v1 request: %s %s", name, r.APIVersion, r.Kind)
		}
		req := r.Request
		if string(req.UID) != uid || req.Kind.Kind != kinds[name] || req.Namespace != Namespace || req.Operation != admissionv1.Create {
			t.Errorf("%s: uid %q kind %q namespace %q operation %q", name, req.UID, req.Kind.Kind, req.Namespace, req.Operation)
		}
		obj, _ := Corpus(name)
		if !bytes.Equal(req.Object.Raw, obj) {
			t.Errorf("%s: request.object differs from Corpus(%q)", name, name)
		}
		again, _ := Review(name, uid)
		if !bytes.Equal(b, again) {
			t.Errorf("%s: two builds differ; the corpus must be deterministic", name)
		}
	}
	if _, err := Review("nope", uid); err == nil {
		t.Error("unknown corpus: want an error")
	}
}

// The load tool measures agentgate answering what it is built for: the compliant corpora are allowed by the
// embedded default policy as sent (so /validate runs every check to the end and /mutate has nothing to
// patch), and the violating one is denied.
func TestDefaultPolicyVerdicts(t *testing.T) {
	set := policy.NewSet(policy.Default())
	ns := policy.Namespace{Name: Namespace, Labels: map[string]string{"agentgate.io/agents": "true"}}
	for _, name := range Names() {
		obj, err := Object(name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := policy.NewWorkload(obj)
		if err != nil {
			t.Fatal(err)
		}
		res := set.Judge(w, ns, policy.Requester{})
		if len(res.Matched) != 1 {
			t.Errorf("%s: matched by %v, want the default policy", name, res.Matched)
		}
		if name == Violating {
			if res.Allowed() {
				t.Errorf("%s: allowed by the default policy", name)
			}
			continue
		}
		if !res.Allowed() {
			t.Errorf("%s: denied by the default policy: %v", name, res.Violations)
		}
		if _, changed := set.Mutate(w, ns, policy.Requester{}); changed {
			t.Errorf("%s: the default policy would patch it; the corpus should be hardened already", name)
		}
	}
}
