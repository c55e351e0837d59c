package webhook

import (
	"context"
	"log/slog"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"agentgate.io/agentgate/policy"
)

// Fields that agentgate's k8s.io/api does not know (README "Cluster upgrades"). The policy judges those of a
// pod spec (check unknownFields); all of them, wherever they are, are counted here and logged once per path,
// so that an operator learns that the API server is newer than agentgate before a pod spec field says so.

// Areas, the area label of agentgate_unknown_fields_total: a bounded set whatever the request holds.
const (
	areaMetadata  = "metadata"  // metadata of the object or of its pod template: ignored
	areaStatus    = "status"    // ignored
	areaOldObject = "oldObject" // anywhere in request.oldObject: ignored (only compared)
	areaSpec      = "spec"      // everything else: the pod spec (the policy decides) and the rest (ignored)
)

// maxLoggedPaths bounds the set of paths already logged: member names are the client's to choose.
const maxLoggedPaths = 512

type unknownFields struct {
	total *prometheus.CounterVec
	mu    sync.Mutex
	seen  map[string]bool
}

func newUnknownFields() *unknownFields {
	u := &unknownFields{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_unknown_fields_total",
			Help: "Fields of admitted or judged objects that agentgate's Kubernetes API (k8s.io/api) does not know, by area (metadata, status, oldObject, spec). Non-zero means the API server is newer than agentgate: upgrade agentgate.",
		}, []string{"area"}),
		seen: map[string]bool{},
	}
	for _, a := range []string{areaMetadata, areaStatus, areaOldObject, areaSpec} {
		u.total.WithLabelValues(a)
	}
	return u
}

// indexRE matches the list indexes of a path, so that one field of every container is one logged path.
var indexRE = regexp.MustCompile(`\[[0-9]+\]`)

// note counts the fields and logs each path the first time it is seen (up to maxLoggedPaths paths).
// podMeta is the path of the pod template's metadata ("spec.template.metadata"), "" for none.
func (u *unknownFields) note(log *slog.Logger, kind, podMeta string, old bool, fields []policy.FieldError) {
	for i := range fields {
		f := &fields[i]
		area := unknownArea(f.Path, podMeta, old)
		u.total.WithLabelValues(area).Inc()
		key := kind + " " + area + " " + indexRE.ReplaceAllString(f.Path, "[*]")
		u.mu.Lock()
		first := !u.seen[key] && len(u.seen) < maxLoggedPaths
		if first {
			u.seen[key] = true
		}
		u.mu.Unlock()
		if first {
			log.LogAttrs(context.Background(), slog.LevelWarn, "field unknown to agentgate's Kubernetes API",
				slog.String("event", "admission.unknown_field"), slog.String("kind", kind), slog.String("area", area),
				slog.String("field", indexRE.ReplaceAllString(f.Path, "[*]")), slog.String("k8s_api", policy.KubernetesAPIModule),
				slog.String("detail", "the API server is newer than agentgate (Kubernetes "+policy.KubernetesVersion()+"): upgrade agentgate; logged once per field"))
		}
	}
}

func unknownArea(path, podMeta string, old bool) string {
	switch {
	case old:
		return areaOldObject
	case policy.InPath(path, "metadata") || (podMeta != "" && policy.InPath(path, podMeta)):
		return areaMetadata
	case policy.InPath(path, "status"):
		return areaStatus
	}
	return areaSpec
}
