package policy

// The default policy is a strict superset of Pod Security "restricted" (DESIGN.md). This file checks that
// claim against the real thing, k8s.io/pod-security-admission's policy package, used as an independent oracle:
// for every PSA fixture pod and for a few thousand pods generated here, after hardening, either agentgate
// denies, or the hardened pod passes restricted (latest); and a second hardening pass changes nothing.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// conformanceDir is ../shared/conformance as seen from the repository root (DESIGN.md).
const conformanceDir = "../../shared/conformance"

// requireConformance skips the test with a message when the shared corpus is not checked out beside the
// repository.
func requireConformance(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(conformanceDir, "INDEX.tsv")); err != nil {
		t.Skipf("conformance corpus not found at %s (policy/%s from the repository root): %v", conformanceDir, conformanceDir, err)
	}
}

// restrictedOracle evaluates Pod Security "restricted" at the latest version.
type restrictedOracle struct{ ev psapolicy.Evaluator }

func newRestrictedOracle(t testing.TB) restrictedOracle {
	t.Helper()
	ev, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return restrictedOracle{ev: ev}
}

// violations returns "reason: detail" for every restricted check the pod spec fails; none when it passes.
func (o restrictedOracle) violations(meta *metav1.ObjectMeta, spec *corev1.PodSpec) []string {
	var out []string
	lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for _, r := range o.ev.EvaluatePod(lv, meta, spec) {
		if !r.Allowed {
			out = append(out, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return out
}

// apiServerDefaults applies the API server's defaulting that changes a verdict or a patch. Fixtures are
// written as their authors wrote them, but a webhook sees them defaulted (DESIGN.md):
//   - a volume with no source becomes an emptyDir (every pod spec);
//   - Pods only (SetDefaults_Pod, not templates): with hostNetwork, a port's hostPort defaults to its
//     containerPort; a limit without a request defaults the request to the limit. Containers and init
//     containers, not ephemeral ones.
//
// It reports whether anything changed.
func apiServerDefaults(w *Workload) bool {
	changed := false
	s := w.Spec
	for i := range s.Volumes {
		if (s.Volumes[i].VolumeSource == corev1.VolumeSource{}) {
			s.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
			changed = true
		}
	}
	if !w.IsPod() {
		return changed
	}
	for _, cs := range [][]corev1.Container{s.Containers, s.InitContainers} {
		for i := range cs {
			c := &cs[i]
			if s.HostNetwork {
				for j := range c.Ports {
					if c.Ports[j].HostPort == 0 {
						c.Ports[j].HostPort = c.Ports[j].ContainerPort
						changed = true
					}
				}
			}
			for rn, lim := range c.Resources.Limits {
				if _, ok := c.Resources.Requests[rn]; !ok {
					if c.Resources.Requests == nil {
						c.Resources.Requests = corev1.ResourceList{}
					}
					c.Resources.Requests[rn] = lim.DeepCopy()
					changed = true
				}
			}
		}
	}
	return changed
}

// oracleCase is one pod for the property: its name and the raw JSON the API server would send (defaulted).
type oracleCase struct {
	name string
	raw  []byte
}

// psaFixtureCases reads every PSA fixture pod. Fixtures that are not Pods (none today) are reported.
func psaFixtureCases(t *testing.T) []oracleCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(conformanceDir, "psa", "test", "testdata", "*", "v*", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no PSA fixtures under %s/psa", conformanceDir)
	}
	var out []oracleCase
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(filepath.Join(conformanceDir, "psa"), f)
		w, raw := workloadFromYAML(t, string(doc))
		if !w.IsPod() {
			t.Errorf("%s: a %s, not a Pod", rel, w.Kind)
			continue
		}
		if apiServerDefaults(w) {
			raw = []byte(mustJSON(t, w.Object))
		}
		out = append(out, oracleCase{name: rel, raw: raw})
	}
	return out
}

// oracleStats counts what the property saw, so that a run that admits nothing cannot pass unnoticed.
type oracleStats struct {
	cases, admitted, mutated int
}

// checkOracleProperty runs the property on one case under one policy set; it returns the failures found.
func checkOracleProperty(t *testing.T, oracle restrictedOracle, set *Set, c oracleCase, st *oracleStats) []string {
	t.Helper()
	var fails []string
	fail := func(format string, args ...any) { fails = append(fails, c.name+": "+fmt.Sprintf(format, args...)) }

	w, err := decodeRawWorkload(c.raw)
	if err != nil {
		fail("does not decode: %v", err)
		return fails
	}
	st.cases++

	// Harden, then harden again: the second pass is a no-op.
	h := w.DeepCopy()
	set.Harden(h, testNS, Requester{})
	again := h.DeepCopy()
	if set.Harden(again, testNS, Requester{}) || mustJSON(t, again.Object) != mustJSON(t, h.Object) {
		fail("second hardening pass changed the pod:\n  first  %s\n  second %s", mustJSON(t, h.Object), mustJSON(t, again.Object))
	}

	res := set.evaluate(h, testNS, Requester{})
	if res.Allowed() {
		st.admitted++
		if v := oracle.violations(h.PodMeta, h.Spec); len(v) > 0 {
			fail("admitted after hardening but fails Pod Security restricted: %s\n  hardened pod %s", strings.Join(v, "; "), mustJSON(t, h.Object))
		}
	}

	// The webhook's path: Mutate, then Judge the mutated pod. It agrees with Harden+evaluate, and the patch
	// applied to the raw document yields the mutated pod.
	m, changed := set.Mutate(w, testNS, Requester{})
	if changed {
		st.mutated++
		if !res.Allowed() {
			fail("Mutate patched a pod that is denied after hardening")
		}
		checkPatchApplies(t, c.raw, w.Object, m.Object)
	}
	judged := set.Judge(m, testNS, Requester{})
	if got := judged.Allowed(); got != res.Allowed() {
		fail("Judge(Mutate(pod)) allowed=%v but evaluate(Harden(pod)) allowed=%v: %q", got, res.Allowed(), violationKeys(res.Violations))
	}
	return fails
}

func reportOracleFailures(t *testing.T, fails []string) {
	t.Helper()
	const show = 15
	for i, f := range fails {
		if i == show {
			t.Errorf("... and %d more failures", len(fails)-show)
			break
		}
		t.Error(f)
	}
}

// oraclePolicies: the default policy with permissive images (the oracle judges security fields, not image
// provenance: registry.k8s.io/pause has neither an approved registry nor a tag), the same with
// windows: skipLinuxChecks, so Windows pods are judged too, and the same with spec.runtime set.
func oraclePolicies(t *testing.T) map[string]*Set {
	images := func(ap *AgentPolicy) {
		ap.Spec.Images.Allow = []string{"registry.k8s.io/**", "docker.io/**", "registry.corp.example/**"}
		ap.Spec.Images.DenyTags = nil
	}
	return map[string]*Set{
		"default": NewSet(policyFromDefault(t, images)),
		"skipLinuxChecks": NewSet(policyFromDefault(t, func(ap *AgentPolicy) {
			images(ap)
			ap.Spec.Windows = WindowsSkipLinuxChecks
		})),
		// spec.runtime fills runtimeClassName and hostUsers: false; Pod Security relaxes runAsNonRoot and
		// runAsUser for pods in a user namespace, so agentgate's forced fields must still stand alone.
		"runtime": NewSet(policyFromDefault(t, func(ap *AgentPolicy) {
			images(ap)
			ap.Spec.Runtime = Runtime{RuntimeClassNames: []string{"gvisor", "kata"}, DefaultRuntimeClassName: "gvisor", HostUsers: ptrTo(false)}
		})),
	}
}

func TestRestrictedOracleOnPSAFixtures(t *testing.T) {
	requireConformance(t)
	oracle := newRestrictedOracle(t)
	cases := psaFixtureCases(t)
	for name, set := range oraclePolicies(t) {
		t.Run(name, func(t *testing.T) {
			var st oracleStats
			var fails []string
			for _, c := range cases {
				fails = append(fails, checkOracleProperty(t, oracle, set, c, &st)...)
			}
			reportOracleFailures(t, fails)
			t.Logf("%d PSA fixture pods: %d admitted after hardening, %d mutated", st.cases, st.admitted, st.mutated)
			// 44 of the 148 are admit+patch in INDEX.tsv; a change that denies them all must not pass quietly.
			if st.admitted < 30 {
				t.Errorf("only %d fixture pods admitted: the property is nearly vacuous", st.admitted)
			}
		})
	}
}

// oracleGeneratedCases is how many pods TestRestrictedOracleOnGeneratedPods generates; fewer with -short.
const oracleGeneratedCases = 3000

func TestRestrictedOracleOnGeneratedPods(t *testing.T) {
	oracle := newRestrictedOracle(t)
	n := oracleGeneratedCases
	if testing.Short() {
		n = 300
	}
	gen := newPodGenerator(20260801)
	cases := make([]oracleCase, n)
	for i := range cases {
		pod := gen.pod(i)
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		apiServerDefaults(w)
		cases[i] = oracleCase{name: fmt.Sprintf("generated[%d]", i), raw: []byte(mustJSON(t, pod))}
	}
	for name, set := range oraclePolicies(t) {
		t.Run(name, func(t *testing.T) {
			var st oracleStats
			var fails []string
			for _, c := range cases {
				fails = append(fails, checkOracleProperty(t, oracle, set, c, &st)...)
			}
			reportOracleFailures(t, fails)
			t.Logf("%d generated pods: %d admitted after hardening, %d mutated", st.cases, st.admitted, st.mutated)
			if st.admitted < st.cases/10 {
				t.Errorf("only %d of %d generated pods admitted: the generator no longer exercises the admit side", st.admitted, st.cases)
			}
		})
	}
}

// podGenerator tweaks a minimal agent pod's security-relevant fields at random, with a fixed seed, so that
// every run judges the same pods. Each field is left unset or given a value restricted allows, except with
// the pod's "bad" probability, when any value may appear, forbidden ones and odd spellings included. A third
// of the pods have bad = 0, so the admit side of the property is exercised as much as the deny side.
type podGenerator struct {
	r   *rand.Rand
	bad float64
}

func newPodGenerator(seed uint64) *podGenerator {
	return &podGenerator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// chance is true with probability p.
func (g *podGenerator) chance(p float64) bool { return g.r.Float64() < p }

func pick[T any](g *podGenerator, options ...T) T { return options[g.r.IntN(len(options))] }

// choose picks among benign values, or with probability g.bad among bad ones.
func choose[T any](g *podGenerator, benign, bad []T) T {
	if len(bad) > 0 && g.chance(g.bad) {
		return pick(g, bad...)
	}
	return pick(g, benign...)
}

// opt is choose over pointers, where unset (nil) is one of the benign choices, the likeliest one.
func opt[T any](g *podGenerator, benign, bad []T) *T {
	if len(bad) > 0 && g.chance(g.bad) {
		v := pick(g, bad...)
		return &v
	}
	if len(benign) == 0 || g.chance(0.6) {
		return nil
	}
	v := pick(g, benign...)
	return &v
}

func (g *podGenerator) seccomp() *corev1.SeccompProfile {
	return opt(g,
		[]corev1.SeccompProfile{{Type: corev1.SeccompProfileTypeRuntimeDefault}, {Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptrTo("agent.json")}},
		[]corev1.SeccompProfile{{Type: corev1.SeccompProfileTypeUnconfined}, {Type: corev1.SeccompProfileTypeLocalhost}})
}

func (g *podGenerator) appArmor() *corev1.AppArmorProfile {
	return opt(g,
		[]corev1.AppArmorProfile{{Type: corev1.AppArmorProfileTypeRuntimeDefault}, {Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: ptrTo("agent")}},
		[]corev1.AppArmorProfile{{Type: corev1.AppArmorProfileTypeUnconfined}})
}

func (g *podGenerator) seLinux() *corev1.SELinuxOptions {
	return opt(g,
		[]corev1.SELinuxOptions{{Type: "container_t"}, {Type: "container_init_t"}, {Type: "container_kvm_t"}, {Type: "container_engine_t"}, {Level: "s0:c123,c456"}},
		[]corev1.SELinuxOptions{{Type: "spc_t"}, {User: "system_u"}, {Role: "system_r"}, {Type: "unconfined_t", Level: "s0"}})
}

func (g *podGenerator) windowsOptions() *corev1.WindowsSecurityContextOptions {
	return opt(g,
		[]corev1.WindowsSecurityContextOptions{{HostProcess: ptrTo(false)}, {RunAsUserName: ptrTo("ContainerUser")}},
		[]corev1.WindowsSecurityContextOptions{{HostProcess: ptrTo(true)}})
}

func (g *podGenerator) capabilities() *corev1.Capabilities {
	if g.chance(0.4) {
		return nil
	}
	c := &corev1.Capabilities{}
	if g.chance(0.6) {
		c.Drop = []corev1.Capability{choose[corev1.Capability](g, []corev1.Capability{"ALL", "NET_RAW"}, []corev1.Capability{"all", "CAP_ALL", "All"})}
	}
	if g.chance(0.4) {
		c.Add = []corev1.Capability{choose[corev1.Capability](g, []corev1.Capability{"NET_BIND_SERVICE"},
			[]corev1.Capability{"CAP_NET_BIND_SERVICE", "net_bind_service", "SYS_ADMIN", "CAP_SYS_ADMIN", "CHOWN", "NET_RAW", "ALL", "SYS_TIME"})}
	}
	return c
}

func (g *podGenerator) handler() *corev1.ProbeHandler {
	host := choose(g, []string{""}, []string{"127.0.0.1", "metadata.google.internal", "localhost", "10.0.0.1"})
	if g.chance(0.5) {
		return &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080), Host: host}}
	}
	return &corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080), Host: host}}
}

