package webhook

// /validate-exec judges the CONNECT requests that open a session into a running pod: pods/exec (kubectl exec,
// kubectl cp), pods/attach and pods/portforward. The review carries the session's options (PodExecOptions,
// PodAttachOptions, PodPortForwardOptions), not the pod: objectSelector cannot match a CONNECT, so the pod is
// looked up (Options.Pods) to know which policies select it and which container the session opens into.
// policy.Set.JudgeExec decides; this file decodes, looks up, answers, records.
//
// One session, one record: kubectl 1.30 and later try a WebSocket first and fall back to SPDY, and the API
// server then asks admission twice about the same session. An identical session (same user and groups, pod,
// container, command, options and verdict) within execDedupeWindow is recorded, and counted, once.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"agentgate.io/agentgate/policy"
)

// PodLookup finds the pod a session opens into. An error that apierrors.IsNotFound recognises means the pod
// does not exist; any other error means it could not be told, and the session is refused.
type PodLookup interface {
	Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// Session decisions, the decision label of agentgate_exec_total and of the exec.* events.
const (
	execAllowed = "allowed" // admitted
	execBlocked = "blocked" // refused by spec.commands (a blocked or unlisted command)
	execDenied  = "denied"  // refused by who or how (spec.exec.mode, spec.exec.interactive, an unknown pod)
)

// execDedupeWindow covers kubectl's WebSocket-then-SPDY retry, which follows the first answer at once.
const (
	execDedupeWindow = 10 * time.Second
	execDedupeMax    = 4096 // sessions remembered; past it the oldest are forgotten (a repeat is then recorded twice)
)

// execOptions are the options of the three subresources, by the kind the API server sends.
var execKinds = map[string]string{
	policy.SubresourceExec:        "PodExecOptions",
	policy.SubresourceAttach:      "PodAttachOptions",
	policy.SubresourcePortForward: "PodPortForwardOptions",
}

type execMetrics struct {
	sessions *prometheus.CounterVec // subresource, decision, admin
}

func newExecMetrics(reg prometheus.Registerer) (*execMetrics, error) {
	m := &execMetrics{sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentgate_exec_total",
		Help: "Sessions into agent pods (exec, attach, portforward) judged by /validate-exec, once per session, by decision (allowed, blocked: refused by spec.commands, denied: refused by spec.exec) and admin (\"true\" when the user is in --admin-groups).",
	}, []string{"subresource", "decision", "admin"})}
	if err := reg.Register(m.sessions); err != nil {
		return nil, err
	}
	for sub := range execKinds {
		for _, d := range []string{execAllowed, execBlocked, execDenied} {
			m.sessions.WithLabelValues(sub, d, "true")
			m.sessions.WithLabelValues(sub, d, "false")
		}
	}
	return m, nil
}

// sessionDedupe remembers recent sessions by a fixed-size digest, in bounded memory.
type sessionDedupe struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]time.Time
}

// first reports whether key was not seen within the window, and remembers it.
func (d *sessionDedupe) first(key [sha256.Size]byte, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[[sha256.Size]byte]time.Time{}
	}
	if t, ok := d.seen[key]; ok && now.Sub(t) < execDedupeWindow && !now.Before(t) {
		return false
	}
	if len(d.seen) >= execDedupeMax {
		for k, t := range d.seen {
			if now.Sub(t) >= execDedupeWindow || now.Before(t) {
				delete(d.seen, k)
			}
		}
		if len(d.seen) >= execDedupeMax {
			clear(d.seen) // a burst of distinct sessions: forget rather than grow; at worst a repeat is recorded twice
		}
	}
	d.seen[key] = now
	return true
}

// session is one CONNECT as decoded from its review.
type session struct {
	policy.ExecRequest
	namespace, pod string
	stdout, stderr bool
}

