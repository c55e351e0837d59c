package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"agentgate.io/agentgate/policy"
)

// DefaultSource names the embedded default policy in /readyz, logs and metrics.
const DefaultSource = "default"

// A Source delivers policy documents to the server: files (FileSource), ConfigMaps (ConfigMapSource), or
// anything a test or an embedding program writes. Run delivers the current documents, calls u.Synced() once
// they are all delivered (the server is not ready before every source is synced), then delivers changes until
// ctx is done. Keys name one document each and must be unique across sources (FileSource uses "file:PATH",
// ConfigMapSource "configmap:NAMESPACE/NAME"); the key is also the source label of metrics.
type Source interface {
	Name() string
	Run(ctx context.Context, u Updater) error
}

// Updater receives a source's documents. Every method is safe for concurrent use.
type Updater interface {
	// Put parses doc; a valid document replaces the key's policy, an invalid one is rejected (the key's last
	// good version stays in force) and its field errors returned.
	Put(key string, doc []byte) field.ErrorList
	// Reject records that the key's current version cannot be used at all (an unreadable file, a ConfigMap
	// without policy.yaml); its last good version stays in force.
	Reject(key string, errs field.ErrorList)
	// Remove takes the key's policy out of force (a deleted ConfigMap).
	Remove(key string)
	// Synced says the source has delivered its initial state.
	Synced()
}

// PolicyInfo is one policy in force.
type PolicyInfo struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	SHA256 string `json:"sha256,omitempty"`
}

// Snapshot is the policy set in force and where it came from. It is immutable: reloads swap in a new one.
type Snapshot struct {
	Set        *policy.Set
	Generation uint64
	Policies   []PolicyInfo
	// Default is true when no source holds a valid policy and the embedded default policy is in force.
	Default bool

	replaced chan struct{}
}

// Replaced is closed when a newer snapshot is in force: a background job (the NetworkPolicy owner) reads
// Snapshot, works from it, and waits on Replaced to redo its work, without missing a change in between.
func (s *Snapshot) Replaced() <-chan struct{} { return s.replaced }

// SourceStatus is the state of one key, for /readyz.
type SourceStatus struct {
	Source string `json:"source"`
	// Valid is false when the latest version was rejected; Policy is then still the last good one, if any.
	Valid  bool     `json:"valid"`
	Policy string   `json:"policy,omitempty"`
	Errors []string `json:"errors,omitempty"`
	// Since is when the current state (valid or rejected) began.
	Since time.Time `json:"since"`
}

// Store holds every source's last good policy and the active set built from them, swapped atomically so that
// an admission reads one consistent set without a lock. Without any valid policy, the embedded default policy
// is in force (never "no policy": agentgate does not fall open).
type Store struct {
	log     *slog.Logger
	metrics *metrics
	current atomic.Pointer[Snapshot]

	mu         sync.Mutex
	entries    map[string]*entry
	generation uint64
	lastError  string
	pending    map[string]bool // sources not yet synced
}

type entry struct {
	good     *policy.Policy
	goodHash string
	badHash  string // hash of the last rejected version, to report a repeated bad version only once
	errs     field.ErrorList
	since    time.Time
}

func newStore(log *slog.Logger, m *metrics) *Store {
	s := &Store{log: log, metrics: m, entries: map[string]*entry{}, pending: map[string]bool{}}
	s.mu.Lock()
	s.publishLocked()
	s.mu.Unlock()
	return s
}

// Current returns the set in force and a channel closed once a newer one is: what a background job (the
// NetworkPolicy owner, the background audit) works from and waits on, without missing a change in between.
func (s *Store) Current() (*policy.Set, <-chan struct{}) {
	snap := s.Snapshot()
	return snap.Set, snap.Replaced()
}

// Snapshot returns the policy set in force.
func (s *Store) Snapshot() *Snapshot { return s.current.Load() }

// Put parses and installs one document; see Updater.
func (s *Store) Put(key string, doc []byte) field.ErrorList {
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e != nil && e.errs == nil && e.goodHash == hash {
		return nil // unchanged (an informer resync, a rewrite with the same bytes)
	}
	if e != nil && e.errs != nil && e.badHash == hash {
		return e.errs // the same bad version again: already reported
	}
	p, errs := policy.Parse(doc)
	if len(errs) > 0 {
		s.rejectLocked(key, hash, errs)
		return errs
	}
	if e == nil {
		e = &entry{}
		s.entries[key] = e
	}
	e.good, e.goodHash, e.badHash, e.errs, e.since = p, hash, "", nil, time.Now()
	s.metrics.reloads.WithLabelValues("success").Inc()
	s.metrics.sourceValid.WithLabelValues(key).Set(1)
	s.publishLocked()
	s.log.Info("policy loaded", "event", "policy.loaded", "source", key, "policy", p.Name, "mode", string(p.Spec.Mode),
		"sha256", hash, "generation", s.generation)
	return nil
}

// Reject records an unusable version; see Updater.
func (s *Store) Reject(key string, errs field.ErrorList) {
	if len(errs) == 0 {
		errs = field.ErrorList{sourceError("rejected without a reason")}
	}
	h := sha256.New()
	for _, e := range errs {
		h.Write([]byte(e.Error()))
		h.Write([]byte{0})
	}
	hash := "reject:" + hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil && e.errs != nil && e.badHash == hash {
		return
	}
	s.rejectLocked(key, hash, errs)
}

