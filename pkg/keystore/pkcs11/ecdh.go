package pkcs11

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"

	"signsvr.dev/signsvr/pkg/algorithm"
)

type agreer struct {
	k   *Key
	ctx context.Context
}

// ECDH derives the shared secret (the x-coordinate) with CKM_ECDH1_DERIVE into a
// session object, reads it and destroys the object.
func (a *agreer) ECDH(remote *ecdh.PublicKey) ([]byte, error) {
	k := a.k
	want := algorithm.Of(k.pub).ECDH()
	if remote == nil || want == nil || remote.Curve() != want {
		return nil, errors.New("pkcs11: ECDH peer key is on another curve")
	}
	m := mechanism{Type: ckmECDH1Derive, ECDH: &ecdh1Params{KDF: ckdNull, PublicData: remote.Bytes()}}
	tmpl := []attribute{
		ulongAttr(ckaClass, ckoSecretKey), ulongAttr(ckaKeyType, ckkGenericSecret),
		boolAttr(ckaToken, false), boolAttr(ckaSensitive, false), boolAttr(ckaExtractable, true),
		ulongAttr(ckaValueLen, uint(k.size)),
	}
	var secret []byte
	err := k.op(a.ctx, func(h sessionHandle, oh objectHandle) error {
		sk, err := k.tok.mod.DeriveKey(h, m, oh, tmpl)
		if err != nil {
			return err
		}
		defer k.tok.mod.DestroyObject(h, sk)
		attrs, err := k.tok.mod.Attributes(h, sk, []uint{ckaValue})
		if err != nil {
			return err
		}
		secret = attrs[ckaValue]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(secret) != k.size {
		return nil, fmt.Errorf("pkcs11: derived secret is %d bytes, want %d", len(secret), k.size)
	}
	return secret, nil
}
