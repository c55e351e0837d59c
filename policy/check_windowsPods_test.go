package policy

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckWindows(t *testing.T) {
	osName := func(n corev1.OSName) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: n} }
	}
	selector := func(k, v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{k: v} }
	}
	expr := func(k string, op corev1.NodeSelectorOperator, vs ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: k, Operator: op, Values: vs}
	}
	required := func(terms ...[]corev1.NodeSelectorRequirement) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			ns := &corev1.NodeSelector{}
			for _, t := range terms {
				ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t})
			}
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: ns}}
		}
	}
	terms := func(es ...corev1.NodeSelectorRequirement) []corev1.NodeSelectorRequirement { return es }
	const (
		allowed = "linux, unset (or a policy with windows: skipLinuxChecks)"
		os      = "kubernetes.io/os"
		req     = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
	)
	runCheckCases(t, checkWindows, []checkCase{
		{name: "valid"},
		{name: "linux", tweak: osName(corev1.Linux)},
		{
			name:  "windows",
			tweak: osName(corev1.Windows),
			want:  []string{"spec.os.name | windows | " + allowed},
			msgs:  []string{"[windows] the agent sandbox relies on Linux-only security fields; this pod may run on a Windows node (found windows; allowed: " + allowed + ")"},
		},
		{name: "windows under skipLinuxChecks", policy: "windows: skipLinuxChecks", tweak: osName(corev1.Windows)},
		// Bypass attempts: spec.os left unset, Windows nodes chosen by the scheduling constraints.
		{name: "nodeSelector windows", tweak: selector(os, "windows"), want: []string{"spec.nodeSelector[kubernetes.io/os] | windows | " + allowed}},
		{name: "deprecated beta os label", tweak: selector("beta.kubernetes.io/os", "windows"), want: []string{"spec.nodeSelector[beta.kubernetes.io/os] | windows | " + allowed}},
		{name: "nodeSelector linux", tweak: selector(os, "linux")},
		{name: "nodeSelector on another label", tweak: selector("node.kubernetes.io/windows-build", "10.0.20348")},
		{
			name:  "os.name linux wins over a windows nodeSelector (the kubelet refuses the pod there)",
			tweak: func(p *corev1.Pod) { osName(corev1.Linux)(p); selector(os, "windows")(p) },
		},
		{
			name:  "os.name windows beside a linux nodeSelector",
			tweak: func(p *corev1.Pod) { osName(corev1.Windows)(p); selector(os, "linux")(p) },
			want:  []string{"spec.os.name | windows | " + allowed},
		},
		{name: "affinity In [windows]", tweak: required(terms(expr(os, corev1.NodeSelectorOpIn, "windows"))), want: []string{req + "[0].matchExpressions[0] | kubernetes.io/os In [windows] | " + allowed}},
		{name: "affinity In [linux, windows]", tweak: required(terms(expr(os, corev1.NodeSelectorOpIn, "linux", "windows"))), want: []string{req + "[0].matchExpressions[0] | kubernetes.io/os In [linux, windows] | " + allowed}},
		{name: "affinity NotIn [linux]", tweak: required(terms(expr(os, corev1.NodeSelectorOpNotIn, "linux"))), want: []string{req + "[0].matchExpressions[0] | kubernetes.io/os NotIn [linux] | " + allowed}},
		{name: "affinity Exists", tweak: required(terms(expr(os, corev1.NodeSelectorOpExists))), want: []string{req + "[0].matchExpressions[0] | kubernetes.io/os Exists [] | " + allowed}},
		{name: "affinity In [linux]", tweak: required(terms(expr(os, corev1.NodeSelectorOpIn, "linux")))},
		{name: "affinity NotIn [windows]", tweak: required(terms(expr(os, corev1.NodeSelectorOpNotIn, "windows")))},
		{name: "affinity DoesNotExist", tweak: required(terms(expr(os, corev1.NodeSelectorOpDoesNotExist)))},
		{
			name:  "a second term admits windows (terms are ORed)",
			tweak: required(terms(expr(os, corev1.NodeSelectorOpIn, "linux")), terms(expr("zone", corev1.NodeSelectorOpExists), expr(os, corev1.NodeSelectorOpIn, "windows"))),
			want:  []string{req + "[1].matchExpressions[1] | kubernetes.io/os In [windows] | " + allowed},
		},
		{
			name:  "a term whose other os expression excludes windows (expressions are ANDed)",
			tweak: required(terms(expr(os, corev1.NodeSelectorOpExists), expr(os, corev1.NodeSelectorOpNotIn, "windows"))),
		},
		{
			name: "preferred affinity for windows",
			tweak: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: terms(expr(os, corev1.NodeSelectorOpIn, "windows"))}}}}}
			},
			want: []string{"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0] | kubernetes.io/os In [windows] | " + allowed},
		},
		{
			name: "a toleration of the Windows taint",
			tweak: func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/os", Operator: corev1.TolerationOpEqual, Value: "windows", Effect: corev1.TaintEffectNoSchedule}}
			},
			want: []string{"spec.tolerations[0] | a toleration of the Windows node taint node.kubernetes.io/os | " + allowed},
		},
		{name: "nodeSelector windows under skipLinuxChecks", policy: "windows: skipLinuxChecks", tweak: selector(os, "windows")},
		// spec.nodeName skips the scheduler and every constraint above: only spec.os.name keeps it off Windows.
		{
			name:  "spec.nodeName without spec.os.name",
			tweak: func(p *corev1.Pod) { p.Spec.NodeName = "win-node-1" },
			want:  []string{`spec.nodeName | node "win-node-1" without spec.os.name | spec.os.name: linux beside it (agentgate's mutation sets it)`},
		},
		{name: "spec.nodeName beside spec.os.name: linux", tweak: func(p *corev1.Pod) { p.Spec.NodeName = "node-1"; p.Spec.OS = &corev1.PodOS{Name: corev1.Linux} }},
		{name: "spec.nodeName under skipLinuxChecks", policy: "windows: skipLinuxChecks", tweak: func(p *corev1.Pod) { p.Spec.NodeName = "win-node-1" }},
	})
}

