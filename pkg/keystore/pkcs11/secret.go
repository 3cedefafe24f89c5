package pkcs11

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"signsvr.dev/signsvr/pkg/keystore"
)

// Symmetric key-encryption keys
//
// A secret key is an AES key object in a token (CKO_SECRET_KEY, CKK_AES) that wraps
// and unwraps content keys with CKM_AES_KEY_WRAP (RFC 3394) for the KEK recipients of
// CMS envelopes: C_UnwrapKey inside the token makes a session object of the content
// key, whose value is read and the object destroyed (the content is decrypted in the
// server); C_WrapKey wraps a content key imported as a session object. The key
// itself never leaves the token: it may be CKA_SENSITIVE and not extractable.

// SecretKeyConfig names one AES key-encryption key in a token.
type SecretKeyConfig struct {
	// Name is the logical key name requests use.
	Name string `yaml:"name" json:"name"`
	// URI is the RFC 7512 URI of the AES key (object= and/or id=; type=secret-key or
	// none).
	URI string `yaml:"uri" json:"uri"`
	// KeyID is the key identifier (kekid) KEKRecipientInfos name the key by, in
	// hexadecimal.
	KeyID string `yaml:"key_id" json:"key_id"`
}

const (
	ckkAES        = 0x1F
	ckmAESKeyWrap = 0x2109
)

// wrapModule is the part of the seam that wraps and unwraps keys: C_WrapKey and
// C_UnwrapKey. A module without it (a test fake) has no secret keys.
type wrapModule interface {
	WrapKey(h sessionHandle, m mechanism, wrapping, key objectHandle) ([]byte, error)
	UnwrapKey(h sessionHandle, m mechanism, unwrapping objectHandle, wrapped []byte, tmpl []attribute) (objectHandle, error)
}

// SecretKey is one AES key-encryption key in a token. It implements
// keystore.SecretKey.
type SecretKey struct {
	name string
	id   []byte
	size int
	tok  *token
	uri  *URI
}

var _ keystore.SecretKey = (*SecretKey)(nil)

// Name implements keystore.SecretKey.
func (k *SecretKey) Name() string { return k.name }

// KeyID implements keystore.SecretKey.
func (k *SecretKey) KeyID() []byte { return k.id }

// KeySize implements keystore.SecretKey.
func (k *SecretKey) KeySize() int { return k.size }

// errUnwrap is the one error of a failed unwrap about the data; the PKCS#11 cause is
// kept for logs.
type errUnwrap struct{ cause error }

func (e errUnwrap) Error() string { return "pkcs11: key unwrap failed" }
func (e errUnwrap) Unwrap() error { return e.cause }

func findSecretKey(mod module, h sessionHandle, u *URI) (objectHandle, error) {
	tmpl := []attribute{ulongAttr(ckaClass, ckoSecretKey)}
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
	return 0, fmt.Errorf("the URI matches %d secret keys; add id= or a more specific object=", len(objs))
}

// sessionKey is the template of the content key as a session object: readable, so
// its value can be read after the unwrap and wrapped after the import.
func sessionKey(value []byte) []attribute {
	t := []attribute{ulongAttr(ckaClass, ckoSecretKey), ulongAttr(ckaKeyType, ckkGenericSecret),
		boolAttr(ckaToken, false), boolAttr(ckaSensitive, false), boolAttr(ckaExtractable, true)}
	if value != nil {
		t = append(t, attribute{ckaValue, value})
	}
	return t
}

func (k *SecretKey) wrapper() (wrapModule, error) {
	w, ok := k.tok.mod.(wrapModule)
	if !ok {
		return nil, errors.New("pkcs11: the module cannot wrap keys")
	}
	return w, nil
}

// WrapKey implements keystore.SecretKey.
func (k *SecretKey) WrapKey(ctx context.Context, key []byte) (out []byte, err error) {
	w, err := k.wrapper()
	if err != nil {
		return nil, err
	}
	err = k.tok.do(ctx, func(h sessionHandle, _ uint64) error {
		kek, err := findSecretKey(k.tok.mod, h, k.uri)
		if err != nil {
			return err
		}
		obj, err := k.tok.mod.CreateObject(h, sessionKey(key))
		if err != nil {
			return err
		}
		defer k.tok.mod.DestroyObject(h, obj)
		out, err = w.WrapKey(h, mechanism{Type: ckmAESKeyWrap}, kek, obj)
		return err
	})
	return out, err
}

