// What a review answers: statuses with a cause per field, and one-line messages that name every violation.

package webhook

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"agentgate.io/agentgate/policy"
)

// verdict answers a judged object: denied with a cause per enforced violation, warned of each warn-mode one.
// Audit-mode violations are the event's alone.
func verdict(gk schema.GroupKind, kind, name string, res policy.Result) decision {
	enforce, warn := res.ByMode(policy.ModeEnforce), res.ByMode(policy.ModeWarn)
	warnings := make([]string, 0, min(len(warn), maxListed+1))
	for i, v := range warn {
		if i == maxListed {
			warnings = append(warnings, fmt.Sprintf("agentgate: %d more warnings not shown", len(warn)-maxListed))
			break
		}
		warnings = append(warnings, "agentgate["+v.Policy+"]: "+v.Field+": "+v.Message)
	}
	if len(enforce) > 0 {
		st := invalidStatus(gk, name, enforce.FieldErrors(), denialMessage(kind, name, enforce))
		return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: st, Warnings: nilIfEmpty(warnings)}, result: resultDenied}
	}
	if len(warnings) > 0 {
		return decision{resp: &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}, result: resultWarned}
	}
	return allow()
}

// maxListed bounds the violations spelled out in a message, the warnings and a log line; details.causes
// carries up to maxCauses. A pathological pod (thousands of containers) must not produce megabytes of text,
// nor the quadratic cost of apierrors.NewInvalid's aggregated message.
const (
	maxListed = 50
	maxCauses = 1000
)

// invalidStatus is apierrors.NewInvalid's Status (422, reason Invalid, a cause per field error) with agentgate's
// own message.
func invalidStatus(gk schema.GroupKind, name string, errs field.ErrorList, msg string) *metav1.Status {
	causes := make([]metav1.StatusCause, 0, min(len(errs), maxCauses+1))
	for i, e := range errs {
		if i == maxCauses {
			causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeTooMany, Message: fmt.Sprintf("%d more causes not shown", len(errs)-maxCauses)})
			break
		}
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(e.Type), Message: e.ErrorBody(), Field: e.Field})
	}
	return &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnprocessableEntity,
		Reason:  metav1.StatusReasonInvalid,
		Message: msg,
		Details: &metav1.StatusDetails{Group: gk.Group, Kind: gk.Kind, Name: name, Causes: causes},
	}
}

// denialMessage lists the violations in one readable line; the causes carry them one by one.
func denialMessage(kind, name string, vs policy.Violations) string {
	var b strings.Builder
	fmt.Fprintf(&b, "agentgate: %s %q denied by ", kind, name)
	listByPolicy(&b, len(vs), func(i int) string { return vs[i].Policy }, func(i int) string { return vs[i].Field + ": " + vs[i].Message },
		"; and %d more violations (every one is in details.causes)")
	return b.String()
}

// listByPolicy writes `policy "p": ` (or `policies "a", "b": `) and then the n items, "; "-separated, each
// prefixed with "(its policy) " when there are several policies; after maxListed it writes more with the
// count left. Denials of pods and of exec sessions read alike.
func listByPolicy(b *strings.Builder, n int, policyOf, itemOf func(int) string, more string) {
	var policies []string
	for i := range n {
		if p := policyOf(i); !slices.Contains(policies, p) {
			policies = append(policies, p)
		}
	}
	if len(policies) == 1 {
		fmt.Fprintf(b, "policy %q: ", policies[0])
	} else {
		q := make([]string, len(policies))
		for i, p := range policies {
			q[i] = strconv.Quote(p)
		}
		fmt.Fprintf(b, "policies %s: ", strings.Join(q, ", "))
	}
	for i := range n {
		if i == maxListed {
			fmt.Fprintf(b, more, n-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if len(policies) > 1 {
			b.WriteString("(" + policyOf(i) + ") ")
		}
		b.WriteString(itemOf(i))
	}
}

func policyDenialMessage(name string, errs field.ErrorList) string {
	return fmt.Sprintf("agentgate: ConfigMap %q holds an invalid policy: %s", name, strings.Join(errorStrings(errs), "; "))
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
