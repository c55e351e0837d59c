package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// windows: the sandbox relies on Linux-only fields (seccomp, capabilities, readOnlyRootFilesystem), which mean
// nothing on Windows nodes.
//
// Restricted fields:
//
//	spec.os.name: windows
//	spec.nodeSelector["kubernetes.io/os" | "beta.kubernetes.io/os"]: windows
//	spec.affinity.nodeAffinity.{requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[*],
//	    preferredDuringSchedulingIgnoredDuringExecution[*].preference}.matchExpressions[*]
//	  on the os label, admitting windows: In [..., windows], NotIn without windows (NotIn [linux]), Exists
//	spec.tolerations[*] of the Windows node taint (key node.kubernetes.io/os, value windows or operator Exists)
//
// Allowed values: none of the above lets the pod run on a Windows node (any one that does makes it a Windows
// pod); or any when the policy says windows: skipLinuxChecks. spec.os.name: linux settles it the other way
// (the kubelet refuses to start a pod whose os.name is not its own), whatever the selectors say; a pod that says nothing about the OS is a Linux pod, as for Pod Security. Reported at the field
// that admits Windows, so the author knows which line to change.
var checkWindows = check{id: "windows", run: func(p *Policy, pod *podView, r *report) {
	if p.Spec.Windows != WindowsDeny {
		return
	}
	if pod.windows {
		r.add("windows", pod.windowsAt.field, pod.windowsAt.found, "linux, unset (or a policy with windows: skipLinuxChecks)",
			"the agent sandbox relies on Linux-only security fields; this pod may run on a Windows node")
		return
	}
	// spec.nodeName skips the scheduler, and with it every constraint above: only spec.os.name: linux (which
	// the kubelet of another OS refuses, and which agentgate's mutation sets) keeps such a pod off Windows.
	if s := pod.spec; boundWithoutOS(s) {
		r.add("windows", pod.specPath.Child("nodeName"), "node "+quote(s.NodeName)+" without spec.os.name", "spec.os.name: linux beside it (agentgate's mutation sets it)",
			"a pod bound to a node by name skips the scheduler and its OS constraints; it may land on a Windows node")
	}
}}

// boundWithoutOS: the pod names its node (spec.nodeName, the scheduler skipped) and says nothing of its OS. The
// windows check denies it, and hardening fills spec.os.name: linux where it can (one rule for both).
func boundWithoutOS(s *corev1.PodSpec) bool {
	return s.NodeName != "" && s.OS == nil
}

// setsWindowsOptions: a securityContext.windowsOptions anywhere in the pod, which the API server refuses
// beside spec.os.name: linux.
func setsWindowsOptions(pod *podView) bool {
	if sc := pod.spec.SecurityContext; sc != nil && sc.WindowsOptions != nil {
		return true
	}
	return slices.ContainsFunc(pod.containers, func(ca containerAt) bool {
		return ca.c.SecurityContext != nil && ca.c.SecurityContext.WindowsOptions != nil
	})
}

// windowsEvidence is the field that lets a pod run on Windows (nil field: none does).
type windowsEvidence struct {
	field *field.Path
	found string
}

// osLabels are the node labels the kubelet sets to its operating system.
var osLabels = []string{corev1.LabelOSStable, "beta.kubernetes.io/os"}

// WindowsTaintKey is the taint Windows nodes carry by convention (Kubernetes' Windows guide): a pod tolerating
// it may run on Windows, and the checklist expects every Windows node to carry it.
const WindowsTaintKey = "node.kubernetes.io/os"

// windowsScheduling finds the first field that lets the pod run on a Windows node, in the order of the spec
// comment above.
func windowsScheduling(s *corev1.PodSpec, sp *field.Path) windowsEvidence {
	if s.OS != nil {
		if strings.EqualFold(string(s.OS.Name), string(corev1.Windows)) {
			return windowsEvidence{sp.Child("os", "name"), string(s.OS.Name)}
		}
		if s.OS.Name == corev1.Linux {
			return windowsEvidence{}
		}
	}
	for _, k := range osLabels {
		if v, ok := s.NodeSelector[k]; ok && v == string(corev1.Windows) {
			return windowsEvidence{sp.Child("nodeSelector").Key(k), v}
		}
	}
	if a := s.Affinity; a != nil && a.NodeAffinity != nil {
		na := a.NodeAffinity
		ap := sp.Child("affinity", "nodeAffinity")
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			tp := ap.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
			for i := range req.NodeSelectorTerms {
				if ev := termAdmitsWindows(&req.NodeSelectorTerms[i], tp.Index(i)); ev.field != nil {
					return ev
				}
			}
		}
		pp := ap.Child("preferredDuringSchedulingIgnoredDuringExecution")
		for i := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			if ev := termAdmitsWindows(&na.PreferredDuringSchedulingIgnoredDuringExecution[i].Preference, pp.Index(i).Child("preference")); ev.field != nil {
				return ev
			}
		}
	}
	for i, t := range s.Tolerations {
		if t.Key == WindowsTaintKey && (t.Operator == corev1.TolerationOpExists || t.Value == string(corev1.Windows)) {
			return windowsEvidence{sp.Child("tolerations").Index(i), "a toleration of the Windows node taint " + WindowsTaintKey}
		}
	}
	return windowsEvidence{}
}

// termAdmitsWindows: the term constrains the os label and a node labelled windows satisfies every one of its
// os expressions. A term that does not mention the os label says nothing about Windows (as an unconstrained pod
// does); a term with an os expression that excludes windows makes the term exclude it, whatever its other
// expressions say (they are ANDed).
func termAdmitsWindows(t *corev1.NodeSelectorTerm, tp *field.Path) windowsEvidence {
	var first windowsEvidence
	for j, e := range t.MatchExpressions {
		if !slices.Contains(osLabels, e.Key) {
			continue
		}
		if !requirementAdmits(e, string(corev1.Windows)) {
			return windowsEvidence{}
		}
		if first.field == nil {
			first = windowsEvidence{tp.Child("matchExpressions").Index(j), e.Key + " " + string(e.Operator) + " [" + strings.Join(e.Values, ", ") + "]"}
		}
	}
	return first
}

// requirementAdmits says whether a node whose label e.Key has value v satisfies e.
func requirementAdmits(e corev1.NodeSelectorRequirement, v string) bool {
	switch e.Operator {
	case corev1.NodeSelectorOpIn:
		return slices.Contains(e.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !slices.Contains(e.Values, v)
	case corev1.NodeSelectorOpExists:
		return true
	}
	return false // DoesNotExist; Gt and Lt need an integer value
}
