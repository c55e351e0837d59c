package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// workloadFromYAML decodes one manifest the way the webhook and the CLI do (strictly, by its group and kind)
// and returns it with its raw JSON, what the API server would send.
func workloadFromYAML(t testing.TB, doc string) (*Workload, []byte) {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	w, err := decodeRawWorkload(raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return w, raw
}

func decodeRawWorkload(raw []byte) (*Workload, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return nil, err
	}
	return DecodeWorkload(schema.GroupKind{Group: gv.Group, Kind: tm.Kind}, raw)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openImagesPolicy is the default policy with an allowlist that admits the registries tests use, so that
// hardening and the security checks are what a test sees.
func openImagesPolicy(t testing.TB) *Policy {
	return policyFromDefault(t, func(ap *AgentPolicy) {
		ap.Spec.Images.Allow = []string{"registry.corp.example/**", "docker.io/**", "registry.k8s.io/**"}
	})
}

// testNS is an agent namespace as a cluster would label it.
var testNS = Namespace{Name: "agents", Labels: map[string]string{"agentgate.io/agents": "true"}}

// hardenTwice hardens a copy, checks that a second pass is a no-op in every sense (no change reported, same
// object, no patch), and returns the hardened copy.
func hardenTwice(t *testing.T, set *Set, w *Workload) *Workload {
	t.Helper()
	return hardenTwiceAs(t, set, w, Requester{})
}

// hardenTwiceAs is hardenTwice for a workload sent by rq.
func hardenTwiceAs(t *testing.T, set *Set, w *Workload, rq Requester) *Workload {
	t.Helper()
	h := w.DeepCopy()
	set.Harden(h, testNS, rq)
	again := h.DeepCopy()
	if set.Harden(again, testNS, rq) {
		t.Errorf("second hardening pass reported a change")
	}
	if a, b := mustJSON(t, h.Object), mustJSON(t, again.Object); a != b {
		t.Errorf("second hardening pass changed the object:\n%s\n%s", a, b)
	}
	raw := []byte(mustJSON(t, h.Object))
	ops, err := CreatePatch(raw, h.Object, again.Object)
	if err != nil || len(ops) != 0 {
		t.Errorf("second hardening pass patch = %v, %v; want none", ops, err)
	}
	return h
}

const hardenBare = `apiVersion: v1
kind: Pod
metadata: {name: bare, namespace: agents}
spec:
  initContainers:
  - {name: init, image: registry.corp.example/agents/init:1}
  containers:
  - {name: agent, image: registry.corp.example/agents/runner:1}
  - {name: sidecar, image: registry.corp.example/agents/proxy:1}
  ephemeralContainers:
  - {name: debug, image: registry.corp.example/agents/debug:1}
`

func TestHardenFillsEveryUnsetField(t *testing.T) {
	set := NewSet(Default())
	w, _ := workloadFromYAML(t, hardenBare)
	if res := set.evaluate(w, testNS, Requester{}); res.Allowed() {
		t.Fatal("the bare pod passes before hardening")
	}
	h := hardenTwice(t, set, w)
	s := h.Spec
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken not set to false")
	}
	if sc := s.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", sc)
	}
	for _, ca := range newPodView(set.Policies[0], h, Requester{}, nil).containers {
		sc := ca.c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s[%d] securityContext = %s", ca.field, ca.index, mustJSON(t, sc))
		}
		res := ca.c.Resources
		if ca.field == "ephemeralContainers" {
			if len(res.Limits)+len(res.Requests) != 0 {
				t.Errorf("ephemeral container got resources %s: the API forbids them", mustJSON(t, res))
			}
			continue
		}
		if mustJSON(t, res) != `{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}` {
			t.Errorf("%s[%d] resources = %s", ca.field, ca.index, mustJSON(t, res))
		}
	}
	if res := set.evaluate(h, testNS, Requester{}); !res.Allowed() {
		t.Errorf("hardened bare pod denied: %v", res.Violations)
	}
}

