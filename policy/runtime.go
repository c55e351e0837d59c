package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Runtime is spec.runtime: which container runtime an agent pod runs in, and whether it gets a user namespace.
// Pod Security has neither: a pod may pick any RuntimeClass (runc where an admin meant gVisor) and keep root in
// the container as root on the node.
type Runtime struct {
	// RuntimeClassNames are the RuntimeClasses an agent pod may name; empty means any.
	RuntimeClassNames []string `json:"runtimeClassNames,omitempty"`
	// DefaultRuntimeClassName is filled by /mutate where spec.runtimeClassName is unset. Whether that
	// RuntimeClass exists is the API server's to say (its RuntimeClass admission plugin refuses the pod).
	DefaultRuntimeClassName string `json:"defaultRuntimeClassName,omitempty"`
	// HostUsers: false forces user namespaces (filled where unset, an explicit true denied). Unset forces
	// nothing, because a node without user-namespace support cannot start such pods. true is refused: there is
	// nothing to force in that direction.
	HostUsers *bool `json:"hostUsers,omitempty"`
}

// forcesRuntimeClass says whether every pod must end up with a runtimeClassName (listed, or filled).
func (r *Runtime) forcesRuntimeClass() bool {
	return len(r.RuntimeClassNames) > 0 || r.DefaultRuntimeClassName != ""
}

// forcesUserNamespace says whether pods must run with spec.hostUsers: false.
func (r *Runtime) forcesUserNamespace() bool { return r.HostUsers != nil && !*r.HostUsers }

// allowsRuntimeClass says whether a pod may name this RuntimeClass.
func (r *Runtime) allowsRuntimeClass(name string) bool {
	return len(r.RuntimeClassNames) == 0 || slices.Contains(r.RuntimeClassNames, name)
}

