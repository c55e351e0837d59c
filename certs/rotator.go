package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	admissionlisters "k8s.io/client-go/listers/admissionregistration/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options. The CA lives long because replacing it is the risky
// operation; the serving certificate lives shorter because replacing it is
// cheap and keeps the rotation path exercised.
const (
	DefaultCACommonName    = "agentgate-ca"
	DefaultCAValidity      = 5 * 365 * 24 * time.Hour
	DefaultServingValidity = 365 * 24 * time.Hour
	DefaultOverlap         = 5 * time.Minute
	DefaultCheckInterval   = time.Minute
	DefaultAPITimeout      = 30 * time.Second
)

// minWait keeps a certificate that is renewed and still due (lifetimes set
// shorter than the lookahead allows) from turning the loop into a busy loop.
const minWait = 200 * time.Millisecond

// Options configure a Rotator. Zero durations take the defaults.
type Options struct {
	// Client talks to the API server; it needs get/create/update on the
	// Secret, list/watch on it (a field selector on its name is used), and
	// get/list/watch/update on the named webhook configurations.
	Client     kubernetes.Interface
	Namespace  string
	SecretName string

	// Every webhook entry of these configurations gets the caBundle.
	ValidatingWebhookConfigurations []string
	MutatingWebhookConfigurations   []string

	// Subject alternative names of the serving certificate, typically the
	// Service's name.namespace.svc (and .cluster.local). The first name is the
	// one readiness verifies against; there must be at least one name or IP.
	DNSNames    []string
	IPAddresses []net.IP

	CACommonName string        // default DefaultCACommonName
	CAValidity   time.Duration // default DefaultCAValidity
	// CALookahead is how long before the CA's expiry its replacement starts;
	// default a third of CAValidity. It must leave room for two overlaps.
	CALookahead     time.Duration
	ServingValidity time.Duration // default DefaultServingValidity
	// ServingLookahead is how long before expiry the serving certificate is
	// renewed; default a third of ServingValidity (renewal at ~2/3 of its life).
	ServingLookahead time.Duration
	// Overlap is how long a new CA is trusted before it signs, and how long
	// the old one stays trusted after; it must exceed the time the API
	// servers need to see a new caBundle and every replica needs to load the
	// new certificate from the Secret (seconds, with watches). Default
	// DefaultOverlap.
	Overlap time.Duration
	// NoOverlap swaps the CA in one step, as cert-controller does. It exists
	// so that tests can show the failures overlap prevents; never use it.
	NoOverlap bool
	// CheckInterval bounds how long the Rotator goes without re-reading the
	// Secret when no event arrives; default DefaultCheckInterval.
	CheckInterval time.Duration
	// APITimeout bounds one pass of reading and writing the Secret and the webhook configurations; default
	// DefaultAPITimeout. The client has no timeout of its own (its watches must not have one), and a pass
	// stuck on a connection that stopped answering would stop every renewal that follows.
	APITimeout time.Duration

	// Logger receives cert.rotated events; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, gets the expiry gauge
	// agentgate_certificate_expiry_timestamp_seconds{cert="ca|serving"}.
	Registerer prometheus.Registerer
}

// Rotator keeps a CA and a serving certificate in a Secret, renews them before
// they expire, injects the CA bundle into webhook configurations, and serves
// the current certificate from memory. Run one in every replica: they agree
// through optimistic concurrency on the Secret, so no leader election is
// needed (and none may be: every replica must load the certificate).
type Rotator struct {
	opts   Options
	pol    policy
	log    *slog.Logger
	expiry *prometheus.GaugeVec
	kick   chan struct{}

	started atomic.Bool
	served  atomic.Pointer[served]
	// webhooks is set once the informers have synced, so that Ready judges
	// the webhook configurations on what the API server holds.
	webhooks atomic.Pointer[webhookListers]
}

// served is what this replica serves right now.
type served struct {
	cert   *tls.Certificate
	leaf   *KeyPair
	ca     *x509.Certificate
	bundle []byte
}

