package policy

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type SecurityContextPolicy struct {
	ReadOnlyRootFilesystem   *bool                     `json:"readOnlyRootFilesystem,omitempty"`
	AllowedCapabilities      []corev1.Capability       `json:"allowedCapabilities,omitempty"`
	AllowPrivilegeEscalation *bool                     `json:"allowPrivilegeEscalation,omitempty"`
	RunAsNonRoot             *bool                     `json:"runAsNonRoot,omitempty"`
	SeccompProfile           corev1.SeccompProfileType `json:"seccompProfile,omitempty"`
}

// compileSecurityContext: allowedCapabilities name single capabilities (ALL can never be allowed: drop ALL is
// always forced); only RuntimeDefault or Localhost seccomp profiles may be required.
func compileSecurityContext(p *Policy, sc SecurityContextPolicy, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	p.allowedCaps = map[corev1.Capability]bool{}
	for i, c := range sc.AllowedCapabilities {
		norm := normalizeCapability(c)
		if norm == "ALL" || norm == "" {
			errs = append(errs, field.Invalid(fp.Child("allowedCapabilities").Index(i), c, "name single capabilities such as NET_BIND_SERVICE; ALL cannot be allowed"))
		}
		p.allowedCaps[norm] = true
	}
	switch sc.SeccompProfile {
	case corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeLocalhost:
	default:
		errs = append(errs, field.NotSupported(fp.Child("seccompProfile"), sc.SeccompProfile,
			[]corev1.SeccompProfileType{corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeLocalhost}))
	}
	return errs
}

// normalizeCapability makes "cap_net_raw" and "NET_RAW" the same capability, as container runtimes do.
func normalizeCapability(c corev1.Capability) corev1.Capability {
	s := strings.ToUpper(string(c))
	return corev1.Capability(strings.TrimPrefix(s, "CAP_"))
}
