// Package generation puts several keys under one logical name, as generations: one
// active (it signs and receives new envelopes), older ones decrypt-only (envelopes
// made to their certificates still open) or retired. Certificates expire, and an
// encryption certificate is replaced while envelopes made to the old one are still
// on their way; the name clients use stays the same throughout.
//
// Each generation is an ordinary key of the inner store (a file of the soft store,
// an object of an HSM) under a name of its own, which this store hides: requests
// name the logical key only. Key(name) returns the active generation, wrapped so that
// its Name is the logical name and it lists its generations
// (keystore.GenerationalKey); the optional abilities of the inner key (GoNativeKey,
// SelfCheckedKey) are forwarded, never hidden. Names without generations pass
// through unchanged.
package generation

import (
	"context"
	"fmt"
	"sort"

	"signsvr.dev/signsvr/pkg/keystore"
)

// Spec places one generation: the logical name, its id and state, and the name of
// its key in the inner store.
type Spec struct {
	Name, ID string
	State    keystore.GenerationState
	Inner    string
}

// Store is an inner store with generations. It is safe for concurrent use when the
// inner store is.
type Store struct {
	inner   keystore.Store
	logical map[string]*key
	hidden  map[string]bool
}

var _ keystore.Store = (*Store)(nil)

// New builds the store. Every logical name needs exactly one active generation and
// ids unique within it; every inner name must be a key of inner. On error inner stays
// open (the caller owns it); after success Close closes it.
func New(ctx context.Context, inner keystore.Store, specs []Spec) (*Store, error) {
	s := &Store{inner: inner, logical: map[string]*key{}, hidden: map[string]bool{}}
	byName := map[string][]Spec{}
	var names []string
	for _, sp := range specs {
		if _, ok := byName[sp.Name]; !ok {
			names = append(names, sp.Name)
		}
		byName[sp.Name] = append(byName[sp.Name], sp)
	}
	for _, name := range names {
		k := &key{name: name}
		ids := map[string]bool{}
		for _, sp := range byName[name] {
			if ids[sp.ID] {
				return nil, fmt.Errorf("generation: key %q: generation %q is configured twice", name, sp.ID)
			}
			ids[sp.ID] = true
			ik, err := inner.Key(ctx, sp.Inner)
			if err != nil {
				return nil, fmt.Errorf("generation: key %q generation %q: %w", name, sp.ID, err)
			}
			g := keystore.Generation{ID: sp.ID, State: sp.State, Key: ik}
			if sp.State == keystore.Active {
				if k.Key != nil {
					return nil, fmt.Errorf("generation: key %q has two active generations (%q and %q)", name, k.gens[0].ID, sp.ID)
				}
				k.Key = ik
				k.gens = append([]keystore.Generation{g}, k.gens...)
			} else {
				k.gens = append(k.gens, g)
			}
			s.hidden[sp.Inner] = true
		}
		if k.Key == nil {
			return nil, fmt.Errorf("generation: key %q has no active generation", name)
		}
		if _, err := inner.Key(ctx, name); err == nil {
			return nil, fmt.Errorf("generation: key name %q is configured both with and without generations", name)
		}
		s.logical[name] = k
	}
	return s, nil
}

// Key returns the named key: a logical key's active generation, or an inner key
// that has no generations. An inner name of a generation is not found.
func (s *Store) Key(ctx context.Context, name string) (keystore.Key, error) {
	if k, ok := s.logical[name]; ok {
		return k, nil
	}
	if s.hidden[name] {
		return nil, fmt.Errorf("%w: %q", keystore.ErrNotFound, name)
	}
	return s.inner.Key(ctx, name)
}

// Keys lists the logical keys and the inner keys without generations, by name.
func (s *Store) Keys(ctx context.Context) ([]keystore.Key, error) {
	inner, err := s.inner.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]keystore.Key, 0, len(inner))
	for _, k := range inner {
		if !s.hidden[k.Name()] {
			out = append(out, k)
		}
	}
	for _, k := range s.logical {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Backend names the inner store's backend of a key (its active generation's), when
// the inner store names backends.
func (s *Store) Backend(name string) string {
	b, ok := s.inner.(interface{ Backend(string) string })
	if !ok {
		return ""
	}
	if k, ok := s.logical[name]; ok {
		return b.Backend(k.Key.Name())
	}
	return b.Backend(name)
}

// Health is the inner store's, when it can be down.
func (s *Store) Health(ctx context.Context) error {
	if hc, ok := s.inner.(keystore.HealthChecker); ok {
		return hc.Health(ctx)
	}
	return nil
}

// Close closes the inner store.
func (s *Store) Close() error { return s.inner.Close() }

// key is a logical key: its active generation's Key, under the logical name.
type key struct {
	keystore.Key
	name string
	gens []keystore.Generation // the active first
}

var (
	_ keystore.GenerationalKey = (*key)(nil)
	_ keystore.GoNativeKey     = (*key)(nil)
	_ keystore.SelfCheckedKey  = (*key)(nil)
)

func (k *key) Name() string                       { return k.name }
func (k *key) Generations() []keystore.Generation { return k.gens }
func (k *key) GoNative() bool                     { return keystore.IsGoNative(k.Key) }

// SelfCheck is the active generation's self-check policy (nil: check every one).
func (k *key) SelfCheck() *keystore.SelfCheck {
	if sc, ok := k.Key.(keystore.SelfCheckedKey); ok {
		return sc.SelfCheck()
	}
	return nil
}