// TestHardenNeverFlips: an explicit value stays as written, even a forbidden one, and the checks then deny it at
// its path. Hardening is idempotent in every case.
func TestHardenNeverFlips(t *testing.T) {
	set := NewSet(Default())
	for _, tc := range []struct {
		name, spec string
		// keep is a JSON fragment that must still be in the hardened pod.
		keep string
		// deny lists the check@path denials of the hardened pod (none: admitted).
		deny []string
	}{
		{
			name: "readOnlyRootFilesystem false",
			spec: `containers: [{name: a, image: registry.corp.example/agents/a:1, securityContext: {readOnlyRootFilesystem: false}}]`,
			keep: `"readOnlyRootFilesystem":false`,
			deny: []string{"readOnlyRootFilesystem@spec.containers[0].securityContext.readOnlyRootFilesystem"},
		},
		{
			name: "allowPrivilegeEscalation true",
			spec: `containers: [{name: a, image: registry.corp.example/agents/a:1, securityContext: {allowPrivilegeEscalation: true}}]`,
			keep: `"allowPrivilegeEscalation":true`,
			deny: []string{"allowPrivilegeEscalation@spec.containers[0].securityContext.allowPrivilegeEscalation"},
		},
		{
			name: "pod runAsNonRoot false",
			spec: `securityContext: {runAsNonRoot: false}
  containers: [{name: a, image: registry.corp.example/agents/a:1}]`,
			keep: `"runAsNonRoot":false`,
			deny: []string{"runAsNonRoot@spec.securityContext.runAsNonRoot"},
		},
		{
			name: "container runAsNonRoot false",
			spec: `containers: [{name: a, image: registry.corp.example/agents/a:1, securityContext: {runAsNonRoot: false}}]`,
			keep: `"runAsNonRoot":false`,
			deny: []string{"runAsNonRoot@spec.containers[0].securityContext.runAsNonRoot"},
		},
		{
			name: "runAsUser 0",
			spec: `securityContext: {runAsUser: 0}
  containers: [{name: a, image: registry.corp.example/agents/a:1}]`,
			keep: `"runAsUser":0`,
			deny: []string{"runAsUser@spec.securityContext.runAsUser"},
		},
		{
			name: "automount true",
			spec: `automountServiceAccountToken: true
  containers: [{name: a, image: registry.corp.example/agents/a:1}]`,
			keep: `"automountServiceAccountToken":true`,
			deny: []string{"automountServiceAccountToken@spec.automountServiceAccountToken"},
		},
		{
			name: "explicit limits and requests",
			spec: `containers: [{name: a, image: registry.corp.example/agents/a:1, resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 250m, memory: 256Mi}}}]`,
			keep: `"resources":{"limits":{"cpu":"250m","memory":"256Mi"},"requests":{"cpu":"50m","memory":"64Mi"}}`,
		},
		{
			name: "drop list without ALL gets ALL appended",
			spec: `containers: [{name: a, image: registry.corp.example/agents/a:1, securityContext: {capabilities: {drop: [NET_RAW], add: [NET_BIND_SERVICE]}}}]`,
			keep: `"capabilities":{"add":["NET_BIND_SERVICE"],"drop":["NET_RAW","ALL"]}`,
		},
		{
			name: "every container sets its own seccomp profile",
			spec: `containers: [{name: a, image: registry.corp.example/agents/a:1, securityContext: {seccompProfile: {type: Localhost, localhostProfile: agent.json}}}]`,
			keep: `"seccompProfile":{"type":"Localhost","localhostProfile":"agent.json"}`,
		},
		{
			name: "pod Localhost seccomp profile",
			spec: `securityContext: {seccompProfile: {type: Localhost, localhostProfile: agent.json}}
  containers: [{name: a, image: registry.corp.example/agents/a:1}]`,
			keep: `"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"Localhost","localhostProfile":"agent.json"}}`,
		},
		{
			name: "resources above max stay and are denied",
			spec: `containers: [{name: a, image: registry.corp.example/agents/a:1, resources: {requests: {cpu: "8"}}}]`,
			keep: `"limits":{"cpu":"8","memory":"512Mi"},"requests":{"cpu":"8","memory":"128Mi"}`,
			deny: []string{"resources@spec.containers[0].resources.requests[cpu]", "resources@spec.containers[0].resources.limits[cpu]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := workloadFromYAML(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  "+tc.spec+"\n")
			h := hardenTwice(t, set, w)
			if got := mustJSON(t, h.Object); !strings.Contains(got, tc.keep) {
				t.Errorf("hardened pod lost %s:\n%s", tc.keep, got)
			}
			if got := violationKeys(set.evaluate(h, testNS, Requester{}).Violations); !slices.Equal(got, tc.deny) {
				t.Errorf("denials = %q, want %q", got, tc.deny)
			}
			// Mutate leaves a pod that will be denied exactly as sent.
			m, changed := set.Mutate(w, testNS, Requester{})
			if len(tc.deny) > 0 && (changed || m != w) {
				t.Error("Mutate hardened a pod that is denied anyway")
			}
			if len(tc.deny) == 0 && !changed {
				t.Error("Mutate did not harden an admissible pod")
			}
		})
	}
}

