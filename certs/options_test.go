package certs

import (
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

func TestNewRotatorValidatesOptions(t *testing.T) {
	valid := func() Options {
		// A client that is never called: NewRotator must not talk to the API server.
		return Options{Client: &kubernetes.Clientset{}, Namespace: "ns", SecretName: "s", DNSNames: []string{"a.ns.svc"}}
	}
	r, err := NewRotator(valid())
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if r.opts.CAValidity != DefaultCAValidity || r.opts.CALookahead != DefaultCAValidity/3 ||
		r.opts.ServingValidity != DefaultServingValidity || r.opts.ServingLookahead != DefaultServingValidity/3 ||
		r.opts.Overlap != DefaultOverlap || r.opts.CheckInterval != DefaultCheckInterval {
		t.Errorf("defaults not applied: %+v", r.opts)
	}
	if err := r.Ready(); err == nil {
		t.Errorf("Ready before Start")
	}
	if _, err := r.GetCertificate(nil); err == nil {
		t.Errorf("GetCertificate before Start")
	}

	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no client", func(o *Options) { o.Client = nil }, "Client"},
		{"no secret", func(o *Options) { o.SecretName = "" }, "SecretName"},
		{"no names", func(o *Options) { o.DNSNames = nil }, "DNSNames"},
		{"negative", func(o *Options) { o.Overlap = -time.Second }, "Overlap"},
		{"serving lookahead", func(o *Options) { o.ServingValidity, o.ServingLookahead = time.Hour, time.Hour }, "ServingLookahead"},
		{"CA lookahead", func(o *Options) { o.CAValidity, o.CALookahead = time.Hour, 2*time.Hour }, "CALookahead"},
		{"no room for overlap", func(o *Options) {
			o.CAValidity, o.CALookahead, o.Overlap = 10*time.Second, 5*time.Second, 2*time.Second
			o.ServingValidity, o.ServingLookahead = 3*time.Second, time.Second
		}, "2*Overlap + ServingLookahead"},
		{"no room for serving lookahead", func(o *Options) {
			o.NoOverlap = true
			o.CAValidity, o.CALookahead = 10*time.Second, time.Second
			o.ServingValidity, o.ServingLookahead = 3*time.Second, 2*time.Second
		}, "ServingLookahead"},
	}
	for _, tc := range tests {
		o := valid()
		tc.edit(&o)
		if _, err := NewRotator(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}