type webhookListers struct {
	validating admissionlisters.ValidatingWebhookConfigurationLister
	mutating   admissionlisters.MutatingWebhookConfigurationLister
}

// NewRotator validates the options and fills in defaults. Nothing talks to
// the API server before Start.
func NewRotator(opts Options) (*Rotator, error) {
	if opts.Client == nil {
		return nil, errors.New("certs: Options.Client is required")
	}
	if opts.Namespace == "" || opts.SecretName == "" {
		return nil, errors.New("certs: Options.Namespace and Options.SecretName are required")
	}
	if len(opts.DNSNames) == 0 && len(opts.IPAddresses) == 0 {
		return nil, errors.New("certs: Options.DNSNames or Options.IPAddresses must name the server")
	}
	setDefault := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if opts.CACommonName == "" {
		opts.CACommonName = DefaultCACommonName
	}
	setDefault(&opts.CAValidity, DefaultCAValidity)
	setDefault(&opts.CALookahead, opts.CAValidity/3)
	setDefault(&opts.ServingValidity, DefaultServingValidity)
	setDefault(&opts.ServingLookahead, opts.ServingValidity/3)
	setDefault(&opts.Overlap, DefaultOverlap)
	setDefault(&opts.CheckInterval, DefaultCheckInterval)
	setDefault(&opts.APITimeout, DefaultAPITimeout)
	for name, d := range map[string]time.Duration{
		"CAValidity": opts.CAValidity, "CALookahead": opts.CALookahead,
		"ServingValidity": opts.ServingValidity, "ServingLookahead": opts.ServingLookahead,
		"Overlap": opts.Overlap, "CheckInterval": opts.CheckInterval, "APITimeout": opts.APITimeout,
	} {
		if d < 0 {
			return nil, fmt.Errorf("certs: Options.%s must not be negative, got %s", name, d)
		}
	}
	if opts.CALookahead >= opts.CAValidity {
		return nil, fmt.Errorf("certs: CALookahead %s must be shorter than CAValidity %s", opts.CALookahead, opts.CAValidity)
	}
	if opts.ServingLookahead >= opts.ServingValidity {
		return nil, fmt.Errorf("certs: ServingLookahead %s must be shorter than ServingValidity %s", opts.ServingLookahead, opts.ServingValidity)
	}
	// A CA rotation takes two overlaps, and the serving certificates issued
	// meanwhile by the old CA are cut at its expiry: with less room the old
	// CA would expire mid-rotation, or every leaf it signs would be due at once.
	need, what := 2*opts.Overlap+opts.ServingLookahead, "2*Overlap + ServingLookahead"
	if opts.NoOverlap {
		need, what = opts.ServingLookahead, "ServingLookahead"
	}
	if opts.CALookahead <= need {
		return nil, fmt.Errorf("certs: CALookahead %s must exceed %s = %s", opts.CALookahead, what, need)
	}
	opts.DNSNames = slices.Clone(opts.DNSNames)
	opts.IPAddresses = slices.Clone(opts.IPAddresses)

	r := &Rotator{
		opts: opts,
		pol: policy{
			caCommonName:     opts.CACommonName,
			caValidity:       opts.CAValidity,
			caLookahead:      opts.CALookahead,
			servingValidity:  opts.ServingValidity,
			servingLookahead: opts.ServingLookahead,
			overlap:          opts.Overlap,
			noOverlap:        opts.NoOverlap,
			dnsNames:         opts.DNSNames,
			ips:              opts.IPAddresses,
		},
		log:    opts.Logger,
		kick:   make(chan struct{}, 1),
		expiry: newExpiryGauge(),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(r.expiry); err != nil {
			// A second Rotator in one process (tests, a restarted manager)
			// shares the gauge rather than failing.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("certs: registering expiry metric: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.GaugeVec)
			if !ok {
				return nil, fmt.Errorf("certs: registering expiry metric: %w", err)
			}
			r.expiry = existing
		}
	}
	return r, nil
}