func violationKeys(vs Violations) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Check+"@"+v.Field)
	}
	return out
}

// TestHardenNoEscalationConflicts: the API server refuses allowPrivilegeEscalation: false beside privileged: true
// or an added CAP_SYS_ADMIN, so hardening leaves it out there (and only there); the checks deny the pod for
// privileged and the capability alone.
func TestHardenNoEscalationConflicts(t *testing.T) {
	set := NewSet(Default())
	w, _ := workloadFromYAML(t, `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: priv, image: registry.corp.example/agents/a:1, securityContext: {privileged: true}}
  containers:
  - {name: sysadmin, image: registry.corp.example/agents/a:1, securityContext: {capabilities: {add: [CAP_SYS_ADMIN]}}}
  - {name: sysadmin2, image: registry.corp.example/agents/a:1, securityContext: {capabilities: {add: [SYS_ADMIN]}}}
  - {name: plain, image: registry.corp.example/agents/a:1}
  ephemeralContainers:
  - {name: debug, image: registry.corp.example/agents/a:1, securityContext: {privileged: true}}
`)
	h := hardenTwice(t, set, w)
	for _, ca := range newPodView(set.Policies[0], h, Requester{}, nil).containers {
		ape := ca.c.SecurityContext.AllowPrivilegeEscalation
		if ca.c.Name == "plain" || ca.c.Name == "sysadmin2" {
			// The API server refuses false beside "CAP_SYS_ADMIN" only, not beside "SYS_ADMIN".
			if ape == nil || *ape {
				t.Errorf("%s container: allowPrivilegeEscalation = %s, want false", ca.c.Name, boolString(ape))
			}
			continue
		}
		if ape != nil {
			t.Errorf("%s: allowPrivilegeEscalation %v added beside privileged/SYS_ADMIN", ca.c.Name, *ape)
		}
		// The rest of the hardening still applies.
		if ca.c.SecurityContext.ReadOnlyRootFilesystem == nil || !dropsAll(ca.c) {
			t.Errorf("%s not otherwise hardened: %s", ca.c.Name, mustJSON(t, ca.c.SecurityContext))
		}
	}
	want := []string{
		"privileged@spec.initContainers[0].securityContext.privileged",
		"privileged@spec.ephemeralContainers[0].securityContext.privileged",
		"capabilities@spec.containers[0].securityContext.capabilities.add[0]",
		"capabilities@spec.containers[1].securityContext.capabilities.add[0]",
		// No allowPrivilegeEscalation "unset" beside them: writing false there is what the API server refuses.
	}
	got := violationKeys(set.evaluate(h, testNS, Requester{}).Violations)
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("denials = %q\nwant %q", got, want)
	}
}

