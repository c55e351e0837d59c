package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"agentgate.io/agentgate/policy"
)

// WriteText writes one line per violation to out, "FILE: Kind/name: field.path: message" (FILE#N for the
// Nth document of a file holding several; "(policy NAME)" after it when several policies are in force),
// warn-mode violations starting with "warning:", audit-mode ones with "audit:", exemptions with "exempt:",
// then the summary line (Tally.String). Notes (skipped objects, objects no policy selects, namespaceSelectors
// matching everything offline) and errors go to notes.
func (r *Run) WriteText(out, notes io.Writer) {
	t := r.Tally()
	if n := r.selectorNote(); n != "" && t.Workloads > 0 {
		fmt.Fprintln(notes, n)
	}
	severalPolicies := len(r.Set.Policies) > 1
	for _, f := range r.files {
		if f.err != nil {
			fmt.Fprintf(notes, "error: %s: %v\n", f.name, f.err)
			continue
		}
		multi := len(f.docs) > 1
		for _, d := range f.docs {
			for _, e := range d.entries {
				switch {
				case e.err != nil:
					fmt.Fprintf(notes, "error: %s\n", e.errorString())
				case e.skipped != "":
					fmt.Fprintf(notes, "note: %s: skipped %s (%s): not a kind agentgate judges\n", e.label(multi), e.object(), e.apiVersion)
				default:
					where := e.label(multi) + ": " + e.object()
					if len(e.result.Matched) == 0 && len(e.result.Exemptions) == 0 {
						fmt.Fprintf(notes, "note: %s: no policy selects it\n", where)
					}
					for _, v := range e.result.Violations {
						prefix := ""
						switch v.Mode {
						case policy.ModeWarn:
							prefix = "warning: "
						case policy.ModeAudit:
							prefix = "audit: "
						}
						suffix := ""
						if severalPolicies {
							suffix = " (policy " + v.Policy + ")"
						}
						fmt.Fprintf(out, "%s%s: %s: %s%s\n", prefix, where, v.Field, v.Message, suffix)
					}
					for _, x := range e.result.Exemptions {
						fmt.Fprintf(out, "exempt: %s: %s: %s (policy %s)\n", where, orDash(x.Field), x.Detail, x.Policy)
					}
				}
			}
		}
	}
	fmt.Fprintln(out, t)
}

// selectorNote says once that namespaceSelectors match everything offline, when a policy has one.
func (r *Run) selectorNote() string {
	if r.NamespaceLabels != nil {
		return ""
	}
	var names []string
	for _, p := range r.Set.Policies {
		if sel := p.Spec.Match.NamespaceSelector; sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0) {
			names = append(names, strconv.Quote(p.Name))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("note: namespace labels are unknown offline, so the namespaceSelector of policy %s matches every namespace (the strict side); give --namespace-labels to use a namespace's labels",
		strings.Join(names, ", "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
