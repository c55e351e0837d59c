package cluster

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderOptions configure RunAsLeader. Client, Namespace, Name and Identity are required.
type LeaderOptions struct {
	Client    kubernetes.Interface
	Namespace string // agentgate's own: RBAC grants get, create and update on this one Lease only
	Name      string // the Lease, one per job (e.g. agentgate-network, agentgate-audit)
	Identity  string // this replica (its pod name)
	Logger    *slog.Logger
	// LeaseDuration, RenewDeadline and RetryPeriod default to client-go's usual 15 s, 10 s and 2 s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// RunAsLeader runs lead while this replica holds the Lease, and returns when ctx is done. lead's context is
// cancelled the moment the lease is lost (ReleaseOnCancel gives it up at shutdown, so another replica takes
// over at once instead of after LeaseDuration); it may then be started again when the lease is regained.
func RunAsLeader(ctx context.Context, o LeaderOptions, lead func(ctx context.Context)) error {
	if o.Client == nil || o.Namespace == "" || o.Name == "" || o.Identity == "" {
		return errors.New("cluster: leader election needs a client, a namespace, a lease name and an identity")
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = 2 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.Namespace, o.Name,
		o.Client.CoreV1(), o.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: o.Identity})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
			ReleaseOnCancel: true, Name: o.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					log.Info("leading", "event", "leader.started", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)
					lead(ctx)
				},
				OnStoppedLeading: func() {
					log.Info("no longer leading", "event", "leader.stopped", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)
				},
			},
		})
		if err != nil {
			return err
		}
		le.Run(ctx) // returns when the lease is lost or ctx is done; a lost lease is contested again
	}
	return nil
}
