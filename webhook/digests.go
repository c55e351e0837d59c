package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"agentgate.io/agentgate/policy"
)

// Defaults of DigestResolverOptions.
const (
	DefaultDigestTimeout    = 2 * time.Second // well inside the API server's 5 s webhook timeout
	DefaultDigestCacheTTL   = 5 * time.Minute
	DefaultDigestFailureTTL = 30 * time.Second
	DefaultDigestCacheMax   = 4096
	DefaultDigestInFlight   = 8
)

// DigestResolverOptions configure a DigestResolver.
type DigestResolverOptions struct {
	// Timeout bounds one resolution, however the registry behaves (a registry that hangs costs at most this).
	Timeout time.Duration
	// CacheTTL is how long a resolved tag is trusted; tags move, so this stays short.
	CacheTTL time.Duration
	// FailureTTL is how long a failed resolution is remembered: within it, pods naming that tag are not
	// pinned and the registry is not asked again, so a registry that is down or refused is not asked once
	// per admission.
	FailureTTL time.Duration
	// CacheMax bounds the cache; it is cleared when full.
	CacheMax int
	// MaxInFlight bounds the resolutions asking registries at once, across all admissions.
	MaxInFlight int
	// RootCAs verify registries' certificates; the system roots when nil.
	RootCAs *x509.CertPool
	// Keychain authenticates to registries; the Docker config keychain when nil.
	Keychain authn.Keychain
	Logger   *slog.Logger
	// Registerer receives agentgate_image_resolve_duration_seconds{result}; nil: not registered.
	Registerer prometheus.Registerer
}

// DigestResolver turns image tags into digests by asking their registry (a HEAD on the manifest), with a
// bounded time per resolution, bounded concurrency, a short-lived cache of answers and of failures, and one
// request in flight per reference.
//
// It is a server-side request made on behalf of whoever creates pods, so it goes only where a registry
// should be: over HTTPS (go-containerregistry's plain-HTTP scheme for localhost, 127.0.0.1, RFC 1918 and
// *.local names is upgraded), directly (no proxy, so that the address checked is the address reached), and
// never to a loopback, link-local (cloud metadata), unspecified or multicast address, checked when each
// connection is dialled, on the address the name resolved to, redirects and token realms included. A policy
// lifts these for one registry with images.pinRegistries (policy.PinAccess). Which images are resolved at all
// is the policies' decision (policy.Set.DigestTargets: only names they admit).
type DigestResolver struct {
	opts     DigestResolverOptions
	group    singleflight.Group
	mu       sync.Mutex
	cache    map[string]cachedDigest
	inFlight chan struct{}
	strict   http.RoundTripper // PinAccess{}: shared, its connections kept alive
	duration *prometheus.HistogramVec
	now      func() time.Time
}

