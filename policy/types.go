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
	Exec                Exec                  `json:"exec,omitempty"`
	UnknownFields       UnknownFieldsMode     `json:"unknownFields,omitempty"`
	Network             Network               `json:"network,omitempty"`
	Scheduling          Scheduling            `json:"scheduling,omitempty"`
}

// Match selects agent pods. An empty Match selects every pod the webhook is asked about.
type Match struct {
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	PodSelector       *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// Exempt lists what a policy does not judge. Every exemption is anchored to something a pod's author cannot
// choose (README "Decisions"): its namespace, or the user who sends the request to the API server. A pod's own
// serviceAccountName, container names and images are chosen by whoever writes the pod, so none of them alone
// exempts anything.
type Exempt struct {
	Namespaces []string `json:"namespaces,omitempty"`
	// ServiceAccounts ("namespace/name") exempt what that service account itself sends to the API server (the
	// requesting user system:serviceaccount:namespace:name), as Pod Security Admission's exemptions.usernames
	// do; never a pod that merely names the account in spec.serviceAccountName. kube-system accounts (the
	// built-in controllers, which create the pods of every Deployment, Job…) are refused.
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`
	// Usernames exempt what these requesting users send. Controller and node identities are refused.
	Usernames  []string          `json:"usernames,omitempty"`
	Containers []ContainerExempt `json:"containers,omitempty"`
}

// ContainerExempt relaxes the checks it names for one container, when its name and image match and the
// request comes from one of the identities it names. It never relaxes what Pod Security "baseline" forbids
// (host namespaces, privileged, capabilities, host paths and ports, seccomp, AppArmor, SELinux…), nor a
// check that judges the whole pod rather than one container.
type ContainerExempt struct {
	Name  string `json:"name"`
	Image string `json:"image"` // glob over the whole normalised reference; "*" matches anything
	// Checks are the IDs of the checks this container is not judged by (at least one).
	Checks []string `json:"checks,omitempty"`
	// ServiceAccounts ("namespace/name") and Usernames: the requesting users for whom the entry applies (at
	// least one of them), as in Exempt.
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`
	Usernames       []string `json:"usernames,omitempty"`
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
	// AllowServiceAccounts ("namespace/name"): the pods that service account itself creates (the requesting
	// user system:serviceaccount:namespace:name, an operator that starts pods whose job is to talk to the API
	// server) may carry a token even when automount is forced off. Keyed on the requester, not on the pod's own
	// serviceAccountName, which any pod author chooses. Every other check still applies.
	AllowServiceAccounts []string `json:"allowServiceAccounts,omitempty"`
}

// Resources bounds what an agent pod may ask of its node. Kubernetes' own rules decide what a pod gets: a
// container's requests and limits, the pod-level spec.resources (which replaces the containers' sum where set),
// init containers counted alone and restartable (sidecar) init containers counted with the regular ones.
type Resources struct {
	Defaults ResourceDefaults `json:"defaults,omitempty"`
	// Max is the ceiling of every request and limit one container declares, and of a pod-level limit
	// (spec.resources) beside a container without a limit of its own, which may use all of it.
	Max corev1.ResourceList `json:"max,omitempty"`
	// MaxPerPod is the ceiling of the pod's effective requests and limits: the pod-level value where set,
	// otherwise max(largest init container, regular containers + sidecars), as the scheduler and kubelet count.
	MaxPerPod corev1.ResourceList `json:"maxPerPod,omitempty"`
	// Allowed are the only resources a container or the pod may request or limit; any other name
	// (nvidia.com/gpu, hugepages-2Mi, example.com/anything) is denied. Unset (or empty): cpu, memory and
	// ephemeral-storage. Every name that defaults, max or maxPerPod gives a value must be allowed.
	Allowed []corev1.ResourceName `json:"allowed,omitempty"`
	// AllowResourceClaims lets a pod use dynamic resource allocation (spec.resourceClaims): devices the
	// policy cannot count. Unset: denied.
	AllowResourceClaims bool `json:"allowResourceClaims,omitempty"`
}

type ResourceDefaults struct {
	Requests corev1.ResourceList `json:"requests,omitempty"`
	Limits   corev1.ResourceList `json:"limits,omitempty"`
}

// Scheduling bounds what an agent pod may claim of the scheduler.
type Scheduling struct {
	// PriorityClassNames are the only classes spec.priorityClassName may name (unset always passes: the
	// cluster's global default applies). Empty: any class but the system ones (the reserved "system-" prefix:
	// system-node-critical, system-cluster-critical), which let a pod preempt and outlive the node's own agents.
	PriorityClassNames []string `json:"priorityClassNames,omitempty"`
	// SystemPriorityNamespaces may use the system classes all the same: agentgate's own namespace (the API
	// server waits on agentgate, which must not be preempted). Keyed by namespace, which a pod author in an
	// agent namespace cannot choose, and relaxing nothing else.
	SystemPriorityNamespaces []string `json:"systemPriorityNamespaces,omitempty"`
}

type Commands struct {
	Blocked []string `json:"blocked,omitempty"`
	Allowed []string `json:"allowed,omitempty"`
}

type Env struct {
	DenyLiteralSecrets *bool `json:"denyLiteralSecrets,omitempty"`
}
