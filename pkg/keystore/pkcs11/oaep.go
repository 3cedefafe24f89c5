package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

const ckmRSAX509 = 0x3

// oaepMode is how a key decrypts RSA-OAEP with one hash pair.
type oaepMode int

const (
	oaepNative      oaepMode = iota + 1 // CKM_RSA_PKCS_OAEP
	oaepRaw                             // CKM_RSA_X_509, OAEP decoded here
	oaepUnsupported                     // neither works
)

type oaepKey struct{ hash, mgf crypto.Hash }

// oaepModeFor finds, once per hash pair, how the token can do OAEP: natively, or by a
// raw RSA decryption decoded here (SoftHSM2 2.6 supports CKM_RSA_PKCS_OAEP with SHA-1
// only). The probe decrypts a ciphertext made here, never one from a caller, so the
// choice cannot depend on (or reveal anything about) an attacker's ciphertext.
func (k *Key) oaepModeFor(ctx context.Context, h, mgf crypto.Hash) (oaepMode, error) {
	key := oaepKey{h, mgf}
	k.oaepMu.Lock()
	m, ok := k.oaep[key]
	k.oaepMu.Unlock()
	if ok {
		return m, nil
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	ct, err := encryptOAEP(k.pub.(*rsa.PublicKey), h, mgf, secret)
	if err != nil {
		return 0, err
	}
	m = oaepUnsupported
	pt, err := k.decryptOAEP(ctx, oaepNative, h, mgf, nil, ct)
	switch {
	case err == nil && bytes.Equal(pt, secret):
		m = oaepNative
	case isUnavailable(err):
		return 0, err
	default:
		pt, err = k.decryptOAEP(ctx, oaepRaw, h, mgf, nil, ct)
		if isUnavailable(err) {
			return 0, err
		}
		if err == nil && bytes.Equal(pt, secret) {
			m = oaepRaw
		}
	}
	k.oaepMu.Lock()
	if k.oaep == nil {
		k.oaep = map[oaepKey]oaepMode{}
	}
	k.oaep[key] = m
	k.oaepMu.Unlock()
	return m, nil
}

func encryptOAEP(pub *rsa.PublicKey, h, mgf crypto.Hash, msg []byte) ([]byte, error) {
	if h == mgf {
		return rsa.EncryptOAEP(h.New(), rand.Reader, pub, msg, nil)
	}
	return rsa.EncryptOAEPWithOptions(rand.Reader, pub, msg, &rsa.OAEPOptions{Hash: h, MGFHash: mgf})
}

func (k *Key) decryptOAEP(ctx context.Context, mode oaepMode, h, mgf crypto.Hash, label, ct []byte) ([]byte, error) {
	switch mode {
	case oaepNative:
		ckm, _, err := hashMechanisms(h)
		if err != nil {
			return nil, err
		}
		_, ckg, err := hashMechanisms(mgf)
		if err != nil {
			return nil, err
		}
		return k.rawDecrypt(ctx, mechanism{Type: ckmRSAPKCSOAEP, OAEP: &oaepParams{Hash: ckm, MGF: ckg, Label: label}}, ct)
	case oaepRaw:
		if len(ct) != k.size {
			return nil, errors.New("ciphertext length is not the modulus length")
		}
		em, err := k.rawDecrypt(ctx, mechanism{Type: ckmRSAX509}, ct)
		if err != nil {
			return nil, err
		}
		if len(em) > k.size {
			return nil, errors.New("raw RSA output longer than the modulus")
		}
		if len(em) < k.size { // some tokens strip leading zeros
			em = append(make([]byte, k.size-len(em)), em...)
		}
		return oaepDecode(em, h, mgf, label)
	}
	return nil, fmt.Errorf("the token cannot decrypt RSA-OAEP with %v", h)
}

func isUnavailable(err error) bool { return err != nil && (sessionFatal(err) || isPoolError(err)) }

var errOAEP = errors.New("OAEP decoding failed")

// oaepDecode is EME-OAEP decoding (RFC 8017 7.1.2 step 3) in constant time: whether
// the first byte, the label hash or the separator is wrong, the same error comes back
// after the same work.
func oaepDecode(em []byte, h, mgf crypto.Hash, label []byte) ([]byte, error) {
	hLen := h.Size()
	k := len(em)
	if k < 2*hLen+2 {
		return nil, errOAEP
	}
	lh := h.New()
	lh.Write(label)
	lHash := lh.Sum(nil)

	em = append([]byte(nil), em...)
	firstByteIsZero := subtle.ConstantTimeByteEq(em[0], 0)
	seed := em[1 : hLen+1]
	db := em[hLen+1:]
	mgf1XOR(seed, mgf.New(), db)
	mgf1XOR(db, mgf.New(), seed)

	lHashGood := subtle.ConstantTimeCompare(lHash, db[:hLen])
	rest := db[hLen:]
	lookingForIndex, index, invalid := 1, 0, 0
	for i := range rest {
		eq0 := subtle.ConstantTimeByteEq(rest[i], 0)
		eq1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&eq1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(eq1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^eq0, 1, invalid)
	}
	if firstByteIsZero&lHashGood&^invalid&^lookingForIndex != 1 {
		return nil, errOAEP
	}
	return rest[index+1:], nil
}

// mgf1XOR XORs out with MGF1(seed) (RFC 8017 B.2.1).
func mgf1XOR(out []byte, h hash.Hash, seed []byte) {
	var counter [4]byte
	done := 0
	for done < len(out) {
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		d := h.Sum(nil)
		for i := 0; i < len(d) && done < len(out); i++ {
			out[done] ^= d[i]
			done++
		}
		binary.BigEndian.PutUint32(counter[:], binary.BigEndian.Uint32(counter[:])+1)
	}
}