func (g *podGenerator) container(name string, ephemeral bool) corev1.Container {
	c := corev1.Container{Name: name, Image: pick(g, "registry.k8s.io/pause", "registry.k8s.io/pause:3.10", "docker.io/library/busybox:1.36")}
	if g.chance(0.7) {
		c.SecurityContext = &corev1.SecurityContext{
			Privileged:               opt(g, []bool{false}, []bool{true}),
			AllowPrivilegeEscalation: opt(g, []bool{false}, []bool{true}),
			ReadOnlyRootFilesystem:   opt(g, []bool{true}, []bool{false}),
			RunAsNonRoot:             opt(g, []bool{true}, []bool{false}),
			RunAsUser:                opt(g, []int64{1000, 65534}, []int64{0}),
			RunAsGroup:               opt(g, []int64{0, 1000}, nil),
			Capabilities:             g.capabilities(),
			SeccompProfile:           g.seccomp(),
			AppArmorProfile:          g.appArmor(),
			SELinuxOptions:           g.seLinux(),
			ProcMount:                opt(g, []corev1.ProcMountType{corev1.DefaultProcMount}, []corev1.ProcMountType{corev1.UnmaskedProcMount}),
			WindowsOptions:           g.windowsOptions(),
		}
	}
	if g.chance(0.3) {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: choose(g, []int32{0}, []int32{8080})}}
	}
	if g.chance(0.3) {
		c.LivenessProbe = &corev1.Probe{ProbeHandler: *g.handler()}
	}
	if g.chance(0.2) {
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: *g.handler()}
	}
	if g.chance(0.15) {
		h := g.handler()
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket}}
	}
	if !ephemeral {
		if g.chance(0.5) {
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(choose(g, []string{"50m", "200m", "2"}, []string{"8"}))}
		}
		if g.chance(0.3) {
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(choose(g, []string{"64Mi", "1Gi"}, []string{"16Gi"}))}
		}
	}
	return c
}