type cachedDigest struct {
	digest  string
	err     error
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
	if opts.FailureTTL <= 0 {
		opts.FailureTTL = DefaultDigestFailureTTL
	}
	if opts.CacheMax <= 0 {
		opts.CacheMax = DefaultDigestCacheMax
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultDigestInFlight
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &DigestResolver{
		opts:     opts,
		cache:    map[string]cachedDigest{},
		inFlight: make(chan struct{}, opts.MaxInFlight),
		strict:   registryTransport(opts.RootCAs, "", policy.PinAccess{}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentgate_image_resolve_duration_seconds",
			Help:    "Time to resolve an image tag to a digest (images.pinDigests), by result: cached, cached_failure, resolved, failed.",
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

// Resolve returns the digest ("sha256:…") that ref's tag points at now. ref is a normalised reference
// (policy.DigestTarget.Reference); access is what the policies allow to reach its registry.
func (r *DigestResolver) Resolve(ctx context.Context, ref string, access policy.PinAccess) (string, error) {
	start := r.now()
	key := fmt.Sprintf("%s local=%t http=%t", ref, access.LocalAddresses, access.PlainHTTP)
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	if ok && r.now().Before(c.expires) {
		if c.err != nil {
			r.duration.WithLabelValues("cached_failure").Observe(time.Since(start).Seconds())
			return "", c.err
		}
		r.duration.WithLabelValues("cached").Observe(time.Since(start).Seconds())
		return c.digest, nil
	}
	v, err, _ := r.group.Do(key, func() (any, error) {
		digest, err := r.resolve(ctx, ref, access)
		ttl := r.opts.CacheTTL
		if err != nil {
			ttl = r.opts.FailureTTL
		}
		r.mu.Lock()
		if len(r.cache) >= r.opts.CacheMax {
			clear(r.cache)
		}
		r.cache[key] = cachedDigest{digest: digest, err: err, expires: r.now().Add(ttl)}
		r.mu.Unlock()
		return digest, err
	})
	if err != nil {
		r.duration.WithLabelValues("failed").Observe(time.Since(start).Seconds())
		r.opts.Logger.Warn("image tag not resolved", "event", "image.resolve_failed", "image", ref, "error", err.Error(),
			"duration", time.Since(start).Seconds(), "retry_after", r.opts.FailureTTL.String())
		return "", err
	}
	digest := v.(string)
	r.duration.WithLabelValues("resolved").Observe(time.Since(start).Seconds())
	r.opts.Logger.Info("image tag resolved", "event", "image.resolved", "image", ref, "digest", digest,
		"duration", time.Since(start).Seconds())
	return digest, nil
}

func (r *DigestResolver) resolve(ctx context.Context, ref string, access policy.PinAccess) (string, error) {
	var opts []name.Option
	if access.PlainHTTP {
		opts = append(opts, name.Insecure) // go-containerregistry then tries HTTPS first, HTTP second
	}
	parsed, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	// The caller's context may be cancelled by one request while others wait on the same flight: each
	// resolution gets its own deadline instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
	defer cancel()
	select {
	case r.inFlight <- struct{}{}:
		defer func() { <-r.inFlight }()
	case <-ctx.Done():
		return "", fmt.Errorf("resolving %q: waiting for one of %d resolutions in flight: %w", ref, r.opts.MaxInFlight, ctx.Err())
	}
	registry := parsed.Context().RegistryStr()
	transport := r.strict
	if access != (policy.PinAccess{}) {
		t := registryTransport(r.opts.RootCAs, registry, access)
		defer t.(*httpsOnly).next.CloseIdleConnections()
		transport = t
	}
	desc, err := remote.Head(parsed, remote.WithContext(ctx), remote.WithTransport(transport),
		remote.WithAuthFromKeychain(r.opts.Keychain))
	if err != nil {
		return "", fmt.Errorf("resolving %q at %s: %w", ref, registry, err)
	}
	return desc.Digest.String(), nil
}

// pinDigests resolves, concurrently, the tags that a selecting policy with images.pinDigests wants pinned,
// and returns a copy of w with "tag@digest" written in (w itself when nothing was pinned). A tag that does not
// resolve in time stays as it is: the resolver logs image.resolve_failed, and a policy that must have digests
// says so with requireDigest, which the validating webhook then enforces.
func (s *Server) pinDigests(ctx context.Context, set *policy.Set, w *policy.Workload, ns policy.Namespace, rq policy.Requester) (*policy.Workload, bool) {
	if s.opts.DigestResolver == nil || len(set.DigestTargets(w, ns, rq)) == 0 {
		return w, false
	}
	pinned := w.DeepCopy()
	targets := set.DigestTargets(pinned, ns, rq)
	digests := make([]string, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			if d, err := s.opts.DigestResolver.Resolve(ctx, t.Reference, t.Access); err == nil {
				digests[i] = d
			}
		})
	}
	wg.Wait()
	pinnedSome := false
	for i, t := range targets {
		if digests[i] != "" {
			t.Container.Image = policy.PinnedReference(t.Container.Image, digests[i])
			pinnedSome = true
		}
	}
	if !pinnedSome {
		return w, false
	}
	return pinned, true
}

// registryTransport reaches registries for the resolver: directly, HTTPS only, refusing special addresses
// when it dials. With access for one registry (images.pinRegistries), that registry alone may be at such an
// address or asked over HTTP; the transport then keeps no connection alive, so that every request dials, and
// is checked, again.
func registryTransport(roots *x509.CertPool, registry string, access policy.PinAccess) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy: nil, // a proxy would resolve names itself, out of reach of the address check
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mayBeLocal := access.LocalAddresses && dialedRegistry(addr) == registry
			d := *dialer
			d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
				return checkDialAddress(addr, address, mayBeLocal)
			}
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        100,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
		DisableKeepAlives:   registry != "",
	}
	guard := &httpsOnly{next: t}
	if access.PlainHTTP {
		guard.plainHTTP = registry
	}
	return guard
}

// httpsOnly sends every request over HTTPS, except to the one registry a policy lists with plainHTTP.
// go-containerregistry speaks HTTP to names it deems local (localhost, 127.0.0.1, 10.x, *.local), and a
// registry may redirect anywhere: the request is upgraded rather than refused, so that a registry that does
// serve HTTPS on such a name still resolves.
type httpsOnly struct {
	next      *http.Transport
	plainHTTP string // normalised registry that may be asked over HTTP; "" none
}

func (t *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "https":
	case "http":
		if t.plainHTTP != "" && dialedRegistry(req.URL.Host) == t.plainHTTP {
			break
		}
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	default:
		return nil, fmt.Errorf("registry request to %s: scheme %q refused", req.URL.Redacted(), req.URL.Scheme)
	}
	return t.next.RoundTrip(req)
}

// dialedRegistry writes a "host:port" (or URL host) as policy normalises registries: lower case, :443 dropped.
func dialedRegistry(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), ""
	}
	host = strings.ToLower(host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || port == "443" {
		return host
	}
	return host + ":" + port
}

// DialRefusedError is a registry connection refused before it was made, for the address it resolved to.
type DialRefusedError struct {
	Host    string // as asked: "registry.example:443"
	Address string // as resolved: "127.0.0.1:443"
	Reason  string
}

func (e *DialRefusedError) Error() string {
	return fmt.Sprintf("connection to %s (%s) refused: %s; list the registry in images.pinRegistries with localAddresses: true to allow it", e.Host, e.Address, e.Reason)
}

// checkDialAddress refuses, unless mayBeLocal, a connection to an address no registry should be asked at
// on behalf of pod authors: the node itself, link-local (169.254.169.254 is the cloud metadata API),
// unspecified or multicast.
func checkDialAddress(host, address string, mayBeLocal bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DialRefusedError{Host: host, Address: address, Reason: "not an IP address and port"}
	}
	if why := specialAddress(ap.Addr().Unmap()); why != "" && !mayBeLocal {
		return &DialRefusedError{Host: host, Address: address, Reason: why}
	}
	return nil
}

var (
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")   // "this host on this network": Linux connects to itself
	awsMetadata6 = netip.MustParseAddr("fd00:ec2::254") // the cloud metadata API at a unique-local address
)

func specialAddress(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return "an unspecified address"
	case a.IsLinkLocalUnicast():
		return "a link-local address (the cloud metadata API lives there)"
	case a.IsMulticast():
		return "a multicast address"
	case a == awsMetadata6:
		return "the cloud metadata API"
	}
	return ""
}
