package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"

	"github.com/emmansun/gmsm/sm2"
)

type signer struct {
	k   *Key
	ctx context.Context
}

func (s *signer) Public() crypto.PublicKey { return s.k.pub }

// Sign signs digest: RSA PKCS#1 v1.5 (opts a crypto.Hash) or PSS (*rsa.PSSOptions),
// ECDSA (DER output), or for SM2 keys as sm2Signer documents.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k := s.k
	switch k.kind {
	case kindRSA:
		return k.signRSA(s.ctx, digest, opts)
	case kindEC:
		if opts != nil && opts.HashFunc() != 0 && len(digest) != opts.HashFunc().Size() {
			return nil, fmt.Errorf("pkcs11: digest is %d bytes, %v needs %d", len(digest), opts.HashFunc(), opts.HashFunc().Size())
		}
		d := digest
		if len(d) > k.size {
			d = d[:k.size] // leftmost bits; P-256/P-384 orders are whole bytes
		}
		raw, err := k.rawSign(s.ctx, mechanism{Type: ckmECDSA}, d)
		if err != nil {
			return nil, err
		}
		return rawToDER(raw, k.size)
	case kindSM2:
		return k.signSM2(s.ctx, digest, opts)
	}
	return nil, errors.New("pkcs11: unknown key kind")
}

func (k *Key) signRSA(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, errors.New("pkcs11: RSA signing needs the hash in opts")
	}
	h := opts.HashFunc()
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		ckm, mgf, err := hashMechanisms(h)
		if err != nil {
			return nil, err
		}
		if len(digest) != h.Size() {
			return nil, fmt.Errorf("pkcs11: digest is %d bytes, %v needs %d", len(digest), h, h.Size())
		}
		salt := pss.SaltLength
		emLen := (k.pub.(*rsa.PublicKey).N.BitLen() - 1 + 7) / 8
		switch salt {
		case rsa.PSSSaltLengthEqualsHash:
			salt = h.Size()
		case rsa.PSSSaltLengthAuto:
			salt = emLen - h.Size() - 2
		}
		if salt < 0 || salt > emLen-h.Size()-2 {
			return nil, fmt.Errorf("pkcs11: PSS salt length %d out of range", pss.SaltLength)
		}
		return k.rawSign(ctx, mechanism{Type: ckmRSAPKCSPSS, PSS: &pssParams{Hash: ckm, MGF: mgf, SaltLen: uint(salt)}}, digest)
	}
	var data []byte
	if h == 0 {
		data = digest // pre-formatted input, as crypto/rsa allows with hash 0
	} else {
		var err error
		if data, err = DigestInfo(h, digest); err != nil {
			return nil, err
		}
	}
	return k.rawSign(ctx, mechanism{Type: ckmRSAPKCS}, data)
}

// sm2Signer follows gmsm's convention: with *sm2.SM2SignerOption{forceGMSign: true}
// (sm2.DefaultSM2SignerOpts, sm2.NewSM2SignerOption(true, uid)) the argument is the
// whole message and Z is computed with the option's user ID; otherwise the argument is
// the 32-byte e = SM3(Z || M). It is also a crypto.MessageSigner.
type sm2Signer struct{ signer }

// SignMessage signs msg with Z computed from the user ID in opts (default ID if none).
func (s *sm2Signer) SignMessage(r io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	isMsg, uid, err := sm2SignerOptions(opts)
	if err != nil {
		return nil, err
	}
	if !isMsg {
		uid = defaultSM2UID
	}
	return s.k.signSM2Message(s.ctx, msg, uid)
}

// SignWithSM2 is gmsm's (deprecated) sm2.Signer method.
func (s *sm2Signer) SignWithSM2(_ io.Reader, uid, msg []byte) ([]byte, error) {
	if len(uid) == 0 {
		uid = defaultSM2UID
	}
	return s.k.signSM2Message(s.ctx, msg, uid)
}

func (k *Key) signSM2(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	isMsg, uid, err := sm2SignerOptions(opts)
	if err != nil {
		return nil, err
	}
	if isMsg {
		return k.signSM2Message(ctx, digest, uid)
	}
	if len(digest) != 32 {
		return nil, fmt.Errorf("pkcs11: SM2 digest is %d bytes, want 32 (pass sm2.DefaultSM2SignerOpts to sign a message)", len(digest))
	}
	return k.signSM2e(ctx, digest)
}

func (k *Key) signSM2Message(ctx context.Context, msg, uid []byte) ([]byte, error) {
	cfg := k.tok.sm2
	if cfg.HSMComputesZ && bytes.Equal(uid, defaultSM2UID) {
		sig, err := k.rawSign(ctx, mechanism{Type: cfg.SignWithZ}, msg)
		if err != nil {
			return nil, err
		}
		return k.sm2SigToDER(sig)
	}
	e, err := sm2.CalculateSM2Hash(k.pub.(*ecdsa.PublicKey), msg, uid)
	if err != nil {
		return nil, err
	}
	return k.signSM2e(ctx, e)
}

func (k *Key) signSM2e(ctx context.Context, e []byte) ([]byte, error) {
	cfg := k.tok.sm2
	if cfg.Sign == 0 {
		return nil, errors.New("pkcs11: no SM2 sign_mechanism configured for signing a digest")
	}
	sig, err := k.rawSign(ctx, mechanism{Type: cfg.Sign}, e)
	if err != nil {
		return nil, err
	}
	return k.sm2SigToDER(sig)
}

func (k *Key) sm2SigToDER(sig []byte) ([]byte, error) {
	if k.tok.sm2.SignatureFormat == "raw" {
		return rawToDER(sig, 32)
	}
	return normalizeDERSignature(sig)
}
