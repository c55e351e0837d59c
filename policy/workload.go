package policy

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Workload is one pod spec to judge, wherever it lives: a Pod, or the pod template of a controller.
// Field paths start at the object's root, so a denial points at spec.jobTemplate.spec.template.spec.… for a
// CronJob exactly as kubectl would.
type Workload struct {
	Kind   string
	Object runtime.Object
	// Meta is the object's own metadata (name, namespace).
	Meta *metav1.ObjectMeta
	// PodMeta is the metadata of the pods it makes (the template's); the Pod's own for a Pod.
	PodMeta     *metav1.ObjectMeta
	PodMetaPath *field.Path
	Spec        *corev1.PodSpec
	SpecPath    *field.Path
	// Unknown lists the object's fields that agentgate's k8s.io/api does not know (DecodeWorkload), in
	// document order; nil for an object built in Go.
	Unknown []FieldError
}

// IsPod says whether this is a bare Pod (mutated by the webhook) rather than a controller template.
func (w *Workload) IsPod() bool { return w.Kind == "Pod" }

var (
	podMetaPath     = field.NewPath("metadata")
	podSpecPath     = field.NewPath("spec")
	templatePath    = field.NewPath("spec", "template")
	jobTemplatePath = field.NewPath("spec", "jobTemplate", "spec", "template")
)

// newObject maps the kinds agentgate judges to their typed objects. Group is checked too: a CRD named
// "Deployment" in another group is not a Deployment.
var newObject = map[schema.GroupKind]func() runtime.Object{
	{Group: "", Kind: "Pod"}:                   func() runtime.Object { return &corev1.Pod{} },
	{Group: "", Kind: "ReplicationController"}: func() runtime.Object { return &corev1.ReplicationController{} },
	{Group: "apps", Kind: "Deployment"}:        func() runtime.Object { return &appsv1.Deployment{} },
	{Group: "apps", Kind: "ReplicaSet"}:        func() runtime.Object { return &appsv1.ReplicaSet{} },
	{Group: "apps", Kind: "StatefulSet"}:       func() runtime.Object { return &appsv1.StatefulSet{} },
	{Group: "apps", Kind: "DaemonSet"}:         func() runtime.Object { return &appsv1.DaemonSet{} },
	{Group: "batch", Kind: "Job"}:              func() runtime.Object { return &batchv1.Job{} },
	{Group: "batch", Kind: "CronJob"}:          func() runtime.Object { return &batchv1.CronJob{} },
}

// NewObject returns an empty typed object of a kind agentgate judges, for a caller that decodes it itself
// (with UnmarshalStrict) and then calls NewWorkload, or DecodeWorkloadAfter when that fails.
func NewObject(gk schema.GroupKind) (runtime.Object, bool) {
	mk, ok := newObject[gk]
	if !ok {
		return nil, false
	}
	return mk(), true
}

// Supported says whether agentgate judges objects of this group and kind.
func Supported(gk schema.GroupKind) bool {
	_, ok := newObject[gk]
	return ok
}

// UnsupportedKindError is returned for a kind agentgate does not judge.
type UnsupportedKindError struct{ GroupKind schema.GroupKind }

func (e *UnsupportedKindError) Error() string {
	return fmt.Sprintf("unsupported kind %q: agentgate judges Pods, ReplicationControllers and apps/v1 Deployment, ReplicaSet, StatefulSet, DaemonSet, batch/v1 Job, CronJob, agent-sandbox's Sandbox and SandboxTemplate, and the kinds declared with --pod-template-kind", e.GroupKind.String())
}

// DecodeWorkload decodes a JSON object of the given kind. A duplicated field or an invalid value is an
// error (*DecodeError): the object is ambiguous or unusable. A field that agentgate's k8s.io/api does not
// know is not: the object is decoded without it, and the field is listed in Workload.Unknown, for the
// policy to judge (check unknownFields) and the caller to count.
func DecodeWorkload(gk schema.GroupKind, data []byte) (*Workload, error) {
	return decodeWorkload(gk, data, nil)
}

// DecodeWorkloadAfter is DecodeWorkload for a caller whose own strict decode of data as that kind failed
// with err (UnmarshalKnownAfter).
func DecodeWorkloadAfter(gk schema.GroupKind, data []byte, err error) (*Workload, error) {
	return decodeWorkload(gk, data, err)
}

func decodeWorkload(gk schema.GroupKind, data []byte, strictErr error) (*Workload, error) {
	mk, ok := newObject[gk]
	if !ok {
		return nil, &UnsupportedKindError{GroupKind: gk}
	}
	obj := mk()
	var unknown []FieldError
	var err error
	if strictErr != nil {
		unknown, err = UnmarshalKnownAfter(data, obj, strictErr)
	} else {
		unknown, err = UnmarshalKnown(data, obj)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", gk.Kind, err)
	}
	w, err := NewWorkload(obj)
	if err != nil {
		return nil, err
	}
	w.Unknown = unknown
	return w, nil
}

// NewWorkload points into a typed object; changes made through the Workload change the object.
func NewWorkload(obj runtime.Object) (*Workload, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &Workload{Kind: "Pod", Object: o, Meta: &o.ObjectMeta, PodMeta: &o.ObjectMeta, PodMetaPath: podMetaPath, Spec: &o.Spec, SpecPath: podSpecPath}, nil
	case *corev1.ReplicationController:
		if o.Spec.Template == nil {
			return nil, fmt.Errorf("ReplicationController %q: spec.template: Required value", o.Name)
		}
		return template("ReplicationController", o, &o.ObjectMeta, o.Spec.Template, templatePath), nil
	case *appsv1.Deployment:
		return template("Deployment", o, &o.ObjectMeta, &o.Spec.Template, templatePath), nil
	case *appsv1.ReplicaSet:
		return template("ReplicaSet", o, &o.ObjectMeta, &o.Spec.Template, templatePath), nil
	case *appsv1.StatefulSet:
		return template("StatefulSet", o, &o.ObjectMeta, &o.Spec.Template, templatePath), nil
	case *appsv1.DaemonSet:
		return template("DaemonSet", o, &o.ObjectMeta, &o.Spec.Template, templatePath), nil
	case *batchv1.Job:
		return template("Job", o, &o.ObjectMeta, &o.Spec.Template, templatePath), nil
	case *batchv1.CronJob:
		return template("CronJob", o, &o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template, jobTemplatePath), nil
	case *TemplateObject:
		return template(o.declared.GroupVersionKind.Kind, o, &o.ObjectMeta, &o.Template, o.declared.TemplatePath()), nil
	}
	return nil, fmt.Errorf("unsupported object type %T", obj)
}

func template(kind string, obj runtime.Object, meta *metav1.ObjectMeta, t *corev1.PodTemplateSpec, path *field.Path) *Workload {
	return &Workload{
		Kind: kind, Object: obj, Meta: meta,
		PodMeta: &t.ObjectMeta, PodMetaPath: path.Child("metadata"),
		Spec: &t.Spec, SpecPath: path.Child("spec"),
	}
}

// DeepCopy copies the object and points the copy's Workload into it.
func (w *Workload) DeepCopy() *Workload {
	c, err := NewWorkload(w.Object.DeepCopyObject())
	if err != nil {
		// Unreachable: w was built by NewWorkload from the same type.
		panic(err)
	}
	c.Unknown = w.Unknown // read-only once decoded
	return c
}