// GetCertificate serves the current certificate; set it as
// tls.Config.GetCertificate. A rotation takes effect at the next handshake,
// without waiting for the kubelet to update a mounted Secret.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s := r.served.Load()
	if s == nil {
		return nil, errors.New("certs: no serving certificate loaded yet")
	}
	return s.cert, nil
}

// CABundle returns the PEM bundle this replica last injected (or tried to):
// the signing CA and, during a rotation, the other CA.
func (r *Rotator) CABundle() []byte {
	s := r.served.Load()
	if s == nil {
		return nil
	}
	return bytes.Clone(s.bundle)
}

// Ready returns nil once the served certificate is valid now and the caBundle
// of every webhook entry of every named configuration trusts it: only then
// can the API server reach this replica.
func (r *Rotator) Ready() error {
	s := r.served.Load()
	if s == nil {
		return errors.New("no serving certificate loaded yet")
	}
	now := time.Now()
	name := r.pol.verifyNames()[0]
	roots := x509.NewCertPool()
	roots.AddCert(s.ca)
	if err := s.leaf.ValidAt(roots, name, now); err != nil {
		return fmt.Errorf("served certificate: %w", err)
	}
	if r.webhooks.Load() == nil {
		if len(r.opts.ValidatingWebhookConfigurations)+len(r.opts.MutatingWebhookConfigurations) > 0 {
			return errors.New("webhook configurations not observed yet")
		}
		return nil
	}
	trusts := func(kind, cfg, webhook string, bundle []byte) error {
		pool, err := PoolFromPEM(bundle)
		if err == nil {
			err = s.leaf.ValidAt(pool, name, now)
		}
		if err != nil {
			return fmt.Errorf("%s %s, webhook %s: caBundle does not trust the served certificate: %w", kind, cfg, webhook, err)
		}
		return nil
	}
	for _, k := range r.webhookKinds() {
		for _, n := range k.names {
			entries, err := k.cached(n)
			if err != nil {
				return fmt.Errorf("%s %s: %w", k.kind, n, err)
			}
			for _, e := range entries {
				if err := trusts(k.kind, n, e.name, e.config.CABundle); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Start runs the Rotator until ctx is done (the shape of controller-runtime's
// manager.Runnable). Errors talking to the API server are logged and retried
// with backoff, not returned: a replica that stopped rotating would serve an
// expiring certificate until it failed.
func (r *Rotator) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("certs: Rotator already started")
	}
	ctx, cancel := context.WithCancel(ctx)

	// The Secret watch lets every replica load a certificate another replica
	// wrote within a second; the webhook watch re-injects an overwritten
	// caBundle as soon as the overwrite happens.
	secretFactory := informers.NewSharedInformerFactoryWithOptions(r.opts.Client, 0,
		informers.WithNamespace(r.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.opts.SecretName).String()
		}))
	webhookFactory := informers.NewSharedInformerFactory(r.opts.Client, 0)
	defer func() {
		// Shutdown waits for the informers, which stop only once ctx is done.
		cancel()
		secretFactory.Shutdown()
		webhookFactory.Shutdown()
	}()

	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.trigger() },
		UpdateFunc: func(any, any) { r.trigger() },
		DeleteFunc: func(any) { r.trigger() },
	}
	named := func(names []string) func(any) bool {
		return func(obj any) bool {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			m, ok := obj.(metav1.Object)
			return ok && slices.Contains(names, m.GetName())
		}
	}
	if _, err := secretFactory.Core().V1().Secrets().Informer().AddEventHandler(kick); err != nil {
		return fmt.Errorf("certs: watching Secret: %w", err)
	}
	vwc := webhookFactory.Admissionregistration().V1().ValidatingWebhookConfigurations()
	mwc := webhookFactory.Admissionregistration().V1().MutatingWebhookConfigurations()
	h := cache.FilteringResourceEventHandler{FilterFunc: named(r.opts.ValidatingWebhookConfigurations), Handler: kick}
	if _, err := vwc.Informer().AddEventHandler(h); err != nil {
		return fmt.Errorf("certs: watching ValidatingWebhookConfigurations: %w", err)
	}
	h = cache.FilteringResourceEventHandler{FilterFunc: named(r.opts.MutatingWebhookConfigurations), Handler: kick}
	if _, err := mwc.Informer().AddEventHandler(h); err != nil {
		return fmt.Errorf("certs: watching MutatingWebhookConfigurations: %w", err)
	}
	secretFactory.Start(ctx.Done())
	webhookFactory.Start(ctx.Done())
	go func() {
		// The first reconcile need not wait for the caches: it reads the
		// Secret directly. Readiness waits for them.
		webhookFactory.WaitForCacheSync(ctx.Done())
		secretFactory.WaitForCacheSync(ctx.Done())
		if ctx.Err() == nil {
			r.webhooks.Store(&webhookListers{validating: vwc.Lister(), mutating: mwc.Lister()})
			r.trigger()
		}
	}()

	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-r.kick:
		}
		pass, cancelPass := context.WithTimeout(ctx, r.opts.APITimeout)
		wake, err := r.reconcile(pass)
		cancelPass()
		wait := r.opts.CheckInterval
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			wait = min(time.Second<<min(failures-1, 6), r.opts.CheckInterval)
			r.log.Warn("certificate reconcile failed", "secret", r.secretRef(), "error", err.Error(), "retryIn", wait.String())
		} else {
			failures = 0
			if d := time.Until(wake); d < wait {
				wait = max(d, minWait)
			}
		}
		timer.Reset(wait) // since Go 1.23 Reset needs no draining
	}
}