// digest identifies a session for deduplication: every field, length-prefixed, and the verdict.
func (s *session) digest(decision string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	put := func(v string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		h.Write(n[:])
		h.Write([]byte(v))
	}
	put(s.Subresource)
	put(s.namespace)
	put(s.pod)
	put(s.Container)
	put(s.User)
	put(strconv.Itoa(len(s.Groups)))
	for _, g := range s.Groups {
		put(g)
	}
	put(strconv.Itoa(len(s.Command)))
	for _, c := range s.Command {
		put(c)
	}
	put(fmt.Sprint(s.TTY, s.Stdin, s.stdout, s.stderr, s.Ports))
	put(decision)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// validateExec judges a CONNECT on pods/exec, pods/attach or pods/portforward; see the top of this file.
func (s *Server) validateExec(ctx context.Context, rv review) decision {
	req := rv.req
	sess, d, ok := decodeSession(req)
	if !ok {
		return d
	}
	var pod *corev1.Pod
	if s.opts.Pods != nil {
		p, err := s.opts.Pods.Pod(ctx, req.Namespace, req.Name)
		switch {
		case apierrors.IsNotFound(err):
			return s.refuseSession(rv, sess, http.StatusNotFound, fmt.Sprintf("agentgate: pod %q not found in namespace %q: a session into it cannot be judged", req.Name, req.Namespace))
		case err != nil:
			return s.refuseSession(rv, sess, http.StatusServiceUnavailable, fmt.Sprintf("agentgate: cannot look up pod %q to judge the session (%v): refused rather than admitted unjudged; retry", req.Name, err))
		}
		pod = p
	}
	snap := s.store.Snapshot()
	ns, nsNote := s.namespace(ctx, rv, req.Name, snap.Set)
	about := audit{note: nsNote, generation: snap.Generation}
	res := snap.Set.JudgeExec(pod, ns, sess.ExecRequest)
	for _, ex := range res.Exemptions {
		s.metrics.exemptions.WithLabelValues(ex.Policy, ex.Reason).Inc()
	}
	if res.Container != "" {
		sess.Container = res.Container
	}
	if res.Allowed() {
		return allow().with(s.recordSession(rv, sess, execAllowed, &res, "", about))
	}
	decisionLabel := execDenied
	if res.Blocked() {
		decisionLabel = execBlocked
	}
	msg := sessionDenialMessage(sess, &res)
	causes := make([]metav1.StatusCause, 0, len(res.Denials))
	for _, dn := range res.Denials {
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeForbidden, Field: dn.Rule, Message: "(" + dn.Policy + ") " + dn.Message})
	}
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg,
		Details: &metav1.StatusDetails{Kind: "pods", Name: req.Name, Causes: causes},
	}}, result: resultDenied}.with(s.recordSession(rv, sess, decisionLabel, &res, msg, about))
}

// refuseSession refuses a session that cannot be judged (its pod unknown), and records it like any other.
func (s *Server) refuseSession(rv review, sess *session, code int32, msg string) decision {
	return decision{resp: &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: reasonFor(int(code)), Message: msg,
	}}, result: resultDenied}.with(s.recordSession(rv, sess, execDenied, nil, msg, audit{}))
}

// decodeSession reads the session's options strictly: the kind must be the one of the subresource, every field
// known, the resource pods, the operation CONNECT. Anything else is refused.
func decodeSession(req *admissionv1.AdmissionRequest) (*session, decision, bool) {
	if req.Operation != admissionv1.Connect {
		return nil, refuse("operation", 400, "/%s judges CONNECT on pods/exec, pods/attach and pods/portforward, not %s: fix the webhook configuration", EndpointValidateExec, operationLabel(req.Operation)), false
	}
	want, known := execKinds[req.SubResource]
	if req.Resource.Group != "" || req.Resource.Resource != "pods" || !known {
		return nil, refuse("unsupported_kind", 400, "/%s judges pods/exec, pods/attach and pods/portforward, not %q subresource %q: fix the webhook configuration", EndpointValidateExec, req.Resource.Resource, req.SubResource), false
	}
	if req.Kind.Group != "" || req.Kind.Version != "v1" || req.Kind.Kind != want {
		return nil, refuse("kind_mismatch", 400, "pods/%s sends v1 %s, but request.kind is %s", req.SubResource, want, gvkString(req.Kind)), false
	}
	if req.Name == "" || req.Namespace == "" {
		return nil, refuse("no_name", 400, "a session needs the pod's name and namespace (request.name %q, request.namespace %q)", req.Name, req.Namespace), false
	}
	if len(req.Object.Raw) == 0 {
		return nil, refuse("null_object", 400, "request.object is null: pods/%s carries the session's %s there", req.SubResource, want), false
	}
	sess := &session{namespace: req.Namespace, pod: req.Name}
	sess.Subresource, sess.User, sess.Groups = req.SubResource, req.UserInfo.Username, req.UserInfo.Groups
	var tm metav1.TypeMeta
	var err error
	switch req.SubResource {
	case policy.SubresourceExec:
		var o corev1.PodExecOptions
		err = decodeOptionsStrict(req.Object.Raw, &o)
		tm, sess.Container, sess.Command, sess.TTY, sess.Stdin, sess.stdout, sess.stderr = o.TypeMeta, o.Container, o.Command, o.TTY, o.Stdin, o.Stdout, o.Stderr
	case policy.SubresourceAttach:
		var o corev1.PodAttachOptions
		err = decodeOptionsStrict(req.Object.Raw, &o)
		tm, sess.Container, sess.TTY, sess.Stdin, sess.stdout, sess.stderr = o.TypeMeta, o.Container, o.TTY, o.Stdin, o.Stdout, o.Stderr
	case policy.SubresourcePortForward:
		var o corev1.PodPortForwardOptions
		err = decodeOptionsStrict(req.Object.Raw, &o)
		tm, sess.Ports = o.TypeMeta, o.Ports
	}
	if err != nil {
		return nil, refuse("object_decode", 400, "cannot decode request.object as v1 %s: %v", want, err), false
	}
	if tm.Kind != want || tm.APIVersion != "v1" {
		return nil, refuse("kind_mismatch", 400, "pods/%s carries v1 %s, but request.object is %q %q", req.SubResource, want, tm.APIVersion, tm.Kind), false
	}
	if req.SubResource == policy.SubresourceExec && len(sess.Command) == 0 {
		return nil, refuse("no_command", 400, "an exec without a command cannot be judged (the API server refuses it too)"), false
	}
	return sess, decision{}, true
}

