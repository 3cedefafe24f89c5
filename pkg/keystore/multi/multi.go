// Package multi combines several key stores into one, so a server can hold some keys
// in PKCS#8 files (the soft store) and others in one or more HSM tokens, and requests
// still name every key by its logical name alone.
//
// Names are unique across the parts: a name configured in two places is an error when
// the combination is built, never a silent preference for one of them. The combination
// is a keystore.HealthChecker over the parts that can be down (an HSM): it reports
// unavailable while any of them is, because a server that cannot reach some of its
// keys must not take traffic for them. The keys themselves are the parts' own values,
// never wrapped, so no optional ability of a backend's key is hidden.
package multi

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"signsvr.dev/signsvr/pkg/keystore"
)

// Part is one store of the combination and the backend name ListKeys shows for its
// keys ("soft", "pkcs11").
type Part struct {
	Backend string
	Store   keystore.Store
}

// Store is several stores as one. It is safe for concurrent use when its parts are.
type Store struct {
	parts  []Part
	byName map[string]int // key name -> index in parts
}

var (
	_ keystore.Store         = (*Store)(nil)
	_ keystore.HealthChecker = (*Store)(nil)
)

// New combines parts. It lists every part's keys once to index them by name and fails
// when two parts hold a key of the same name. On error the parts stay open: the
// caller owns them until New succeeds, and then Store.Close closes them all.
func New(ctx context.Context, parts ...Part) (*Store, error) {
	s := &Store{parts: parts, byName: map[string]int{}}
	for i, p := range parts {
		if p.Store == nil {
			return nil, fmt.Errorf("multi: part %d (%s) has no store", i+1, p.Backend)
		}
		keys, err := p.Store.Keys(ctx)
		if err != nil {
			return nil, fmt.Errorf("multi: list the %s keys: %w", p.Backend, err)
		}
		for _, k := range keys {
			if j, dup := s.byName[k.Name()]; dup {
				return nil, fmt.Errorf("multi: key name %q is configured in both the %s and the %s store; key names must be unique",
					k.Name(), parts[j].Backend, p.Backend)
			}
			s.byName[k.Name()] = i
		}
	}
	return s, nil
}

// Key returns the named key from the part that holds it, or an error wrapping
// keystore.ErrNotFound.
func (s *Store) Key(ctx context.Context, name string) (keystore.Key, error) {
	i, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", keystore.ErrNotFound, name)
	}
	return s.parts[i].Store.Key(ctx, name)
}

// Keys lists the keys of every part, sorted by name.
func (s *Store) Keys(ctx context.Context) ([]keystore.Key, error) {
	var all []keystore.Key
	for _, p := range s.parts {
		keys, err := p.Store.Keys(ctx)
		if err != nil {
			return nil, fmt.Errorf("multi: list the %s keys: %w", p.Backend, err)
		}
		all = append(all, keys...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name() < all[j].Name() })
	return all, nil
}

// Backend is the backend name of the part that holds the named key, or "" when no
// part does. The server shows it per key in ListKeys.
func (s *Store) Backend(name string) string {
	i, ok := s.byName[name]
	if !ok {
		return ""
	}
	return s.parts[i].Backend
}

// Health asks every part that can be down. It is nil while all of them serve, else
// an error wrapping keystore.ErrUnavailable that names the parts that are down.
func (s *Store) Health(ctx context.Context) error {
	var errs []error
	for _, p := range s.parts {
		hc, ok := p.Store.(keystore.HealthChecker)
		if !ok {
			continue
		}
		if err := hc.Health(ctx); err != nil {
			if !errors.Is(err, keystore.ErrUnavailable) {
				err = fmt.Errorf("%w: %w", keystore.ErrUnavailable, err)
			}
			errs = append(errs, fmt.Errorf("%s store: %w", p.Backend, err))
		}
	}
	return errors.Join(errs...)
}

// Close closes every part, in reverse order, and returns their errors joined.
func (s *Store) Close() error {
	var errs []error
	for i := len(s.parts) - 1; i >= 0; i-- {
		if err := s.parts[i].Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s store: %w", s.parts[i].Backend, err))
		}
	}
	return errors.Join(errs...)
}

// Secrets combines secret stores (keystore.SecretStore): the first that holds a name
// answers for it. Names are unique across them and across the key stores; the caller
// checks that when it builds the combination (the stores list no secret keys).
type Secrets []keystore.SecretStore

var _ keystore.SecretStore = Secrets(nil)

// SecretKey implements keystore.SecretStore.
func (ss Secrets) SecretKey(ctx context.Context, name string) (keystore.SecretKey, error) {
	for _, s := range ss {
		k, err := s.SecretKey(ctx, name)
		if !errors.Is(err, keystore.ErrNotFound) {
			return k, err
		}
	}
	return nil, fmt.Errorf("%w: %q", keystore.ErrNotFound, name)
}

// SecretStores lists the parts that hold symmetric key-encryption keys.
func (s *Store) SecretStores() Secrets {
	var out Secrets
	for _, p := range s.parts {
		if ss, ok := p.Store.(keystore.SecretStore); ok {
			out = append(out, ss)
		}
	}
	return out
}