func (r *Rotator) trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Rotator) secretRef() string { return r.opts.Namespace + "/" + r.opts.SecretName }

// maxWriteAttempts bounds how often one reconcile re-reads the Secret after
// losing a race to another replica; the next tick tries again anyway.
const maxWriteAttempts = 5

// reconcile brings the Secret, this replica's served certificate and the
// webhook configurations in line, and returns when it must run again.
func (r *Rotator) reconcile(ctx context.Context) (time.Time, error) {
	secrets := r.opts.Client.CoreV1().Secrets(r.opts.Namespace)
	for attempt := 1; ; attempt++ {
		sec, err := secrets.Get(ctx, r.opts.SecretName, metav1.GetOptions{})
		notFound := apierrors.IsNotFound(err)
		if err != nil && !notFound {
			return time.Time{}, fmt.Errorf("reading Secret %s: %w", r.secretRef(), err)
		}
		if notFound {
			sec = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: r.opts.Namespace, Name: r.opts.SecretName},
				Type:       corev1.SecretTypeTLS,
			}
		}
		cur := decodeState(sec.Data, sec.Annotations)
		now := time.Now()
		nextTrusted := false
		if cur.next != nil && !now.Before(cur.nextPromoteAfter) {
			if nextTrusted, err = r.webhooksTrust(ctx, cur.next.Cert); err != nil {
				return time.Time{}, err
			}
		}
		desired, changes, wake, err := r.pol.plan(cur, now, nextTrusted)
		if err != nil {
			return time.Time{}, fmt.Errorf("planning certificates: %w", err)
		}

		updated := sec.DeepCopy()
		if updated.Data == nil {
			updated.Data = map[string][]byte{}
		}
		if updated.Annotations == nil {
			updated.Annotations = map[string]string{}
		}
		desired.encode(updated.Data, updated.Annotations)
		if notFound || !maps.EqualFunc(sec.Data, updated.Data, bytes.Equal) || !maps.Equal(sec.Annotations, updated.Annotations) {
			if notFound {
				_, err = secrets.Create(ctx, updated, metav1.CreateOptions{})
			} else {
				// The resourceVersion from the Get makes this a compare-and-swap:
				// if another replica wrote first, we get a Conflict and adopt theirs.
				_, err = secrets.Update(ctx, updated, metav1.UpdateOptions{})
			}
			if (apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err)) && attempt < maxWriteAttempts {
				r.log.Debug("another replica wrote the Secret first; re-reading it", "secret", r.secretRef(), "attempt", attempt)
				continue
			}
			if err != nil {
				// Keep serving what the Secret holds while it is still good:
				// a renewal that cannot be stored is no reason to go dark.
				if r.pol.servingValid(cur, now) == nil {
					_ = r.load(cur)
				}
				return time.Time{}, fmt.Errorf("writing Secret %s: %w", r.secretRef(), err)
			}
			for _, c := range changes {
				r.log.Info("cert.rotated", "event", "cert.rotated", "cert", c.cert, "stage", c.stage, "notAfter", c.notAfter.UTC(),
					"serial", c.serial, "secret", r.secretRef())
			}
		}
		if err := r.load(desired); err != nil {
			return time.Time{}, err
		}
		return wake, r.inject(ctx, desired.bundle())
	}
}

