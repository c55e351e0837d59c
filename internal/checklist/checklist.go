// Package checklist verifies the seeds' pre-production checklist on a live cluster, read-only: one Item per
// line of the list, each pass, fail or unknown with the evidence that decided it. A probe that meets Forbidden or
// an unreachable API server makes its item unknown with the reason; it never makes it pass.
package checklist

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Status of one item. Unknown is never a pass: it says what could not be seen and how to see it.
type Status string

const (
	Pass    Status = "pass"
	Fail    Status = "fail"
	Unknown Status = "unknown"
)

// severity orders statuses: an item takes the worst of its findings, fail over unknown over pass.
var severity = map[Status]int{Pass: 0, Unknown: 1, Fail: 2}

// Item is one line of the checklist. Its JSON shape is public (README "agentgate checklist").
type Item struct {
	ID       string   `json:"id"`
	Status   Status   `json:"status"`
	Evidence []string `json:"evidence"`
	// Remedy says what to do; empty when the item passes.
	Remedy string `json:"remedy,omitempty"`
}

// Summary counts items by status.
type Summary struct {
	Pass    int `json:"pass"`
	Fail    int `json:"fail"`
	Unknown int `json:"unknown"`
}

// Report is the whole checklist, items in the fixed order of IDs.
type Report struct {
	Items   []Item  `json:"items"`
	Summary Summary `json:"summary"`
}

// IDs are the items agentgate judges, in report order, then the ones only a look from outside the cluster can
// judge (always unknown, with the command that would judge them).
var IDs = []string{"tls", "token", "sandbox", "resources", "commands", "network", "audit-logs", "alerts", "rotation"}

// outside are the checklist lines no API call can judge: the command that would, never a pass.
var outside = []struct{ id, why, command string }{
	{"kube-bench", "node and control-plane configuration is read on the hosts, not through the API",
		"run kube-bench on every node: kube-bench run --targets master,node"},
	{"anonymous-auth", "the API server's --anonymous-auth flag is not visible through the API to an authenticated client",
		"curl -sk -o /dev/null -w '%{http_code}\\n' https://APISERVER/api  (want 401; 200 or 403 means anonymous requests are authenticated)"},
	{"dashboard", "whether a dashboard is reachable from outside depends on load balancers and ingress beyond the API",
		"kubectl get svc,ingress -A | grep -i dashboard  (want none exposed as LoadBalancer, NodePort or Ingress)"},
	{"bastion", "access paths to the API server (bastion host, VPN, allowed source ranges) are outside the cluster",
		"check that the API server endpoint is reachable only from the bastion: curl -k https://APISERVER/healthz from a non-bastion host must time out"},
}

// finding is one probe's verdict within an item.
type finding struct {
	status Status
	text   string
}

// builder accumulates an item's findings; the item's status is the worst of them.
type builder struct {
	id       string
	findings []finding
	remedy   string
}

func (b *builder) add(s Status, format string, a ...any) {
	b.findings = append(b.findings, finding{s, fmt.Sprintf(format, a...)})
}
func (b *builder) pass(format string, a ...any)    { b.add(Pass, format, a...) }
func (b *builder) fail(format string, a ...any)    { b.add(Fail, format, a...) }
func (b *builder) unknown(format string, a ...any) { b.add(Unknown, format, a...) }

// item: an item with no finding is unknown (nothing was seen), never pass.
func (b *builder) item() Item {
	it := Item{ID: b.id, Status: Unknown, Evidence: []string{}}
	if len(b.findings) > 0 {
		it.Status = Pass
	}
	for _, f := range b.findings {
		if severity[f.status] > severity[it.Status] {
			it.Status = f.status
		}
		it.Evidence = append(it.Evidence, string(f.status)+": "+f.text)
	}
	if len(b.findings) == 0 {
		it.Evidence = append(it.Evidence, "unknown: nothing could be examined")
	}
	if it.Status != Pass {
		it.Remedy = b.remedy
	}
	return it
}

func newReport(items []Item) Report {
	r := Report{Items: items}
	for _, o := range outside {
		r.Items = append(r.Items, Item{ID: o.id, Status: Unknown, Evidence: []string{"unknown: " + o.why}, Remedy: o.command})
	}
	for _, it := range r.Items {
		switch it.Status {
		case Pass:
			r.Summary.Pass++
		case Fail:
			r.Summary.Fail++
		default:
			r.Summary.Unknown++
		}
	}
	return r
}

// Item returns the item with that ID, for callers and tests.
func (r Report) Item(id string) (Item, bool) {
	i := slices.IndexFunc(r.Items, func(it Item) bool { return it.ID == id })
	if i < 0 {
		return Item{}, false
	}
	return r.Items[i], true
}

// Exit statuses: unknown does not fail the run (an item that cannot be judged here is not a broken setup; its
// evidence and remedy say how to judge it), a fail does.
const (
	ExitPass   = 0
	ExitFail   = 1
	ExitCannot = 2
)

// ExitCode is ExitFail if any item fails, else ExitPass.
func (r Report) ExitCode() int {
	if r.Summary.Fail > 0 {
		return ExitFail
	}
	return ExitPass
}

// WriteText writes one block per item: status and id, the evidence indented, then the remedy.
func (r Report) WriteText(w io.Writer) {
	for _, it := range r.Items {
		fmt.Fprintf(w, "%-7s %s\n", strings.ToUpper(string(it.Status)), it.ID)
		for _, e := range it.Evidence {
			fmt.Fprintf(w, "        %s\n", e)
		}
		if it.Remedy != "" {
			fmt.Fprintf(w, "        to do: %s\n", it.Remedy)
		}
	}
	fmt.Fprintf(w, "%d pass, %d fail, %d unknown\n", r.Summary.Pass, r.Summary.Fail, r.Summary.Unknown)
}
