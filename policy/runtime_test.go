package policy

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestCompileRuntime: a malformed spec.runtime is refused with every error at once, each at its path.
func TestCompileRuntime(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []string // "path: type"
	}{
		{name: "empty section", spec: "runtime: {}"},
		{name: "full", spec: "runtime: {runtimeClassNames: [gvisor, kata-qemu], defaultRuntimeClassName: gvisor, hostUsers: false}"},
		{name: "default without a list", spec: "runtime: {defaultRuntimeClassName: gvisor}"},
		{name: "default not listed", spec: "runtime: {runtimeClassNames: [kata], defaultRuntimeClassName: gvisor}",
			want: []string{"spec.runtime.defaultRuntimeClassName: Invalid value"}},
		{name: "names that are no RuntimeClass names", spec: `runtime: {runtimeClassNames: [gVisor, "", "kata qemu", "-x"], defaultRuntimeClassName: "Kata_"}`,
			want: []string{
				"spec.runtime.runtimeClassNames[0]: Invalid value", "spec.runtime.runtimeClassNames[1]: Invalid value",
				"spec.runtime.runtimeClassNames[2]: Invalid value", "spec.runtime.runtimeClassNames[3]: Invalid value",
				"spec.runtime.defaultRuntimeClassName: Invalid value", "spec.runtime.defaultRuntimeClassName: Invalid value",
			}},
		{name: "duplicate", spec: "runtime: {runtimeClassNames: [gvisor, kata, gvisor]}",
			want: []string{"spec.runtime.runtimeClassNames[2]: Duplicate value"}},
		{name: "hostUsers true forces nothing", spec: "runtime: {hostUsers: true}",
			want: []string{"spec.runtime.hostUsers: Unsupported value"}},
		{name: "hostUsers as a string", spec: `runtime: {hostUsers: "false"}`,
			want: []string{"spec.runtime.hostUsers: Invalid value"}},
		{name: "unknown field", spec: "runtime: {runtimeClass: gvisor}",
			want: []string{"spec.runtime.runtimeClass: Forbidden"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := Parse([]byte(policyHead + "spec:\n  " + tc.spec + "\n"))
			var got []string
			for _, e := range errs {
				got = append(got, e.Field+": "+e.Type.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q\n%s", got, tc.want, strings.Join(errorStrings(errs), "\n"))
			}
		})
	}
}

const runtimePolicy = "runtime: {runtimeClassNames: [gvisor, kata], defaultRuntimeClassName: gvisor, hostUsers: false}"

