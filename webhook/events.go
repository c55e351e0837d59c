// The audit events of a review: every answer is logged once, after it is decided, from what its decision carries.

package webhook

import (
	"context"
	"log/slog"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"agentgate.io/agentgate/policy"
)

// audit is what a review's admission.* event says beyond the request itself: the decider that learnt it puts
// it in its decision, and serveReview writes the event once the answer is known.
type audit struct {
	// object is the object's name as shown (its generateName before it has one), for a request that names none.
	object       string
	note         string
	generation   uint64
	judged       *policy.Result
	patched      []string
	policyErrors []string
	// sessionRecorded: the review has its own exec.* event (validate-exec), so its admission.* line is detail (debug).
	sessionRecorded bool
}

// review is one admission review being answered: the request and the endpoint it came through. Deciders read
// it; the events written while deciding (admission.exempted, admission.guarded, namespace.live_read_failed)
// and the review's own admission.* event carry its attributes.
type review struct {
	endpoint string
	req      *admissionv1.AdmissionRequest
}

// name is the request's name, or the object's as its decider read it (a CREATE with generateName has none).
func (rv review) name(object string) string {
	if rv.req.Name != "" {
		return rv.req.Name
	}
	return object
}

// common is commonAttrs for slog's key-value form (other events of a review: admission.guarded).
func (rv review) common(object string) []any {
	attrs := rv.commonAttrs(nil, object)
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

// commonAttrs appends the attributes every event of this review carries. The admission events are built as
// slog.Attr and written with LogAttrs: no []any boxing, and those of an allowed review fit in a stack array.
func (rv review) commonAttrs(attrs []slog.Attr, object string) []slog.Attr {
	req := rv.req
	attrs = append(attrs,
		slog.String("uid", string(req.UID)), slog.String("endpoint", rv.endpoint), slog.String("kind", req.Kind.Kind),
		slog.String("namespace", req.Namespace), slog.String("name", rv.name(object)), slog.String("operation", string(req.Operation)))
	if req.SubResource != "" {
		attrs = append(attrs, slog.String("subresource", req.SubResource))
	}
	if req.DryRun != nil && *req.DryRun {
		attrs = append(attrs, slog.Bool("dry_run", true))
	}
	if req.UserInfo.Username != "" {
		attrs = append(attrs, slog.String("user", req.UserInfo.Username))
	}
	return attrs
}

func (rv review) exempted(log *slog.Logger, object string, ex policy.Exemption) {
	var buf [16]slog.Attr
	attrs := append(rv.commonAttrs(buf[:0], object), slog.String("event", "admission.exempted"), slog.String("policy", ex.Policy),
		slog.String("reason", ex.Reason), slog.String("field", ex.Field), slog.String("detail", ex.Detail))
	log.LogAttrs(context.Background(), slog.LevelInfo, "exemption applied", attrs...)
}

// loggedViolation is one violation in a log line.
type loggedViolation struct {
	Policy string `json:"policy"`
	Mode   string `json:"mode"`
	Check  string `json:"check"`
	Field  string `json:"field"`
	Found  string `json:"found"`
}

// emit writes the decision's event: admission.denied, admission.warned, admission.mutated or
// admission.allowed (which also carries audit-mode violations).
func (rv review) emit(log *slog.Logger, d decision, elapsed time.Duration) {
	name, level, msg := "admission.allowed", slog.LevelInfo, "admitted"
	switch {
	case d.result == resultError:
		name, level, msg = "admission.refused", slog.LevelWarn, "refused: request cannot be judged"
	case d.result == resultDenied:
		name, msg = "admission.denied", "denied"
	case d.result == resultWarned:
		name, msg = "admission.warned", "admitted with warnings"
	case len(d.patched) > 0:
		name, msg = "admission.mutated", "hardened"
	}
	if d.sessionRecorded && d.result != resultError {
		level = slog.LevelDebug
	}
	if !log.Enabled(context.Background(), level) {
		return
	}
	var buf [20]slog.Attr
	attrs := append(rv.commonAttrs(buf[:0], d.object), slog.String("event", name), slog.Bool("allowed", d.resp.Allowed), slog.Float64("duration", elapsed.Seconds()))
	if d.generation != 0 {
		attrs = append(attrs, slog.Uint64("generation", d.generation))
	}
	if d.note != "" {
		attrs = append(attrs, slog.String("note", d.note))
	}
	if r := d.judged; r != nil {
		attrs = append(attrs, slog.Any("policy", r.Matched))
		checks := []string{}
		vs := make([]loggedViolation, 0, min(len(r.Violations), maxListed))
		for _, v := range r.Violations {
			if !slices.Contains(checks, v.Check) {
				checks = append(checks, v.Check)
			}
			if len(vs) < maxListed {
				vs = append(vs, loggedViolation{Policy: v.Policy, Mode: string(v.Mode), Check: v.Check, Field: v.Field, Found: v.Found})
			}
		}
		attrs = append(attrs, slog.Any("checks", checks))
		if len(vs) > 0 {
			attrs = append(attrs, slog.Any("violations", vs), slog.Int("violation_count", len(r.Violations)))
		}
	}
	if len(d.patched) > 0 {
		attrs = append(attrs, slog.Any("patch", d.patched))
	}
	if len(d.policyErrors) > 0 {
		attrs = append(attrs, slog.Any("errors", d.policyErrors))
	}
	if d.result == resultError && d.resp.Result != nil {
		attrs = append(attrs, slog.String("reason", d.bad), slog.String("error", d.resp.Result.Message))
	}
	log.LogAttrs(context.Background(), level, msg, attrs...)
}
