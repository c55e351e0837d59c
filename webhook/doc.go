// Package webhook serves agentgate's admission webhooks: adapters from AdmissionReview to package policy,
// with no policy logic of their own.
//
// # Endpoints
//
// Over HTTPS (TLS 1.3 minimum by default, HTTP/1.1 — HTTP/2 only with Options.HTTP2 —, optional
// client-certificate verification). The endpoints are listed once, in endpoints.go:
//
//   - POST /mutate: Pods at CREATE are hardened (policy.Set.Mutate); the answer is an RFC 6902 JSON patch
//     computed by diff against request.object exactly as sent (policy.CreatePatch), or a plain allow when
//     nothing changes. Every other kind and operation is allowed unpatched: controllers are never mutated.
//   - POST /validate: Pods at CREATE and UPDATE, including the ephemeralcontainers and resize subresources
//     (their object is the whole Pod), and the pod templates of Deployment, ReplicaSet, StatefulSet,
//     DaemonSet, Job, CronJob and ReplicationController, judged by policy.Set.Judge. DELETE and CONNECT, and
//     subresources that do not change containers (status, scale, …), are allowed. An UPDATE that leaves the
//     pod spec unchanged (labels, finalizers) is allowed: judging it again after a policy change could block
//     deleting old pods. NetworkPolicies (networking.k8s.io/v1, CREATE and UPDATE) are judged by
//     policy.Set.JudgeNetworkPolicy against the policies with network.manage (network.go); and a Pod CREATE
//     that such a policy selects is denied while its namespace lacks agentgate-egress, or while another
//     NetworkPolicy selecting it would let it reach more (Options.NetworkPolicies). A Secret CREATE of type
//     kubernetes.io/service-account-token is judged by policy.Set.JudgeTokenSecret (secrets.go; only its type
//     and metadata are decoded, never its data). A Pod UPDATE, through pods or pods/status (which writes the
//     labels it is sent), that takes the running pod out of a policy's podSelector is refused to all but the
//     admin groups (guard.go, relabelledOut). A kind agentgate does not judge is refused (fail closed): only a
//     misconfigured webhook sends one, and the refusal names it.
//   - POST /validate-policy: a ConfigMap labelled agentgate.io/policy=true must hold a valid AgentPolicy
//     under data[policy.yaml]; every field error comes back at once, its path prefixed data[policy.yaml].
//   - POST /validate-guard: the changes that switch the sandbox off — a Namespace UPDATE (any subresource)
//     that removes agentgate.io/agents or sets it to anything but "true"; a policy ConfigMap UPDATE or DELETE
//     that weakens the policy (policy.ConfigMapWeakenings: its mode, match, exemptions, allowlists, bounds,
//     label, key, …); an UPDATE or DELETE of NetworkPolicy agentgate-egress labelled managed-by agentgate by
//     anyone but Options.ControllerUsers (and, deleting only, kube-controller-manager emptying a namespace) — are refused (403, a cause per change naming the field, old and new value) unless
//     request.userInfo.groups holds one of Options.AdminGroups (default system:masters). Every other request is allowed; an object that does
//     not decode is refused. Guarded changes, refused or made by an admin, are logged as admission.guarded
//     and counted in agentgate_guarded_changes_total. See guard.go and docs/operating.md.
//   - POST /validate-exec: CONNECT on pods/exec, pods/attach and pods/portforward (kubectl exec and cp,
//     attach, port-forward) into pods of agent namespaces. The session's options (PodExecOptions,
//     PodAttachOptions, PodPortForwardOptions) are decoded strictly; the pod is found through Options.Pods;
//     policy.Set.JudgeExec applies spec.exec and, to an exec's command, spec.commands. A refusal is a 403
//     naming the command and every rule (spec.commands.blocked[i], spec.exec.mode, …). Each session is logged
//     once (exec.command, exec.blocked, exec.attach, exec.portforward; kubectl's WebSocket-then-SPDY retry is
//     one session) and counted in agentgate_exec_total{subresource,decision,admin}. Any other operation,
//     resource or options is refused. See exec.go.
//   - GET /healthz (liveness) and GET /readyz (200 only when every policy source has synced, TLS is serving
//     with a certificate and every ReadyCheck passes; JSON detail: policy generation, the policies in force
//     and their sources, each source's state, the last reload error).
//
// On the plain-HTTP metrics listener: /metrics (a registry of its own, with the Go and process collectors),
// and /healthz and /readyz again, for kubelet probes when --client-ca makes the HTTPS listener refuse them.
//
// # Answers
//
// A denial is a metav1.Status shaped as apierrors.NewInvalid makes it (code 422, reason Invalid, a cause
// with its field path per violation) with one readable message listing the violations:
//
//	agentgate: Pod "x" denied by policy "agents": spec.hostPID: [hostNamespaces] …; spec.containers[0].image: [images] …
//
// Violations of warn-mode policies become AdmissionResponse warnings ("agentgate[policy]: field: message");
// audit-mode ones are logged and counted only. Reviews are answered in the version asked
// (admission.k8s.io/v1 or v1beta1), with the request's UID.
//
// # Bad input
//
// A request that cannot be answered as a review (wrong method: 405; content type other than
// application/json: 415; body over the limit: 413; empty, not UTF-8, not JSON, truncated, ambiguous —
// duplicate or unknown fields anywhere —, no request, no uid, unknown review version: 400) gets a
// metav1.Status body. A review that can be answered but whose object cannot be judged (null, mistyped,
// request.kind and the object's apiVersion/kind or namespace disagreeing, an unknown operation) gets an
// AdmissionReview with allowed: false and a 4xx status. Nothing malformed is ever admitted. A panic is
// recovered and answered 500, but every input error is meant to be a 4xx or a refusal.
//
// # Why plain net/http rather than controller-runtime's webhook.Server
//
// controller-runtime's admission types are used (the v1 AdmissionReview/Request/Response of k8s.io/api,
// the Status of apierrors.NewInvalid), not its server, because agentgate needs what that server does not
// let a handler control:
//
//   - Strict decoding. admission.Webhook decodes the review through the runtime codecs, which ignore unknown
//     fields and take the last of duplicated keys: `"hostPID":true,"hostPID":false` is read as false without
//     a word. Here the review and the object are decoded with policy's one decoder (json/v2 semantics):
//     duplicated names are refused anywhere, unknown review fields are refused, and fields of the object
//     that agentgate's k8s.io/api does not know are found with their paths and judged by the policy (README
//     "Cluster upgrades").
//   - One decode of the object. With controller-runtime the review is decoded (the object kept raw), then
//     admission.Decoder decodes the object again, each time after a separate pass that sniffs its
//     apiVersion/kind. Here request.object is decoded once, by request.kind (policy.DecodeWorkload).
//   - Status codes and limits. admission.Webhook answers every error with HTTP 200 and a 4xx inside the
//     review, accepts any method, answers a wrong content type with 400, and caps the body at a fixed 7 MiB.
//     Here: 405, 415, 413 with a configurable limit (checked against Content-Length before reading), 400.
//   - Server settings: TLS minimum version, client CAs, HTTP/2, timeouts and header limits are plain
//     http.Server and tls.Config fields, and the certificate comes from any GetCertificate (certwatcher, a
//     Secret-backed rotator).
//
// Measured in-process (BenchmarkFrontend*, same decision behind both, no TLS, 2-core VM): a compliant
// ~0.9 KB pod review takes about 61 µs here and 69 µs through admission.Webhook + admission.Decoder; a
// ~21 KB one 0.7–0.9 ms against 1.06–1.19 ms. The saving is the decode passes; the rest is policy.Set.Judge.
// This server also does the strict checks, the metrics and the audit log line the benchmark's
// controller-runtime handler does without.
//
// # Use
//
// In a program or a test:
//
//	srv, err := webhook.New(webhook.Options{
//		Addr:           "127.0.0.1:0",
//		GetCertificate: webhook.StaticCertificate(pair), // or certwatcher's, or a rotator's
//		Sources:        []webhook.Source{&webhook.FileSource{Paths: []string{"policy.yaml"}}},
//	})
//	if err := srv.Listen(); err != nil { … }   // srv.Addr() is now known
//	go srv.Serve(ctx)                            // until ctx is cancelled, then drains
//
// Handler() serves the same endpoints without TLS (httptest); Policies() is the store, which a test can
// drive directly (Put, Reject, Remove).
package webhook
