package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"signsvr.dev/signsvr/pkg/keystore"
)

// Store is the set of configured HSM keys. It is safe for concurrent use.
type Store struct {
	tokens []*token
	mods   []module
	byName map[string]*Key
	sorted []keystore.Key
	// secrets are the AES key-encryption keys (secret.go).
	secrets map[string]*SecretKey
}

var (
	_ keystore.Store         = (*Store)(nil)
	_ keystore.HealthChecker = (*Store)(nil)
	_ keystore.SecretStore   = (*Store)(nil)
)

// opener loads a PKCS#11 library by path.
type opener func(path string) (module, error)

// Options are for tests and embedding; the zero value is right for production.
type Options struct {
	// Now is the clock of the circuit breaker. Nil means time.Now.
	Now func() time.Time
}

// New opens every configured token, logs in, finds every key, loads its certificate
// chain and checks it: the certificate's public key must be the token key's, and each
// allowed operation is run once and verified. The error names the key or token that
// failed. Without cgo it fails with "PKCS#11 support needs a cgo build".
func New(cfg Config, opts Options) (*Store, error) {
	return newStore(cfg, opts, openModule)
}

func newStore(cfg Config, opts Options, open opener) (_ *Store, err error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{byName: map[string]*Key{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	mods := map[string]module{}
	for i, tc := range cfg.Tokens {
		if tc.Module == "" {
			return nil, fmt.Errorf("pkcs11: token %d (%q): no module path given", i+1, tc.Label)
		}
		mod, ok := mods[tc.Module]
		if !ok {
			mod, err = open(tc.Module)
			if err != nil {
				return nil, fmt.Errorf("pkcs11: token %q: module %s: %w", tc.Label, tc.Module, err)
			}
			mods[tc.Module] = mod
			s.mods = append(s.mods, mod)
		}
		for _, other := range s.tokens {
			if other.cfg.Label == tc.Label && other.cfg.Serial == tc.Serial {
				return nil, fmt.Errorf("pkcs11: token %q configured twice", tc.Label)
			}
		}
		t, err := newToken(tc, mod, now)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: token %q (module %s): %w", tc.Label, tc.Module, err)
		}
		s.tokens = append(s.tokens, t)
	}
	ctx := context.Background()
	for _, kc := range cfg.Keys {
		if kc.Name == "" {
			return nil, fmt.Errorf("pkcs11: a key (uri %s) has no name", redactURI(kc.URI))
		}
		if _, dup := s.byName[kc.Name]; dup {
			return nil, fmt.Errorf("pkcs11: key %q configured twice", kc.Name)
		}
		k, err := s.loadKey(ctx, kc)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: key %q (%s): %w", kc.Name, redactURI(kc.URI), err)
		}
		s.byName[k.name] = k
		s.sorted = append(s.sorted, k)
		if k.tok.probeKey == nil {
			k.tok.probeKey = k.uri
		}
	}
	sort.Slice(s.sorted, func(i, j int) bool { return s.sorted[i].Name() < s.sorted[j].Name() })
	s.secrets = map[string]*SecretKey{}
	for _, kc := range cfg.SecretKeys {
		_, dup := s.byName[kc.Name]
		if _, dup2 := s.secrets[kc.Name]; kc.Name == "" || dup || dup2 {
			return nil, fmt.Errorf("pkcs11: secret key %q: no name, or configured twice", kc.Name)
		}
		k, err := s.loadSecretKey(ctx, kc)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: secret key %q (%s): %w", kc.Name, redactURI(kc.URI), err)
		}
		s.secrets[kc.Name] = k
	}
	return s, nil
}

func (s *Store) tokenFor(u *URI) (*token, error) {
	for _, t := range s.tokens {
		if t.cfg.Label == u.Token && (!u.Has("serial") || u.Serial == t.cfg.Serial) {
			return t, nil
		}
	}
	return nil, fmt.Errorf("no token labelled %q is configured", u.Token)
}

// Key returns the named key or an error wrapping keystore.ErrNotFound.
func (s *Store) Key(_ context.Context, name string) (keystore.Key, error) {
	k, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", keystore.ErrNotFound, name)
	}
	return k, nil
}

// Keys lists every key sorted by name.
func (s *Store) Keys(context.Context) ([]keystore.Key, error) {
	return append([]keystore.Key(nil), s.sorted...), nil
}

// Health is nil while every token serves, else an error wrapping keystore.ErrUnavailable
// naming the tokens that are down. It probes a token that is down when a probe is due,
// so polling Health heals the store even without traffic.
func (s *Store) Health(ctx context.Context) error {
	var errs []error
	for _, t := range s.tokens {
		if err := t.health(ctx); err != nil {
			if !errors.Is(err, keystore.ErrUnavailable) {
				err = t.unavailable(err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats reports each token's pool counters, in configuration order.
func (s *Store) Stats() []Stats {
	out := make([]Stats, len(s.tokens))
	for i, t := range s.tokens {
		out[i] = t.stats()
	}
	return out
}

// Close closes every session and releases the libraries.
func (s *Store) Close() error {
	for _, t := range s.tokens {
		t.close()
	}
	var errs []error
	for _, m := range s.mods {
		errs = append(errs, m.Close())
	}
	s.mods = nil
	return errors.Join(errs...)
}
