package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"agentgate.io/agentgate/policy"
)

// storedAgentPod is a running, compliant (default policy) agent pod as the cache stores it.
func storedAgentPod(t testing.TB, namespace, name string, edit func(*corev1.Pod)) *StoredPod {
	t.Helper()
	p := runningAgentPod(0)
	p.Namespace, p.Name = namespace, name
	if edit != nil {
		edit(p)
	}
	obj, err := StripPod(p)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*StoredPod)
}

// parsePolicy is the default policy with replacements applied (old, new pairs), which must all apply.
func parsePolicy(t testing.TB, replacements ...string) *policy.Policy {
	t.Helper()
	doc := string(policy.DefaultPolicyYAML())
	for i := 0; i < len(replacements); i += 2 {
		if !strings.Contains(doc, replacements[i]) {
			t.Fatalf("default policy has no %q", replacements[i])
		}
		doc = strings.Replace(doc, replacements[i], replacements[i+1], 1)
	}
	p, errs := policy.Parse([]byte(doc))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	return p
}

var agentNS = map[string]string{"agentgate.io/agents": "true"}

func labelsOf(m map[string]map[string]string) func(string) map[string]string {
	return func(ns string) map[string]string { return m[ns] }
}

func TestPreview(t *testing.T) {
	requireDigest := []string{"requireDigest: false", "requireDigest: true"}
	strict := parsePolicy(t, requireDigest...)
	bigLimit := func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("16Gi")
	}
	nsLabels := labelsOf(map[string]map[string]string{
		"agents-a": agentNS, "agents-b": agentNS, "kube-system": agentNS, "plain": {"team": "web"},
		// "unknown" is absent: its labels are unknown, and the strict side selects it.
	})
	cases := []struct {
		name     string
		policy   *policy.Policy
		pods     []*StoredPod
		limit    int
		deadline time.Time
		want     []string
	}{{
		name:   "the default policy admits compliant pods",
		policy: parsePolicy(t),
		pods:   []*StoredPod{storedAgentPod(t, "agents-a", "p1", nil), storedAgentPod(t, "agents-b", "p2", nil)},
		want:   []string{`policy "agents" would deny 0 of 2 running agent pods`},
	}, {
		name:   "a stricter policy: every pod named, grouped by same checks, ordered by namespace then name",
		policy: strict,
		pods: []*StoredPod{
			storedAgentPod(t, "agents-b", "z", nil), storedAgentPod(t, "agents-a", "m", bigLimit),
			storedAgentPod(t, "agents-a", "b", nil), storedAgentPod(t, "agents-b", "a", nil),
		},
		want: []string{
			`policy "agents" would deny 4 of 4 running agent pods`,
			`agents-a/b (and 2 other pods): images`,
			`agents-a/m: resources, images`,
		},
	}, {
		name:   "only the namespaces and pods the policy selects count: not plain, not the exempt kube-system; unknown labels select",
		policy: parsePolicy(t, "requireDigest: false", "requireDigest: true", "podSelector: {}", "podSelector: {matchLabels: {app: agent}}"),
		pods: []*StoredPod{
			storedAgentPod(t, "plain", "web", nil), storedAgentPod(t, "kube-system", "dns", nil),
			storedAgentPod(t, "unknown", "u", nil), storedAgentPod(t, "agents-a", "a", nil),
			storedAgentPod(t, "agents-a", "not-agent", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "db"} }),
		},
		want: []string{
			`policy "agents" would deny 2 of 2 running agent pods`,
			`agents-a/a (and 1 other pod): images`,
		},
	}, {
		name:   "warn mode warns",
		policy: parsePolicy(t, "requireDigest: false", "requireDigest: true", "mode: enforce", "mode: warn"),
		pods:   []*StoredPod{storedAgentPod(t, "agents-a", "a", nil)},
		want:   []string{`policy "agents" would warn about 1 of 1 running agent pods`, `agents-a/a: images`},
	}, {
		name:   "audit mode audits",
		policy: parsePolicy(t, "requireDigest: false", "requireDigest: true", "mode: enforce", "mode: audit"),
		pods:   []*StoredPod{storedAgentPod(t, "agents-a", "a", nil)},
		want:   []string{`policy "agents" would audit 1 of 1 running agent pods`, `agents-a/a: images`},
	}, {
		name:   "the limit stops judging and says so",
		policy: strict,
		pods:   []*StoredPod{storedAgentPod(t, "agents-a", "c", nil), storedAgentPod(t, "agents-a", "a", nil), storedAgentPod(t, "agents-a", "b", nil)},
		limit:  2,
		want: []string{
			`policy "agents" would deny 2 of 3 running agent pods`,
			`agents-a/a (and 1 other pod): images`,
			`checked only the first 2 of 3 pods (by namespace, name): agentgate audit judges them all`,
		},
	}, {
		name:   "an unreadable cached spec is counted, never a pass or a finding",
		policy: strict,
		pods: []*StoredPod{storedAgentPod(t, "agents-a", "a", nil),
			{ObjectMeta: storedAgentPod(t, "agents-a", "broken", nil).ObjectMeta, Phase: corev1.PodRunning, Spec: []byte(`{"containers": 7}`)}},
		want: []string{`policy "agents" would deny 1 of 2 running agent pods`, `agents-a/a: images`, `1 pod could not be judged: cached spec unreadable`},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Preview(c.policy, c.pods, Namespaces{Labels: nsLabels}, c.limit, c.deadline).Warnings()
			if !slices.Equal(got, c.want) {
				t.Errorf("warnings:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestPreviewDeadlineStopsAndSaysSo(t *testing.T) {
	pods := []*StoredPod{storedAgentPod(t, "agents-a", "a", nil)}
	r := Preview(parsePolicy(t), pods, Namespaces{Labels: labelsOf(map[string]map[string]string{"agents-a": agentNS})}, 0, time.Now().Add(-time.Second))
	if !r.TimedOut || r.Checked != 0 || r.Selected != 1 {
		t.Fatalf("TimedOut %v, Checked %d, Selected %d: want true, 0, 1", r.TimedOut, r.Checked, r.Selected)
	}
	w := r.Warnings()
	if len(w) != 2 || w[0] != `policy "agents" would deny 0 of 1 running agent pods` ||
		!strings.HasPrefix(w[1], "ran out of time after ") || !strings.HasSuffix(w[1], ": checked only the first 0 of 1 pods (by namespace, name)") {
		t.Fatalf("warnings %q", w)
	}
}

// TestPreviewOrderAndLineLength: the order of the cache does not change the warnings; long names never make
// a line longer than PreviewMaxLineLength.
func TestPreviewOrderAndLineLength(t *testing.T) {
	p := parsePolicy(t, "requireDigest: false", "requireDigest: true")
	long := strings.Repeat("n", 63)
	var pods []*StoredPod
	for i := range 30 {
		pods = append(pods, storedAgentPod(t, long, fmt.Sprintf("%s-%02d", strings.Repeat("p", 200), i), func(pod *corev1.Pod) {
			if i%3 == 0 {
				pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("16Gi")
			}
		}))
	}
	labels := labelsOf(map[string]map[string]string{long: agentNS})
	want := Preview(p, pods, Namespaces{Labels: labels}, 0, time.Time{}).Warnings()
	rand.Shuffle(len(pods), func(i, j int) { pods[i], pods[j] = pods[j], pods[i] })
	got := Preview(p, pods, Namespaces{Labels: labels}, 0, time.Time{}).Warnings()
	if !slices.Equal(got, want) {
		t.Fatalf("order of the cache changed the warnings:\n%q\n%q", got, want)
	}
	if len(got) != 3 || got[0] != `policy "agents" would deny 30 of 30 running agent pods` {
		t.Fatalf("warnings %q", got)
	}
	pre := long + "/" + strings.Repeat("p", 200)
	for _, l := range got[1:] {
		if len(l) != PreviewMaxLineLength || !strings.HasPrefix(l, pre[:PreviewMaxLineLength-3]) || !strings.HasSuffix(l, "...") {
			t.Errorf("a long pod line is not cut at %d bytes with ...: %q", PreviewMaxLineLength, l)
		}
	}
}

// TestPreviewWarningsBounded: more groups than PreviewMaxLines give PreviewMaxLines pod lines and a count of
// the pods left unlisted.
func TestPreviewWarningsBounded(t *testing.T) {
	r := PreviewResult{Policy: "agents", Mode: policy.ModeEnforce, Selected: 100, Checked: 100}
	for i := range 25 {
		// Two pods with each check list: 25 groups of 2.
		for j := range 2 {
			r.Findings = append(r.Findings, PodFinding{Namespace: "a", Name: fmt.Sprintf("p%02d-%d", i, j), Checks: []string{fmt.Sprintf("check%d", i)}})
		}
	}
	got := r.Warnings()
	if len(got) != 1+PreviewMaxLines+1 {
		t.Fatalf("%d lines, want %d: %q", len(got), 1+PreviewMaxLines+1, got)
	}
	if got[0] != `policy "agents" would deny 50 of 100 running agent pods` || got[1] != "a/p00-0 (and 1 other pod): check0" ||
		got[PreviewMaxLines] != "a/p19-0 (and 1 other pod): check19" || got[PreviewMaxLines+1] != "10 more pods not listed: agentgate audit lists every one" {
		t.Errorf("warnings %q", got)
	}
}

func TestPreviewFailedWarning(t *testing.T) {
	got := PreviewFailed("agents", "pod cache not synced yet")
	if !slices.Equal(got, []string{`policy "agents": preview of its effect on running agent pods not run: pod cache not synced yet`}) {
		t.Errorf("%q", got)
	}
}

// TestPreviewKnowsTokenSecrets: outside a review the pods are judged with what the caches know of their
// namespace, token Secrets included: a running pod reading one is found once the Secret's type is known.
func TestPreviewKnowsTokenSecrets(t *testing.T) {
	pods := []*StoredPod{storedAgentPod(t, "agents-a", "reader", func(pod *corev1.Pod) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "ci-settings"}}})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "cfg", MountPath: "/cfg"})
	})}
	labels := labelsOf(map[string]map[string]string{"agents-a": agentNS})
	if r := Preview(parsePolicy(t), pods, Namespaces{Labels: labels}, 0, time.Time{}); len(r.Findings) != 0 {
		t.Fatalf("Secrets unknown: findings %+v", r.Findings)
	}
	tokens := func(ns, secret string) bool { return ns == "agents-a" && secret == "ci-settings" }
	r := Preview(parsePolicy(t), pods, Namespaces{Labels: labels, IsTokenSecret: tokens}, 0, time.Time{})
	if len(r.Findings) != 1 || !slices.Equal(r.Findings[0].Checks, []string{"serviceAccountTokenSecrets"}) {
		t.Fatalf("findings %+v, want the reader failing serviceAccountTokenSecrets", r.Findings)
	}
}
