package policy

import "k8s.io/apimachinery/pkg/util/validation/field"

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

func compileMode(m Mode, fp *field.Path) field.ErrorList {
	switch m {
	case ModeEnforce, ModeWarn, ModeAudit:
		return nil
	}
	return field.ErrorList{field.NotSupported(fp, m, []Mode{ModeEnforce, ModeWarn, ModeAudit})}
}

func compileWindows(w WindowsMode, fp *field.Path) field.ErrorList {
	switch w {
	case WindowsDeny, WindowsSkipLinuxChecks:
		return nil
	}
	return field.ErrorList{field.NotSupported(fp, w, []WindowsMode{WindowsDeny, WindowsSkipLinuxChecks})}
}
