package envelope

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/sm2cipher"
)

// recipientKind is the key-management method a recipient certificate's public key
// calls for. It comes from the certificate, never from a private-key type.
type recipientKind int

const (
	kindRSA recipientKind = iota + 1
	kindEC
	kindSM2
)

// kindOf asks the algorithm table how a recipient's key takes a content key: key
// transport (RSA, SM2) or key agreement (ECDSA P-256, P-384).
func kindOf(cert *smx509.Certificate) (recipientKind, error) {
	if f, err := algorithm.Check(cert.PublicKey, algorithm.KeyTransport); err == nil {
		if f == algorithm.SM2 {
			return kindSM2, nil
		}
		return kindRSA, nil
	}
	if _, err := algorithm.Check(cert.PublicKey, algorithm.KeyAgreement); err != nil {
		return 0, unsupported("recipient: %v", err)
	}
	return kindEC, nil
}

// checkRecipientUsage refuses a certificate whose key usage extension exists and
// allows no key management: for key transport keyEncipherment or dataEncipherment
// (plus keyAgreement for SM2, which some GM/T 0015 CAs set on encryption
// certificates), for ECDH keyAgreement. SM2 parties usually hold a signing and an
// encryption certificate; this catches enveloping to the signing one.
func checkRecipientUsage(cert *smx509.Certificate, kind recipientKind) error {
	if cert.KeyUsage == 0 {
		return nil
	}
	need, name := smx509.KeyUsageKeyEncipherment|smx509.KeyUsageDataEncipherment, "keyEncipherment"
	switch kind {
	case kindEC:
		need, name = smx509.KeyUsageKeyAgreement, "keyAgreement"
	case kindSM2:
		need |= smx509.KeyUsageKeyAgreement
	}
	if cert.KeyUsage&need == 0 {
		return fmt.Errorf("envelope: recipient certificate %q lacks the %s key usage", cert.Subject.CommonName, name)
	}
	return nil
}

func recipientCert(cert *smx509.Certificate) cms.RecipientCertificate {
	return cms.RecipientCertificate{
		RawIssuer:               cert.RawIssuer,
		Serial:                  cert.SerialNumber,
		SubjectKeyID:            cert.SubjectKeyId,
		RawSubjectPublicKeyInfo: cert.RawSubjectPublicKeyInfo,
	}
}

func ridFor(cert *smx509.Certificate, t RecipientIDType) (cms.RecipientIdentifier, error) {
	if t == RecipientSubjectKeyID {
		if len(cert.SubjectKeyId) == 0 {
			return cms.RecipientIdentifier{}, fmt.Errorf("envelope: recipient certificate %q has no SubjectKeyIdentifier to name it by", cert.Subject.CommonName)
		}
		return cms.RecipientIdentifier{SubjectKeyID: cert.SubjectKeyId}, nil
	}
	return cms.RecipientIdentifier{IssuerAndSerial: &cms.IssuerAndSerial{Issuer: cert.RawIssuer, Serial: cert.SerialNumber}}, nil
}

// --- Key transport: RSA and SM2 ---

func oaepAlgorithm() (cms.AlgorithmIdentifier, error) {
	sha := cms.AlgorithmIdentifier{Algorithm: cms.OIDSHA256}
	params, err := cms.RSAESOAEPParams{Hash: sha, MGFHash: sha}.Marshal()
	return cms.AlgorithmIdentifier{Algorithm: cms.OIDRSAESOAEP, Parameters: params}, err
}

// keyTransport encrypts cek to a key-transport recipient.
func keyTransport(rand io.Reader, cert *smx509.Certificate, kind recipientKind, cek []byte, scheme RSAScheme) (cms.AlgorithmIdentifier, []byte, error) {
	switch kind {
	case kindRSA:
		pub := cert.PublicKey.(*rsa.PublicKey)
		if scheme == RSAPKCS1v15 {
			//lint:ignore SA1019 RSA PKCS#1 v1.5 key transport is what CMS peers (OpenSSL by default) write; it is read with implicit rejection.
			ek, err := rsa.EncryptPKCS1v15(rand, pub, cek)
			return cms.AlgorithmIdentifier{Algorithm: cms.OIDRSAEncryption, Parameters: cms.NullParameters}, ek, err
		}
		alg, err := oaepAlgorithm()
		if err != nil {
			return alg, nil, err
		}
		ek, err := rsa.EncryptOAEP(sha256.New(), rand, pub, cek, nil)
		return alg, ek, err
	case kindSM2:
		ek, err := sm2.EncryptASN1(rand, cert.PublicKey.(*ecdsa.PublicKey), cek)
		return cms.AlgorithmIdentifier{Algorithm: cms.OIDSM2Encrypt, Parameters: cms.NullParameters}, ek, err
	}
	return cms.AlgorithmIdentifier{}, nil, errors.New("envelope: not a key-transport recipient")
}