// decodeOptionsStrict decodes the session's options with the one decoder, strictly: an option agentgate does
// not know is refused (its owner's call, not README "Cluster upgrades", which covers objects).
func decodeOptionsStrict(raw []byte, v any) error {
	return policy.UnmarshalStrict(raw, v)
}

// sessionDenialMessage names the session, the policies and every rule that refuses it.
func sessionDenialMessage(sess *session, res *policy.ExecResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "agentgate: %s pod %q", sessionTitle(sess.Subresource), sess.pod)
	if sess.Container != "" {
		fmt.Fprintf(&b, " (container %q)", sess.Container)
	}
	if sess.Subresource == policy.SubresourceExec {
		fmt.Fprintf(&b, " with command %q", sess.Command)
	}
	b.WriteString(" refused by ")
	ds := res.Denials
	listByPolicy(&b, len(ds), func(i int) string { return ds[i].Policy }, func(i int) string { return ds[i].Rule + ": " + ds[i].Message }, "; and %d more")
	return b.String()
}

func sessionTitle(sub string) string {
	switch sub {
	case policy.SubresourceAttach:
		return "attach to"
	case policy.SubresourcePortForward:
		return "port-forward to"
	}
	return "exec into"
}

// sessionEvent names the audit event of a session: exec.command (an admitted exec), exec.blocked (a refused
// exec), exec.attach and exec.portforward (their decision says admitted or refused).
func sessionEvent(sub, decision string) string {
	switch sub {
	case policy.SubresourceAttach:
		return "exec.attach"
	case policy.SubresourcePortForward:
		return "exec.portforward"
	}
	if decision == execAllowed {
		return "exec.command"
	}
	return "exec.blocked"
}

// recordSession writes the session's event and counts it, once per session (see sessionDedupe). It returns
// about for the review's own admission.* event, which is detail (debug) once the session has its event.
func (s *Server) recordSession(rv review, sess *session, decision string, res *policy.ExecResult, msg string, about audit) audit {
	about.sessionRecorded = true
	if !s.sessions.first(sess.digest(decision), s.now()) {
		about.note = strings.TrimPrefix(about.note+"; session already recorded", "; ")
		return about
	}
	admin := s.isAdmin(sess.Groups)
	s.execMetrics.sessions.WithLabelValues(sess.Subresource, decision, strconv.FormatBool(admin)).Inc()
	name := sessionEvent(sess.Subresource, decision)
	level := slog.LevelInfo
	if decision != execAllowed {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("event", name), slog.String("uid", string(rv.req.UID)), slog.String("user", sess.User),
		slog.Any("groups", nonNil(sess.Groups)), slog.Bool("admin", admin), slog.String("namespace", sess.namespace),
		slog.String("pod", sess.pod), slog.String("container", sess.Container), slog.String("subresource", sess.Subresource),
		slog.String("decision", decision),
	}
	switch sess.Subresource {
	case policy.SubresourcePortForward:
		attrs = append(attrs, slog.Any("ports", nonNil(sess.Ports)))
	case policy.SubresourceExec:
		attrs = append(attrs, slog.Any("command", sess.Command), slog.Bool("tty", sess.TTY), slog.Bool("stdin", sess.Stdin))
	default:
		attrs = append(attrs, slog.Bool("tty", sess.TTY), slog.Bool("stdin", sess.Stdin))
	}
	if res != nil {
		attrs = append(attrs, slog.Any("policy", nonNil(res.Matched)))
		if len(res.Denials) > 0 {
			attrs = append(attrs, slog.Any("denials", res.Denials))
		}
	}
	if msg != "" {
		attrs = append(attrs, slog.String("message", msg))
	}
	if about.generation != 0 {
		attrs = append(attrs, slog.Uint64("generation", about.generation))
	}
	s.log.LogAttrs(context.Background(), level, "session into an agent pod", attrs...)
	return about
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
