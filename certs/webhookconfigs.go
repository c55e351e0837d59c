package certs

import (
	"bytes"
	"context"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The rotator reads and writes the caBundle of validating and mutating webhook configurations alike; the two
// kinds differ only in their Go types, so each is wrapped once here and the rotator handles a webhookKind.

// webhookEntry is one webhook of a configuration: its name and its client configuration, which holds the
// caBundle.
type webhookEntry struct {
	name   string
	config *admissionregistrationv1.WebhookClientConfig
}

type webhookKind struct {
	kind  string   // "ValidatingWebhookConfiguration" or "MutatingWebhookConfiguration", for messages
	names []string // the configurations the rotator keeps
	// cached reads a configuration from the informer: read only, and nil until the informer has synced.
	cached func(name string) ([]webhookEntry, error)
	// live reads a configuration from the API server; its entries may be changed and written back with update.
	live func(ctx context.Context, name string) (entries []webhookEntry, update func() error, err error)
}

type configLister[C any] interface {
	Get(name string) (C, error)
}

type configClient[C any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (C, error)
	Update(ctx context.Context, c C, opts metav1.UpdateOptions) (C, error)
}

func newWebhookKind[C any](kind string, names []string, lister configLister[C], client configClient[C], entries func(C) []webhookEntry) webhookKind {
	k := webhookKind{kind: kind, names: names}
	if lister != nil {
		k.cached = func(name string) ([]webhookEntry, error) {
			c, err := lister.Get(name)
			if err != nil {
				return nil, err
			}
			return entries(c), nil
		}
	}
	k.live = func(ctx context.Context, name string) ([]webhookEntry, func() error, error) {
		c, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		update := func() error {
			_, err := client.Update(ctx, c, metav1.UpdateOptions{})
			return err
		}
		return entries(c), update, nil
	}
	return k
}

// webhookKinds are the configurations named in the options, read through the informers once they synced.
func (r *Rotator) webhookKinds() []webhookKind {
	arv1 := r.opts.Client.AdmissionregistrationV1()
	var validating configLister[*admissionregistrationv1.ValidatingWebhookConfiguration]
	var mutating configLister[*admissionregistrationv1.MutatingWebhookConfiguration]
	if wl := r.webhooks.Load(); wl != nil {
		validating, mutating = wl.validating, wl.mutating
	}
	return []webhookKind{
		newWebhookKind("ValidatingWebhookConfiguration", r.opts.ValidatingWebhookConfigurations, validating, arv1.ValidatingWebhookConfigurations(),
			func(c *admissionregistrationv1.ValidatingWebhookConfiguration) []webhookEntry {
				return entriesOf(c.Webhooks, func(w *admissionregistrationv1.ValidatingWebhook) webhookEntry {
					return webhookEntry{w.Name, &w.ClientConfig}
				})
			}),
		newWebhookKind("MutatingWebhookConfiguration", r.opts.MutatingWebhookConfigurations, mutating, arv1.MutatingWebhookConfigurations(),
			func(c *admissionregistrationv1.MutatingWebhookConfiguration) []webhookEntry {
				return entriesOf(c.Webhooks, func(w *admissionregistrationv1.MutatingWebhook) webhookEntry {
					return webhookEntry{w.Name, &w.ClientConfig}
				})
			}),
	}
}

func entriesOf[W any](webhooks []W, entry func(*W) webhookEntry) []webhookEntry {
	es := make([]webhookEntry, len(webhooks))
	for i := range webhooks {
		es[i] = entry(&webhooks[i])
	}
	return es
}

// holdExactly says whether every entry's caBundle is bundle.
func holdExactly(entries []webhookEntry, bundle []byte) bool {
	for _, e := range entries {
		if !bytes.Equal(e.config.CABundle, bundle) {
			return false
		}
	}
	return true
}

// setBundle sets bundle on every entry and says whether anything changed.
func setBundle(entries []webhookEntry, bundle []byte) bool {
	changed := false
	for _, e := range entries {
		if !bytes.Equal(e.config.CABundle, bundle) {
			e.config.CABundle = bytes.Clone(bundle)
			changed = true
		}
	}
	return changed
}
