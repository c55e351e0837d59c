package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Defaults of DigestResolverOptions.
const (
	DefaultDigestTimeout  = 2 * time.Second // well inside the API server's 5 s webhook timeout
	DefaultDigestCacheTTL = 5 * time.Minute
	DefaultDigestCacheMax = 4096
)

// DigestResolverOptions configure a DigestResolver.
type DigestResolverOptions struct {
	// Timeout bounds one resolution, however the registry behaves (a registry that hangs costs at most this).
	Timeout time.Duration
	// CacheTTL is how long a resolved tag is trusted; tags move, so this stays short.
	CacheTTL time.Duration
	// CacheMax bounds the cache; it is cleared when full.
	CacheMax int
	// Transport reaches the registries; http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Keychain authenticates to registries; the Docker config keychain when nil.
	Keychain authn.Keychain
	Logger   *slog.Logger
	// Registerer receives agentgate_image_resolve_duration_seconds{result}; nil: not registered.
	Registerer prometheus.Registerer
}

// DigestResolver turns image tags into digests by asking their registry (a HEAD on the manifest), with a
// bounded time per resolution, a short-lived cache, and one request in flight per reference.
type DigestResolver struct {
	opts     DigestResolverOptions
	group    singleflight.Group
	mu       sync.Mutex
	cache    map[string]cachedDigest
	duration *prometheus.HistogramVec
	now      func() time.Time
}

type cachedDigest struct {
	digest  string
	expires time.Time
}

// NewDigestResolver applies defaults and registers the metric.
func NewDigestResolver(opts DigestResolverOptions) (*DigestResolver, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultDigestTimeout
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultDigestCacheTTL
	}
	if opts.CacheMax <= 0 {
		opts.CacheMax = DefaultDigestCacheMax
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &DigestResolver{
		opts:  opts,
		cache: map[string]cachedDigest{},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentgate_image_resolve_duration_seconds",
			Help:    "Time to resolve an image tag to a digest (images.pinDigests), by result: cached, resolved, failed.",
			Buckets: []float64{0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}, []string{"result"}),
		now: time.Now,
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(r.duration); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("registering digest metrics: %w", err)
			}
			r.duration = are.ExistingCollector.(*prometheus.HistogramVec)
		}
	}
	return r, nil
}

// Resolve returns the digest ("sha256:…") that ref's tag points at now.
func (r *DigestResolver) Resolve(ctx context.Context, ref string) (string, error) {
	start := r.now()
	r.mu.Lock()
	c, ok := r.cache[ref]
	r.mu.Unlock()
	if ok && r.now().Before(c.expires) {
		r.duration.WithLabelValues("cached").Observe(time.Since(start).Seconds())
		return c.digest, nil
	}
	v, err, _ := r.group.Do(ref, func() (any, error) { return r.resolve(ctx, ref) })
	if err != nil {
		r.duration.WithLabelValues("failed").Observe(time.Since(start).Seconds())
		r.opts.Logger.Warn("image tag not resolved", "event", "image.resolve_failed", "image", ref, "error", err.Error(),
			"duration", time.Since(start).Seconds())
		return "", err
	}
	digest := v.(string)
	r.duration.WithLabelValues("resolved").Observe(time.Since(start).Seconds())
	r.opts.Logger.Info("image tag resolved", "event", "image.resolved", "image", ref, "digest", digest,
		"duration", time.Since(start).Seconds())
	return digest, nil
}

func (r *DigestResolver) resolve(ctx context.Context, ref string) (string, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	// The caller's context may be cancelled by one request while others wait on the same flight: each
	// resolution gets its own deadline instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
	defer cancel()
	desc, err := remote.Head(parsed, remote.WithContext(ctx), remote.WithTransport(r.opts.Transport),
		remote.WithAuthFromKeychain(r.opts.Keychain))
	if err != nil {
		return "", fmt.Errorf("resolving %q at %s: %w", ref, parsed.Context().RegistryStr(), err)
	}
	digest := desc.Digest.String()
	r.mu.Lock()
	if len(r.cache) >= r.opts.CacheMax {
		clear(r.cache)
	}
	r.cache[ref] = cachedDigest{digest: digest, expires: r.now().Add(r.opts.CacheTTL)}
	r.mu.Unlock()
	return digest, nil
}
