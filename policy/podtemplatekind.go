package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodTemplateKind is a kind that k8s.io/api does not type but whose objects carry a pod template (a
// PodTemplateSpec: metadata and spec) at a fixed path, as a Deployment carries one at spec.template. Its
// objects are judged by that template, as it will be after hardening, and never mutated: the controller that
// makes pods from it is not agentgate's, and its pods are hardened and judged when they are created.
//
// The path leads to a pod template, not to a bare pod spec: the pods' labels and annotations (AppArmor
// profiles, policies' podSelector) are part of what is judged, and every pod-making kind known to the project
// (Deployment, Job, agent-sandbox's Sandbox) embeds a whole template.
type PodTemplateKind struct {
	GroupVersionKind schema.GroupVersionKind
	// Path lists the member names from the object's root to the template: ["spec", "podTemplate"].
	Path []string
}

// AgentSandboxKinds are kubernetes-sigs/agent-sandbox's kinds that hold a pod template, always judged: Sandbox
// (agents.x-k8s.io, which its controller turns into one pod) and SandboxTemplate (extensions.agents.x-k8s.io,
// which SandboxClaims and SandboxWarmPools turn into Sandboxes), both at spec.podTemplate in v1alpha1 and
// v1beta1. SandboxClaim and SandboxWarmPool hold no template, only a reference to one.
var AgentSandboxKinds = []PodTemplateKind{
	{schema.GroupVersionKind{Group: "agents.x-k8s.io", Version: "v1alpha1", Kind: "Sandbox"}, []string{"spec", "podTemplate"}},
	{schema.GroupVersionKind{Group: "agents.x-k8s.io", Version: "v1beta1", Kind: "Sandbox"}, []string{"spec", "podTemplate"}},
	{schema.GroupVersionKind{Group: "extensions.agents.x-k8s.io", Version: "v1alpha1", Kind: "SandboxTemplate"}, []string{"spec", "podTemplate"}},
	{schema.GroupVersionKind{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Kind: "SandboxTemplate"}, []string{"spec", "podTemplate"}},
}

// String is the declaration's own syntax, GROUP/VERSION/KIND=FIELD.PATH.
func (k PodTemplateKind) String() string {
	g := k.GroupVersionKind
	return g.Group + "/" + g.Version + "/" + g.Kind + "=" + strings.Join(k.Path, ".")
}

// TemplatePath is the template's field path from the object's root.
func (k PodTemplateKind) TemplatePath() *field.Path {
	return field.NewPath(k.Path[0], k.Path[1:]...)
}

// PodTemplateKindSyntax is what a declaration looks like, for error messages.
const PodTemplateKindSyntax = "GROUP/VERSION/KIND=FIELD.PATH, for example example.com/v1/AgentJob=spec.runner.template"

// pathSegment is one member name of a FIELD.PATH: the names CRD schemas use. No brackets: a template inside a
// list cannot be declared, since there would be several.
var pathSegment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// ParsePodTemplateKind parses one declaration, GROUP/VERSION/KIND=FIELD.PATH, strictly: the group, version and
// kind as a CustomResourceDefinition must spell them, and a path of member names that can hold a template.
func ParsePodTemplateKind(s string) (PodTemplateKind, error) {
	bad := func(format string, args ...any) (PodTemplateKind, error) {
		return PodTemplateKind{}, fmt.Errorf("%q: %s (expected %s)", s, fmt.Sprintf(format, args...), PodTemplateKindSyntax)
	}
	gvkPart, pathPart, ok := strings.Cut(s, "=")
	if !ok {
		return bad("no \"=\" between the kind and the path of its pod template")
	}
	parts := strings.Split(gvkPart, "/")
	if len(parts) != 3 {
		return bad("%q is not GROUP/VERSION/KIND", gvkPart)
	}
	gvk := schema.GroupVersionKind{Group: parts[0], Version: parts[1], Kind: parts[2]}
	if Supported(gvk.GroupKind()) {
		return bad("%s is judged already, by its typed pod template", gvk.GroupKind())
	}
	if msgs := validation.IsDNS1123Subdomain(gvk.Group); len(msgs) > 0 || !strings.Contains(gvk.Group, ".") {
		return bad("group %q: a custom resource's group is a DNS subdomain with at least one dot", gvk.Group)
	}
	if msgs := validation.IsDNS1035Label(gvk.Version); len(msgs) > 0 {
		return bad("version %q: %s", gvk.Version, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1035Label(strings.ToLower(gvk.Kind)); len(msgs) > 0 || gvk.Kind[0] < 'A' || gvk.Kind[0] > 'Z' {
		return bad("kind %q: a kind is a CamelCase name such as AgentJob", gvk.Kind)
	}
	if pathPart == "" {
		return bad("empty FIELD.PATH")
	}
	path := strings.Split(pathPart, ".")
	for _, seg := range path {
		if !pathSegment.MatchString(seg) {
			return bad("path segment %q: member names only, separated by dots (no list indexes)", seg)
		}
	}
	switch path[0] {
	case "apiVersion", "kind", "metadata":
		return bad("%s cannot hold a pod template", path[0])
	case "status":
		return bad("status is written by controllers through the status subresource, which is not judged: declare where users write the template")
	}
	return PodTemplateKind{GroupVersionKind: gvk, Path: path}, nil
}

// PodTemplateKinds is the table of kinds judged by their pod template: AgentSandboxKinds and the declared
// ones. It is immutable once built.
type PodTemplateKinds struct {
	byGVK    map[schema.GroupVersionKind]PodTemplateKind
	declared []PodTemplateKind
}

// NewPodTemplateKinds builds the table: AgentSandboxKinds plus the declared kinds. A kind declared twice, or
// one that agentgate judges already, is an error: which path would win is not a guess to make.
func NewPodTemplateKinds(declared ...PodTemplateKind) (*PodTemplateKinds, error) {
	t := &PodTemplateKinds{byGVK: map[schema.GroupVersionKind]PodTemplateKind{}}
	builtin := map[schema.GroupVersionKind]bool{}
	for _, k := range AgentSandboxKinds {
		t.byGVK[k.GroupVersionKind] = k
		builtin[k.GroupVersionKind] = true
	}
	var errs []error
	for _, k := range declared {
		if len(k.Path) == 0 {
			errs = append(errs, fmt.Errorf("%q: no FIELD.PATH", k.String()))
			continue
		}
		if prev, ok := t.byGVK[k.GroupVersionKind]; ok {
			if builtin[k.GroupVersionKind] {
				errs = append(errs, fmt.Errorf("%q: %s is judged already, by its pod template at %s", k.String(), gvkString(k.GroupVersionKind), strings.Join(prev.Path, ".")))
			} else {
				errs = append(errs, fmt.Errorf("%q: %s is declared twice (also %q)", k.String(), gvkString(k.GroupVersionKind), prev.String()))
			}
			continue
		}
		t.byGVK[k.GroupVersionKind] = k
		t.declared = append(t.declared, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// DefaultPodTemplateKinds is the table without declared kinds: AgentSandboxKinds only.
func DefaultPodTemplateKinds() *PodTemplateKinds { return defaultPodTemplateKinds }

var defaultPodTemplateKinds = func() *PodTemplateKinds {
	t, err := NewPodTemplateKinds()
	if err != nil {
		panic(err) // AgentSandboxKinds are fixed; a test builds them
	}
	return t
}()

func gvkString(g schema.GroupVersionKind) string { return g.GroupVersion().String() + " " + g.Kind }

// Lookup returns the kind of this group, version and kind. A nil table knows AgentSandboxKinds only.
func (t *PodTemplateKinds) Lookup(gvk schema.GroupVersionKind) (PodTemplateKind, bool) {
	if t == nil {
		t = DefaultPodTemplateKinds()
	}
	k, ok := t.byGVK[gvk]
	return k, ok
}

// Versions lists the versions of a group and kind that the table judges, sorted; none if it judges none.
func (t *PodTemplateKinds) Versions(gk schema.GroupKind) []string {
	if t == nil {
		t = DefaultPodTemplateKinds()
	}
	var out []string
	for gvk := range t.byGVK {
		if gvk.GroupKind() == gk {
			out = append(out, gvk.Version)
		}
	}
	slices.Sort(out)
	return out
}

// All returns every kind of the table: AgentSandboxKinds, then the declared ones in declaration order.
func (t *PodTemplateKinds) All() []PodTemplateKind {
	return append(slices.Clone(AgentSandboxKinds), t.Declared()...)
}

// Declared returns the declared kinds (not AgentSandboxKinds), in declaration order.
func (t *PodTemplateKinds) Declared() []PodTemplateKind {
	if t == nil {
		return nil
	}
	return slices.Clone(t.declared)
}

// TemplateError says why an object of a PodTemplateKind cannot be judged, at the field where the problem is.
type TemplateError struct {
	Kind PodTemplateKind
	Err  *field.Error
}

func (e *TemplateError) Error() string {
	if e.Err.Field == "" { // the whole object
		return e.Err.Detail
	}
	return e.Err.Error()
}

// podSpecFields are PodSpec members a template does not have at its top: finding one there means the path
// leads to a pod spec rather than to a template, which deserves a better message than "unknown field".
var podSpecFields = []string{"containers", "initContainers", "ephemeralContainers", "volumes", "hostNetwork", "serviceAccountName", "securityContext", "nodeSelector", "restartPolicy"}

// Decode reads an object of this kind from JSON: its metadata and the pod template at the path strictly (an
// unknown or duplicated field there is an error, because a field the decoder ignores is a field no check
// sees), the rest only as JSON, with duplicated names refused anywhere. The API server has already held the
// rest to the kind's own schema. Every error is a *TemplateError at its field path.
func (k PodTemplateKind) Decode(data []byte) (*Workload, error) {
	fail := func(e *field.Error) (*Workload, error) { return nil, &TemplateError{Kind: k, Err: e} }
	var top map[string]jsontext.Value
	if err := UnmarshalStrict(data, &top); err != nil {
		var de *DecodeError
		if errors.As(err, &de) && de.Has(ProblemDuplicate) {
			return fail(decodeError(nil, err))
		}
		return fail(&field.Error{Type: field.ErrorTypeInvalid, Detail: "not a JSON object: " + err.Error()})
	}
	if top == nil {
		return fail(&field.Error{Type: field.ErrorTypeInvalid, Detail: "not a JSON object: null"})
	}
	obj := &TemplateObject{declared: k, raw: data}
	for _, m := range []struct {
		name string
		dst  *string
	}{{"apiVersion", &obj.APIVersion}, {"kind", &obj.Kind}} {
		if v, ok := top[m.name]; ok {
			if err := jsonv2.Unmarshal(v, m.dst); err != nil {
				return fail(field.Invalid(field.NewPath(m.name), string(v), "not a string"))
			}
		}
	}
	if v, ok := top["metadata"]; ok {
		if err := UnmarshalStrict(v, &obj.ObjectMeta); err != nil {
			return fail(decodeError(field.NewPath("metadata"), err))
		}
	}
	tp := k.TemplatePath()
	cur, at := top, (*field.Path)(nil)
	for i, seg := range k.Path {
		if at == nil {
			at = field.NewPath(seg)
		} else {
			at = at.Child(seg)
		}
		v, ok := cur[seg]
		if !ok || v.Kind() == 'n' {
			return fail(field.Required(at, fmt.Sprintf("agentgate judges %s by its pod template at %s, and there is none", gvkString(k.GroupVersionKind), tp)))
		}
		if v.Kind() != '{' {
			return fail(field.Invalid(at, string(v), fmt.Sprintf("not an object: agentgate judges %s by its pod template at %s", gvkString(k.GroupVersionKind), tp)))
		}
		if i == len(k.Path)-1 {
			return k.decodeTemplate(obj, v, fail)
		}
		cur = nil
		if err := UnmarshalStrict(v, &cur); err != nil {
			return fail(decodeError(at, err))
		}
	}
	panic("unreachable: a PodTemplateKind has a non-empty path")
}

func (k PodTemplateKind) decodeTemplate(obj *TemplateObject, v jsontext.Value, fail func(*field.Error) (*Workload, error)) (*Workload, error) {
	tp := k.TemplatePath()
	var members map[string]jsontext.Value
	if err := UnmarshalStrict(v, &members); err != nil {
		return fail(decodeError(tp, err))
	}
	for _, f := range podSpecFields {
		if _, ok := members[f]; ok {
			return fail(field.Forbidden(tp.Child(f), fmt.Sprintf("%s holds a pod spec, not a pod template: the path of %s must lead to an object with metadata and spec, as a Deployment's spec.template does", tp, gvkString(k.GroupVersionKind))))
		}
	}
	if s, ok := members["spec"]; !ok || s.Kind() == 'n' {
		return fail(field.Required(tp.Child("spec"), "a pod template has a spec: without one there is no pod to judge"))
	}
	// Strict, unlike the built-in kinds (README "Cluster upgrades"): an unknown field here is refused, not
	// judged by spec.unknownFields. The owner of these kinds may move them to UnmarshalKnown.
	if err := UnmarshalStrict(v, &obj.Template); err != nil {
		return fail(decodeError(tp, err))
	}
	return NewWorkload(obj)
}

// decodeError places the decoder's first field error at its field under base.
func decodeError(base *field.Path, err error) *field.Error {
	var de *DecodeError
	if errors.As(err, &de) && len(de.Fields) > 0 {
		f := de.Fields[0]
		p := joinPath(base, f.Path)
		switch f.Problem {
		case ProblemDuplicate:
			return field.Duplicate(p, "the value would depend on which occurrence a decoder keeps")
		case ProblemUnknown:
			return field.Forbidden(p, "unknown field: agentgate's k8s.io/api does not know it, so no check could see it")
		}
		return field.Invalid(p, "", "cannot decode: "+f.Err.Error())
	}
	return field.Invalid(base, "", "cannot decode: "+err.Error())
}

func joinPath(base *field.Path, rel string) *field.Path {
	switch {
	case rel == "":
		return base
	case base == nil:
		return fieldPathOf(rel)
	}
	return fieldPathOf(base.String() + "." + rel)
}

// TemplateObject is an object of a PodTemplateKind as agentgate judges it: its type and metadata, and the pod
// template decoded strictly. The rest of the object is kept as sent and never judged.
type TemplateObject struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Template corev1.PodTemplateSpec

	declared PodTemplateKind
	raw      []byte
}

// DeclaredKind is the kind the object was decoded as.
func (o *TemplateObject) DeclaredKind() PodTemplateKind { return o.declared }

// DeepCopyObject copies what hardening may change; raw and the kind are never changed, and shared.
func (o *TemplateObject) DeepCopyObject() runtime.Object {
	return &TemplateObject{
		TypeMeta: o.TypeMeta, ObjectMeta: *o.ObjectMeta.DeepCopy(), Template: *o.Template.DeepCopy(),
		declared: o.declared, raw: o.raw,
	}
}

// MarshalJSON writes the object as sent with the template in its place, so that patches (check --fix) are
// computed against the whole object, like every other kind's.
func (o *TemplateObject) MarshalJSON() ([]byte, error) {
	var whole map[string]any
	dec := json.NewDecoder(strings.NewReader(string(o.raw)))
	dec.UseNumber()
	if err := dec.Decode(&whole); err != nil {
		return nil, err
	}
	tmpl, err := json.Marshal(&o.Template)
	if err != nil {
		return nil, err
	}
	var t any
	if err := json.Unmarshal(tmpl, &t); err != nil {
		return nil, err
	}
	cur := whole
	for _, seg := range o.declared.Path[:len(o.declared.Path)-1] {
		next, ok := cur[seg].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not an object", seg)
		}
		cur = next
	}
	cur[o.declared.Path[len(o.declared.Path)-1]] = t
	return json.Marshal(whole)
}