// Linux-only checks are skipped for Windows pods; the others still run.
func TestLinuxOnlyChecksSkipWindowsPods(t *testing.T) {
	linuxOnly := map[string]bool{}
	for _, c := range checks {
		linuxOnly[c.id] = c.linuxOnly
	}
	for id, want := range map[string]bool{
		"seccomp": true, "appArmor": true, "seLinux": true, "procMount": true, "sysctls": true,
		"capabilities": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": true, "runAsUser": true,
		"hostProbes": false, "windowsHostProcess": false, "volumeTypes": false, "serviceAccountTokenProjection": false,
		"commands": false, "envSecrets": false, "images": false, "windows": false,
	} {
		if linuxOnly[id] != want {
			t.Errorf("check %s: linuxOnly = %v, want %v", id, linuxOnly[id], want)
		}
	}

	pod := validPod()
	pod.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"},
		Sysctls:        []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}},
		RunAsNonRoot:   ptrTo(true),
		WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptrTo(true)},
	}
	pod.Spec.Containers[0].SecurityContext = nil
	pod.Spec.Containers[0].Image = "mcr.microsoft.com/windows/nanoserver:ltsc2022"
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"windows: skipLinuxChecks", []string{"windowsHostProcess", "images"}},
		{"windows: deny", []string{"windowsHostProcess", "images", "windows"}},
	} {
		p := testPolicy(t, tc.policy+"\nimages: {allow: [registry.corp.example/**]}")
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range p.check(newPodView(p, w, Requester{}, nil)) {
			if len(got) == 0 || got[len(got)-1] != v.Check {
				got = append(got, v.Check)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: checks %v, want %v", tc.policy, got, tc.want)
		}
	}
}