func TestHardenWindows(t *testing.T) {
	const doc = `apiVersion: v1
kind: Pod
metadata: {name: win}
spec:
  os: {name: windows}
  containers: [{name: a, image: registry.corp.example/agents/a:1}]
`
	// Under windows: deny the pod is denied for spec.os.name alone: the webhook sends it back unpatched, and
	// Judge reports that one problem, not the fields mutation fills for every other pod.
	t.Run("deny: no patch, one denial", func(t *testing.T) {
		set := NewSet(Default())
		w, _ := workloadFromYAML(t, doc)
		if m, changed := set.Mutate(w, testNS, Requester{}); changed || m != w {
			t.Error("Mutate patched a Windows pod")
		}
		if got := violationKeys(set.Judge(w, testNS, Requester{}).Violations); !slices.Equal(got, []string{"windows@spec.os.name"}) {
			t.Errorf("denials = %q, want only windows@spec.os.name", got)
		}
		h := hardenTwice(t, set, w)
		assertNoLinuxOnlyFields(t, h)
	})
	t.Run("skipLinuxChecks adds no Linux-only field", func(t *testing.T) {
		set := NewSet(policyFromDefault(t, func(ap *AgentPolicy) { ap.Spec.Windows = WindowsSkipLinuxChecks }))
		w, _ := workloadFromYAML(t, doc)
		h := hardenTwice(t, set, w)
		assertNoLinuxOnlyFields(t, h)
		if res := set.evaluate(h, testNS, Requester{}); !res.Allowed() {
			t.Errorf("hardened Windows pod denied under skipLinuxChecks: %v", violationKeys(res.Violations))
		}
	})
}

// TestHardenNodeName: a pod bound to a node by name gets spec.os.name: linux (the kubelet of another OS refuses
// it), unless the API server would refuse that beside windowsOptions; then the windows check denies it. Pods
// the scheduler places keep the patch the conformance index fixes.
func TestHardenNodeName(t *testing.T) {
	set := NewSet(Default())
	pod := validPod()
	pod.Spec.NodeName = "win-node-1"
	w, err := NewWorkload(pod)
	if err != nil {
		t.Fatal(err)
	}
	h := hardenTwice(t, set, w)
	if os := h.Spec.OS; os == nil || os.Name != corev1.Linux {
		t.Fatalf("spec.os = %+v, want name linux", os)
	}
	mutated, changed := set.Mutate(w, testNS, Requester{})
	if res := set.Judge(mutated, testNS, Requester{}); !changed || !res.Allowed() {
		t.Errorf("the mutated pod (changed %v) is denied: %v", changed, violationKeys(res.Violations))
	}
	// As sent, without the mutation (a mutating webhook removed), it is denied.
	if got := violationKeys(set.Judge(w, testNS, Requester{}).Violations); !slices.Equal(got, []string{"windows@spec.nodeName"}) {
		t.Errorf("the pod as sent: violations %q, want windows@spec.nodeName", got)
	}

	withWindowsOptions := validPod()
	withWindowsOptions.Spec.NodeName = "win-node-1"
	withWindowsOptions.Spec.Containers[0].SecurityContext.WindowsOptions = &corev1.WindowsSecurityContextOptions{RunAsUserName: ptrTo("agent")}
	w, err = NewWorkload(withWindowsOptions)
	if err != nil {
		t.Fatal(err)
	}
	if h := hardenTwice(t, set, w); h.Spec.OS != nil {
		t.Errorf("spec.os set beside windowsOptions (the API server refuses it): %+v", h.Spec.OS)
	}
	if got := violationKeys(set.Judge(w, testNS, Requester{}).Violations); !slices.Contains(got, "windows@spec.nodeName") {
		t.Errorf("violations %q lack windows@spec.nodeName", got)
	}

	scheduled, err := NewWorkload(validPod())
	if err != nil {
		t.Fatal(err)
	}
	if h := hardenTwice(t, set, scheduled); h.Spec.OS != nil {
		t.Errorf("spec.os set on a pod the scheduler places: %+v", h.Spec.OS)
	}
}

