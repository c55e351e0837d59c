package policy

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

//go:embed default-policy.yaml
var defaultPolicyYAML []byte

// DefaultPolicyYAML is the embedded default policy document, byte for byte.
func DefaultPolicyYAML() []byte { return slices.Clone(defaultPolicyYAML) }

// Default parses the embedded default policy. It cannot fail: a test proves the embedded document valid.
func Default() *Policy {
	p, errs := Parse(defaultPolicyYAML)
	if len(errs) > 0 {
		panic(fmt.Sprintf("embedded default policy is invalid: %v", errs.ToAggregate()))
	}
	return p
}

// Policy is a parsed, defaulted and validated AgentPolicy, compiled for evaluation. It is immutable once
// returned by Parse, so one value can serve concurrent admissions.
type Policy struct {
	Name string
	Spec Spec

	nsSelector      labels.Selector // nil: every namespace
	podSelector     labels.Selector // nil: every pod
	exemptNS        map[string]bool
	exemptBy        requesters // whole workloads sent by these users
	tokenBy         requesters // pods sent by these users may carry a token
	exemptContainer []containerExempt
	allow, deny     []glob
	denyTags        map[string]bool
	pinAccess       map[string]PinAccess // by normalised registry: spec.images.pinRegistries
	allowedCaps     map[corev1.Capability]bool
	commands        *commandRules
	network         *network
	resources       resourceRules
	priorityClasses priorityClassRules
}

// Parse decodes one policy document (YAML or JSON) strictly, applies defaults, and validates it. All field
// errors are returned at once, each with its path from the document root.
func Parse(data []byte) (*Policy, field.ErrorList) {
	root := field.NewPath("")
	jsonData, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(root, "", "not a valid YAML document: "+err.Error())}
	}
	// Unknown fields are errors, but the rest of the document decodes, so that they are reported together
	// with the validation's errors.
	var ap AgentPolicy
	unknown, err := UnmarshalKnown(jsonData, &ap)
	if err != nil {
		return nil, decodeErrors(err)
	}
	errs := fieldErrors(unknown)
	applyDefaults(&ap.Spec)
	p, verrs := compile(&ap)
	errs = append(errs, verrs...)
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// decodeErrors reports every field the decoder refused at its own path ("spec.images.alow"), so that
// /validate-policy and kubectl show where it is, like every other field error.
func decodeErrors(err error) field.ErrorList {
	if err == nil {
		return nil
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		return field.ErrorList{field.Invalid(field.NewPath(""), "", "cannot decode policy: "+err.Error())}
	}
	var errs field.ErrorList
	if de.Err != nil {
		errs = append(errs, field.Invalid(field.NewPath(""), "", "cannot decode policy: "+de.Err.Error()))
	}
	return append(errs, fieldErrors(de.Fields)...)
}

func fieldErrors(fields []FieldError) field.ErrorList {
	var errs field.ErrorList
	for _, f := range fields {
		path := field.NewPath("")
		if f.Path != "" {
			path = fieldPathOf(f.Path)
		}
		switch f.Problem {
		case ProblemUnknown:
			errs = append(errs, field.Forbidden(path, "unknown field: decoding is strict; check its spelling and place against apiVersion "+APIVersion))
		case ProblemDuplicate:
			errs = append(errs, field.Forbidden(path, "duplicate field: the value would depend on which occurrence a decoder keeps"))
		default:
			errs = append(errs, field.TypeInvalid(path, jsonKindName(f.Err), "cannot decode policy: "+f.Err.Error()))
		}
	}
	return errs
}

// jsonKindName is the JSON kind the decoder found ("number", "string"…), the bad value of a type error.
func jsonKindName(err error) string {
	var sem *json.SemanticError
	if !errors.As(err, &sem) {
		return ""
	}
	return JSONKindName(sem.JSONKind)
}

// fieldPathOf turns a decoder's dotted path ("spec.exempt.containers[0].nme") back into a field.Path.
func fieldPathOf(s string) *field.Path {
	var p *field.Path
	for _, part := range strings.Split(s, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if p == nil {
			p = field.NewPath(name)
		} else {
			p = p.Child(name)
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			if i, err := strconv.Atoi(idx); err == nil {
				p = p.Index(i)
			} else {
				p = p.Key(idx)
			}
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return p
}

func ptrTo[T any](v T) *T { return &v }

// applyDefaults fills what a policy leaves out with the strict choice, so that a short policy is a safe one.
func applyDefaults(s *Spec) {
	if s.Mode == "" {
		s.Mode = ModeEnforce
	}
	if s.Windows == "" {
		s.Windows = WindowsDeny
	}
	if s.UnknownFields == "" {
		s.UnknownFields = UnknownFieldsDeny
	}
	sc := &s.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil {
		sc.ReadOnlyRootFilesystem = ptrTo(true)
	}
	if sc.AllowPrivilegeEscalation == nil {
		sc.AllowPrivilegeEscalation = ptrTo(false)
	}
	if sc.RunAsNonRoot == nil {
		sc.RunAsNonRoot = ptrTo(true)
	}
	if sc.SeccompProfile == "" {
		sc.SeccompProfile = corev1.SeccompProfileTypeRuntimeDefault
	}
	if s.ServiceAccountToken.Automount == nil {
		s.ServiceAccountToken.Automount = ptrTo(false)
	}
	if s.Env.DenyLiteralSecrets == nil {
		s.Env.DenyLiteralSecrets = ptrTo(true)
	}
	defaultExec(&s.Exec)
}

func compile(ap *AgentPolicy) (*Policy, field.ErrorList) {
	var errs field.ErrorList
	if ap.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), ap.APIVersion, []string{APIVersion}))
	}
	if ap.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), ap.Kind, []string{Kind}))
	}
	if ap.Metadata.Name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "a policy needs a name: it appears in every violation"))
	}
	s := ap.Spec
	sp := field.NewPath("spec")
	p := &Policy{Name: ap.Metadata.Name, Spec: s}

	errs = append(errs, compileMode(s.Mode, sp.Child("mode"))...)
	errs = append(errs, compileWindows(s.Windows, sp.Child("windows"))...)
	errs = append(errs, compileUnknownFields(s.UnknownFields, sp.Child("unknownFields"))...)

	errs = append(errs, compileMatch(p, s.Match, sp.Child("match"))...)

	errs = append(errs, compileExempt(p, s.Exempt, sp.Child("exempt"))...)
	errs = append(errs, compileServiceAccountToken(p, s.ServiceAccountToken, sp.Child("serviceAccountToken"))...)

	errs = append(errs, compileImages(p, &s.Images, sp.Child("images"))...)

	errs = append(errs, compileSecurityContext(p, s.SecurityContext, sp.Child("securityContext"))...)

	var e field.ErrorList
	p.resources, e = compileResources(&s.Resources, sp.Child("resources"))
	errs = append(errs, e...)
	p.priorityClasses, e = compileScheduling(&s.Scheduling, sp.Child("scheduling"))
	errs = append(errs, e...)

	p.commands, e = compileCommands(s.Commands, sp.Child("commands"))
	errs = append(errs, e...)
	errs = append(errs, compileRuntime(&s.Runtime, sp.Child("runtime"))...)
	errs = append(errs, compileExec(s.Exec, sp.Child("exec"))...)
	p.network, e = compileNetwork(s.Network, sp.Child("network"))
	errs = append(errs, e...)
	return p, errs
}

func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
