package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/webhook"
)

// prepareNetwork readies what every replica needs for the network sandbox before the server is built: the
// informer of NetworkPolicies (pods in a managed namespace are denied while agentgate-egress is missing or
// another NetworkPolicy widens it) and the
// username agentgate writes as (the guard lets it, and admins, edit agentgate-egress).
func prepareNetwork(ctx context.Context, client kubernetes.Interface, namespace string, opts *webhook.Options, log *slog.Logger) error {
	managed, err := cluster.StartNetworkPolicyCache(ctx, client)
	if err != nil {
		return err
	}
	opts.NetworkPolicies = managed
	if opts.ReadyChecks == nil {
		opts.ReadyChecks = map[string]func() error{}
	}
	opts.ReadyChecks["networkpolicies"] = managed.Ready
	user := "system:serviceaccount:" + namespace + ":agentgate"
	// Asking the API server who we are is exact whatever the credentials (a service account, a kubeconfig).
	if r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil && r.Status.UserInfo.Username != "" {
		user = r.Status.UserInfo.Username
	} else {
		log.Warn("could not ask the API server who agentgate is; assuming its service account", "event", "network.identity", "user", user, "error", errString(err))
	}
	opts.ControllerUsers = []string{user}
	return nil
}

// startNetworkOwner runs the NetworkPolicy owner under the agentgate-network Lease in agentgate's namespace:
// every replica contends, one writes.
func startNetworkOwner(ctx context.Context, client kubernetes.Interface, namespace string, srv *webhook.Server, log *slog.Logger, metrics *cluster.NetworkMetrics) error {
	ctrl, err := cluster.NewNetworkController(cluster.NetworkOptions{
		Client:             client,
		Policies:           srv.Policies().Current,
		PoliciesSynced:     srv.Policies().AllSynced,
		AgentNamespaces:    labels.SelectorFromSet(labels.Set{webhook.AgentNamespaceLabel: webhook.AgentNamespaceLabelValue}),
		ExcludedNamespaces: []string{"kube-system", namespace},
		Logger:             log,
		Metrics:            metrics,
	})
	if err != nil {
		return err
	}
	go func() {
		err := cluster.RunAsLeader(ctx, cluster.LeaderOptions{Client: client, Namespace: namespace, Name: cluster.NetworkLease,
			Identity: leaderIdentity(), Logger: log}, func(ctx context.Context) {
			if err := ctrl.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("NetworkPolicy owner stopped", "event", "network.stopped", "error", err.Error())
			}
		})
		if err != nil {
			log.Error("NetworkPolicy owner cannot run", "event", "network.stopped", "error", err.Error())
		}
	}()
	return nil
}

// leaderIdentity is the pod name (the hostname in a pod) and a random suffix: two processes on one host (tests,
// a restarted container whose old lease is not expired yet) must not take each other for the holder.
func leaderIdentity() string {
	host, _ := os.Hostname()
	if v := os.Getenv("POD_NAME"); v != "" {
		host = v
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