// UnwrapKey implements keystore.SecretKey.
func (k *SecretKey) UnwrapKey(ctx context.Context, wrapped []byte) (key []byte, err error) {
	w, err := k.wrapper()
	if err != nil {
		return nil, err
	}
	err = k.tok.do(ctx, func(h sessionHandle, _ uint64) error {
		kek, err := findSecretKey(k.tok.mod, h, k.uri)
		if err != nil {
			return err
		}
		obj, err := w.UnwrapKey(h, mechanism{Type: ckmAESKeyWrap}, kek, wrapped, sessionKey(nil))
		if err != nil {
			if sessionFatal(err) {
				return err
			}
			return errUnwrap{err}
		}
		defer k.tok.mod.DestroyObject(h, obj)
		attrs, err := k.tok.mod.Attributes(h, obj, []uint{ckaValue})
		if err != nil {
			return err
		}
		key = attrs[ckaValue]
		return nil
	})
	return key, err
}

// loadSecretKey finds a configured secret key and checks it is an AES key.
func (s *Store) loadSecretKey(ctx context.Context, kc SecretKeyConfig) (*SecretKey, error) {
	u, err := ParseURI(kc.URI)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Has("pin-value"):
		return nil, errors.New("pkcs11 URI: pin-value is not allowed: give the PIN with the token's pin_file or pin_env")
	case !u.Has("token"):
		return nil, errors.New("pkcs11 URI: no token= attribute")
	case !u.Has("object") && !u.Has("id"):
		return nil, errors.New("pkcs11 URI: no object= or id= attribute naming the key")
	case u.Has("type") && u.Type != "secret-key":
		return nil, fmt.Errorf("pkcs11 URI: type=%s, but a key-encryption key is type=secret-key", u.Type)
	}
	id, err := hex.DecodeString(kc.KeyID)
	if err != nil || len(id) == 0 {
		return nil, errors.New("key_id: give the key identifier in hexadecimal")
	}
	t, err := s.tokenFor(u)
	if err != nil {
		return nil, err
	}
	k := &SecretKey{name: kc.Name, id: id, tok: t, uri: u}
	if _, ok := t.mod.(wrapModule); !ok {
		return nil, errors.New("the PKCS#11 module cannot wrap keys")
	}
	err = t.do(ctx, func(h sessionHandle, _ uint64) error {
		oh, err := findSecretKey(t.mod, h, u)
		if err != nil {
			return err
		}
		attrs, err := t.mod.Attributes(h, oh, []uint{ckaKeyType, ckaValueLen})
		if err != nil {
			return err
		}
		kt, _ := decodeULong(attrs[ckaKeyType])
		n, _ := decodeULong(attrs[ckaValueLen])
		if kt != ckkAES || (n != 16 && n != 24 && n != 32) {
			return fmt.Errorf("not an AES key of 16, 24 or 32 bytes (key type 0x%X, %d bytes)", kt, n)
		}
		k.size = int(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// SecretKey implements keystore.SecretStore.
func (s *Store) SecretKey(_ context.Context, name string) (keystore.SecretKey, error) {
	k, ok := s.secrets[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", keystore.ErrNotFound, name)
	}
	return k, nil
}

const (
	ckaWrap   = 0x106
	ckaUnwrap = 0x107
)

// ImportSecretKey stores an AES key-encryption key in the token as a token object
// labelled label, with CKA_ID id: sensitive and not extractable, allowed to wrap and
// unwrap only. It returns the key's URI. (A KEK is shared with the senders, so it is
// imported rather than generated.)
func (a *Admin) ImportSecretKey(ctx context.Context, label string, id, value []byte) (string, error) {
	if n := len(value); n != 16 && n != 24 && n != 32 {
		return "", fmt.Errorf("pkcs11: an AES key is 16, 24 or 32 bytes, not %d", n)
	}
	if label == "" || len(id) == 0 {
		return "", errors.New("pkcs11: a secret key needs a label and an id")
	}
	tmpl := []attribute{ulongAttr(ckaClass, ckoSecretKey), ulongAttr(ckaKeyType, ckkAES),
		boolAttr(ckaToken, true), boolAttr(ckaPrivate, true), boolAttr(ckaSensitive, true), boolAttr(ckaExtractable, false),
		boolAttr(ckaWrap, true), boolAttr(ckaUnwrap, true), boolAttr(ckaEncrypt, false), boolAttr(ckaDecrypt, false),
		{ckaLabel, []byte(label)}, {ckaID, id}, {ckaValue, value}}
	err := a.tok.do(ctx, func(h sessionHandle, _ uint64) error {
		_, err := a.mod.CreateObject(h, tmpl)
		return err
	})
	if err != nil {
		return "", err
	}
	return "pkcs11:token=" + pctEncode([]byte(a.tok.cfg.Label), true) + ";object=" + pctEncode([]byte(label), true) + ";type=secret-key", nil
}
