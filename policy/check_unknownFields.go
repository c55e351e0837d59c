package policy

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// unknownFields: a field of the pod spec (containers included; a controller's template spec) that
// agentgate's Kubernetes API (KubernetesAPIModule) does not know. Such a field was added to Kubernetes after
// the k8s.io/api agentgate was built with (or is misspelled), so no check has read it, and it may weaken the
// sandbox: new pod fields are often exactly that (hostUsers, procMount, the resize subresource were).
//
// Restricted fields:
//
//	spec.**.<a member unknown to agentgate's k8s.io/api>
//
// Allowed values: none with spec.unknownFields: deny (the default); with warn, admitted with a warning per
// field. Unknown fields elsewhere (metadata, status, a controller's own spec outside the template) cannot
// change the sandbox: they are not judged here (the webhook counts them).
var checkUnknownFields = check{id: "unknownFields", run: func(p *Policy, pod *podView, r *report) {
	for i := range pod.unknown {
		f := &pod.unknown[i]
		r.add("unknownFields", fieldPathOf(f.Path), f.ShortValue(), "fields of Kubernetes "+KubernetesVersion()+" (k8s.io/api "+KubernetesAPIModule+")",
			"agentgate's Kubernetes API (k8s.io/api "+KubernetesAPIModule+") does not know this field: the cluster's API server is newer than agentgate (upgrade agentgate first), or the field is misspelled; no check has judged it")
		if p.Spec.UnknownFields == UnknownFieldsWarn && r.out[len(r.out)-1].Mode == ModeEnforce {
			// warn admits with a warning; it never makes an audit-mode policy louder.
			r.out[len(r.out)-1].Mode = ModeWarn
		}
	}
}}

// UnknownFieldsMode is what a policy does with a pod whose spec has fields agentgate does not know.
type UnknownFieldsMode string

const (
	UnknownFieldsDeny UnknownFieldsMode = "deny" // a violation in the policy's mode
	UnknownFieldsWarn UnknownFieldsMode = "warn" // admitted with a warning per field
)

// compileUnknownFields validates spec.unknownFields (applyDefaults made "" deny).
func compileUnknownFields(m UnknownFieldsMode, fp *field.Path) field.ErrorList {
	switch m {
	case UnknownFieldsDeny, UnknownFieldsWarn:
		return nil
	}
	return field.ErrorList{field.NotSupported(fp, m, []UnknownFieldsMode{UnknownFieldsDeny, UnknownFieldsWarn})}
}

// KubernetesAPIModule is the version of k8s.io/api that agentgate is built with: its pod fields are the
// ones agentgate knows. TestKubernetesAPIModule keeps it equal to go.mod's.
const KubernetesAPIModule = "v0.37.2"

// KubernetesVersion is the Kubernetes minor version of KubernetesAPIModule ("1.37" for v0.37.x).
func KubernetesVersion() string {
	minor := strings.TrimPrefix(KubernetesAPIModule, "v0.")
	minor, _, _ = strings.Cut(minor, ".")
	return "1." + minor
}

// PodSpecUnknown is the part of w.Unknown inside the pod spec, which the policy judges.
func (w *Workload) PodSpecUnknown() []FieldError {
	if len(w.Unknown) == 0 {
		return nil
	}
	prefix := w.SpecPath.String()
	var out []FieldError
	for _, f := range w.Unknown {
		if InPath(f.Path, prefix) {
			out = append(out, f)
		}
	}
	return out
}

// InPath says whether the dotted path is under prefix ("spec.containers[0].x" is under "spec").
func InPath(path, prefix string) bool {
	rest, ok := strings.CutPrefix(path, prefix)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}
