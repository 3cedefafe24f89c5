// Package secret is the keystore backend for symmetric key-encryption keys held in
// files: AES keys that the recipients of a CMS KEKRecipientInfo share with their
// senders (`openssl cms -encrypt -secretkey HEX -secretkeyid HEX` makes such
// envelopes).
//
// A key file holds the key as hexadecimal, as OpenSSL's -secretkey takes it (white
// space ignored), so the same file serves both; the key identifier is configuration,
// also hexadecimal. Keys are read once at startup and every mistake (a missing file,
// a key of the wrong length, a duplicate name or key id) is reported then, naming the
// key. The wrap and unwrap are AES key wrap (RFC 3394, pkg/keywrap) computed in
// process.
package secret

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keywrap"
)

// KeyConfig names one key in configuration.
type KeyConfig struct {
	// Name is the logical key name requests use.
	Name string `yaml:"name" json:"name"`
	// KeyFile holds the AES key (16, 24 or 32 bytes) in hexadecimal.
	KeyFile string `yaml:"key_file" json:"key_file"`
	// KeyID is the key identifier (kekid) in hexadecimal.
	KeyID string `yaml:"key_id" json:"key_id"`
}

// Store is an immutable set of keys. It is safe for concurrent use.
type Store struct {
	byName map[string]*Key
}

var _ keystore.SecretStore = (*Store)(nil)

// New reads every configured key.
func New(keys []KeyConfig) (*Store, error) {
	s := &Store{byName: map[string]*Key{}}
	for _, kc := range keys {
		k, err := load(kc)
		if err != nil {
			return nil, fmt.Errorf("secret: key %q: %w", kc.Name, err)
		}
		if err := s.add(k); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewFromKeys builds a store from keys in memory (tests, tools).
func NewFromKeys(keys ...*Key) (*Store, error) {
	s := &Store{byName: map[string]*Key{}}
	for _, k := range keys {
		if err := s.add(k); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) add(k *Key) error {
	if _, dup := s.byName[k.name]; dup {
		return fmt.Errorf("secret: key %q: configured twice", k.name)
	}
	for _, o := range s.byName {
		if bytes.Equal(o.id, k.id) {
			return fmt.Errorf("secret: keys %q and %q have the same key id", o.name, k.name)
		}
	}
	s.byName[k.name] = k
	return nil
}

// SecretKey implements keystore.SecretStore.
func (s *Store) SecretKey(_ context.Context, name string) (keystore.SecretKey, error) {
	if k, ok := s.byName[name]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %q", keystore.ErrNotFound, name)
}

// Names lists the key names.
func (s *Store) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	return out
}

func load(kc KeyConfig) (*Key, error) {
	if kc.KeyFile == "" {
		return nil, errors.New("no key_file given")
	}
	b, err := os.ReadFile(kc.KeyFile)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not hexadecimal", kc.KeyFile)
	}
	id, err := hex.DecodeString(kc.KeyID)
	if err != nil {
		return nil, errors.New("key_id: not hexadecimal")
	}
	return NewKey(kc.Name, id, key)
}

// Key is one AES key-encryption key.
type Key struct {
	name string
	id   []byte
	key  []byte
}

var _ keystore.SecretKey = (*Key)(nil)

// NewKey checks and holds an AES key (copied) under a name and a key id.
func NewKey(name string, id, key []byte) (*Key, error) {
	switch {
	case name == "":
		return nil, errors.New("secret: a key has no name")
	case len(id) == 0:
		return nil, fmt.Errorf("secret: key %q: no key_id given", name)
	case len(key) != 16 && len(key) != 24 && len(key) != 32:
		return nil, fmt.Errorf("secret: key %q: an AES key is 16, 24 or 32 bytes, not %d", name, len(key))
	}
	return &Key{name: name, id: bytes.Clone(id), key: bytes.Clone(key)}, nil
}

// Name implements keystore.SecretKey.
func (k *Key) Name() string { return k.name }

// KeyID implements keystore.SecretKey.
func (k *Key) KeyID() []byte { return k.id }

// KeySize implements keystore.SecretKey.
func (k *Key) KeySize() int { return len(k.key) }

// WrapKey implements keystore.SecretKey.
func (k *Key) WrapKey(_ context.Context, key []byte) ([]byte, error) { return keywrap.Wrap(k.key, key) }

// UnwrapKey implements keystore.SecretKey.
func (k *Key) UnwrapKey(_ context.Context, wrapped []byte) ([]byte, error) {
	return keywrap.Unwrap(k.key, wrapped)
}
