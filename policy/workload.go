package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
// (with UnmarshalStrict's options) and then calls NewWorkload.
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

// DecodeWorkload decodes a JSON object of the given kind strictly: an unknown or duplicated field is an error,
// because a field the decoder ignores is a field no check sees.
func DecodeWorkload(gk schema.GroupKind, data []byte) (*Workload, error) {
	mk, ok := newObject[gk]
	if !ok {
		return nil, &UnsupportedKindError{GroupKind: gk}
	}
	obj := mk()
	if err := UnmarshalStrict(data, obj); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", gk.Kind, err)
	}
	return NewWorkload(obj)
}

// strictOptions: encoding/json/v2 semantics (its go-json-experiment mirror until the standard library's is
// stable), which already match field names case-sensitively, refuse duplicate object member names (map keys
// included) and invalid UTF-8, and here also refuse unknown members. That is what sigs.k8s.io/json's
// UnmarshalStrict(DisallowDuplicateFields, DisallowUnknownFields) refused, at about 3 times the speed (the
// decode path dominates admission cost: DESIGN.md "Speed", BENCHMARKS.md). Types with their own UnmarshalJSON
// (resource.Quantity, intstr.IntOrString, metav1.Time, runtime.RawExtension) decode themselves, as before.
var strictOptions = json.JoinOptions(json.RejectUnknownMembers(true), jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))

// UnmarshalStrict decodes one JSON value into v, refusing unknown and duplicated fields and trailing data.
// Options add to the strict ones (json.WithUnmarshalers, for example). An unknown or duplicated field is
// reported as a *StrictFieldError, with the same wording sigs.k8s.io/json uses.
func UnmarshalStrict(data []byte, v any, opts ...json.Options) error {
	o := strictOptions
	if len(opts) > 0 {
		o = json.JoinOptions(append([]json.Options{strictOptions}, opts...)...)
	}
	if err := json.Unmarshal(data, v, o); err != nil {
		return strictError(err)
	}
	return nil
}

// StrictFieldError is an unknown or duplicated field: the input is ambiguous, not merely malformed.
type StrictFieldError struct {
	// Path is the field's dotted path ("spec.containers[0].securityContex").
	Path      string
	Duplicate bool
	// Offset is the byte offset in the input.
	Offset int64
}

func (e *StrictFieldError) Error() string {
	if e.Duplicate {
		return fmt.Sprintf("duplicate field %q", e.Path)
	}
	return fmt.Sprintf("unknown field %q", e.Path)
}

// IsStrictError says whether err is (or wraps) an unknown or duplicated field.
func IsStrictError(err error) bool {
	var se *StrictFieldError
	return errors.As(err, &se)
}

func strictError(err error) error {
	var sem *json.SemanticError
	if errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName) {
		return &StrictFieldError{Path: dottedPath(sem.JSONPointer), Offset: sem.ByteOffset}
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName) {
		return &StrictFieldError{Path: dottedPath(syn.JSONPointer), Duplicate: true, Offset: syn.ByteOffset}
	}
	return err
}

// dottedPath turns a JSON pointer ("/spec/containers/0/image") into the path style of field errors
// ("spec.containers[0].image"). A pointer cannot tell an array index from a numeric member name: digits
// are shown as an index.
func dottedPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && tok != "" && (tok == "0" || tok[0] != '0') {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
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
	return c
}