// TestHardenRuntime: what hardening fills, and where it leaves the field alone because the API server would
// then refuse the pod (validateHostUsers, validateWindows in k8s.io/kubernetes v1.37).
func TestHardenRuntime(t *testing.T) {
	set := NewSet(testPolicy(t, runtimePolicy+"\nwindows: skipLinuxChecks"))
	for _, tc := range []struct {
		name          string
		tweak         func(*corev1.Pod)
		runtimeClass  string // "" unset
		hostUsers     string // "unset", "true", "false"
		exemptSidecar bool
	}{
		{name: "both filled", runtimeClass: "gvisor", hostUsers: "false"},
		{name: "explicit runtime class kept, even an unlisted one", tweak: func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptrTo("runc") }, runtimeClass: "runc", hostUsers: "false"},
		{name: "explicit hostUsers true kept", tweak: func(p *corev1.Pod) { p.Spec.HostUsers = ptrTo(true) }, runtimeClass: "gvisor", hostUsers: "true"},
		{name: "hostNetwork", tweak: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, runtimeClass: "gvisor", hostUsers: "unset"},
		{name: "hostPID", tweak: func(p *corev1.Pod) { p.Spec.HostPID = true }, runtimeClass: "gvisor", hostUsers: "unset"},
		{name: "hostIPC", tweak: func(p *corev1.Pod) { p.Spec.HostIPC = true }, runtimeClass: "gvisor", hostUsers: "unset"},
		{name: "volumeDevices", tweak: func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "raw", DevicePath: "/dev/xvda"}}
		}, runtimeClass: "gvisor", hostUsers: "unset"},
		{name: "volumeDevices in an ephemeral container", tweak: func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: testImage, VolumeDevices: []corev1.VolumeDevice{{Name: "raw", DevicePath: "/dev/xvda"}}}}}
		}, runtimeClass: "gvisor", hostUsers: "unset"},
		// The API server validates exempt containers too.
		{name: "volumeDevices in an exempt container", exemptSidecar: true, tweak: func(p *corev1.Pod) {
			c := validContainer("sidecar")
			c.Image = "registry.corp.example/mesh/proxy:1"
			c.VolumeDevices = []corev1.VolumeDevice{{Name: "raw", DevicePath: "/dev/xvda"}}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}, runtimeClass: "gvisor", hostUsers: "unset"},
		{name: "windows pod: nothing filled", tweak: func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }, hostUsers: "unset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := set
			if tc.exemptSidecar {
				s = NewSet(testPolicy(t, runtimePolicy+"\nexempt: {containers: [{name: sidecar, image: 'registry.corp.example/mesh/proxy:*', checks: [images], serviceAccounts: [mesh/operator]}]}"))
			}
			pod := validPod()
			if tc.tweak != nil {
				tc.tweak(pod)
			}
			w, err := NewWorkload(pod)
			if err != nil {
				t.Fatal(err)
			}
			h := hardenTwiceAs(t, s, w, meshOperator)
			rc := ""
			if h.Spec.RuntimeClassName != nil {
				rc = *h.Spec.RuntimeClassName
			}
			if rc != tc.runtimeClass || boolString(h.Spec.HostUsers) != tc.hostUsers {
				t.Errorf("runtimeClassName %q hostUsers %s; want %q %s", rc, boolString(h.Spec.HostUsers), tc.runtimeClass, tc.hostUsers)
			}
		})
	}
}

// TestMutateRuntimeInWarnMode: a warn-mode policy admits a hostNetwork pod, so Mutate patches it; the patch
// must not carry hostUsers: false, which the API server would refuse beside hostNetwork, failing a create
// that the policy meant to let through with a warning.
func TestMutateRuntimeInWarnMode(t *testing.T) {
	set := NewSet(testPolicy(t, runtimePolicy+"\nmode: warn"))
	pod := validPod()
	pod.Spec.HostNetwork = true
	w, _ := NewWorkload(pod)
	m, changed := set.Mutate(w, testNS, Requester{})
	if !changed {
		t.Fatal("Mutate did not fill the runtime class")
	}
	if m.Spec.HostUsers != nil {
		t.Errorf("hostUsers = %s beside hostNetwork: the API server refuses that pod", boolString(m.Spec.HostUsers))
	}
	if m.Spec.RuntimeClassName == nil || *m.Spec.RuntimeClassName != "gvisor" {
		t.Errorf("runtimeClassName = %s, want gvisor", runtimeClassNameOf(m.Spec))
	}
	res := set.Judge(m, testNS, Requester{})
	if got := violationKeys(res.Violations); !slices.Contains(got, "hostUsers@spec.hostUsers") || !res.Allowed() {
		t.Errorf("warn mode: want an admitted pod with a hostUsers warning, got allowed=%v %q", res.Allowed(), got)
	}
}

