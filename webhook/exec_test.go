package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podTable is a PodLookup over fixed pods; "broken" stands for an API server that cannot be reached.
type podTable map[string]*corev1.Pod

func (p podTable) Pod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	if name == "broken" {
		return nil, errors.New("connection refused")
	}
	if pod, ok := p[namespace+"/"+name]; ok {
		return pod, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

func execPods() podTable {
	p := compliantPod("agent")
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar", Image: allowedImage})
	return podTable{agentsNS + "/agent": p}
}

// sessionReview is the review the API server sends for a CONNECT on pods/<sub>.
type sessionReview struct {
	uid, sub, name, user string
	groups               []string
	kind                 string // request.kind.kind; default the subresource's
	resource             string // default pods
	op                   admissionv1.Operation
	obj                  any // marshalled; []byte as is; nil: no object
}

func (r sessionReview) body(t testing.TB) []byte {
	t.Helper()
	if r.uid == "" {
		r.uid = "uid-" + r.sub
	}
	if r.kind == "" {
		r.kind = execKinds[r.sub]
	}
	if r.resource == "" {
		r.resource = "pods"
	}
	if r.op == "" {
		r.op = admissionv1.Connect
	}
	if r.name == "" {
		r.name = "agent"
	}
	if r.user == "" {
		r.user = "alice"
	}
	if r.groups == nil {
		r.groups = []string{"system:authenticated", "dev"}
	}
	req := map[string]any{
		"uid": r.uid, "kind": metav1.GroupVersionKind{Version: "v1", Kind: r.kind},
		"resource":    map[string]string{"group": "", "version": "v1", "resource": r.resource},
		"subResource": r.sub, "namespace": agentsNS, "name": r.name, "operation": r.op,
		"userInfo": map[string]any{"username": r.user, "groups": r.groups},
	}
	if o := raw(t, r.obj); o != nil {
		req["object"] = o
	}
	b, err := json.Marshal(map[string]any{"apiVersion": reviewV1, "kind": "AdmissionReview", "request": req})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func execOpts(container string, tty, stdin bool, command ...string) *corev1.PodExecOptions {
	return &corev1.PodExecOptions{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodExecOptions"},
		Container: container, Command: command, TTY: tty, Stdin: stdin, Stdout: true, Stderr: !tty}
}

func attachOpts(container string, tty, stdin bool) *corev1.PodAttachOptions {
	return &corev1.PodAttachOptions{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodAttachOptions"},
		Container: container, TTY: tty, Stdin: stdin, Stdout: true}
}

func portForwardOpts(ports ...int32) *corev1.PodPortForwardOptions {
	return &corev1.PodPortForwardOptions{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodPortForwardOptions"}, Ports: ports}
}

// session posts a session review and requires an answered review.
func (ts *testServer) session(r sessionReview) *admissionv1.AdmissionResponse {
	ts.t.Helper()
	code, rev, body := ts.post("/"+EndpointValidateExec, r.body(ts.t))
	if code != http.StatusOK || rev == nil || rev.Response == nil {
		ts.t.Fatalf("HTTP %d: %s", code, body)
	}
	return rev.Response
}

func denyExecPolicy(t *testing.T) Options {
	opts := staticPolicy(t, "    mode: audit\n    allowGroups: []\n    interactive: allow", "    mode: deny\n    allowGroups: [sre]\n    interactive: deny")
	opts.Pods = execPods()
	return opts
}

// TestValidateExec: sessions through the real server over HTTPS, with the exact answer and event.
func TestValidateExec(t *testing.T) {
	audit := staticPolicy(t)
	audit.Pods = execPods()
	sre := []string{"system:authenticated", "sre"}
	cases := []struct {
		name     string
		opts     Options
		review   sessionReview
		code     int32 // 0: allowed
		message  []string
		event    string
		decision string
	}{
		{"audit: harmless exec", audit, sessionReview{sub: "exec", obj: execOpts("runner", false, false, "ls", "/")}, 0, nil, "exec.command", "allowed"},
		{"audit: blocked exec", audit, sessionReview{sub: "exec", obj: execOpts("runner", false, false, "rm", "-rf", "/")}, 403,
			[]string{`agentgate: exec into pod "agent" (container "runner") with command ["rm" "-rf" "/"] refused by policy "agents": spec.commands.blocked[0]: blocked command "rm -rf /" in the exec's command: "rm -rf /"`}, "exec.blocked", "blocked"},
		{"audit: blocked inside sh -c, sidecar", audit, sessionReview{sub: "exec", obj: execOpts("sidecar", true, true, "sh", "-c", "echo; reboot")}, 403,
			[]string{`(container "sidecar")`, `spec.commands.blocked[5]: blocked command "reboot" in the exec's command: "reboot"`}, "exec.blocked", "blocked"},
		{"audit: interactive shell", audit, sessionReview{sub: "exec", obj: execOpts("runner", true, true, "sh")}, 0, nil, "exec.command", "allowed"},
		{"audit: attach", audit, sessionReview{sub: "attach", obj: attachOpts("runner", true, true)}, 0, nil, "exec.attach", "allowed"},
		{"audit: port-forward", audit, sessionReview{sub: "portforward", obj: portForwardOpts(8080)}, 0, nil, "exec.portforward", "allowed"},
		{"deny: non-member exec", denyExecPolicy(t), sessionReview{sub: "exec", obj: execOpts("runner", false, false, "ls")}, 403,
			[]string{`spec.exec.mode: exec.mode is deny: only members of allowGroups ["sre"] may exec into agent pods, and user "alice" is in none of them`}, "exec.blocked", "denied"},
		{"deny: non-member port-forward", denyExecPolicy(t), sessionReview{sub: "portforward", obj: portForwardOpts(5432)}, 403,
			[]string{`port-forward to pod "agent" refused`, "spec.exec.mode"}, "exec.portforward", "denied"},
		{"deny: non-member attach", denyExecPolicy(t), sessionReview{sub: "attach", obj: attachOpts("", false, true)}, 403,
			[]string{"spec.exec.mode", "spec.exec.interactive"}, "exec.attach", "denied"},
		{"deny: member interactive shell", denyExecPolicy(t), sessionReview{sub: "exec", groups: sre, obj: execOpts("runner", true, true, "bash")}, 0, nil, "exec.command", "allowed"},
		{"deny: member's blocked command", denyExecPolicy(t), sessionReview{sub: "exec", groups: sre, obj: execOpts("runner", false, false, "/sbin/iptables", "-F")}, 403,
			[]string{"spec.commands.blocked[16]"}, "exec.blocked", "blocked"},
		{"unknown pod", audit, sessionReview{sub: "exec", name: "ghost", obj: execOpts("", false, false, "ls")}, 404,
			[]string{`agentgate: pod "ghost" not found in namespace "agents"`}, "exec.blocked", "denied"},
		{"lookup fails", audit, sessionReview{sub: "attach", name: "broken", obj: attachOpts("", false, false)}, 503,
			[]string{`cannot look up pod "broken"`, "refused rather than admitted unjudged"}, "exec.attach", "denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := startServer(t, c.opts)
			resp := ts.session(c.review)
			if c.code == 0 {
				if !resp.Allowed {
					t.Fatalf("refused: %+v", resp.Result)
				}
			} else {
				if resp.Allowed || resp.Result == nil || resp.Result.Code != c.code {
					t.Fatalf("answer %+v, want a %d refusal", resp.Result, c.code)
				}
				for _, m := range c.message {
					if !strings.Contains(resp.Result.Message, m) {
						t.Errorf("message %q\nlacks %q", resp.Result.Message, m)
					}
				}
			}
			evs := ts.logs.Events(c.event)
			if len(evs) != 1 {
				t.Fatalf("%d %s events, want 1:\n%s", len(evs), c.event, ts.logs.String())
			}
			ev := evs[0]
			pod := c.review.name
			if pod == "" {
				pod = "agent"
			}
			if ev["decision"] != c.decision || ev["user"] != "alice" || ev["namespace"] != agentsNS || ev["pod"] != pod || ev["subresource"] != c.review.sub {
				t.Errorf("event %v", ev)
			}
			if groups, _ := ev["groups"].([]any); len(groups) != 2 {
				t.Errorf("event groups %v", ev["groups"])
			}
			if c.review.sub == "exec" {
				if _, ok := ev["command"].([]any); !ok || ev["tty"] == nil || ev["stdin"] == nil {
					t.Errorf("exec event lacks command, tty or stdin: %v", ev)
				}
			}
			admin := "false"
			if got := ts.metric("agentgate_exec_total", `subresource="`+c.review.sub+`"`, `decision="`+c.decision+`"`, `admin="`+admin+`"`); got != 1 {
				t.Errorf("agentgate_exec_total = %v, want 1", got)
			}
			if got := ts.metric("agentgate_exec_total"); got != 1 {
				t.Errorf("agentgate_exec_total over every series = %v, want 1", got)
			}
		})
	}
}

// TestValidateExecBadInput: a CONNECT review that does not say clearly what session opens is refused (a 4xx
// status, or a 4xx refusal inside the review), never admitted; and nothing of it is recorded as a session.
func TestValidateExecBadInput(t *testing.T) {
	opts := staticPolicy(t)
	opts.Pods = execPods()
	ts := startServer(t, opts)
	ls := execOpts("runner", false, false, "ls")
	cases := []struct {
		name string
		r    sessionReview
		body []byte // instead of r
	}{
		{"no object", sessionReview{sub: "exec"}, nil},
		{"null object", sessionReview{sub: "exec", obj: []byte("null")}, nil},
		{"object is not an object", sessionReview{sub: "exec", obj: []byte(`"ls"`)}, nil},
		{"attach options on exec", sessionReview{sub: "exec", obj: attachOpts("runner", false, false)}, nil},
		{"exec options on attach", sessionReview{sub: "attach", obj: ls}, nil},
		{"exec options on portforward", sessionReview{sub: "portforward", obj: ls}, nil},
		{"request.kind for another subresource", sessionReview{sub: "exec", kind: "PodAttachOptions", obj: ls}, nil},
		{"request.kind Pod", sessionReview{sub: "exec", kind: "Pod", obj: ls}, nil},
		{"object without kind", sessionReview{sub: "exec", obj: []byte(`{"command":["ls"],"container":"runner"}`)}, nil},
		{"object of another apiVersion", sessionReview{sub: "exec", obj: []byte(`{"apiVersion":"v2","kind":"PodExecOptions","command":["ls"]}`)}, nil},
		{"unknown field", sessionReview{sub: "exec", obj: []byte(`{"apiVersion":"v1","kind":"PodExecOptions","command":["ls"],"cmd":["rm","-rf","/"]}`)}, nil},
		{"duplicate command", sessionReview{sub: "exec", obj: []byte(`{"apiVersion":"v1","kind":"PodExecOptions","command":["rm","-rf","/"],"command":["ls"]}`)}, nil},
		{"field in another case", sessionReview{sub: "exec", obj: []byte(`{"apiVersion":"v1","kind":"PodExecOptions","Command":["rm","-rf","/"]}`)}, nil},
		{"command not a list", sessionReview{sub: "exec", obj: []byte(`{"apiVersion":"v1","kind":"PodExecOptions","command":"rm -rf /"}`)}, nil},
		{"ports not numbers", sessionReview{sub: "portforward", obj: []byte(`{"apiVersion":"v1","kind":"PodPortForwardOptions","ports":["http"]}`)}, nil},
		{"no command", sessionReview{sub: "exec", obj: execOpts("runner", true, true)}, nil},
		{"operation CREATE", sessionReview{sub: "exec", op: admissionv1.Create, obj: ls}, nil},
		{"operation unknown", sessionReview{sub: "exec", op: "EXEC", obj: ls}, nil},
		{"subresource log", sessionReview{sub: "log", kind: "PodLogOptions", obj: []byte(`{"apiVersion":"v1","kind":"PodLogOptions"}`)}, nil},
		{"subresource proxy", sessionReview{sub: "proxy", kind: "PodProxyOptions", obj: []byte(`{"apiVersion":"v1","kind":"PodProxyOptions"}`)}, nil},
		{"no subresource", sessionReview{sub: "", kind: "PodExecOptions", obj: ls}, nil},
		{"resource nodes", sessionReview{sub: "exec", resource: "nodes", obj: ls}, nil},
		{"no pod name", sessionReview{sub: "exec", name: "-", obj: ls}, nil},
		{"not JSON", sessionReview{}, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if body == nil {
				r := c.r
				body = r.body(t)
				if r.name == "-" {
					body = []byte(strings.Replace(string(body), `"name":"-"`, `"name":""`, 1))
				}
			}
			code, rev, raw := ts.post("/"+EndpointValidateExec, body)
			switch {
			case code >= 400 && code < 500:
			case code == http.StatusOK && rev != nil && rev.Response != nil && !rev.Response.Allowed &&
				rev.Response.Result != nil && rev.Response.Result.Code >= 400 && rev.Response.Result.Code < 500:
				t.Logf("refused: %s", rev.Response.Result.Message)
			default:
				t.Fatalf("HTTP %d, answer %s: not refused", code, raw)
			}
		})
	}
	for _, name := range []string{"exec.command", "exec.blocked", "exec.attach", "exec.portforward"} {
		if evs := ts.logs.Events(name); len(evs) != 0 {
			t.Errorf("bad input recorded as a session: %v", evs)
		}
	}
}

// TestExecSessionDedupe: kubectl's WebSocket-then-SPDY retry (the same session, another review UID) is one
// event and one count; the same session after the window, or a session that differs in anything, is another.
func TestExecSessionDedupe(t *testing.T) {
	opts := staticPolicy(t)
	opts.Pods = execPods()
	ts := startServer(t, opts)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts.srv.now = func() time.Time { return clock }
	blocked := sessionReview{sub: "exec", obj: execOpts("runner", false, false, "reboot")}
	for i := range 2 {
		blocked.uid = fmt.Sprintf("retry-%d", i)
		if resp := ts.session(blocked); resp.Allowed {
			t.Fatal("a blocked command admitted")
		}
	}
	if n := len(ts.logs.Events("exec.blocked")); n != 1 {
		t.Fatalf("%d exec.blocked events for one session, want 1", n)
	}
	if got := ts.metric("agentgate_exec_total", `decision="blocked"`); got != 1 {
		t.Errorf("agentgate_exec_total{decision=blocked} = %v, want 1", got)
	}
	// The retried review is still answered and counted as a review.
	if got := ts.metric("agentgate_admission_requests_total", `endpoint="validate-exec"`); got != 2 {
		t.Errorf("reviews counted %v, want 2", got)
	}
	variants := []sessionReview{
		{sub: "exec", obj: execOpts("runner", false, false, "reboot", "now")},
		{sub: "exec", obj: execOpts("sidecar", false, false, "reboot")},
		{sub: "exec", obj: execOpts("runner", true, false, "reboot")},
		{sub: "exec", user: "bob", obj: execOpts("runner", false, false, "reboot")},
		{sub: "exec", groups: []string{"dev"}, obj: execOpts("runner", false, false, "reboot")},
		// Argument boundaries count: ["reboot", "x y"] is not ["reboot", "x", "y"].
		{sub: "exec", obj: execOpts("runner", false, false, "reboot", "x", "y")},
		{sub: "exec", obj: execOpts("runner", false, false, "reboot", "x y")},
	}
	for i, v := range variants {
		v.uid = fmt.Sprintf("variant-%d", i)
		ts.session(v)
	}
	if n := len(ts.logs.Events("exec.blocked")); n != 1+len(variants) {
		t.Errorf("%d exec.blocked events, want %d (one per distinct session)", n, 1+len(variants))
	}
	clock = clock.Add(execDedupeWindow)
	blocked.uid = "later"
	ts.session(blocked)
	if n := len(ts.logs.Events("exec.blocked")); n != 2+len(variants) {
		t.Errorf("the same session after the window: %d events, want %d", n, 2+len(variants))
	}
	// A clock that goes backwards never hides a session.
	clock = clock.Add(-time.Hour)
	blocked.uid = "backwards"
	ts.session(blocked)
	if n := len(ts.logs.Events("exec.blocked")); n != 3+len(variants) {
		t.Errorf("after the clock went back: %d events, want %d", n, 3+len(variants))
	}
}

// TestSessionDedupeIsBounded: a flood of distinct sessions does not grow memory past execDedupeMax.
func TestSessionDedupeIsBounded(t *testing.T) {
	var d sessionDedupe
	now := time.Unix(0, 0)
	for i := range 3 * execDedupeMax {
		if !d.first(sha256.Sum256([]byte(fmt.Sprint(i))), now) {
			t.Fatalf("session %d seen before", i)
		}
		if len(d.seen) > execDedupeMax {
			t.Fatalf("%d sessions remembered, bound %d", len(d.seen), execDedupeMax)
		}
	}
	k := sha256.Sum256([]byte("again"))
	if !d.first(k, now) || d.first(k, now.Add(execDedupeWindow-1)) || !d.first(k, now.Add(execDedupeWindow)) {
		t.Error("window not applied")
	}
}

// TestExecAdminLabel: agentgate_exec_total says whether the user is in --admin-groups, for the alert on
// sessions opened by anyone else.
func TestExecAdminLabel(t *testing.T) {
	opts := staticPolicy(t)
	opts.Pods = execPods()
	opts.AdminGroups = []string{"platform"}
	ts := startServer(t, opts)
	ts.session(sessionReview{uid: "a", sub: "exec", groups: []string{"platform"}, obj: execOpts("runner", true, true, "sh")})
	ts.session(sessionReview{uid: "b", sub: "exec", groups: []string{"system:masters"}, obj: execOpts("runner", true, true, "sh")})
	if got := ts.metric("agentgate_exec_total", `admin="true"`, `decision="allowed"`); got != 1 {
		t.Errorf("admin sessions %v, want 1", got)
	}
	if got := ts.metric("agentgate_exec_total", `admin="false"`, `decision="allowed"`); got != 1 {
		t.Errorf("non-admin sessions %v, want 1 (system:masters is not an admin once --admin-groups replaces it)", got)
	}
	evs := ts.logs.Events("exec.command")
	if len(evs) != 2 || evs[0]["admin"] != true || evs[1]["admin"] != false {
		t.Errorf("events %v", evs)
	}
}

// TestValidateExecWithoutPods: with no pod lookup (serve without a cluster) the pod is unknown and every
// policy whose namespace rules match judges the session: the strict side.
func TestValidateExecWithoutPods(t *testing.T) {
	ts := startServer(t, staticPolicy(t))
	if resp := ts.session(sessionReview{sub: "exec", obj: execOpts("", false, false, "halt")}); resp.Allowed {
		t.Error("a blocked command admitted into an unknown pod")
	}
	if resp := ts.session(sessionReview{uid: "2", sub: "exec", obj: execOpts("", false, false, "date")}); !resp.Allowed {
		t.Errorf("refused: %v", resp.Result)
	}
}
