package policy

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIVersion and Kind identify an AgentPolicy document. Renaming any field below needs a new APIVersion:
// tests and tools outside the project use these names.
const (
	APIVersion = "agentgate.io/v1alpha1"
	Kind       = "AgentPolicy"
)

// Mode says what a violation of a policy does to the admission.
type Mode string

const (
	ModeEnforce Mode = "enforce" // deny
	ModeWarn    Mode = "warn"    // admit with AdmissionResponse warnings
	ModeAudit   Mode = "audit"   // admit, log and count
)

// WindowsMode says what happens to pods with spec.os.name: windows.
type WindowsMode string

const (
	WindowsDeny            WindowsMode = "deny"
	WindowsSkipLinuxChecks WindowsMode = "skipLinuxChecks"
)

// AgentPolicy is the document kept in a ConfigMap's policy.yaml (or given by --policy-file).
type AgentPolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   PolicyMeta `json:"metadata"`
	Spec       Spec       `json:"spec"`
}

// PolicyMeta is deliberately smaller than ObjectMeta: a policy has a name and nothing else that matters.
type PolicyMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type Spec struct {
	Mode                Mode                  `json:"mode,omitempty"`
	Match               Match                 `json:"match,omitempty"`
	Exempt              Exempt                `json:"exempt,omitempty"`
	Images              Images                `json:"images,omitempty"`
	SecurityContext     SecurityContextPolicy `json:"securityContext,omitempty"`
	ServiceAccountToken ServiceAccountToken   `json:"serviceAccountToken,omitempty"`
	Resources           Resources             `json:"resources,omitempty"`
	Commands            Commands              `json:"commands,omitempty"`
	Env                 Env                   `json:"env,omitempty"`
	Runtime             Runtime               `json:"runtime,omitempty"`
	Windows             WindowsMode           `json:"windows,omitempty"`
}

// Match selects agent pods. An empty Match selects every pod the webhook is asked about.
type Match struct {
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	PodSelector       *metav1.LabelSelector `json:"podSelector,omitempty"`
}

type Exempt struct {
	Namespaces      []string          `json:"namespaces,omitempty"`
	ServiceAccounts []string          `json:"serviceAccounts,omitempty"` // "namespace/name"
	Containers      []ContainerExempt `json:"containers,omitempty"`
}

// ContainerExempt skips one container when both its name and its image match.
type ContainerExempt struct {
	Name  string `json:"name"`
	Image string `json:"image"` // glob over the whole normalised reference; "*" matches anything
}

type Images struct {
	Allow         []string `json:"allow,omitempty"`
	Deny          []string `json:"deny,omitempty"`
	DenyTags      []string `json:"denyTags,omitempty"`
	RequireDigest bool     `json:"requireDigest,omitempty"`
	PinDigests    bool     `json:"pinDigests,omitempty"`
	// PinRegistries are the only registries that digest pinning may reach at a loopback, link-local,
	// unspecified or multicast address, or over plain HTTP. Every other registry is asked over HTTPS, and a
	// connection to such an address is refused when it is dialled (so a name that resolves there is too).
	PinRegistries []PinRegistry `json:"pinRegistries,omitempty"`
}

// PinRegistry lets digest pinning reach one registry where it otherwise never goes.
type PinRegistry struct {
	// Registry is host[:port], compared as image references are ("LOCALHOST:5000" is localhost:5000,
	// "registry.example:443" is registry.example).
	Registry string `json:"registry"`
	// LocalAddresses: the registry may be at a loopback, link-local, unspecified or multicast address
	// (a registry on the node, or in tests).
	LocalAddresses bool `json:"localAddresses,omitempty"`
	// PlainHTTP: the registry may be asked over HTTP, unencrypted and unauthenticated (tests).
	PlainHTTP bool `json:"plainHTTP,omitempty"`
}

// PinAccess is what digest pinning may do to reach one registry, beyond HTTPS to ordinary addresses.
type PinAccess struct {
	LocalAddresses bool
	PlainHTTP      bool
}

type SecurityContextPolicy struct {
	ReadOnlyRootFilesystem   *bool                     `json:"readOnlyRootFilesystem,omitempty"`
	AllowedCapabilities      []corev1.Capability       `json:"allowedCapabilities,omitempty"`
	AllowPrivilegeEscalation *bool                     `json:"allowPrivilegeEscalation,omitempty"`
	RunAsNonRoot             *bool                     `json:"runAsNonRoot,omitempty"`
	SeccompProfile           corev1.SeccompProfileType `json:"seccompProfile,omitempty"`
}

type ServiceAccountToken struct {
	Automount *bool `json:"automount,omitempty"`
	// AllowServiceAccounts ("namespace/name") may carry a token even when automount is forced off: for the
	// rare workload whose job is to talk to the API server (agentgate itself). Every other check still applies.
	AllowServiceAccounts []string `json:"allowServiceAccounts,omitempty"`
}

type Resources struct {
	Defaults ResourceDefaults    `json:"defaults,omitempty"`
	Max      corev1.ResourceList `json:"max,omitempty"`
}

type ResourceDefaults struct {
	Requests corev1.ResourceList `json:"requests,omitempty"`
	Limits   corev1.ResourceList `json:"limits,omitempty"`
}

type Commands struct {
	Blocked []string `json:"blocked,omitempty"`
	Allowed []string `json:"allowed,omitempty"`
}

type Env struct {
	DenyLiteralSecrets *bool `json:"denyLiteralSecrets,omitempty"`
}
