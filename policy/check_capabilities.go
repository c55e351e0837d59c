package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// capabilities: an agent gets no Linux capability but the few the policy lists.
//
// Restricted fields:
//   spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop
//     must contain ALL (mutation appends it where missing)
//   spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add[*]
//     allowed values: the policy's allowedCapabilities (default NET_BIND_SERVICE), with or without CAP_,
//     in any case; ALL is never allowed.
var checkCapabilities = check{id: "capabilities", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
	allowed := allowedCapsString(p)
	for _, ca := range pod.containers {
		sc := ca.c.SecurityContext
		if !dropsAll(ca.c) {
			found := "unset"
			if sc != nil && sc.Capabilities != nil && len(sc.Capabilities.Drop) > 0 {
				found = capList(sc.Capabilities.Drop)
			}
			r.add("capabilities", pod.path(ca).Child("securityContext", "capabilities", "drop"), found, "a list containing ALL",
				"every capability must be dropped; add back only what the policy allows")
		}
		if sc == nil || sc.Capabilities == nil {
			continue
		}
		for j, c := range sc.Capabilities.Add {
			if !p.allowedCaps[normalizeCapability(c)] {
				r.add("capabilities", pod.path(ca).Child("securityContext", "capabilities", "add").Index(j), string(c), allowed,
					"capability "+string(c)+" is not allowed for agent pods")
			}
		}
	}
}}

func allowedCapsString(p *Policy) string {
	if len(p.Spec.SecurityContext.AllowedCapabilities) == 0 {
		return "none"
	}
	return capList(p.Spec.SecurityContext.AllowedCapabilities)
}

func capList(cs []corev1.Capability) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return "[" + strings.Join(slices.Clip(s), ", ") + "]"
}