// TestHardenResources: defaults fill what is unset per resource, and the result never has request > limit.
func TestHardenResources(t *testing.T) {
	set := NewSet(Default())
	for _, tc := range []struct {
		name, in, want string
	}{
		{"none", `{}`, `{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}`},
		{"request above the default limit raises the limit", `{requests: {cpu: "2", memory: 1Gi}}`,
			`{"limits":{"cpu":"2","memory":"1Gi"},"requests":{"cpu":"2","memory":"1Gi"}}`},
		{"limit below the default request lowers the request", `{limits: {cpu: 50m, memory: 64Mi}}`,
			`{"limits":{"cpu":"50m","memory":"64Mi"},"requests":{"cpu":"50m","memory":"64Mi"}}`},
		{"limit between default request and default limit", `{limits: {memory: 256Mi}}`,
			`{"limits":{"cpu":"1","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}`},
		{"other resources untouched", `{limits: {ephemeral-storage: 1Gi}}`,
			`{"limits":{"cpu":"1","ephemeral-storage":"1Gi","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}`},
		{"explicit request equal to default limit", `{requests: {cpu: "1"}}`,
			`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"1","memory":"128Mi"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := workloadFromYAML(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: registry.corp.example/agents/a:1, resources: "+tc.in+"}]\n  initContainers: [{name: i, image: registry.corp.example/agents/a:1, resources: "+tc.in+"}]\n")
			h := hardenTwice(t, set, w)
			for _, c := range [][]corev1.Container{h.Spec.Containers, h.Spec.InitContainers} {
				r := c[0].Resources
				if got := mustJSON(t, r); got != tc.want {
					t.Errorf("%s: resources = %s\nwant %s", c[0].Name, got, tc.want)
				}
				for rn, req := range r.Requests {
					if lim, ok := r.Limits[rn]; ok && req.Cmp(lim) > 0 {
						t.Errorf("%s: request %s > limit %s for %s", c[0].Name, req.String(), lim.String(), rn)
					}
				}
			}
		})
	}

	// Property over requests and limits on both sides of the defaults: never request > limit.
	qs := []string{"", "10m", "100m", "500m", "1", "2", "5"}
	for _, req := range qs {
		for _, lim := range qs {
			if req != "" && lim != "" && qty(req).Cmp(*qty(lim)) > 0 {
				continue // invalid as sent; not hardening's doing
			}
			r := corev1.ResourceRequirements{}
			if req != "" {
				r.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req)}
			}
			if lim != "" {
				r.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(lim)}
			}
			set.Policies[0].hardenResources(&r)
			if r.Requests.Cpu().Cmp(*r.Limits.Cpu()) > 0 {
				t.Errorf("request %q limit %q hardened to request %s > limit %s", req, lim, r.Requests.Cpu(), r.Limits.Cpu())
			}
			if req != "" && r.Requests.Cpu().Cmp(*qty(req)) != 0 || lim != "" && r.Limits.Cpu().Cmp(*qty(lim)) != 0 {
				t.Errorf("request %q limit %q: an explicit value changed: %s", req, lim, mustJSON(t, r))
			}
		}
	}
}

// TestHardenControllers: templates are hardened at their own paths, and Judge reports a controller's
// problems at paths from its root, as after hardening.
func TestHardenControllers(t *testing.T) {
	set := NewSet(Default())
	for _, tc := range []struct {
		doc, denyPath string
	}{
		{`apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers: [{name: a, image: registry.corp.example/agents/a:1, securityContext: {readOnlyRootFilesystem: false}}]
`, "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem"},
		{`apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          hostPID: true
          containers: [{name: a, image: registry.corp.example/agents/a:1}]
`, "spec.jobTemplate.spec.template.spec.hostPID"},
	} {
		w, _ := workloadFromYAML(t, tc.doc)
		res := set.Judge(w, testNS, Requester{})
		if got := violationKeys(res.Violations); len(got) != 1 || !strings.HasSuffix(got[0], "@"+tc.denyPath) {
			t.Errorf("%s: denials = %q, want one at %s", w.Kind, got, tc.denyPath)
		}
		// Judge must not harden the caller's object: controllers are never mutated.
		if strings.Contains(mustJSON(t, w.Object), "drop") {
			t.Errorf("%s: Judge changed the object it was given", w.Kind)
		}
		h := hardenTwice(t, set, w)
		if c := h.Spec.Containers[0]; c.SecurityContext == nil || !dropsAll(&c) || c.Resources.Limits == nil {
			t.Errorf("%s template not hardened: %s", w.Kind, mustJSON(t, c))
		}
		// Fix the one problem and the template passes after hardening.
		w.Spec.HostPID = false
		w.Spec.Containers[0].SecurityContext = nil
		if res := set.Judge(w, testNS, Requester{}); !res.Allowed() {
			t.Errorf("%s: fixed template denied: %q", w.Kind, violationKeys(res.Violations))
		}
	}
}

// TestJudgePodBypassingMutation: a Pod judged as sent (mutation bypassed) is denied for the fields mutation
// would have filled; the mutated pod passes; a pod with a real problem gets only that problem.
func TestJudgePodBypassingMutation(t *testing.T) {
	set := NewSet(Default())
	w, _ := workloadFromYAML(t, hardenBare)
	res := set.Judge(w, testNS, Requester{})
	if res.Allowed() {
		t.Fatal("a pod that skipped mutation was admitted")
	}
	checks := map[string]bool{}
	for _, v := range res.Violations {
		checks[v.Check] = true
	}
	for _, c := range []string{"readOnlyRootFilesystem", "allowPrivilegeEscalation", "capabilities", "runAsNonRoot", "automountServiceAccountToken", "resources"} {
		if !checks[c] {
			t.Errorf("no %s violation for an unhardened pod: %q", c, violationKeys(res.Violations))
		}
	}
	m, changed := set.Mutate(w, testNS, Requester{})
	if !changed {
		t.Fatal("Mutate changed nothing")
	}
	if res := set.Judge(m, testNS, Requester{}); !res.Allowed() {
		t.Errorf("mutated pod denied: %q", violationKeys(res.Violations))
	}
	if mustJSON(t, w.Object) == mustJSON(t, m.Object) {
		t.Error("Mutate changed the caller's pod in place")
	}
}

// TestHardenSelection: a policy that does not select the pod (namespace labels, exempt namespace) hardens
// nothing; an exempt container keeps as sent the fields of the checks its exemption relaxes, and gets the
// others; pod-level runAsNonRoot moves to the judged containers when the exempt one may run as root. A
// requester the exemption does not name gets every container hardened.
func TestHardenSelection(t *testing.T) {
	set := NewSet(policyFromDefault(t, func(ap *AgentPolicy) {
		ap.Spec.Exempt.Containers = []ContainerExempt{{Name: "sidecar", Image: "registry.corp.example/agents/proxy:*",
			Checks: []string{"readOnlyRootFilesystem", "resources", "runAsNonRoot"}, ServiceAccounts: []string{"mesh/operator"}}}
	}))
	w, _ := workloadFromYAML(t, hardenBare)
	for _, ns := range []Namespace{{Name: "web", Labels: map[string]string{}}, {Name: "kube-system"}} {
		if set.Harden(w.DeepCopy(), ns, meshOperator) {
			t.Errorf("namespace %+v: hardened a pod no policy selects", ns)
		}
	}
	h := w.DeepCopy()
	set.Harden(h, testNS, meshOperator)
	if set.Harden(h, testNS, meshOperator) {
		t.Error("hardening is not idempotent with an exempt container")
	}
	side := h.Spec.Containers[1]
	if sc := side.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem != nil || sc.RunAsNonRoot != nil || side.Resources.Limits != nil ||
		sc.AllowPrivilegeEscalation == nil || !dropsAll(&side) {
		t.Errorf("exempt container: relaxed fields filled or others not: %s", mustJSON(t, side))
	}
	if sc := h.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot != nil || sc.SeccompProfile == nil {
		t.Errorf("pod securityContext: want seccomp and no pod-level runAsNonRoot (the sidecar may need root): %s", mustJSON(t, sc))
	}
	if sc := h.Spec.Containers[0].SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("judged container: runAsNonRoot not set per container: %s", mustJSON(t, h.Spec.Containers[0]))
	}
	res := set.evaluate(h, testNS, meshOperator)
	if !res.Allowed() || len(res.Exemptions) != 1 || res.Exemptions[0].Field != "spec.containers[1]" {
		t.Errorf("allowed %v exemptions %+v violations %+v", res.Allowed(), res.Exemptions, res.Violations)
	}
	// The same pod sent by anyone else: the sidecar is judged like every container.
	other := w.DeepCopy()
	set.Harden(other, testNS, Requester{Username: "system:serviceaccount:agents:default"})
	if sc := other.Spec.Containers[1].SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || other.Spec.SecurityContext.RunAsNonRoot == nil {
		t.Errorf("sidecar sent by a stranger not hardened: %s", mustJSON(t, other.Spec))
	}
}

func qty(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

// assertNoLinuxOnlyFields: the API server refuses Linux-only fields on a Windows pod, so hardening adds only
// automount, pod runAsNonRoot and resources.
func assertNoLinuxOnlyFields(t *testing.T, h *Workload) {
	t.Helper()
	c := h.Spec.Containers[0]
	if c.SecurityContext != nil {
		t.Errorf("container securityContext added to a Windows pod: %s", mustJSON(t, c.SecurityContext))
	}
	if sc := h.Spec.SecurityContext; sc == nil || sc.SeccompProfile != nil || sc.RunAsNonRoot == nil {
		t.Errorf("pod securityContext = %s; want runAsNonRoot only", mustJSON(t, sc))
	}
	if len(c.Resources.Limits) == 0 || h.Spec.AutomountServiceAccountToken == nil {
		t.Error("platform-neutral hardening (resources, automount) missing")
	}
}

// TestHardenStrictestDefaults: where two policies fill the same resource, the smaller default is filled,
// whichever name sorts first; a policy added with larger defaults cannot make mutation fill more.
func TestHardenStrictestDefaults(t *testing.T) {
	named := func(name, cpuReq, cpuLim, memLim string) *Policy {
		return policyFromDefault(t, func(ap *AgentPolicy) {
			ap.Metadata.Name = name
			ap.Spec.Resources.Defaults = ResourceDefaults{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuReq)},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLim), corev1.ResourceMemory: resource.MustParse(memLim)},
			}
		})
	}
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: agents}
spec:
  containers: [{name: a, image: registry.corp.example/agents/a:1}]
`
	strict := named("zz-strict", "100m", "1", "512Mi")
	for _, tc := range []struct {
		name   string
		loose  *Policy
		cpuLim string
		memLim string
		cpuReq string
	}{
		{"larger defaults sorting first", named("aa-loose", "2", "4", "8Gi"), "1", "512Mi", "100m"},
		{"larger defaults sorting last", named("zzz-loose", "2", "4", "8Gi"), "1", "512Mi", "100m"},
		{"smaller on one resource only", named("aa-mixed", "50m", "4", "256Mi"), "1", "256Mi", "50m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSet(strict, tc.loose)
			w, _ := workloadFromYAML(t, pod)
			h := hardenTwice(t, set, w)
			r := h.Spec.Containers[0].Resources
			if got := r.Limits[corev1.ResourceCPU]; got.Cmp(resource.MustParse(tc.cpuLim)) != 0 {
				t.Errorf("cpu limit %s, want %s", got.String(), tc.cpuLim)
			}
			if got := r.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse(tc.memLim)) != 0 {
				t.Errorf("memory limit %s, want %s", got.String(), tc.memLim)
			}
			if got := r.Requests[corev1.ResourceCPU]; got.Cmp(resource.MustParse(tc.cpuReq)) != 0 {
				t.Errorf("cpu request %s, want %s", got.String(), tc.cpuReq)
			}
			if res := set.evaluate(h, testNS, Requester{}); !res.Allowed() {
				t.Errorf("the hardened pod is denied: %v", violationKeys(res.Violations))
			}
		})
	}
}