// TestRuntimeEndToEndInPolicy: Mutate fills both fields, Judge admits the result; a pod that bypassed
// mutation, or that says otherwise, is denied with the field paths; a controller template is judged as after
// hardening and never mutated.
func TestRuntimeEndToEndInPolicy(t *testing.T) {
	set := NewSet(testPolicy(t, runtimePolicy))
	w, _ := NewWorkload(validPod())
	if res := set.Judge(w, testNS, Requester{}); res.Allowed() {
		t.Error("a pod that bypassed mutation was admitted without runtime class and user namespace")
	} else if got := violationKeys(res.Violations); !slices.Equal(got, []string{"hostUsers@spec.hostUsers", "runtimeClass@spec.runtimeClassName"}) {
		t.Errorf("violations %q", got)
	}
	m, changed := set.Mutate(w, testNS, Requester{})
	if !changed {
		t.Fatal("nothing filled")
	}
	if res := set.Judge(m, testNS, Requester{}); !res.Allowed() {
		t.Errorf("the mutated pod is denied: %q", violationKeys(res.Violations))
	}

	bad := validPod()
	bad.Spec.RuntimeClassName, bad.Spec.HostUsers = ptrTo("runc"), ptrTo(true)
	wb, _ := NewWorkload(bad)
	mb, _ := set.Mutate(wb, testNS, Requester{})
	if got := violationKeys(set.Judge(mb, testNS, Requester{}).Violations); !slices.Equal(got, []string{"hostUsers@spec.hostUsers", "runtimeClass@spec.runtimeClassName"}) {
		t.Errorf("explicit runc and hostUsers: true: violations %q", got)
	}

	d, _ := workloadFromYAML(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: agents}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      hostUsers: true
      containers: [{name: a, image: registry.corp.example/agents/runner:1.0}]
`)
	res := set.Judge(d, testNS, Requester{})
	if got := violationKeys(res.Violations); !slices.Equal(got, []string{"hostUsers@spec.template.spec.hostUsers"}) {
		t.Errorf("Deployment: violations %q; want hostUsers only (the runtime class is filled in its pods)", got)
	}
	if d.Spec.RuntimeClassName != nil || d.Spec.HostUsers == nil || !*d.Spec.HostUsers {
		t.Error("judging the Deployment changed its template")
	}
}

// TestWeakenRuntime: loosening spec.runtime is a weakening the guard refuses to non-admins, at its field;
// tightening it is not.
func TestWeakenRuntime(t *testing.T) {
	base := policyHead + "spec:\n  " + runtimePolicy + "\n"
	old := mustParse(t, base)
	for _, tc := range []struct {
		name, runtime string
		want          []string // "field: old -> new"
	}{
		{"unchanged, spelt otherwise", "runtime: {hostUsers: false, defaultRuntimeClassName: gvisor, runtimeClassNames: [kata, gvisor]}", nil},
		{"a class removed from the list", "runtime: {runtimeClassNames: [gvisor], defaultRuntimeClassName: gvisor, hostUsers: false}", nil},
		{"runc allowed", "runtime: {runtimeClassNames: [gvisor, kata, runc], defaultRuntimeClassName: gvisor, hostUsers: false}",
			[]string{`spec.runtime.runtimeClassNames[2]: (none) -> "runc"`}},
		{"list emptied", "runtime: {defaultRuntimeClassName: gvisor, hostUsers: false}",
			[]string{`spec.runtime.runtimeClassNames: ["gvisor", "kata"] -> []`}},
		{"default changed", "runtime: {runtimeClassNames: [gvisor, kata], defaultRuntimeClassName: kata, hostUsers: false}",
			[]string{`spec.runtime.defaultRuntimeClassName: "gvisor" -> "kata"`}},
		{"default removed", "runtime: {runtimeClassNames: [gvisor, kata], hostUsers: false}",
			[]string{`spec.runtime.defaultRuntimeClassName: "gvisor" -> (none)`}},
		{"user namespaces no longer forced", "runtime: {runtimeClassNames: [gvisor, kata], defaultRuntimeClassName: gvisor}",
			[]string{"spec.runtime.hostUsers: false -> (none)"}},
		{"the whole section removed", "windows: deny", []string{
			`spec.runtime.runtimeClassNames: ["gvisor", "kata"] -> []`, `spec.runtime.defaultRuntimeClassName: "gvisor" -> (none)`, "spec.runtime.hostUsers: false -> (none)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, w := range Weakenings(old, mustParse(t, policyHead+"spec:\n  "+tc.runtime+"\n")) {
				if w.Rule != "runtime" || w.Detail == "" {
					t.Errorf("weakening %+v", w)
				}
				got = append(got, w.Field+": "+w.Old+" -> "+w.New)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("weakenings\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	// From no runtime section to one is tightening.
	if ws := Weakenings(mustParse(t, policyHead), old); len(ws) != 0 {
		t.Errorf("adding spec.runtime counted as weakening: %v", ws)
	}
}