// sourceError is an error about a source as a whole (an unreadable file), not about a field of a document.
func sourceError(msg string) *field.Error {
	return &field.Error{Type: field.ErrorTypeInternal, Detail: msg}
}

func (s *Store) rejectLocked(key, hash string, errs field.ErrorList) {
	e := s.entries[key]
	if e == nil {
		e = &entry{}
		s.entries[key] = e
	}
	e.badHash, e.errs, e.since = hash, errs, time.Now()
	msgs := errorStrings(errs)
	s.lastError = key + ": " + strings.Join(msgs, "; ")
	s.metrics.reloads.WithLabelValues("error").Inc()
	s.metrics.sourceValid.WithLabelValues(key).Set(0)
	kept := ""
	if e.good != nil {
		kept = e.good.Name
	}
	s.log.Error("policy rejected: the last good version stays in force", "event", "policy.rejected", "source", key,
		"errors", msgs, "kept_policy", kept, "generation", s.generation)
}

// Remove takes a key out of force; see Updater.
func (s *Store) Remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return
	}
	delete(s.entries, key)
	s.metrics.sourceValid.DeleteLabelValues(key)
	if e.good == nil {
		return
	}
	s.publishLocked()
	s.log.Info("policy removed", "event", "policy.removed", "source", key, "policy", e.good.Name, "generation", s.generation)
}

// publishLocked builds the set from every last good policy and swaps it in.
func (s *Store) publishLocked() {
	keys := make([]string, 0, len(s.entries))
	for k, e := range s.entries {
		if e.good != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	snap := &Snapshot{replaced: make(chan struct{})}
	var ps []*policy.Policy
	for _, k := range keys {
		e := s.entries[k]
		ps = append(ps, e.good)
		snap.Policies = append(snap.Policies, PolicyInfo{Name: e.good.Name, Source: k, SHA256: e.goodHash})
	}
	if len(ps) == 0 {
		def := defaultPolicy()
		ps = []*policy.Policy{def.policy}
		snap.Policies = []PolicyInfo{{Name: def.policy.Name, Source: DefaultSource, SHA256: def.sha256}}
		snap.Default = true
	}
	slices.SortStableFunc(snap.Policies, func(a, b PolicyInfo) int { return strings.Compare(a.Name, b.Name) })
	snap.Set = policy.NewSet(ps...)
	s.generation++
	snap.Generation = s.generation
	if prev := s.current.Swap(snap); prev != nil {
		close(prev.replaced)
	}
	s.metrics.generation.Set(float64(s.generation))
	s.metrics.policyLoaded.Reset()
	for _, pi := range snap.Policies {
		s.metrics.policyLoaded.WithLabelValues(pi.Name, pi.Source).Set(1)
	}
}

// defaultPolicy is the embedded default, parsed once (a Policy is immutable and shared).
var defaultPolicy = sync.OnceValue(func() struct {
	policy *policy.Policy
	sha256 string
} {
	sum := sha256.Sum256(policy.DefaultPolicyYAML())
	return struct {
		policy *policy.Policy
		sha256 string
	}{policy.Default(), hex.EncodeToString(sum[:])}
})

// status returns every key's state and the last reload error, sorted by key.
func (s *Store) status() ([]SourceStatus, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SourceStatus, 0, len(s.entries))
	for k, e := range s.entries {
		st := SourceStatus{Source: k, Valid: e.errs == nil, Errors: errorStrings(e.errs), Since: e.since}
		if e.good != nil {
			st.Policy = e.good.Name
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SourceStatus) int { return strings.Compare(a.Source, b.Source) })
	return out, s.lastError
}

// register adds a source that must sync before the server is ready, and returns its Updater.
func (s *Store) register(name string) Updater {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := name
	for i := 2; ; i++ { // two sources of the same name are tracked apart
		if _, dup := s.pending[name]; !dup {
			break
		}
		name = fmt.Sprintf("%s#%d", base, i)
	}
	s.pending[name] = true
	return &sourceUpdater{Store: s, name: name}
}

// AllSynced reports whether every source has delivered its initial state: before that, the set in force may
// be the embedded default while the real policies are still on their way.
func (s *Store) AllSynced() bool { return len(s.unsynced()) == 0 }

// unsynced lists the sources that have not delivered their initial state yet.
func (s *Store) unsynced() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n, p := range s.pending {
		if p {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

type sourceUpdater struct {
	*Store
	name string
	once sync.Once
}

func (u *sourceUpdater) Synced() {
	u.once.Do(func() {
		u.mu.Lock()
		u.pending[u.name] = false
		u.mu.Unlock()
		u.log.Info("policy source synced", "event", "policy.synced", "source", u.name)
	})
}

func errorStrings(errs field.ErrorList) []string {
	if len(errs) == 0 {
		return nil
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		if e.Field == "" {
			out[i] = e.ErrorBody()
		} else {
			out[i] = e.Error()
		}
	}
	return out
}