// allowedRuntimeClasses renders what the runtimeClass check accepts, for its messages.
func (r *Runtime) allowedRuntimeClasses() string {
	if len(r.RuntimeClassNames) == 0 {
		return "any RuntimeClass (unset is filled with " + quote(r.DefaultRuntimeClassName) + ")"
	}
	q := make([]string, len(r.RuntimeClassNames))
	for i, n := range r.RuntimeClassNames {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

// compileRuntime validates spec.runtime, every error at once. Names are held to the API server's own rule for
// RuntimeClass names (DNS-1123 subdomains): a name it could never store is a typo that would deny every pod.
func compileRuntime(r *Runtime, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, n := range r.RuntimeClassNames {
		p := fp.Child("runtimeClassNames").Index(i)
		for _, msg := range validation.IsDNS1123Subdomain(n) {
			errs = append(errs, field.Invalid(p, n, "not a RuntimeClass name: "+msg))
		}
		if seen[n] {
			errs = append(errs, field.Duplicate(p, n))
		}
		seen[n] = true
	}
	if d := r.DefaultRuntimeClassName; d != "" {
		p := fp.Child("defaultRuntimeClassName")
		for _, msg := range validation.IsDNS1123Subdomain(d) {
			errs = append(errs, field.Invalid(p, d, "not a RuntimeClass name: "+msg))
		}
		if len(r.RuntimeClassNames) > 0 && !seen[d] {
			errs = append(errs, field.Invalid(p, d, "must be one of spec.runtime.runtimeClassNames: every pod it is filled into would be denied"))
		}
	}
	if r.HostUsers != nil && *r.HostUsers {
		errs = append(errs, field.NotSupported(fp.Child("hostUsers"), true, []string{"false (user namespaces forced)", "unset (not forced)"}))
	}
	return errs
}

// userNamespaceConflict names the field of a pod that the API server refuses beside spec.hostUsers: false
// (k8s.io/kubernetes pkg/apis/core/validation validateHostUsers and validateWindows, v1.37): host namespaces,
// volumeDevices in any container, a Windows pod. "" when there is none. Hardening leaves hostUsers unset on
// such a pod, and the hostUsers check names this field, so that the user learns what to change instead of
// reading the API server's refusal of agentgate's own patch.
func userNamespaceConflict(pod *podView) string {
	s := pod.spec
	switch {
	case pod.windows:
		return pod.specPath.Child("os", "name").String()
	case s.HostNetwork:
		return pod.specPath.Child("hostNetwork").String()
	case s.HostPID:
		return pod.specPath.Child("hostPID").String()
	case s.HostIPC:
		return pod.specPath.Child("hostIPC").String()
	}
	// Every container, exempt ones included: the API server validates them all.
	for i := range s.InitContainers {
		if len(s.InitContainers[i].VolumeDevices) > 0 {
			return pod.specPath.Child("initContainers").Index(i).Child("volumeDevices").String()
		}
	}
	for i := range s.Containers {
		if len(s.Containers[i].VolumeDevices) > 0 {
			return pod.specPath.Child("containers").Index(i).Child("volumeDevices").String()
		}
	}
	for i := range s.EphemeralContainers {
		if len(s.EphemeralContainers[i].VolumeDevices) > 0 {
			return pod.specPath.Child("ephemeralContainers").Index(i).Child("volumeDevices").String()
		}
	}
	return ""
}

// hardenRuntime fills spec.runtimeClassName and spec.hostUsers where the policy forces them and the pod leaves
// them unset; with dry set it only reports whether it would. Nothing is filled on a Windows pod: sandboxed
// runtimes and user namespaces are Linux features, and the API server refuses hostUsers there.
func (p *Policy) hardenRuntime(pod *podView, dry bool) bool {
	if pod.windows {
		return false
	}
	r := &p.Spec.Runtime
	s := pod.spec
	changed := false
	if r.DefaultRuntimeClassName != "" && s.RuntimeClassName == nil {
		if dry {
			return true
		}
		s.RuntimeClassName = ptrTo(r.DefaultRuntimeClassName)
		changed = true
	}
	if r.forcesUserNamespace() && s.HostUsers == nil && userNamespaceConflict(pod) == "" {
		if dry {
			return true
		}
		s.HostUsers = ptrTo(false)
		changed = true
	}
	return changed
}

// runtimeClassNameOf renders a pod's runtimeClassName for messages.
func runtimeClassNameOf(s *corev1.PodSpec) string {
	if s.RuntimeClassName == nil {
		return "unset"
	}
	return quote(*s.RuntimeClassName)
}

// weakenRuntime (weakeningRules' "runtime"): the allowed RuntimeClasses follow the allowlist rule (none added,
// not emptied: empty allows any); defaultRuntimeClassName may be set but not changed (another runtime may
// isolate less) nor removed (pods that name none then run in the node's default runtime, runc usually);
// hostUsers: false may not be unset.
func weakenRuntime(old, cur *Policy, w *weakenings) {
	rp := specPath.Child("runtime")
	o, c := old.Spec.Runtime, cur.Spec.Runtime
	allowList(w, rp.Child("runtimeClassNames"), o.RuntimeClassNames, c.RuntimeClassNames, identity,
		"agent pods may run in this RuntimeClass", "agent pods may name any RuntimeClass")
	if d := o.DefaultRuntimeClassName; d != "" && c.DefaultRuntimeClassName != d {
		if c.DefaultRuntimeClassName == "" {
			w.add(rp.Child("defaultRuntimeClassName"), quote(d), "(none)", "mutation no longer fills a RuntimeClass: pods that name none run in the node's default runtime")
		} else {
			w.add(rp.Child("defaultRuntimeClassName"), quote(d), quote(c.DefaultRuntimeClassName), "mutation fills another RuntimeClass, which may isolate less, where a pod names none")
		}
	}
	if o.forcesUserNamespace() && !c.forcesUserNamespace() {
		w.add(rp.Child("hostUsers"), "false", "(none)", "pods may share the node's user namespace (root in the container is root on the node), and mutation no longer fills hostUsers: false")
	}
}