// load makes desired the served certificate, unless it already is.
func (r *Rotator) load(desired state) error {
	bundle := desired.bundle()
	if cur := r.served.Load(); cur != nil && bytes.Equal(cur.leaf.CertPEM, desired.serving.CertPEM) &&
		cur.ca.Equal(desired.ca.Cert) && bytes.Equal(cur.bundle, bundle) {
		return nil
	}
	cert, err := desired.serving.TLSCertificate()
	if err != nil {
		return err
	}
	r.served.Store(&served{cert: &cert, leaf: desired.serving, ca: desired.ca.Cert, bundle: bundle})
	r.expiry.WithLabelValues("serving").Set(float64(desired.serving.Cert.NotAfter.Unix()))
	r.expiry.WithLabelValues("ca").Set(float64(desired.ca.Cert.NotAfter.Unix()))
	return nil
}

// webhooksTrust says whether every webhook entry of every named configuration
// already lists ca in its caBundle, read from the API server itself: a
// pending CA may only start signing once clients trust it. A configuration
// that does not exist cannot be broken by the rotation, so it does not hold
// the rotation up (which would let the old CA expire).
func (r *Rotator) webhooksTrust(ctx context.Context, ca *x509.Certificate) (bool, error) {
	holds := func(bundle []byte) bool {
		certs, err := ParseCertificatesPEM(bundle)
		return err == nil && slices.ContainsFunc(certs, ca.Equal)
	}
	for _, k := range r.webhookKinds() {
		for _, n := range k.names {
			entries, _, err := k.live(ctx, n)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("reading %s %s: %w", k.kind, n, err)
			}
			for _, e := range entries {
				if !holds(e.config.CABundle) {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

// inject writes bundle into every webhook entry of the named configurations
// that does not hold it exactly. The informer cache (once synced) spares an
// API call when nothing changed; an update reads the live object and retries
// on conflict, so a concurrent edit of other fields is never lost.
func (r *Rotator) inject(ctx context.Context, bundle []byte) error {
	var errs []error
	for _, k := range r.webhookKinds() {
		for _, n := range k.names {
			if k.cached != nil {
				if entries, err := k.cached(n); err == nil && holdExactly(entries, bundle) {
					continue
				}
			}
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				entries, update, err := k.live(ctx, n)
				if err != nil || !setBundle(entries, bundle) {
					return err
				}
				if err = update(); err == nil {
					// Either a rotation step or someone overwrote the bundle: worth a line either way.
					r.log.Info("caBundle injected", "kind", k.kind, "name", n, "bundle", bundleSummary(bundle))
				}
				return err
			})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("injecting caBundle into %s %s: %w", k.kind, n, err))
			}
		}
	}
	return errors.Join(errs...)
}

// bundleSummary names the CAs of a bundle for the log.
func bundleSummary(bundle []byte) []string {
	certs, err := ParseCertificatesPEM(bundle)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, c.Subject.CommonName)
	}
	return out
}
