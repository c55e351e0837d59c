package policy

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Shared helpers for the per-check tests (check_<id>_test.go): one minimal valid pod, tweaked by each case.

const testImage = "registry.corp.example/agents/runner:1.0"

// validContainer passes every check of the default policy as it is: no hardening needed.
func validContainer(name string) corev1.Container {
	return corev1.Container{
		Name:    name,
		Image:   testImage,
		Command: []string{"/bin/agent"},
		Args:    []string{"--serve"},
		Env:     []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}},
		SecurityContext: &corev1.SecurityContext{
			ReadOnlyRootFilesystem:   ptrTo(true),
			AllowPrivilegeEscalation: ptrTo(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// validPod is a one-container agent pod that the default policy admits without any change, and that passes
// Pod Security "restricted".
func validPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "agents", Labels: map[string]string{"app": "agent"}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptrTo(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptrTo(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{validContainer("agent")},
			Volumes:    []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

// validPodAllKinds is validPod with a valid init container ("init") and ephemeral container ("debug") too.
func validPodAllKinds() *corev1.Pod {
	pod := validPod()
	pod.Spec.InitContainers = []corev1.Container{validContainer("init")}
	debug := validContainer("debug")
	debug.Resources = corev1.ResourceRequirements{} // the API forbids resources on ephemeral containers
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon(debug)}}
	return pod
}

// containerKind names one container of validPodAllKinds and where it sits.
type containerKind struct {
	kind string // initContainers | containers | ephemeralContainers
	path string // spec.initContainers[0]
	get  func(*corev1.Pod) *corev1.Container
}

var containerKinds = []containerKind{
	{"initContainers", "spec.initContainers[0]", func(p *corev1.Pod) *corev1.Container { return &p.Spec.InitContainers[0] }},
	{"containers", "spec.containers[0]", func(p *corev1.Pod) *corev1.Container { return &p.Spec.Containers[0] }},
	{"ephemeralContainers", "spec.ephemeralContainers[0]", func(p *corev1.Pod) *corev1.Container {
		return (*corev1.Container)(&p.Spec.EphemeralContainers[0].EphemeralContainerCommon)
	}},
}

// testPolicy parses a policy whose spec is the given YAML snippet (indented as under "spec:"); an empty
// snippet gives Default().
func testPolicy(t testing.TB, spec string) *Policy {
	t.Helper()
	if spec == "" {
		return Default()
	}
	doc := "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: test}\nspec:\n"
	for _, l := range strings.Split(strings.Trim(spec, "\n"), "\n") {
		doc += "  " + l + "\n"
	}
	p, errs := Parse([]byte(doc))
	if len(errs) > 0 {
		t.Fatalf("policy does not parse: %v\n%s", errs.ToAggregate(), doc)
	}
	return p
}

// runCheck runs one check, whatever its linuxOnly flag, over the pod as it is (no hardening), sent by an
// unknown requester in a namespace whose Secrets are unknown.
func runCheck(t testing.TB, p *Policy, c check, pod *corev1.Pod) Violations {
	t.Helper()
	return runCheckIn(t, p, c, pod, Namespace{Name: "agents"}, Requester{})
}

// meshOperator is the requester that test policies' container exemptions name (serviceAccounts: [mesh/operator]).
var meshOperator = Requester{Username: "system:serviceaccount:mesh:operator"}

// runCheckIn is runCheck in namespace ns for requester rq, through the view the check gets in evaluate.
func runCheckIn(t testing.TB, p *Policy, c check, pod *corev1.Pod, ns Namespace, rq Requester) Violations {
	t.Helper()
	w, err := NewWorkload(pod)
	if err != nil {
		t.Fatal(err)
	}
	r := &report{policy: p}
	c.run(p, p.view(w, ns, rq, nil).judgedBy(c.id), r)
	return r.out
}

// checkCase is one row of a per-check table: validPod (or validPodAllKinds) tweaked once.
type checkCase struct {
	name     string
	policy   string // YAML under spec:, "" for the default policy
	allKinds bool   // start from validPodAllKinds
	tweak    func(*corev1.Pod)
	// want lists every violation as "field | found | allowed", in order.
	want []string
	// msgs, when set, are the exact messages, in order.
	msgs []string
	// requester sends the pod (unknown when zero); tokenSecrets, when set, are the namespace's
	// service-account token Secrets (unknown when nil).
	requester    Requester
	tokenSecrets []string
}

func render(v Violation) string { return v.Field + " | " + v.Found + " | " + v.Allowed }

func runCheckCases(t *testing.T, c check, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy(t, tc.policy)
			pod := validPod()
			if tc.allKinds {
				pod = validPodAllKinds()
			}
			if tc.tweak != nil {
				tc.tweak(pod)
			}
			ns := Namespace{Name: "agents"}
			if tc.tokenSecrets != nil {
				ns.IsTokenSecret = func(name string) bool { return slices.Contains(tc.tokenSecrets, name) }
			}
			vs := runCheckIn(t, p, c, pod, ns, tc.requester)
			got := make([]string, len(vs))
			for i, v := range vs {
				got[i] = render(v)
				if v.Check != c.id || v.Policy != p.Name || v.Mode != p.Spec.Mode {
					t.Errorf("violation %d: check %q policy %q mode %q; want %q %q %q", i, v.Check, v.Policy, v.Mode, c.id, p.Name, p.Spec.Mode)
				}
				if want := "[" + c.id + "] "; !strings.HasPrefix(v.Message, want) || !strings.HasSuffix(v.Message, "(found "+v.Found+"; allowed: "+v.Allowed+")") {
					t.Errorf("violation %d: message %q does not carry its check, found and allowed values", i, v.Message)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("violations:\n got %s\nwant %s", strings.Join(quoteAll(got), "\n     "), strings.Join(quoteAll(tc.want), "\n     "))
			}
			if tc.msgs != nil {
				msgs := make([]string, len(vs))
				for i, v := range vs {
					msgs[i] = v.Message
				}
				if !slices.Equal(msgs, tc.msgs) {
					t.Errorf("messages:\n got %s\nwant %s", strings.Join(quoteAll(msgs), "\n     "), strings.Join(quoteAll(tc.msgs), "\n     "))
				}
			}
		})
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quote(s)
	}
	if len(out) == 0 {
		return []string{"(none)"}
	}
	return out
}

