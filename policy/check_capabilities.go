package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// capabilities: an agent gets no Linux capability but the few the policy lists.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop
//	  must contain ALL, written so (mutation appends it where missing)
//	spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add[*]
//	  allowed values: the policy's allowedCapabilities (default NET_BIND_SERVICE), written in their canonical
//	  form (upper case, no CAP_ prefix); ALL is never allowed.
//
// Spelling is exact, as in Pod Security restricted (capabilities_restricted): runtimes accept "all" or
// "cap_net_bind_service", but Pod Security does not, and the default policy must stay a superset of it. A
// non-canonical spelling of an allowed capability is denied with the spelling to write instead.
var checkCapabilities = check{id: "capabilities", linuxOnly: true, run: func(p *Policy, pod *podView, r *report) {
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
			norm := normalizeCapability(c)
			switch {
			case !p.allowedCaps[norm]:
				r.add("capabilities", pod.path(ca).Child("securityContext", "capabilities", "add").Index(j), string(c), allowedCapsString(p),
					"capability "+string(c)+" is not allowed for agent pods")
			case norm != c:
				r.add("capabilities", pod.path(ca).Child("securityContext", "capabilities", "add").Index(j), string(c), allowedCapsString(p),
					"write capability "+string(c)+" as "+string(norm)+", the spelling Pod Security accepts")
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
