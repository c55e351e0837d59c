package main

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	"agentgate.io/agentgate/policy"
)

// podTemplateKindFlag is --pod-template-kind GROUP/VERSION/KIND=FIELD.PATH (repeatable), for serve and check.
// Each value is parsed as it is given, so that a malformed one stops the command at start (exit 2) with the
// value and the syntax expected.
type podTemplateKindFlag []policy.PodTemplateKind

const podTemplateKindUsage = "judge this kind by the pod template at FIELD.PATH, like a Deployment's: " + policy.PodTemplateKindSyntax +
	" (repeatable; agent-sandbox's Sandbox and SandboxTemplate are always judged)"

func (f *podTemplateKindFlag) String() string {
	if f == nil {
		return ""
	}
	s := make([]string, len(*f))
	for i, k := range *f {
		s[i] = k.String()
	}
	return strings.Join(s, ",")
}

func (f *podTemplateKindFlag) Set(v string) error {
	k, err := policy.ParsePodTemplateKind(v)
	if err != nil {
		return err
	}
	*f = append(*f, k)
	return nil
}

// table builds the kinds' table; a kind declared twice, or one judged already, is an error.
func (f podTemplateKindFlag) table() (*policy.PodTemplateKinds, error) {
	return policy.NewPodTemplateKinds(f...)
}

// warnUnservedKinds asks the API server's discovery whether each declared kind is served, and logs a warning
// (kinds.not_served) for each one that is not: its objects would never reach /validate, because the API
// server has no such resource (a CRD not installed yet, a typo in the group, version or kind). It never stops
// the server: the CRD may be installed after agentgate, and the declaration is then right.
func warnUnservedKinds(ctx context.Context, disc discovery.DiscoveryInterface, kinds []policy.PodTemplateKind, log *slog.Logger) {
	for _, k := range kinds {
		if ctx.Err() != nil {
			return
		}
		gv := k.GroupVersionKind.GroupVersion().String()
		list, err := disc.ServerResourcesForGroupVersion(gv)
		switch {
		case apierrors.IsNotFound(err):
			log.Warn("declared pod-template kind is not served by the API server: its objects never reach agentgate until its CRD is installed",
				"event", "kinds.not_served", "kind", k.String(), "groupVersion", gv, "reason", "group/version not served")
			continue
		case err != nil:
			log.Warn("cannot ask the API server whether a declared pod-template kind is served", "event", "kinds.unknown", "kind", k.String(), "error", err.Error())
			continue
		}
		served := slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool {
			return r.Kind == k.GroupVersionKind.Kind && !strings.Contains(r.Name, "/")
		})
		if !served {
			log.Warn("declared pod-template kind is not served by the API server: its objects never reach agentgate",
				"event", "kinds.not_served", "kind", k.String(), "groupVersion", gv, "reason", "no such kind in the group/version")
			continue
		}
		log.Info("declared pod-template kind is served", "event", "kinds.served", "kind", k.String())
	}
}