func (g *podGenerator) volume(i int) corev1.Volume {
	v := corev1.Volume{Name: fmt.Sprintf("vol%d", i)}
	benign := []func(){
		func() {}, // no source: the API server makes it an emptyDir
		func() { v.EmptyDir = &corev1.EmptyDirVolumeSource{} },
		func() {
			v.Projected = &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}}
		},
		func() {
			v.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}
		},
		func() { v.Secret = &corev1.SecretVolumeSource{SecretName: "s"} },
		func() { v.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"} },
		func() { v.CSI = &corev1.CSIVolumeSource{Driver: "csi.example"} },
		func() { v.Ephemeral = &corev1.EphemeralVolumeSource{} },
		func() { v.DownwardAPI = &corev1.DownwardAPIVolumeSource{} },
	}
	bad := []func(){
		func() { v.HostPath = &corev1.HostPathVolumeSource{Path: "/var/run"} },
		func() { v.NFS = &corev1.NFSVolumeSource{Server: "nfs.example", Path: "/"} },
		func() { v.GitRepo = &corev1.GitRepoVolumeSource{Repository: "https://example.com/r.git"} },
		func() {
			v.Projected = &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}
		},
	}
	choose(g, benign, bad)()
	return v
}

// pod builds generated pod number i.
func (g *podGenerator) pod(i int) *corev1.Pod {
	g.bad = pick(g, 0, 0.04, 0.15)
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gen-%d", i), Namespace: "agents"},
	}
	s := &p.Spec
	for j := range 1 + g.r.IntN(3) {
		s.Containers = append(s.Containers, g.container(fmt.Sprintf("c%d", j), false))
	}
	for j := range g.r.IntN(3) {
		s.InitContainers = append(s.InitContainers, g.container(fmt.Sprintf("i%d", j), false))
	}
	if g.chance(0.2) {
		s.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon(g.container("debug", true))}}
	}
	s.HostNetwork = choose(g, []bool{false}, []bool{false, true})
	s.HostPID = choose(g, []bool{false}, []bool{false, true})
	s.HostIPC = choose(g, []bool{false}, []bool{false, true})
	s.AutomountServiceAccountToken = opt(g, []bool{false}, []bool{true})
	if g.chance(0.5) {
		s.SecurityContext = &corev1.PodSecurityContext{
			RunAsNonRoot:    opt(g, []bool{true}, []bool{false}),
			RunAsUser:       opt(g, []int64{1000}, []int64{0}),
			SeccompProfile:  g.seccomp(),
			AppArmorProfile: g.appArmor(),
			SELinuxOptions:  g.seLinux(),
			WindowsOptions:  g.windowsOptions(),
		}
		if g.chance(0.2) {
			s.SecurityContext.Sysctls = []corev1.Sysctl{{Name: choose(g,
				[]string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
					"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
					"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"},
				[]string{"kernel.msgmax", "net.core.somaxconn", "vm.swappiness", "net.ipv4.tcp_rmem"}), Value: "1"}}
		}
	}
	for j := range g.r.IntN(3) {
		s.Volumes = append(s.Volumes, g.volume(j))
	}
	if g.chance(0.15) {
		c := s.Containers[0].Name
		p.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/" + c: choose(g,
			[]string{"runtime/default", "localhost/agent"}, []string{"unconfined"})}
	}
	if g.chance(0.05) {
		s.OS = &corev1.PodOS{Name: pick(g, corev1.Linux, corev1.Windows, corev1.Windows)}
		if s.OS.Name == corev1.Windows {
			stripLinuxOnlyFields(p)
		}
	}
	return p
}

