package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"reflect"

	"github.com/emmansun/gmsm/sm2"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// digestInfoPrefix is the DER of DigestInfo up to the digest, per hash (RFC 8017 9.2
// note 1). CKM_RSA_PKCS signs exactly what it is given, so the prefix is ours to add.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// DigestInfo is what CKM_RSA_PKCS signs for an RSA PKCS#1 v1.5 signature over
// digest, a hash h: the DER DigestInfo (RFC 8017 9.2).
func DigestInfo(h crypto.Hash, digest []byte) ([]byte, error) {
	prefix, ok := digestInfoPrefix[h]
	if !ok {
		return nil, fmt.Errorf("pkcs11: unsupported hash %v for RSA PKCS#1 v1.5", h)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("pkcs11: digest is %d bytes, %v needs %d", len(digest), h, h.Size())
	}
	return append(append(make([]byte, 0, len(prefix)+len(digest)), prefix...), digest...), nil
}

// hashMechanisms gives CKM_SHAxxx and CKG_MGF1_SHAxxx for a hash.
func hashMechanisms(h crypto.Hash) (ckm, mgf uint, err error) {
	switch h {
	case crypto.SHA1:
		return ckmSHA1, ckgMGF1SHA1, nil
	case crypto.SHA224:
		return ckmSHA224, ckgMGF1SHA224, nil
	case crypto.SHA256:
		return ckmSHA256, ckgMGF1SHA256, nil
	case crypto.SHA384:
		return ckmSHA384, ckgMGF1SHA384, nil
	case crypto.SHA512:
		return ckmSHA512, ckgMGF1SHA512, nil
	}
	return 0, 0, fmt.Errorf("pkcs11: unsupported hash %v", h)
}

// curveFromParams reads CKA_EC_PARAMS (a named-curve OID). The curves are the
// algorithm table's: P-256, P-384 and SM2.
func curveFromParams(params []byte) (elliptic.Curve, error) {
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err != nil || len(rest) != 0 {
		return nil, errors.New("CKA_EC_PARAMS is not a named curve OID")
	}
	if c := algorithm.ByCurveOID(oid).Curve(); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("unsupported curve %v", oid)
}

// curveParams is the CKA_EC_PARAMS of the curve of a family in the algorithm table.
func curveParams(f algorithm.Family) ([]byte, error) {
	if oid := f.CurveOID(); oid != nil {
		return asn1.Marshal(oid)
	}
	return nil, fmt.Errorf("no curve for %s", f)
}

// parseECPoint reads CKA_EC_POINT: a DER OCTET STRING around the uncompressed point,
// as the standard says, or the bare point, as some tokens return.
func parseECPoint(c elliptic.Curve, b []byte) (*ecdsa.PublicKey, error) {
	var inner []byte
	if rest, err := asn1.Unmarshal(b, &inner); err == nil && len(rest) == 0 && len(inner) > 0 && inner[0] == 4 {
		b = inner
	}
	size := (c.Params().BitSize + 7) / 8
	if len(b) != 1+2*size || b[0] != 4 {
		return nil, errors.New("CKA_EC_POINT is not an uncompressed point")
	}
	x := new(big.Int).SetBytes(b[1 : 1+size])
	y := new(big.Int).SetBytes(b[1+size:])
	// SM2's curve has no crypto/ecdh form: gmsm's keys are *ecdsa.PublicKey with
	// coordinates, so the point is checked and built the old way for every curve.
	//lint:ignore SA1019 see above.
	if !c.IsOnCurve(x, y) {
		return nil, errors.New("CKA_EC_POINT is not on the curve")
	}
	//lint:ignore SA1019 see above.
	return &ecdsa.PublicKey{Curve: c, X: x, Y: y}, nil
}

// rawToDER converts a raw r||s signature of 2*size bytes to an ASN.1 SEQUENCE.
func rawToDER(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size {
		return nil, fmt.Errorf("raw signature is %d bytes, want %d", len(raw), 2*size)
	}
	r := new(big.Int).SetBytes(raw[:size])
	s := new(big.Int).SetBytes(raw[size:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("raw signature has a zero half")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

// normalizeDERSignature checks a DER ECDSA/SM2 signature and re-encodes it minimally.
func normalizeDERSignature(sig []byte) ([]byte, error) {
	var (
		inner cryptobyte.String
		r, s  = new(big.Int), new(big.Int)
	)
	in := cryptobyte.String(sig)
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() ||
		r.Sign() <= 0 || s.Sign() <= 0 {
		return nil, errors.New("signature is not a DER SEQUENCE of two positive INTEGERs")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

var defaultSM2UID = []byte("1234567812345678")

// sm2SignerOptions reads gmsm's *sm2.SM2SignerOption, whose fields are unexported:
// forceGMSign says the argument is the whole message, uid is the user ID for Z.
// Reading them by reflection is the only way to honour gmsm's convention from a
// signer outside gmsm; TestSM2SignerOptionsReflection fails loudly if gmsm renames them.
func sm2SignerOptions(opts crypto.SignerOpts) (isMessage bool, uid []byte, err error) {
	o, ok := opts.(*sm2.SM2SignerOption)
	if !ok || o == nil {
		return false, nil, nil
	}
	v := reflect.ValueOf(o).Elem()
	f := v.FieldByName("forceGMSign")
	u := v.FieldByName("uid")
	if !f.IsValid() || f.Kind() != reflect.Bool || !u.IsValid() || u.Kind() != reflect.Slice || u.Type().Elem().Kind() != reflect.Uint8 {
		return false, nil, errors.New("pkcs11: cannot read sm2.SM2SignerOption (gmsm changed its fields)")
	}
	if !f.Bool() {
		return false, nil, nil
	}
	uid = append([]byte(nil), u.Bytes()...)
	if len(uid) == 0 {
		uid = defaultSM2UID
	}
	return true, uid, nil
}

// sm2Ciphertext converts a gmsm SM2 ciphertext (ASN.1, or plain in the order opts
// says) to the format the HSM's decryption mechanism takes.
func sm2Ciphertext(ct []byte, opts crypto.DecrypterOpts, format string) ([]byte, error) {
	if len(ct) == 0 {
		return nil, errors.New("empty ciphertext")
	}
	var asn1CT []byte
	if ct[0] == 0x30 {
		asn1CT = ct
	} else {
		order := sm2.C1C3C2
		if o, ok := opts.(*sm2.DecrypterOpts); ok && o != nil && reflect.DeepEqual(o, sm2.NewPlainDecrypterOpts(sm2.C1C2C3)) {
			order = sm2.C1C2C3
		}
		var err error
		if asn1CT, err = sm2.PlainCiphertext2ASN1(ct, order); err != nil {
			return nil, err
		}
	}
	switch format {
	case "asn1":
		return asn1CT, nil
	case "c1c3c2":
		return sm2.ASN1Ciphertext2Plain(asn1CT, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C3C2))
	case "c1c2c3":
		return sm2.ASN1Ciphertext2Plain(asn1CT, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C2C3))
	}
	return nil, fmt.Errorf("unknown SM2 ciphertext format %q", format)
}
