package policy

import (
	"slices"
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
	checkTokenSecrets,
	checkAutomountToken,
	checkResources,
	checkPriorityClass,
	checkImages,
	checkCommands,
	checkEnvSecrets,
	checkRuntimeClass,
	checkWindows,
	checkUnknownFields,
}

// CheckIDs lists every check's ID in evaluation order.
func CheckIDs() []string {
	ids := make([]string, len(checks))
	for i, c := range checks {
		ids[i] = c.id
	}
	return ids
}

// podView is what a check sees: one pod spec, where it sits in its object, and its containers. A container
// that an exemption relaxes is left out of the view of exactly the checks it relaxes (judgedBy).
type podView struct {
	meta       *metav1.ObjectMeta
	metaPath   *field.Path
	spec       *corev1.PodSpec
	specPath   *field.Path
	containers []containerAt
	// relaxing: some container is exempt from some check.
	relaxing bool
	// windows: the pod may run on a Windows node (spec.os.name, or its scheduling constraints admit Windows
	// nodes); windowsAt is the field that says so.
	windows   bool
	windowsAt windowsEvidence
	// template: a controller's pod template, whose pods the mutating webhook will see at their creation.
	template bool
	// mayMountToken: the policy lets this pod carry a service-account token (automount not forced off, or the
	// requester is in serviceAccountToken.allowServiceAccounts).
	mayMountToken bool
	// defaults are the resource defaults hardening fills (Set.Harden: the strictest of the selecting
	// policies'); nil: the policy's own.
	defaults *ResourceDefaults
	// isTokenSecret is Namespace.IsTokenSecret: nil when the namespace's Secrets are unknown.
	isTokenSecret func(name string) bool
	// unknown are the pod spec's fields that agentgate's k8s.io/api does not know.
	unknown []FieldError
	// namespace is the namespace the workload is judged in (metadata.namespace may be empty at CREATE).
	namespace string
}

// containerAt is one container of any kind. Its path is built only when a violation needs it.
type containerAt struct {
	c     *corev1.Container
	field string // containers | initContainers | ephemeralContainers
	index int
	// relaxed lists the checks an exemption relaxes for this container (sorted; nil for almost every one).
	relaxed []string
}

func (pod *podView) path(ca containerAt) *field.Path {
	return pod.specPath.Child(ca.field).Index(ca.index)
}

func (ca containerAt) relaxes(check string) bool {
	return ca.relaxed != nil && slices.Contains(ca.relaxed, check)
}

// exempt says whether some exemption matched the container (whatever checks it relaxes).
func (ca containerAt) exempt() bool { return ca.relaxed != nil }

// judgedBy is the view of one check: pod itself, or, when some container is exempt from that check, a copy
// without it.
func (pod *podView) judgedBy(check string) *podView {
	if !pod.relaxing {
		return pod
	}
	var kept []containerAt
	for i, ca := range pod.containers {
		if ca.relaxes(check) {
			if kept == nil {
				kept = append(make([]containerAt, 0, len(pod.containers)), pod.containers[:i]...)
			}
			continue
		}
		if kept != nil {
			kept = append(kept, ca)
		}
	}
	if kept == nil {
		return pod
	}
	v := *pod
	v.containers = kept
	return &v
}

// newPodView lists every container kind, init first, then regular, then ephemeral: one visitor for all checks,
// so no check can forget a kind. Containers that an exemption of p matches for requester rq carry the checks
// it relaxes; exempted receives each one.
func newPodView(p *Policy, w *Workload, rq Requester, exempted func(containerAt)) *podView {
	s := w.Spec
	pod := &podView{
		meta: w.PodMeta, metaPath: w.PodMetaPath, spec: s, specPath: w.SpecPath,
		containers: make([]containerAt, 0, len(s.InitContainers)+len(s.Containers)+len(s.EphemeralContainers)),
		template:   !w.IsPod(),

		mayMountToken: *p.Spec.ServiceAccountToken.Automount,
		unknown:       w.PodSpecUnknown(),
	}
	pod.windowsAt = windowsScheduling(s, w.SpecPath)
	pod.windows = pod.windowsAt.field != nil
	add := func(c *corev1.Container, kind string, i int) {
		ca := containerAt{c: c, field: kind, index: i}
		if len(p.exemptContainer) > 0 {
			if ca.relaxed = p.containerRelaxations(c, rq); ca.relaxed != nil {
				pod.relaxing = true
				if exempted != nil {
					exempted(ca)
				}
			}
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

// check runs every applicable check of one policy over one pod view.
func (p *Policy) check(pod *podView) Violations {
	r := &report{policy: p}
	for _, c := range checks {
		if c.linuxOnly && pod.windows {
			continue
		}
		c.run(p, pod.judgedBy(c.id), r)
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
