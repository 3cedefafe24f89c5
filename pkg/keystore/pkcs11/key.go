package pkcs11

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
)

type keyKind int

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindSM2
)

// Key is one key in a token.
type Key struct {
	name   string
	tok    *token
	uri    *URI
	usages keystore.Usage
	kind   keyKind
	pub    crypto.PublicKey
	chain  []*smx509.Certificate
	size   int // RSA modulus bytes, or EC coordinate bytes

	handles handleCache
	check   *keystore.SelfCheck

	oaepMu sync.Mutex
	oaep   map[oaepKey]oaepMode
}

var _ keystore.Key = (*Key)(nil)

// Name is the logical key name.
func (k *Key) Name() string { return k.name }

// Public is the key's public key, from its certificate.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Chain is the certificate chain, leaf first.
func (k *Key) Chain() []*smx509.Certificate { return k.chain }

// Usages is what the configuration allows.
func (k *Key) Usages() keystore.Usage { return k.usages }

// SelfCheck is the key's self-check policy, from its token's self_check setting.
func (k *Key) SelfCheck() *keystore.SelfCheck { return k.check }

var _ keystore.SelfCheckedKey = (*Key)(nil)

// Signer returns a signer bound to ctx, or nil when the key may not sign.
func (k *Key) Signer(ctx context.Context) crypto.Signer {
	if !k.usages.Has(keystore.UsageSign) {
		return nil
	}
	if k.kind == kindSM2 {
		return &sm2Signer{signer{k, ctx}}
	}
	return &signer{k, ctx}
}

// Decrypter returns a decrypter bound to ctx for RSA and SM2 keys allowed to decrypt.
func (k *Key) Decrypter(ctx context.Context) crypto.Decrypter {
	if !k.usages.Has(keystore.UsageDecrypt) || k.kind == kindEC {
		return nil
	}
	return &decrypter{k, ctx}
}

// KeyAgreer returns an ECDH agreer bound to ctx for EC keys allowed to decrypt.
func (k *Key) KeyAgreer(ctx context.Context) keystore.KeyAgreer {
	if !k.usages.Has(keystore.UsageDecrypt) || k.kind != kindEC {
		return nil
	}
	return &agreer{k, ctx}
}

// handleCache remembers a key's object handle for one handle generation of its token.
type handleCache struct {
	mu  sync.Mutex
	h   objectHandle
	gen uint64
	ok  bool
}

func (k *Key) privateHandle(h sessionHandle, gen uint64) (objectHandle, error) {
	c := &k.handles
	c.mu.Lock()
	if c.ok && c.gen == gen {
		oh := c.h
		c.mu.Unlock()
		return oh, nil
	}
	c.mu.Unlock()
	oh, err := findPrivateKey(k.tok.mod, h, k.uri)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.h, c.gen, c.ok = oh, gen, true
	c.mu.Unlock()
	return oh, nil
}

// errKeyMissing means the URI matches no private key in the token.
var errKeyMissing = errors.New("no private key in the token matches the URI")

func findPrivateKey(mod module, h sessionHandle, u *URI) (objectHandle, error) {
	tmpl := []attribute{ulongAttr(ckaClass, ckoPrivateKey)}
	if u.Has("object") {
		tmpl = append(tmpl, attribute{ckaLabel, []byte(u.Object)})
	}
	if u.Has("id") {
		tmpl = append(tmpl, attribute{ckaID, u.ID})
	}
	objs, err := mod.FindObjects(h, tmpl)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 0:
		return 0, errKeyMissing
	case 1:
		return objs[0], nil
	}
	return 0, fmt.Errorf("the URI matches %d private keys; add id= or a more specific object=", len(objs))
}

// op runs one key operation on a pooled session, with the key's handle.
func (k *Key) op(ctx context.Context, fn func(h sessionHandle, oh objectHandle) error) error {
	return k.tok.do(ctx, func(h sessionHandle, gen uint64) error {
		oh, err := k.privateHandle(h, gen)
		if err != nil {
			return err
		}
		return fn(h, oh)
	})
}

func (k *Key) rawSign(ctx context.Context, m mechanism, data []byte) (sig []byte, err error) {
	err = k.op(ctx, func(h sessionHandle, oh objectHandle) error {
		var e error
		sig, e = k.tok.mod.Sign(h, m, oh, data)
		return e
	})
	return sig, err
}

func (k *Key) rawDecrypt(ctx context.Context, m mechanism, data []byte) (pt []byte, err error) {
	err = k.op(ctx, func(h sessionHandle, oh objectHandle) error {
		var e error
		pt, e = k.tok.mod.Decrypt(h, m, oh, data)
		return e
	})
	return pt, err
}