// hashByOID maps the digest OIDs OAEP and the KDFs may name.
func hashByOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	switch {
	case oid.Equal(cms.OIDSHA1):
		return crypto.SHA1, true
	case oid.Equal(cms.OIDSHA256):
		return crypto.SHA256, true
	case oid.Equal(cms.OIDSHA384):
		return crypto.SHA384, true
	case oid.Equal(cms.OIDSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

// unwrapKeyTransport decrypts a KeyTransRecipientInfo's content key with dec. It
// returns a key of keyLen bytes in every case, and ok = 0 when decryption is known to
// have failed. For RSA PKCS#1 v1.5 it uses implicit rejection: the Decrypter gets
// SessionKeyLen, so a bad padding yields a random key that is only found out when the
// content fails to decrypt, and this function cannot tell (ok stays 1).
// An error is returned only for what the message says in the clear (an algorithm not
// supported or not allowed), never for a decryption result.
func unwrapKeyTransport(rand io.Reader, kind recipientKind, ktri *cms.KeyTransRecipientInfo, dec crypto.Decrypter, keyLen int, backend func(error) bool) ([]byte, int, error) {
	alg, ek := ktri.KeyEncryptionAlgorithm, ktri.EncryptedKey
	var opts crypto.DecrypterOpts
	switch kind {
	case kindRSA:
		switch {
		case alg.Algorithm.Equal(cms.OIDRSAEncryption):
			//lint:ignore SA1019 RSA PKCS#1 v1.5 key transport is what CMS peers (OpenSSL by default) write; it is read with implicit rejection.
			opts = &rsa.PKCS1v15DecryptOptions{SessionKeyLen: keyLen}
		case alg.Algorithm.Equal(cms.OIDRSAESOAEP):
			p, err := cms.ParseRSAESOAEPParams(alg.Parameters)
			if err != nil {
				return nil, 0, err
			}
			h, ok1 := hashByOID(p.Hash.Algorithm)
			mh, ok2 := hashByOID(p.MGFHash.Algorithm)
			if !ok1 || !ok2 {
				return nil, 0, unsupported("RSAES-OAEP hash %s / MGF1 hash %s", p.Hash.Algorithm, p.MGFHash.Algorithm)
			}
			// SHA-1 as the OAEP hash and MGF1 hash is read without AllowLegacy: it is
			// OpenSSL's default, and OAEP's security does not rest on collision
			// resistance. It is never written.
			opts = &rsa.OAEPOptions{Hash: h, MGFHash: mh, Label: p.Label}
		default:
			return nil, 0, unsupported("key transport %s for an RSA recipient", alg.Algorithm)
		}
	case kindSM2:
		// Standard sm2-3 (1.2.156.10197.1.301.3), GmSSL's sm2-2, the bare SM2 OID,
		// and rsaEncryption, which gmsm writes when the recipient certificate was
		// signed by an RSA CA. The certificate's key decides the method, not the label.
		a := alg.Algorithm
		if !a.Equal(cms.OIDSM2Encrypt) && !a.Equal(cms.OIDSM2KeyExchange) && !a.Equal(cms.OIDSM2) && !a.Equal(cms.OIDRSAEncryption) {
			return nil, 0, unsupported("key transport %s for an SM2 recipient", a)
		}
		opts = sm2.ASN1DecrypterOpts
		ek = sm2KeyTransportASN1(ek)
	default:
		return nil, 0, unsupported("key transport for this recipient")
	}
	// The random stand-in is drawn before the unwrap and chosen in constant time, so
	// success and failure take the same steps. (With crypto/rsa a bad PKCS#1 v1.5
	// padding never fails here: implicit rejection already gives a random key.)
	out, err := randomKey(rand, keyLen)
	if err != nil {
		return nil, 0, err
	}
	key, err := dec.Decrypt(rand, ek, opts)
	if err != nil && backend != nil && backend(err) {
		clear(out)
		return nil, 0, backendError(err)
	}
	good := boolToInt(err == nil) & subtle.ConstantTimeEq(int32(len(key)), int32(keyLen))
	return selectKey(out, key, err), good, nil
}

// sm2KeyTransportASN1 returns an SM2 encrypted key as the GM/T 0009 SM2Cipher the
// decrypters take. Besides that form (GM/T 0010, gmsm, GmSSL) peers write raw
// ciphertexts: CFCA's SADK (gmsm EncryptCFCA) C1||C2||C3 without the 04 prefix, and
// some 04||C1||C3||C2 (GB/T 32918.4's order). Which one is told from the bytes: a
// leading 04 followed by a curve point is the prefixed form. What does not convert is
// given to the decrypter as it came, where it fails like any bad ciphertext.
func sm2KeyTransportASN1(ek []byte) []byte {
	if a, err := sm2cipher.AnyToASN1(ek); err == nil {
		return a
	}
	return ek
}

// selectKey overwrites out with key when err is nil and key has out's length, without
// branching on which, and clears key. It returns out.
func selectKey(out, key []byte, err error) []byte {
	good := boolToInt(err == nil) & subtle.ConstantTimeEq(int32(len(key)), int32(len(out)))
	tmp := make([]byte, len(out))
	copy(tmp, key)
	subtle.ConstantTimeCopy(good, out, tmp)
	clear(tmp)
	clear(key)
	return out
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func randomKey(rand io.Reader, n int) ([]byte, error) {
	k := make([]byte, n)
	if _, err := io.ReadFull(rand, k); err != nil {
		return nil, err
	}
	return k, nil
}

// --- Key agreement: ECDH ephemeral-static (RFC 5753 as OpenSSL writes it) ---

// keyAgreement is the ECDH curve and the key-agreement use (X9.63 KDF and its hash)
// the algorithm table gives an EC recipient's curve.
func keyAgreement(c elliptic.Curve) (ecdh.Curve, algorithm.Use, error) {
	f := algorithm.OfCurve(c)
	u, ok := algorithm.Default(f, algorithm.KeyAgreement)
	if !ok {
		name := "unknown"
		if c != nil && c.Params() != nil {
			name = c.Params().Name
		}
		return nil, u, unsupported("EC curve %s", name)
	}
	return f.ECDH(), u, nil
}

// pickUse is the key-agreement use of scheme s for family f.
func pickUse(f algorithm.Family, s algorithm.Scheme) (algorithm.Use, error) {
	u, ok := algorithm.Pick(f, algorithm.KeyAgreement, s, algorithm.NoDigest)
	if !ok {
		return u, unsupported("%s for %s keys", s, f)
	}
	return u, nil
}

// wrapAlgFor picks the AES key wrap by content-key length, as OpenSSL does.
func wrapAlgFor(keyLen int) (asn1.ObjectIdentifier, int) {
	switch {
	case keyLen <= 16:
		return cms.OIDAES128Wrap, 16
	case keyLen <= 24:
		return cms.OIDAES192Wrap, 24
	}
	return cms.OIDAES256Wrap, 32
}

func wrapKeyLenByOID(oid asn1.ObjectIdentifier) (int, bool) {
	switch {
	case oid.Equal(cms.OIDAES128Wrap):
		return 16, true
	case oid.Equal(cms.OIDAES192Wrap):
		return 24, true
	case oid.Equal(cms.OIDAES256Wrap):
		return 32, true
	}
	return 0, false
}

func newHash(h crypto.Hash) hash.Hash {
	switch h {
	case crypto.SHA1:
		return sha1.New()
	case crypto.SHA224:
		return sha256.New224()
	case crypto.SHA384:
		return sha512.New384()
	case crypto.SHA512:
		return sha512.New()
	}
	return sha256.New()
}

// x963KDF is the ANSI X9.63 KDF (SEC 1 §3.6.1): Hash(Z || counter || sharedInfo) for
// counter = 1, 2, ... until n bytes.
func x963KDF(h crypto.Hash, z, sharedInfo []byte, n int) []byte {
	hh := newHash(h)
	out := make([]byte, 0, n+hh.Size())
	var ctr [4]byte
	for i := uint32(1); len(out) < n; i++ {
		ctr[0], ctr[1], ctr[2], ctr[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		hh.Reset()
		hh.Write(z)
		hh.Write(ctr[:])
		hh.Write(sharedInfo)
		out = hh.Sum(out)
	}
	clear(out[n:cap(out)])
	return out[:n]
}

// keyAgree makes a KeyAgreeRecipientInfo for one EC recipient with a fresh ephemeral
// key: originatorKey holds the ephemeral public key (id-ecPublicKey, parameters absent,
// as OpenSSL writes it), no ukm. cofactor names the cofactor ECDH scheme, whose secret
// on these curves (cofactor 1) is the same.
func keyAgree(rand io.Reader, cert *smx509.Certificate, cek []byte, rid cms.RecipientIdentifier, cofactor bool) (*cms.KeyAgreeRecipientInfo, error) {
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	curve, use, err := keyAgreement(pub.Curve)
	if err != nil {
		return nil, err
	}
	if cofactor {
		f := algorithm.OfCurve(pub.Curve)
		if use, err = pickUse(f, algorithm.ECDHCofactorX963); err != nil {
			return nil, err
		}
	}
	remote, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("envelope: recipient EC key: %w", err)
	}
	eph, err := curve.GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	z, err := eph.ECDH(remote)
	if err != nil {
		return nil, err
	}
	defer clear(z)
	schemeOID, h := use.KDFOID(), use.Digest.Hash()
	wrapOID, kekLen := wrapAlgFor(len(cek))
	wrapAlg := cms.AlgorithmIdentifier{Algorithm: wrapOID}
	kek, err := deriveKEK(h, z, wrapAlg, nil, kekLen)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	wrapped, err := aesKeyWrap(kek, cek)
	if err != nil {
		return nil, err
	}
	wrapDER, err := wrapAlg.Marshal()
	if err != nil {
		return nil, err
	}
	return &cms.KeyAgreeRecipientInfo{
		Version: 3,
		Originator: cms.OriginatorIdentifierOrKey{PublicKey: &cms.OriginatorPublicKey{
			Algorithm: cms.AlgorithmIdentifier{Algorithm: cms.OIDECPublicKey},
			PublicKey: eph.PublicKey().Bytes(),
		}},
		KeyEncryptionAlgorithm: cms.AlgorithmIdentifier{Algorithm: schemeOID, Parameters: wrapDER},
		RecipientEncryptedKeys: []cms.RecipientEncryptedKey{{RID: rid, EncryptedKey: wrapped}},
	}, nil
}

func deriveKEK(h crypto.Hash, z []byte, wrapAlg cms.AlgorithmIdentifier, ukm []byte, kekLen int) ([]byte, error) {
	si, err := cms.MarshalECCCMSSharedInfo(wrapAlg, ukm, kekLen*8)
	if err != nil {
		return nil, err
	}
	return x963KDF(h, z, si, kekLen), nil
}

// unwrapKeyAgree recovers the content key of one RecipientEncryptedKey. Like
// unwrapKeyTransport it returns a keyLen-byte key in every case, with ok = 0 when the
// agreement or the unwrap failed; errors only for what the message says in the clear.
func unwrapKeyAgree(rand io.Reader, cert *smx509.Certificate, kari *cms.KeyAgreeRecipientInfo, ek []byte, agreer KeyAgreer, keyLen int, backend func(error) bool) ([]byte, int, error) {
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	curve, _, err := keyAgreement(pub.Curve)
	if err != nil {
		return nil, 0, err
	}
	// Standard and cofactor ECDH give the same secret here: both curves have
	// cofactor 1, so the cofactor multiplication is the identity.
	_, h, ok := algorithm.KeyAgreementByOID(kari.KeyEncryptionAlgorithm.Algorithm)
	if !ok {
		return nil, 0, unsupported("key agreement scheme %s", kari.KeyEncryptionAlgorithm.Algorithm)
	}
	// The SHA-1 X9.63 KDF (dhSinglePass-stdDH-sha1kdf-scheme) is read without
	// AllowLegacy: it is what 'openssl cms -encrypt' writes for EC recipients by
	// default, and a KDF does not rely on collision resistance. It is never written:
	// the algorithm table's KDF hash matches the curve (RFC 5753 §8).
	wrapAlg, err := cms.ParseAlgorithmIdentifier(kari.KeyEncryptionAlgorithm.Parameters)
	if err != nil {
		return nil, 0, err
	}
	kekLen, ok := wrapKeyLenByOID(wrapAlg.Algorithm)
	if !ok {
		return nil, 0, unsupported("key wrap %s", wrapAlg.Algorithm)
	}
	if kari.Originator.PublicKey == nil {
		return nil, 0, unsupported("key agreement with a static originator key")
	}
	if oa := kari.Originator.PublicKey.Algorithm.Algorithm; !oa.Equal(cms.OIDECPublicKey) {
		return nil, 0, unsupported("originator key algorithm %s", oa)
	}
	// From here on a failure gives the random stand-in drawn first, chosen in
	// constant time after the unwrap. Only the originator point, which is public,
	// can end it early.
	out, err := randomKey(rand, keyLen)
	if err != nil {
		return nil, 0, err
	}
	eph, err := curve.NewPublicKey(kari.Originator.PublicKey.PublicKey)
	if err != nil {
		return out, 0, nil
	}
	z, err := agreer.ECDH(eph)
	if err != nil {
		if backend != nil && backend(err) {
			clear(out)
			return nil, 0, backendError(err)
		}
		return out, 0, nil
	}
	defer clear(z)
	kek, err := deriveKEK(h, z, wrapAlg, kari.UKM, kekLen)
	if err != nil {
		return out, 0, nil
	}
	defer clear(kek)
	key, err := aesKeyUnwrap(kek, ek)
	good := boolToInt(err == nil) & subtle.ConstantTimeEq(int32(len(key)), int32(keyLen))
	return selectKey(out, key, err), good, nil
}
