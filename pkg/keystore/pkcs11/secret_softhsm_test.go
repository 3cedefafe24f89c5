//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keywrap"
)

// An AES key-encryption key in SoftHSM2 wraps and unwraps with CKM_AES_KEY_WRAP
// inside the token, interoperably with RFC 3394 as pkg/keywrap computes it with the
// same key; a tampered wrap fails with one error that is not a backend error.
func TestSoftHSMSecretKey(t *testing.T) {
	hsm := newSoftHSM(t)
	hsm.initToken("kek-token")
	tc := hsm.tokenConfig("kek-token")
	ctx := context.Background()
	value := make([]byte, 32)
	rand.Read(value)
	adm, err := OpenAdmin(tc)
	if err != nil {
		t.Fatal(err)
	}
	uri, err := adm.ImportSecretKey(ctx, "customs-kek", []byte{1, 2, 3}, value)
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Tokens: []TokenConfig{tc}, SecretKeys: []SecretKeyConfig{{Name: "kek", URI: uri, KeyID: "6b656b"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.SecretKey(ctx, "kek")
	if err != nil || k.KeySize() != 32 || !bytes.Equal(k.KeyID(), []byte("kek")) {
		t.Fatalf("SecretKey: %v", err)
	}
	if _, err := s.SecretKey(ctx, "other"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}
	cek := make([]byte, 32)
	rand.Read(cek)
	wrapped, err := k.WrapKey(ctx, cek)
	if err != nil {
		t.Fatal(err)
	}
	if soft, err := keywrap.Wrap(value, cek); err != nil || !bytes.Equal(soft, wrapped) {
		t.Fatalf("the token's wrap differs from RFC 3394: %x vs %x (%v)", wrapped, soft, err)
	}
	got, err := k.UnwrapKey(ctx, wrapped)
	if err != nil || !bytes.Equal(got, cek) {
		t.Fatalf("UnwrapKey: %x, %v", got, err)
	}
	wrapped[5] ^= 1
	_, err = k.UnwrapKey(ctx, wrapped)
	if err == nil || errors.Is(err, keystore.ErrUnavailable) || errors.Is(err, keystore.ErrBusy) {
		t.Fatalf("tampered unwrap: %v", err)
	}
	// Nothing of the content key is left in the token.
	if err := s.tokens[0].do(ctx, func(h sessionHandle, _ uint64) error {
		objs, err := s.tokens[0].mod.FindObjects(h, []attribute{ulongAttr(ckaClass, ckoSecretKey)})
		if err == nil && len(objs) != 1 {
			t.Errorf("%d secret objects in the token, want the KEK alone", len(objs))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Tokens: []TokenConfig{tc}, SecretKeys: []SecretKeyConfig{{Name: "kek", URI: uri + ";id=%09", KeyID: "01"}}}, Options{}); err == nil {
		t.Fatal("a URI that matches no key was accepted")
	}
}
