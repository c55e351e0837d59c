package webhook

import (
	"errors"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"agentgate.io/agentgate/policy"
)

// Kinds judged by a pod template at a path (policy.PodTemplateKind): agent-sandbox's Sandbox and
// SandboxTemplate, and the kinds declared with --pod-template-kind. Their objects reach /validate through
// rules of the validating webhook configuration; they are judged on CREATE and UPDATE of the main resource,
// like a Deployment, and never mutated.

// podTemplateKind returns the request's kind when the server judges it by a pod template.
func (s *Server) podTemplateKind(req *admissionv1.AdmissionRequest) (policy.PodTemplateKind, bool) {
	return s.opts.PodTemplateKinds.Lookup(schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind})
}

// unsupportedKind refuses a kind the server does not judge; only a misconfigured webhook sends one. When
// other versions of the kind are judged, it says which, since the fix is then matchPolicy: Equivalent or the
// rule's apiVersions.
func (s *Server) unsupportedKind(req *admissionv1.AdmissionRequest) decision {
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if versions := s.opts.PodTemplateKinds.Versions(gk); len(versions) > 0 {
		return refuse("unsupported_version", 400, "agentgate judges %s in %s, not %s: list those versions in the webhook rule with matchPolicy: Equivalent, or declare this one with --pod-template-kind",
			gk.String(), strings.Join(versions, ", "), gvkString(req.Kind))
	}
	return refuse("unsupported_kind", 400, "%s is not a kind agentgate judges: the webhook configuration must send only Pods, ReplicationControllers, apps/v1 Deployments, ReplicaSets, StatefulSets, DaemonSets, batch/v1 Jobs and CronJobs, agent-sandbox's Sandboxes and SandboxTemplates, and the kinds declared with --pod-template-kind", gvkString(req.Kind))
}

// decodeTemplateWorkload decodes request.object by its pod-template kind. An object whose template cannot be
// judged (none at the path, a pod spec where a template belongs, a field agentgate does not know) is denied
// with a cause at that field, the way the API server reports its own validation: the object's author, not a
// misconfigured webhook, is the one to fix it.
func (s *Server) decodeTemplateWorkload(req *admissionv1.AdmissionRequest, k policy.PodTemplateKind) (*policy.Workload, decision, bool) {
	if len(req.Object.Raw) == 0 {
		return nil, refuse("null_object", 400, "request.object is null for %s of %s", req.Operation, gvkString(req.Kind)), false
	}
	w, err := k.Decode(req.Object.Raw)
	if err != nil {
		var te *policy.TemplateError
		if !errors.As(err, &te) { // unreachable: Decode returns only TemplateErrors
			return nil, refuse("object_decode", 400, "cannot decode request.object as %s: %v", gvkString(req.Kind), err), false
		}
		gk := k.GroupVersionKind.GroupKind()
		msg := fmt.Sprintf("agentgate: %s %q cannot be judged: %s", k.GroupVersionKind.Kind, req.Name, err)
		st := invalidStatus(gk, req.Name, field.ErrorList{te.Err}, msg)
		return nil, decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: st}, result: resultDenied}, false
	}
	tm := w.Object.GetObjectKind().GroupVersionKind()
	apiVersion, kind := tm.ToAPIVersionAndKind()
	if d, ok := checkTypeAndNamespace(req, &metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, w.Meta); !ok {
		return nil, d, false
	}
	return w, decision{}, true
}

// unchangedTemplate reports whether an UPDATE leaves the pod template (its spec and its metadata) as it
// was: metadata-only updates of the object (finalizers, labels, status through the main resource) are not
// judged again, as for Pods, so that a policy change never blocks a Sandbox's deletion. The template's own
// metadata counts: an AppArmor annotation added there changes what the pods run with. An oldObject that does
// not decode counts as changed.
func unchangedTemplate(req *admissionv1.AdmissionRequest, k policy.PodTemplateKind, w *policy.Workload) bool {
	if len(req.OldObject.Raw) == 0 {
		return false
	}
	old, err := k.Decode(req.OldObject.Raw)
	if err != nil {
		return false
	}
	return equality.Semantic.DeepEqual(old.Spec, w.Spec) && equality.Semantic.DeepEqual(old.PodMeta, w.PodMeta) && samePodSpecUnknown(old, w)
}

// kindLabel keeps the kind label of metrics to a bounded set whatever a client sends: the kinds judged
// (declared ones are fixed at start), ConfigMap, NetworkPolicy, and "other".
func (s *Server) kindLabel(req *admissionv1.AdmissionRequest) string {
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if _, ok := s.podTemplateKind(req); ok || policy.Supported(gk) || gk == configMapGK || gk == networkPolicyGK || gk == secretGK {
		return gk.Kind
	}
	return "other"
}
