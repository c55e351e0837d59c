package policy

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// check is one named rule. Each lives in check_<id>.go, whose head comment is its spec: the fields it reads
// and the values it allows.
type check struct {
	id string
	// linuxOnly checks read fields that mean nothing on Windows; a policy with windows: skipLinuxChecks skips
	// them for Windows pods (and windows: deny denies those pods through the windows check alone).
	linuxOnly bool
	run       func(p *Policy, pod *podView, r *report)
}

// checks runs in this order, so that messages come out the same way every time. Listed here, not
// self-registered, so that reading this slice tells everything agentgate enforces.
var checks = []check{
	checkHostNamespaces,
	checkHostUsers,
	checkPrivileged,
	checkHostPath,
	checkHostPorts,
	checkHostProbes,
	checkWindowsHostProcess,
	checkCapabilities,
	checkReadOnlyRootFilesystem,
	checkAllowPrivilegeEscalation,
	checkRunAsNonRoot,
	checkRunAsUser,
	checkSeccomp,
	checkAppArmor,
	checkSELinux,
	checkProcMount,
	checkSysctls,
	checkVolumeTypes,
	checkTokenProjection,
	checkAutomountToken,
	checkResources,
	checkImages,
	checkCommands,
	checkEnvSecrets,
	checkRuntimeClass,
	checkWindows,
}

// CheckIDs lists every check's ID in evaluation order.
func CheckIDs() []string {
	ids := make([]string, len(checks))
	for i, c := range checks {
		ids[i] = c.id
	}
	return ids
}

// podView is what a check sees: one pod spec, where it sits in its object, and which of its containers
// the policy judges (exempt ones are left out).
type podView struct {
	meta       *metav1.ObjectMeta
	metaPath   *field.Path
	spec       *corev1.PodSpec
	specPath   *field.Path
	containers []containerAt
	windows    bool
	// template: a controller's pod template, whose pods the mutating webhook will see at their creation.
	template bool
	// mayMountToken: the policy lets this pod carry a service-account token (automount not forced off, or
	// its service account is listed in serviceAccountToken.allowServiceAccounts).
	mayMountToken bool
}

// containerAt is one container of any kind. Its path is built only when a violation needs it.
type containerAt struct {
	c     *corev1.Container
	field string // containers | initContainers | ephemeralContainers
	index int
}

func (pod *podView) path(ca containerAt) *field.Path {
	return pod.specPath.Child(ca.field).Index(ca.index)
}

// newPodView lists every container kind, init first, then regular, then ephemeral: one visitor for all checks,
// so no check can forget a kind. Exempt containers are not listed; exempted receives each one.
func newPodView(p *Policy, w *Workload, exempted func(containerAt)) *podView {
	s := w.Spec
	pod := &podView{
		meta: w.PodMeta, metaPath: w.PodMetaPath, spec: s, specPath: w.SpecPath,
		containers: make([]containerAt, 0, len(s.InitContainers)+len(s.Containers)+len(s.EphemeralContainers)),
		windows:    s.OS != nil && s.OS.Name == corev1.Windows,
		template:   !w.IsPod(),

		mayMountToken: *p.Spec.ServiceAccountToken.Automount,
	}
	add := func(c *corev1.Container, kind string, i int) {
		ca := containerAt{c: c, field: kind, index: i}
		if p.exemptsContainer(c) {
			if exempted != nil {
				exempted(ca)
			}
			return
		}
		pod.containers = append(pod.containers, ca)
	}
	for i := range s.InitContainers {
		add(&s.InitContainers[i], "initContainers", i)
	}
	for i := range s.Containers {
		add(&s.Containers[i], "containers", i)
	}
	for i := range s.EphemeralContainers {
		// EphemeralContainerCommon has exactly Container's fields (the API guarantees it), as
		// pod-security-admission relies on too.
		add((*corev1.Container)(&s.EphemeralContainers[i].EphemeralContainerCommon), "ephemeralContainers", i)
	}
	return pod
}

func (p *Policy) exemptsContainer(c *corev1.Container) bool {
	for _, e := range p.exemptContainer {
		if e.name != c.Name {
			continue
		}
		if img, err := parseImage(c.Image); err == nil && e.image.match(img.fullSegments()) {
			return true
		}
	}
	return false
}

// check runs every applicable check of one policy over one pod view.
func (p *Policy) check(pod *podView) Violations {
	r := &report{policy: p}
	for _, c := range checks {
		if c.linuxOnly && pod.windows {
			continue
		}
		c.run(p, pod, r)
	}
	return r.out
}

// Helpers shared by checks.

func boolString(b *bool) string {
	if b == nil {
		return "unset"
	}
	if *b {
		return "true"
	}
	return "false"
}

func quote(s string) string { return strconv.Quote(s) }