// stripLinuxOnlyFields removes what the API server refuses on a Windows pod (validateWindows), so that the
// generated Windows pods are ones a cluster would accept; agentgate's verdict on the others never matters.
func stripLinuxOnlyFields(p *corev1.Pod) {
	s := &p.Spec
	s.HostPID, s.HostIPC = false, false
	p.Annotations = nil
	if sc := s.SecurityContext; sc != nil {
		sc.AppArmorProfile, sc.SELinuxOptions, sc.SeccompProfile, sc.Sysctls, sc.RunAsUser, sc.RunAsGroup = nil, nil, nil, nil, nil, nil
	}
	strip := func(c *corev1.Container) {
		if sc := c.SecurityContext; sc != nil {
			sc.AppArmorProfile, sc.SELinuxOptions, sc.SeccompProfile, sc.Capabilities = nil, nil, nil, nil
			sc.ReadOnlyRootFilesystem, sc.Privileged, sc.AllowPrivilegeEscalation = nil, nil, nil
			sc.ProcMount, sc.RunAsUser, sc.RunAsGroup = nil, nil, nil
		}
	}
	for i := range s.Containers {
		strip(&s.Containers[i])
	}
	for i := range s.InitContainers {
		strip(&s.InitContainers[i])
	}
	for i := range s.EphemeralContainers {
		strip((*corev1.Container)(&s.EphemeralContainers[i].EphemeralContainerCommon))
	}
}

// TestPodGeneratorDeterministic: the same seed gives the same pods, so a failure reproduces.
func TestPodGeneratorDeterministic(t *testing.T) {
	a, b := newPodGenerator(7), newPodGenerator(7)
	for i := range 50 {
		pa, pb := a.pod(i), b.pod(i)
		ja, _ := json.Marshal(pa)
		jb, _ := json.Marshal(pb)
		if string(ja) != string(jb) {
			t.Fatalf("pod %d differs between two generators with the same seed", i)
		}
	}
}
