package policy

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// seLinux: a custom SELinux type, user or role can lift the confinement the runtime gives containers
// (spc_t, for one, is unconfined).
//
// Restricted fields:
//
//	spec.securityContext.seLinuxOptions.{type,user,role}
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seLinuxOptions.{type,user,role}
//
// Allowed values: type "", container_t, container_init_t, container_kvm_t, container_engine_t (Pod Security
// baseline/restricted v1.31+, seLinuxOptions); user and role "" or unset; level anything. Not configurable.
// One violation per seLinuxOptions object, reported at the object (…securityContext.seLinuxOptions), its found
// value naming every offending sub-field.
var checkSELinux = check{id: "seLinux", linuxOnly: true, run: func(_ *Policy, pod *podView, r *report) {
	if sc := pod.spec.SecurityContext; sc != nil && sc.SELinuxOptions != nil && !allowedSELinux(sc.SELinuxOptions) {
		reportSELinux(r, pod.specPath.Child("securityContext", "seLinuxOptions"), sc.SELinuxOptions)
	}
	for _, ca := range pod.containers {
		if sc := ca.c.SecurityContext; sc != nil && sc.SELinuxOptions != nil && !allowedSELinux(sc.SELinuxOptions) {
			reportSELinux(r, pod.path(ca).Child("securityContext", "seLinuxOptions"), sc.SELinuxOptions)
		}
	}
}}

const seLinuxAllowed = `type "", container_t, container_init_t, container_kvm_t or container_engine_t; user and role unset`

func allowedSELinuxType(t string) bool {
	switch t {
	case "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t":
		return true
	}
	return false
}

func allowedSELinux(o *corev1.SELinuxOptions) bool {
	return allowedSELinuxType(o.Type) && o.User == "" && o.Role == ""
}

func reportSELinux(r *report, fp *field.Path, o *corev1.SELinuxOptions) {
	var found []string
	if !allowedSELinuxType(o.Type) {
		found = append(found, "type "+quote(o.Type))
	}
	if o.User != "" {
		found = append(found, "user "+quote(o.User))
	}
	if o.Role != "" {
		found = append(found, "role "+quote(o.Role))
	}
	r.add("seLinux", fp, strings.Join(found, ", "), seLinuxAllowed,
		"agent containers must keep the runtime's SELinux confinement: remove the custom type, user and role")
}
