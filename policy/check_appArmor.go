package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// appArmor: the runtime's AppArmor profile confines what an agent may do to files, mounts and the network;
// Unconfined switches it off.
//
// Restricted fields:
//
//	spec.securityContext.appArmorProfile.type
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.appArmorProfile.type
//	  allowed values: RuntimeDefault, Localhost, unset
//	metadata.annotations["container.apparmor.security.beta.kubernetes.io/<container>"] (the deprecated form)
//	  allowed values: runtime/default, localhost/<profile>, "", unset
//
// Not configurable, never exempted per container (Pod Security baseline forbids Unconfined too). As Pod Security
// baseline/restricted (appArmorProfile). Annotations are reported in key order.
var checkAppArmor = check{id: "appArmor", linuxOnly: true, run: func(_ *Policy, pod *podView, r *report) {
	const why = "agent containers must stay confined by AppArmor: remove the profile or use RuntimeDefault"
	if sc := pod.spec.SecurityContext; sc != nil && sc.AppArmorProfile != nil && !allowedAppArmorType(sc.AppArmorProfile.Type) {
		r.add("appArmor", pod.specPath.Child("securityContext", "appArmorProfile", "type"), appArmorTypeString(sc.AppArmorProfile.Type),
			"RuntimeDefault, Localhost, unset", why)
	}
	for _, ca := range pod.containers {
		if sc := ca.c.SecurityContext; sc != nil && sc.AppArmorProfile != nil && !allowedAppArmorType(sc.AppArmorProfile.Type) {
			r.add("appArmor", pod.path(ca).Child("securityContext", "appArmorProfile", "type"), appArmorTypeString(sc.AppArmorProfile.Type),
				"RuntimeDefault, Localhost, unset", why)
		}
	}
	if pod.meta == nil {
		return
	}
	bad := 0
	for k, v := range pod.meta.Annotations {
		if badAppArmorAnnotation(k, v) {
			bad++
		}
	}
	if bad == 0 {
		return
	}
	keys := make([]string, 0, bad)
	for k, v := range pod.meta.Annotations {
		if badAppArmorAnnotation(k, v) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		r.add("appArmor", pod.metaPath.Child("annotations").Key(k), quote(pod.meta.Annotations[k]),
			`runtime/default, localhost/<profile>, ""`,
			"agent containers must stay confined by AppArmor: remove the annotation, or set securityContext.appArmorProfile.type: RuntimeDefault")
	}
}}

func allowedAppArmorType(t corev1.AppArmorProfileType) bool {
	return t == corev1.AppArmorProfileTypeRuntimeDefault || t == corev1.AppArmorProfileTypeLocalhost
}

func appArmorTypeString(t corev1.AppArmorProfileType) string {
	if t == "" {
		return `""`
	}
	return string(t)
}

// badAppArmorAnnotation: the deprecated per-container annotation with a value other than the allowed ones.
// Every container is judged by it, exempt or not (AppArmor is a baseline check), and so is an annotation that
// names no container: a container of that name may be added later (kubectl debug).
func badAppArmorAnnotation(key, value string) bool {
	if !strings.HasPrefix(key, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) || value == "" ||
		value == corev1.DeprecatedAppArmorBetaProfileRuntimeDefault || strings.HasPrefix(value, corev1.DeprecatedAppArmorBetaProfileNamePrefix) {
		return false
	}
	return true
}
