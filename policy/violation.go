package policy

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Violation is one reason a workload breaks a policy: which check, where, what was found and what is allowed.
type Violation struct {
	Policy  string `json:"policy"`
	Mode    Mode   `json:"mode"`
	Check   string `json:"check"`
	Field   string `json:"field"`
	Found   string `json:"found"`
	Allowed string `json:"allowed"`
	Message string `json:"message"`
}

// FieldError renders the violation the way the API server shows validation failures (details.causes[]), so
// that kubectl prints the field path and the whole explanation for each one.
func (v Violation) FieldError() *field.Error {
	return &field.Error{
		Type:     field.ErrorTypeForbidden,
		Field:    v.Field,
		BadValue: v.Found,
		Detail:   v.Message,
		Origin:   v.Check,
	}
}

// Violations is an ordered list of violations.
type Violations []Violation

// FieldErrors converts every violation, keeping their order.
func (vs Violations) FieldErrors() field.ErrorList {
	out := make(field.ErrorList, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.FieldError())
	}
	return out
}

// report collects the violations of one policy over one pod spec.
type report struct {
	policy *Policy
	out    Violations
}

// add records a violation. found is rendered as written in the manifest ("unset" when absent), allowed lists
// what would pass, and why says what the rule protects or what to write instead.
func (r *report) add(check string, path *field.Path, found, allowed, why string) {
	msg := fmt.Sprintf("[%s] %s (found %s; allowed: %s)", check, why, found, allowed)
	r.out = append(r.out, Violation{
		Policy:  r.policy.Name,
		Mode:    r.policy.Spec.Mode,
		Check:   check,
		Field:   path.String(),
		Found:   found,
		Allowed: allowed,
		Message: msg,
	})
}
