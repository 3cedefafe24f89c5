package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"signsvr.dev/signsvr/pkg/keystore"
)

type decrypter struct {
	k   *Key
	ctx context.Context
}

func (d *decrypter) Public() crypto.PublicKey { return d.k.pub }

// errDecrypt is what a failed decryption returns: it never says why, so it cannot
// serve as a padding oracle. The PKCS#11 cause is kept for logs via Unwrap.
type errDecrypt struct{ cause error }

func (e errDecrypt) Error() string { return "pkcs11: decryption failed" }
func (e errDecrypt) Unwrap() error { return e.cause }

// Decrypt decrypts RSA (PKCS#1 v1.5, with implicit rejection when opts is
// *rsa.PKCS1v15DecryptOptions with SessionKeyLen > 0; OAEP with *rsa.OAEPOptions) or
// SM2 (gmsm ciphertext, ASN.1 or plain per *sm2.DecrypterOpts).
func (d *decrypter) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k := d.k
	if k.kind == kindSM2 {
		cfg := k.tok.sm2
		if cfg.Decrypt == 0 {
			return nil, errors.New("pkcs11: no SM2 decrypt_mechanism configured")
		}
		ct, err := sm2Ciphertext(msg, opts, cfg.CiphertextFormat)
		if err != nil {
			return nil, errDecrypt{err}
		}
		pt, err := k.rawDecrypt(d.ctx, mechanism{Type: cfg.Decrypt}, ct)
		if err != nil {
			if isPoolError(err) {
				return nil, err
			}
			return nil, errDecrypt{err}
		}
		return pt, nil
	}
	switch o := opts.(type) {
	case *rsa.OAEPOptions:
		mgf := o.MGFHash
		if mgf == 0 {
			mgf = o.Hash
		}
		if _, _, err := hashMechanisms(o.Hash); err != nil {
			return nil, err
		}
		if _, _, err := hashMechanisms(mgf); err != nil {
			return nil, err
		}
		mode, err := k.oaepModeFor(d.ctx, o.Hash, mgf)
		if err != nil {
			return nil, err
		}
		pt, err := k.decryptOAEP(d.ctx, mode, o.Hash, mgf, o.Label, msg)
		if err != nil {
			if isPoolError(err) {
				return nil, err
			}
			return nil, errDecrypt{err}
		}
		return pt, nil
	//lint:ignore SA1019 RSA PKCS#1 v1.5 key transport is what CMS peers (OpenSSL by default) write; it is read with implicit rejection.
	case *rsa.PKCS1v15DecryptOptions:
		if o != nil && o.SessionKeyLen > 0 {
			return k.decryptSessionKey(d.ctx, r, msg, o.SessionKeyLen)
		}
	case nil:
	default:
		return nil, fmt.Errorf("pkcs11: unsupported decrypter options %T", opts)
	}
	pt, err := k.rawDecrypt(d.ctx, mechanism{Type: ckmRSAPKCS}, msg)
	if err != nil {
		if isPoolError(err) {
			return nil, err
		}
		return nil, errDecrypt{err}
	}
	return pt, nil
}

// decryptSessionKey is PKCS#1 v1.5 decryption with implicit rejection: whatever is
// wrong with the ciphertext, the answer is keyLen bytes, random when the padding or
// the length is bad, so a caller learns nothing from the outcome (RFC 3218 2.3.2).
// Only a failure of the token itself (unavailable, busy) is an error.
func (k *Key) decryptSessionKey(ctx context.Context, r io.Reader, msg []byte, keyLen int) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	out := make([]byte, keyLen)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	if len(msg) != k.size {
		return out, nil
	}
	pt, err := k.rawDecrypt(ctx, mechanism{Type: ckmRSAPKCS}, msg)
	if err != nil {
		if isPoolError(err) {
			return nil, err
		}
		return out, nil
	}
	subtle.ConstantTimeCopy(subtle.ConstantTimeEq(int32(len(pt)), int32(keyLen)), out, padTo(pt, keyLen))
	return out, nil
}

// isPoolError reports whether err is about the token (down, busy) rather than the data.
func isPoolError(err error) bool {
	return errors.Is(err, keystore.ErrUnavailable) || errors.Is(err, keystore.ErrBusy)
}

func padTo(b []byte, n int) []byte {
	if len(b) == n {
		return b
	}
	return make([]byte, n)
}