// kindCases repeats one container tweak on each container kind of validPodAllKinds; want receives the kind's
// path ("spec.initContainers[0]") and returns the expected violations.
func kindCases(name, policy string, tweak func(*corev1.Container), want func(path string) []string) []checkCase {
	var out []checkCase
	for _, k := range containerKinds {
		out = append(out, checkCase{
			name: name + "/" + k.kind, policy: policy, allKinds: true,
			tweak: func(p *corev1.Pod) { tweak(k.get(p)) },
			want:  want(k.path),
		})
	}
	return out
}

func sc(c *corev1.Container) *corev1.SecurityContext {
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	return c.SecurityContext
}

// The helpers' own promise: the valid pods pass every check of the default policy, with and without hardening,
// and need no hardening.
func TestValidPodPassesDefaultPolicy(t *testing.T) {
	for name, pod := range map[string]*corev1.Pod{"validPod": validPod(), "validPodAllKinds": validPodAllKinds()} {
		t.Run(name, func(t *testing.T) {
			p := Default()
			for _, c := range checks {
				if vs := runCheck(t, p, c, pod); len(vs) > 0 {
					t.Errorf("check %s: %v", c.id, vs)
				}
			}
			w, err := NewWorkload(pod)
			if err != nil {
				t.Fatal(err)
			}
			set := NewSet(p)
			if set.Harden(w.DeepCopy(), Namespace{Name: "agents"}, Requester{}) {
				t.Error("the valid pod needs hardening")
			}
			if res := set.Judge(w, Namespace{Name: "agents"}, Requester{}); !res.Allowed() || len(res.Violations) > 0 {
				t.Errorf("Judge: %v", res.Violations)
			}
		})
	}
}

// badPod breaks many checks at once, in every container kind.
func badPod() *corev1.Pod {
	pod := validPodAllKinds()
	pod.Spec.HostNetwork = true
	pod.Spec.AutomountServiceAccountToken = ptrTo(true)
	pod.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}}
	pod.Spec.SecurityContext.SeccompProfile.Type = corev1.SeccompProfileTypeUnconfined
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "node", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}},
		corev1.Volume{Name: "share", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}}})
	pod.ObjectMeta.Annotations = map[string]string{
		"container.apparmor.security.beta.kubernetes.io/agent": "unconfined",
		"container.apparmor.security.beta.kubernetes.io/init":  "unconfined",
	}
	for _, k := range containerKinds {
		c := k.get(pod)
		c.Image = "docker.io/library/busybox"
		c.SecurityContext.Privileged = ptrTo(true)
		c.SecurityContext.ReadOnlyRootFilesystem = ptrTo(false)
		c.SecurityContext.RunAsUser = ptrTo(int64(0))
		c.SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
		c.Command, c.Args = []string{"sh", "-c", "rm -rf / ; reboot"}, nil
		c.Env = append(c.Env, corev1.EnvVar{Name: "DB_PASSWORD", Value: "hunter2"})
	}
	return pod
}

