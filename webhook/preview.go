package webhook

import (
	"context"
	"fmt"
	"time"

	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/policy"
)

// RunningPods is what the policy preview reads of the cluster's pods (cluster.PodCache), when Options.Pods
// provides it.
type RunningPods interface {
	// Running lists the cached pods not finished, of every namespace when namespace is "".
	Running(namespace string) []*cluster.StoredPod
	// Ready is nil once the cache holds the cluster's pods.
	Ready() error
}

// Bounds of the preview at admission. Pod Security checks at most 3,000 pods within 1 s when a namespace's
// label changes; agentgate judges a pod in about 40-90 µs (BenchmarkPreview), so 10,000 pods fit the same second
// on a busy 2-core machine, and the deadline holds the bound wherever the machine is slower.
const (
	PreviewMaxPods = 10_000
	PreviewBudget  = time.Second
	// previewShare of the time the API server gives the call (its ?timeout=) is the most the preview takes:
	// with timeoutSeconds 5, 1 s; validation and the answer keep the rest.
	previewShare = 5
)

// previewPolicy answers a valid policy change with warnings that preview its effect on the running agent
// pods (cluster.Preview), and the note its review's event adds ("; preview: …"). It never refuses anything: a
// preview that cannot run says so in one warning. No pod list (serve without a cluster): no preview.
func (s *Server) previewPolicy(ctx context.Context, p *policy.Policy) (warnings []string, note string) {
	pods, ok := s.opts.Pods.(RunningPods)
	if !ok {
		return nil, ""
	}
	defer func() {
		// A bug met on some cached pod must cost the preview, not the validation: a panic would otherwise
		// become an HTTP 500, and failurePolicy Ignore would admit the change unvalidated.
		if r := recover(); r != nil {
			s.log.Error("policy preview failed", "event", "preview.failed", "policy", p.Name, "panic", fmt.Sprint(r))
			warnings, note = cluster.PreviewFailed(p.Name, "internal error (logged as preview.failed)"), "; preview failed"
		}
	}()
	if err := pods.Ready(); err != nil {
		return cluster.PreviewFailed(p.Name, err.Error()), "; preview not run: " + err.Error()
	}
	now := time.Now()
	deadline := now.Add(PreviewBudget)
	if d, ok := ctx.Deadline(); ok {
		if share := now.Add(d.Sub(now) / previewShare); share.Before(deadline) {
			deadline = share
		}
	}
	r := cluster.Preview(p, pods.Running(""), s.knownNamespaces(), PreviewMaxPods, deadline)
	return r.Warnings(), fmt.Sprintf("; preview: %d of %d running agent pods fail it (%d checked in %s)", len(r.Findings), r.Selected, r.Checked, r.Elapsed.Round(time.Millisecond))
}

// requestContext bounds a review by the time the API server gives it: it calls webhooks with ?timeout= set to
// the configuration's timeoutSeconds, after which it has stopped waiting for the answer.
func requestContext(ctx context.Context, rawTimeout string) (context.Context, context.CancelFunc) {
	if t, err := time.ParseDuration(rawTimeout); err == nil && t > 0 {
		return context.WithTimeout(ctx, t)
	}
	return ctx, func() {}
}

// knownNamespaces is what the server's caches know of namespaces, for judging outside a review (no live read).
func (s *Server) knownNamespaces() cluster.Namespaces {
	var n cluster.Namespaces
	if s.opts.Namespaces != nil {
		n.Labels = s.opts.Namespaces.Labels
	}
	if s.opts.TokenSecrets != nil {
		n.IsTokenSecret = s.opts.TokenSecrets.IsTokenSecret
	}
	return n
}