func TestViolationsComeInCheckOrderDeterministically(t *testing.T) {
	p := Default()
	order := map[string]int{}
	for i, id := range CheckIDs() {
		order[id] = i
	}
	var first Violations
	for run := 0; run < 20; run++ {
		w, err := NewWorkload(badPod())
		if err != nil {
			t.Fatal(err)
		}
		res := NewSet(p).evaluate(w, Namespace{Name: "agents"}, Requester{})
		vs := res.Violations
		if run == 0 {
			first = vs
			seen := map[string]bool{}
			for i, v := range vs {
				seen[v.Check] = true
				if i > 0 && order[v.Check] < order[vs[i-1].Check] {
					t.Errorf("violation %d (%s at %s) comes after %s", i, v.Check, v.Field, vs[i-1].Check)
				}
			}
			for _, id := range []string{"hostNamespaces", "privileged", "hostPath", "capabilities", "readOnlyRootFilesystem",
				"runAsUser", "seccomp", "appArmor", "sysctls", "volumeTypes", "automountServiceAccountToken", "images",
				"commands", "envSecrets"} {
				if !seen[id] {
					t.Errorf("no violation of %s: all violations must come at once", id)
				}
			}
			continue
		}
		if !reflect.DeepEqual(vs, first) {
			t.Fatalf("run %d differs from run 0:\n%v\n%v", run, vs, first)
		}
	}
	if len(first) < 30 {
		t.Errorf("only %d violations; every container kind should contribute", len(first))
	}
	// Within one check, containers come init, regular, ephemeral.
	var privileged []string
	for _, v := range first {
		if v.Check == "privileged" {
			privileged = append(privileged, v.Field)
		}
	}
	want := []string{"spec.initContainers[0].securityContext.privileged", "spec.containers[0].securityContext.privileged", "spec.ephemeralContainers[0].securityContext.privileged"}
	if !slices.Equal(privileged, want) {
		t.Errorf("privileged fields %v, want %v", privileged, want)
	}
}

// The file name of the windows check cannot be check_windows.go: Go reads a _windows.go suffix as a build
// constraint and would compile it on Windows only.
var checkFileExceptions = map[string]string{"windows": "check_windowsPods.go"}

func TestEveryCheckHasItsFile(t *testing.T) {
	ids := CheckIDs()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("check ID %q listed twice", id)
		}
		seen[id] = true
		file := "check_" + id + ".go"
		if f, ok := checkFileExceptions[id]; ok {
			file = f
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("check %q: %v", id, err)
			continue
		}
		s := string(src)
		if !strings.Contains(s, `id: "`+id+`"`) {
			t.Errorf("%s does not define the check %q", file, id)
		}
		if !strings.Contains(s, "// Restricted fields:") || !strings.Contains(strings.ToLower(s), "allowed values") {
			t.Errorf("%s: the head comment must be the spec (Restricted fields, Allowed values)", file)
		}
		test := strings.TrimSuffix(file, ".go") + "_test.go"
		if _, err := os.Stat(test); err != nil {
			t.Errorf("check %q has no test file: %v", id, err)
		}
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, f := range checkFileExceptions {
		files[f] = true
	}
	for _, id := range ids {
		files["check_"+id+".go"] = true
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "check_") && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") && !files[n] {
			t.Errorf("%s is not the file of any listed check (stubs, or a check missing from checks.go)", n)
		}
	}
}

// The happy path of every check allocates nothing: the Check benchmark's budget is spent on decoding and the
// report, not on checks that find nothing.
func TestChecksDoNotAllocateOnCompliantPod(t *testing.T) {
	p := Default()
	w, err := NewWorkload(validPodAllKinds())
	if err != nil {
		t.Fatal(err)
	}
	pod := newPodView(p, w, Requester{}, nil)
	r := &report{policy: p}
	for _, c := range checks {
		if n := testing.AllocsPerRun(50, func() { c.run(p, pod, r) }); n != 0 {
			t.Errorf("check %s allocates %v times on a compliant pod", c.id, n)
		}
	}
	if len(r.out) != 0 {
		t.Errorf("compliant pod: %v", r.out)
	}
}
