// Package algorithm is the one table of the public-key algorithms signsvr supports and
// of what each may be used for.
//
// Signing and verifying CMS, raw signatures, enveloping, login tokens, login answers
// and audit checkpoints all start from a public key and must agree on the same questions: which family is this
// key (RSA, ECDSA on P-256 or P-384, SM2), may it serve this purpose, and with which
// signature scheme, digest or key-agreement KDF. Answered in each package, the answers
// drift apart (a key one path accepts, the next refuses). Here they are rows of one
// table, in the spirit of crypto/x509's list of signature algorithms, and the other
// packages ask it.
//
// The family comes from the public key only, never from the concrete type of the
// signer holding it, so a key in an HSM and a key in a file answer the same. SM2 keys
// are *ecdsa.PublicKey on gmsm's SM2 curve, as gmsm represents them.
//
// The package knows names, OIDs and rules; it makes no signatures. It imports only
// pkg/cms (for the OIDs, which live there) and the crypto libraries, so every other
// package may import it.
package algorithm

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // crypto.SHA256.New
	_ "crypto/sha512" // crypto.SHA384.New, crypto.SHA512.New
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/emmansun/gmsm/sm2"

	"signsvr.dev/signsvr/pkg/cms"
)

// Family is a public-key algorithm together with its domain parameters: what decides
// which schemes and digests apply.
type Family uint8

// The supported families. Anything else (ECDSA on P-521 or P-224, Ed25519, DSA) is
// Unsupported.
const (
	Unsupported Family = iota
	RSA
	ECDSAP256
	ECDSAP384
	SM2
)

// family holds what belongs to a family rather than to one use of it.
type family struct {
	name string // for messages and the README table
	// keyName is how ListKeys names a key of the family ("" for RSA, which adds its size).
	keyName string
	curve   func() elliptic.Curve
	// curveOID names the curve (SubjectPublicKeyInfo parameters, PKCS#11 CKA_EC_PARAMS).
	curveOID asn1.ObjectIdentifier
	// ecdh is the curve of ECDH key agreement (nil: the family does not agree keys).
	ecdh func() ecdh.Curve
	// jws is the "alg" of login tokens signed with the family (RFC 7518, or this
	// project's SM2SM3), jwsSize the length of r and of s in its r||s signature.
	jws     string
	jwsSize int
}

var families = [...]family{
	Unsupported: {name: "unsupported"},
	RSA:         {name: "RSA", jws: JWSRS256},
	ECDSAP256: {name: "ECDSA P-256", keyName: "ECDSA-P256", curve: elliptic.P256, curveOID: cms.OIDNamedCurveP256,
		ecdh: ecdh.P256, jws: JWSES256, jwsSize: 32},
	ECDSAP384: {name: "ECDSA P-384", keyName: "ECDSA-P384", curve: elliptic.P384, curveOID: cms.OIDNamedCurveP384,
		ecdh: ecdh.P384, jws: JWSES384, jwsSize: 48},
	SM2: {name: "SM2", keyName: "SM2", curve: sm2.P256, curveOID: cms.OIDSM2, jws: JWSSM2SM3, jwsSize: 32},
}

// JWS "alg" values of login tokens.
const (
	JWSRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518)
	JWSES256 = "ES256" // ECDSA P-256 with SHA-256, r||s of 32 bytes each (RFC 7518)
	JWSES384 = "ES384" // ECDSA P-384 with SHA-384, r||s of 48 bytes each (RFC 7518)
	// JWSSM2SM3 has no registered JOSE value: an SM2 signature with SM3 and the Z value
	// of the default user ID 1234567812345678, r||s of 32 bytes each, as ES256 encodes
	// ECDSA.
	JWSSM2SM3 = "SM2SM3"
)

// Of returns the family of a public key. RSA keys of any size are RSA: the purposes
// that make signatures with a key set their own minimum (Check).
func Of(pub crypto.PublicKey) Family {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p != nil && p.N != nil && p.N.Sign() > 0 {
			return RSA
		}
	case *ecdsa.PublicKey:
		if p != nil {
			return OfCurve(p.Curve)
		}
	}
	return Unsupported
}

// OfCurve returns the family of an elliptic curve: ECDSAP256, ECDSAP384, SM2, or
// Unsupported.
func OfCurve(c elliptic.Curve) Family {
	if c == nil {
		return Unsupported
	}
	for f := range families {
		if families[f].curve != nil && families[f].curve() == c {
			return Family(f)
		}
	}
	return Unsupported
}

// ByCurveOID returns the family of a named curve OID.
func ByCurveOID(oid asn1.ObjectIdentifier) Family {
	for f := range families {
		if families[f].curveOID != nil && families[f].curveOID.Equal(oid) {
			return Family(f)
		}
	}
	return Unsupported
}

func (f Family) def() *family {
	if int(f) < len(families) {
		return &families[f]
	}
	return &families[Unsupported]
}

// String is the family's name: "RSA", "ECDSA P-256", "ECDSA P-384", "SM2".
func (f Family) String() string { return f.def().name }

// IsECDSA reports whether f is ECDSA (on any supported curve; SM2 is not ECDSA).
func (f Family) IsECDSA() bool { return f == ECDSAP256 || f == ECDSAP384 }

// Curve is the family's elliptic curve, nil for RSA.
func (f Family) Curve() elliptic.Curve {
	if c := f.def().curve; c != nil {
		return c()
	}
	return nil
}

// CurveOID is the named-curve OID of the family's curve (the parameters of an
// id-ecPublicKey SubjectPublicKeyInfo, and PKCS#11's CKA_EC_PARAMS), nil for RSA.
func (f Family) CurveOID() asn1.ObjectIdentifier { return f.def().curveOID }

// ECDH is the curve of ECDH key agreement for the family, nil when the family does not
// agree keys (RSA and SM2 recipients get key transport).
func (f Family) ECDH() ecdh.Curve {
	if c := f.def().ecdh; c != nil {
		return c()
	}
	return nil
}

// JWS is the "alg" of a login token signed with a key of the family, and the size of
// r and of s in its r||s signature (0 for RSA).
func (f Family) JWS() (alg string, size int) {
	d := f.def()
	return d.jws, d.jwsSize
}

// ByKeyName returns the family an EC or SM2 key name of KeyName stands for:
// "ECDSA-P256", "ECDSA-P384" or "SM2"; Unsupported for any other name, RSA's included,
// since an RSA name also carries a size.
func ByKeyName(name string) Family {
	for f := range families {
		if families[f].keyName != "" && families[f].keyName == name {
			return Family(f)
		}
	}
	return Unsupported
}

// KeyName names a key the way ListKeys shows it: "RSA-2048", "ECDSA-P256",
// "ECDSA-P384", "SM2", or "" for an unsupported key.
func KeyName(pub crypto.PublicKey) string {
	switch f := Of(pub); f {
	case Unsupported:
		return ""
	case RSA:
		return "RSA-" + strconv.Itoa(pub.(*rsa.PublicKey).N.BitLen())
	default:
		return f.def().keyName
	}
}

// Purpose is what a key is used for.
type Purpose uint8

const (
	// SignCMS: the signature of a SignerInfo this server makes.
	SignCMS Purpose = iota + 1
	// VerifyCMS: the signature of a SignerInfo this server checks (the signer's
	// certificate key). Verification also reads SHA-1 digests when its caller allows
	// them; they are legacy, never written, and not part of this table.
	VerifyCMS
	// LoginAnswer: a raw signature over a login challenge.
	LoginAnswer
	// LoginToken: the JWS signature of a login token.
	LoginToken
	// AuditCheckpoint: the signature of an audit checkpoint.
	AuditCheckpoint
	// KeyTransport: encrypting a content key to a recipient's public key.
	KeyTransport
	// KeyAgreement: ECDH ephemeral-static with the recipient's public key, and a KDF.
	KeyAgreement
	// RawSignature: a signature over data with no CMS around it, made or checked for a
	// client (SignRaw, VerifyRaw). ECDSA defaults to the hash of the curve's strength,
	// since no CMS peer's default has to be met.
	RawSignature
	// RawEncryption: encrypting data with no CMS around it to a public key, and
	// decrypting it, for a client (EncryptRaw, DecryptRaw), as GM/T 0018 devices
	// offer. RSA-OAEP's digest is its hash and MGF1 hash.
	RawEncryption
)

// MinRSABits is the smallest RSA modulus, in bits, of a key signsvr signs with on its
// own behalf (SignCMS, LoginToken); the key stores take no smaller RSA key for any
// usage. Purposes that check others' signatures or encrypt to others' keys leave the
// size to crypto/rsa.
const MinRSABits = 2048

var purposes = [...]struct {
	name string
	// minRSABits is the smallest RSA key the purpose takes (0: what crypto/rsa takes).
	minRSABits int
}{
	SignCMS:         {"sign CMS", MinRSABits},
	VerifyCMS:       {"verify CMS", 0},
	LoginAnswer:     {"login answer", 0},
	LoginToken:      {"login token", MinRSABits},
	AuditCheckpoint: {"audit checkpoint", 0},
	KeyTransport:    {"key transport", 0},
	KeyAgreement:    {"key agreement", 0},
	RawSignature:    {"raw signature", 0},
	RawEncryption:   {"raw encryption", 0},
}

// Purposes lists every purpose, in table order.
func Purposes() []Purpose {
	return []Purpose{SignCMS, VerifyCMS, LoginAnswer, LoginToken, AuditCheckpoint, KeyTransport, KeyAgreement, RawSignature, RawEncryption}
}

func (p Purpose) String() string {
	if p > 0 && int(p) < len(purposes) {
		return purposes[p].name
	}
	return "unknown purpose"
}

// MinRSABits is the smallest RSA modulus, in bits, that p takes; 0 leaves it to
// crypto/rsa.
func (p Purpose) MinRSABits() int {
	if p > 0 && int(p) < len(purposes) {
		return purposes[p].minRSABits
	}
	return 0
}

// Scheme is a signature scheme, or a key-management method for KeyTransport and
// KeyAgreement.
type Scheme uint8

const (
	PKCS1v15   Scheme = iota + 1 // RSASSA-PKCS1-v1_5
	PSS                          // RSASSA-PSS, MGF1 with the same hash
	ECDSA                        // ECDSA (X9.62)
	SM2WithSM3                   // SM2 signature over SM3(Z || M) (GB/T 32918.2)
	// RSAESPKCS1v15 is RSAES-PKCS1-v1_5 key transport (read with implicit rejection).
	RSAESPKCS1v15
	// RSAESOAEP is RSAES-OAEP key transport, MGF1 with the same hash.
	RSAESOAEP
	// SM2Encrypt is SM2 public-key encryption (GB/T 32918.4), with SM3 inside.
	SM2Encrypt
	// ECDHX963 is ECDH ephemeral-static with the ANSI X9.63 KDF and AES key wrap
	// (RFC 5753).
	ECDHX963
	// ECDHCofactorX963 is ECDHX963 with cofactor Diffie-Hellman (SEC 1 §3.3.2): the
	// shared point is multiplied by the curve's cofactor. On P-256 and P-384 the
	// cofactor is 1, so both give the same secret; the OIDs differ, and a reader
	// must know both (OpenSSL writes this one for -keyopt ecdh_cofactor_mode:1).
	ECDHCofactorX963
)

var schemeNames = [...]string{
	PKCS1v15: "PKCS#1 v1.5", PSS: "PSS", ECDSA: "ECDSA", SM2WithSM3: "SM2",
	RSAESPKCS1v15: "RSAES-PKCS1-v1_5", RSAESOAEP: "RSAES-OAEP", SM2Encrypt: "SM2 encryption", ECDHX963: "ECDH + X9.63 KDF",
	ECDHCofactorX963: "cofactor ECDH + X9.63 KDF",
}

func (s Scheme) String() string {
	if s > 0 && int(s) < len(schemeNames) {
		return schemeNames[s]
	}
	return "unknown scheme"
}

// Digest is a message digest. SM3 has no crypto.Hash value, hence a type of its own.
type Digest uint8

const (
	NoDigest Digest = iota
	SHA256
	SHA384
	SHA512
	SM3
)

var digests = [...]struct {
	name string
	hash crypto.Hash
	oid  asn1.ObjectIdentifier
	// kdf and cofactorKDF are the X9.63 key-agreement schemes with this hash, standard
	// and cofactor Diffie-Hellman (RFC 5753 §7.1.4).
	kdf, cofactorKDF asn1.ObjectIdentifier
}{
	NoDigest: {name: "none"},
	SHA256:   {"SHA-256", crypto.SHA256, cms.OIDSHA256, cms.OIDDHSinglePassStdDHSHA256KDF, cms.OIDDHSinglePassCofactorDHSHA256KDF},
	SHA384:   {"SHA-384", crypto.SHA384, cms.OIDSHA384, cms.OIDDHSinglePassStdDHSHA384KDF, cms.OIDDHSinglePassCofactorDHSHA384KDF},
	SHA512:   {"SHA-512", crypto.SHA512, cms.OIDSHA512, cms.OIDDHSinglePassStdDHSHA512KDF, cms.OIDDHSinglePassCofactorDHSHA512KDF},
	SM3:      {"SM3", 0, cms.OIDSM3, nil, nil},
}

func (d Digest) def() int {
	if int(d) < len(digests) {
		return int(d)
	}
	return 0
}

func (d Digest) String() string { return digests[d.def()].name }

// Hash is the crypto.Hash of d; 0 for SM3 and NoDigest.
func (d Digest) Hash() crypto.Hash { return digests[d.def()].hash }

// OID is the digest algorithm OID of d (a SignerInfo's digestAlgorithm).
func (d Digest) OID() asn1.ObjectIdentifier { return digests[d.def()].oid }

// DigestOf returns the Digest of a crypto.Hash; NoDigest for a hash not in the table.
func DigestOf(h crypto.Hash) Digest {
	for d := range digests {
		if h != 0 && digests[d].hash == h {
			return Digest(d)
		}
	}
	return NoDigest
}

// Use is a scheme with its digest: a row of the table for a family and a purpose.
// For KeyAgreement the digest is the KDF's hash; for RSAES-OAEP the OAEP and MGF1 hash.
type Use struct {
	Scheme Scheme
	Digest Digest
}

func (u Use) String() string {
	if u.Digest == NoDigest {
		return u.Scheme.String()
	}
	return u.Scheme.String() + " " + u.Digest.String()
}

// SignatureOID is the signatureAlgorithm a SignerInfo names for u (nil for a
// key-management use). RSA PKCS#1 v1.5 is written as rsaEncryption, as OpenSSL writes
// it and RFC 3370 §3.2 requires readers to accept; PSS as id-RSASSA-PSS, whose
// parameters name the digest; SM2 as SM2-with-SM3 (the GM/T 0010 dialect writes sm2-1).
func (u Use) SignatureOID() asn1.ObjectIdentifier {
	switch u.Scheme {
	case PKCS1v15:
		return cms.OIDRSAEncryption
	case PSS:
		return cms.OIDRSASSAPSS
	case ECDSA:
		switch u.Digest {
		case SHA256:
			return cms.OIDECDSAWithSHA256
		case SHA384:
			return cms.OIDECDSAWithSHA384
		case SHA512:
			return cms.OIDECDSAWithSHA512
		}
	case SM2WithSM3:
		return cms.OIDSM2WithSM3
	}
	return nil
}

// X509SignatureOID is the signatureAlgorithm of u as X.509 and raw signatures name
// it (RFC 4055, RFC 5758): PKCS#1 v1.5 as sha256WithRSAEncryption and its siblings,
// which name the digest; the other schemes as SignatureOID. Nil for a key-management
// use or a digest PKCS#1 v1.5 has no name with.
func (u Use) X509SignatureOID() asn1.ObjectIdentifier {
	if u.Scheme != PKCS1v15 {
		return u.SignatureOID()
	}
	switch u.Digest {
	case SHA256:
		return cms.OIDSHA256WithRSA
	case SHA384:
		return cms.OIDSHA384WithRSA
	case SHA512:
		return cms.OIDSHA512WithRSA
	}
	return nil
}

// KDFOID is the key-agreement scheme OID (a KeyAgreeRecipientInfo's
// keyEncryptionAlgorithm) of an ECDHX963 or ECDHCofactorX963 use, nil for any other.
func (u Use) KDFOID() asn1.ObjectIdentifier {
	switch u.Scheme {
	case ECDHX963:
		return digests[u.Digest.def()].kdf
	case ECDHCofactorX963:
		return digests[u.Digest.def()].cofactorKDF
	}
	return nil
}

// KDFByOID returns the hash of an X9.63 key-agreement scheme a KeyAgreeRecipientInfo
// may name, standard or cofactor Diffie-Hellman (KeyAgreementByOID tells which).
func KDFByOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	_, h, ok := KeyAgreementByOID(oid)
	return h, ok
}

// KeyAgreementByOID returns the scheme (ECDHX963 or ECDHCofactorX963) and the KDF
// hash of a key-agreement OID a KeyAgreeRecipientInfo may name. Besides the schemes
// the table writes it reads SHA-1, which is what 'openssl cms -encrypt' writes for EC
// recipients by default, and SHA-224: a KDF does not rely on collision resistance.
func KeyAgreementByOID(oid asn1.ObjectIdentifier) (Scheme, crypto.Hash, bool) {
	switch {
	case oid.Equal(cms.OIDDHSinglePassStdDHSHA1KDF):
		return ECDHX963, crypto.SHA1, true
	case oid.Equal(cms.OIDDHSinglePassStdDHSHA224KDF):
		return ECDHX963, crypto.SHA224, true
	case oid.Equal(cms.OIDDHSinglePassCofactorDHSHA1KDF):
		return ECDHCofactorX963, crypto.SHA1, true
	case oid.Equal(cms.OIDDHSinglePassCofactorDHSHA224KDF):
		return ECDHCofactorX963, crypto.SHA224, true
	}
	for _, d := range digests {
		switch {
		case d.kdf != nil && d.kdf.Equal(oid):
			return ECDHX963, d.hash, true
		case d.cofactorKDF != nil && d.cofactorKDF.Equal(oid):
			return ECDHCofactorX963, d.hash, true
		}
	}
	return 0, 0, false
}

// row is one line of the table. Rows of one family and purpose are in order of
// preference: the first is the default.
type row struct {
	family  Family
	purpose Purpose
	Use
}

var table = []row{
	{RSA, SignCMS, Use{PKCS1v15, SHA256}},
	{RSA, SignCMS, Use{PKCS1v15, SHA384}},
	{RSA, SignCMS, Use{PKCS1v15, SHA512}},
	{RSA, SignCMS, Use{PSS, SHA256}},
	{RSA, SignCMS, Use{PSS, SHA384}},
	{RSA, SignCMS, Use{PSS, SHA512}},
	// ECDSA defaults to SHA-256 on both curves in CMS (what Sign always did); the
	// other uses match the hash to the curve.
	{ECDSAP256, SignCMS, Use{ECDSA, SHA256}},
	{ECDSAP256, SignCMS, Use{ECDSA, SHA384}},
	{ECDSAP256, SignCMS, Use{ECDSA, SHA512}},
	{ECDSAP384, SignCMS, Use{ECDSA, SHA256}},
	{ECDSAP384, SignCMS, Use{ECDSA, SHA384}},
	{ECDSAP384, SignCMS, Use{ECDSA, SHA512}},
	{SM2, SignCMS, Use{SM2WithSM3, SM3}},

	{RSA, VerifyCMS, Use{PKCS1v15, SHA256}},
	{RSA, VerifyCMS, Use{PKCS1v15, SHA384}},
	{RSA, VerifyCMS, Use{PKCS1v15, SHA512}},
	{RSA, VerifyCMS, Use{PSS, SHA256}},
	{RSA, VerifyCMS, Use{PSS, SHA384}},
	{RSA, VerifyCMS, Use{PSS, SHA512}},
	{ECDSAP256, VerifyCMS, Use{ECDSA, SHA256}},
	{ECDSAP256, VerifyCMS, Use{ECDSA, SHA384}},
	{ECDSAP256, VerifyCMS, Use{ECDSA, SHA512}},
	{ECDSAP384, VerifyCMS, Use{ECDSA, SHA256}},
	{ECDSAP384, VerifyCMS, Use{ECDSA, SHA384}},
	{ECDSAP384, VerifyCMS, Use{ECDSA, SHA512}},
	{SM2, VerifyCMS, Use{SM2WithSM3, SM3}},

	{RSA, LoginAnswer, Use{PKCS1v15, SHA256}},
	{RSA, LoginAnswer, Use{PSS, SHA256}},
	{ECDSAP256, LoginAnswer, Use{ECDSA, SHA256}},
	{ECDSAP384, LoginAnswer, Use{ECDSA, SHA384}},
	{SM2, LoginAnswer, Use{SM2WithSM3, SM3}},

	{RSA, LoginToken, Use{PKCS1v15, SHA256}},
	{ECDSAP256, LoginToken, Use{ECDSA, SHA256}},
	{ECDSAP384, LoginToken, Use{ECDSA, SHA384}},
	{SM2, LoginToken, Use{SM2WithSM3, SM3}},

	{RSA, AuditCheckpoint, Use{PKCS1v15, SHA256}},
	{ECDSAP256, AuditCheckpoint, Use{ECDSA, SHA256}},
	{ECDSAP384, AuditCheckpoint, Use{ECDSA, SHA384}},
	{SM2, AuditCheckpoint, Use{SM2WithSM3, SM3}},

	// OAEP is the default; PKCS#1 v1.5 is written when asked for and read with
	// implicit rejection.
	{RSA, KeyTransport, Use{RSAESOAEP, SHA256}},
	{RSA, KeyTransport, Use{RSAESPKCS1v15, NoDigest}},
	{SM2, KeyTransport, Use{SM2Encrypt, SM3}},

	// The KDF hash matches the curve's strength, as RFC 5753 §8 recommends.
	{ECDSAP256, KeyAgreement, Use{ECDHX963, SHA256}},
	{ECDSAP384, KeyAgreement, Use{ECDHX963, SHA384}},
	// Cofactor ECDH is written when asked for (the cofactor of both curves is 1).
	{ECDSAP256, KeyAgreement, Use{ECDHCofactorX963, SHA256}},
	{ECDSAP384, KeyAgreement, Use{ECDHCofactorX963, SHA384}},

	{RSA, RawSignature, Use{PKCS1v15, SHA256}},
	{RSA, RawSignature, Use{PKCS1v15, SHA384}},
	{RSA, RawSignature, Use{PKCS1v15, SHA512}},
	{RSA, RawSignature, Use{PSS, SHA256}},
	{RSA, RawSignature, Use{PSS, SHA384}},
	{RSA, RawSignature, Use{PSS, SHA512}},
	{ECDSAP256, RawSignature, Use{ECDSA, SHA256}},
	{ECDSAP256, RawSignature, Use{ECDSA, SHA384}},
	{ECDSAP256, RawSignature, Use{ECDSA, SHA512}},
	{ECDSAP384, RawSignature, Use{ECDSA, SHA384}},
	{ECDSAP384, RawSignature, Use{ECDSA, SHA256}},
	{ECDSAP384, RawSignature, Use{ECDSA, SHA512}},
	{SM2, RawSignature, Use{SM2WithSM3, SM3}},

	// PKCS#1 v1.5 is decrypted with implicit rejection, as in key transport.
	{RSA, RawEncryption, Use{RSAESOAEP, SHA256}},
	{RSA, RawEncryption, Use{RSAESOAEP, SHA384}},
	{RSA, RawEncryption, Use{RSAESOAEP, SHA512}},
	{RSA, RawEncryption, Use{RSAESPKCS1v15, NoDigest}},
	{SM2, RawEncryption, Use{SM2Encrypt, SM3}},
}

// Uses lists what a family may do for a purpose, the default first; nil when the
// family does not serve the purpose. The slice is the caller's.
func Uses(f Family, p Purpose) []Use {
	var out []Use
	for _, r := range table {
		if r.family == f && r.purpose == p {
			out = append(out, r.Use)
		}
	}
	return out
}

// Default is the first Use of a family for a purpose; ok is false when the family
// does not serve the purpose.
func Default(f Family, p Purpose) (u Use, ok bool) {
	for _, r := range table {
		if r.family == f && r.purpose == p {
			return r.Use, true
		}
	}
	return Use{}, false
}

// Pick returns the first Use of a family for a purpose with scheme s and digest d, a
// zero s or d matching any: the default when neither is given, else the default among
// the uses with what was given. ok is false when the family has no such use.
func Pick(f Family, p Purpose, s Scheme, d Digest) (u Use, ok bool) {
	for _, r := range table {
		if r.family == f && r.purpose == p && (s == 0 || r.Scheme == s) && (d == NoDigest || r.Digest == d) {
			return r.Use, true
		}
	}
	return Use{}, false
}

// Digests lists the digests a family uses for a purpose, each once, the default
// first; nil when the family does not serve the purpose.
func Digests(f Family, p Purpose) []Digest {
	var out []Digest
	for _, r := range table {
		if r.family == f && r.purpose == p && !slices.Contains(out, r.Digest) {
			out = append(out, r.Digest)
		}
	}
	return out
}

// Families lists the families that have a use for p with scheme s and digest d (a
// zero s or d matching any), in the order of the Family constants.
func Families(p Purpose, s Scheme, d Digest) []Family {
	var out []Family
	for f := range families {
		if _, ok := Pick(Family(f), p, s, d); ok {
			out = append(out, Family(f))
		}
	}
	return out
}

// Allows reports whether the table has u for a family and a purpose.
func Allows(f Family, p Purpose, u Use) bool {
	for _, r := range table {
		if r.family == f && r.purpose == p && r.Use == u {
			return true
		}
	}
	return false
}

// ErrUnsupported is what every Check failure matches (errors.Is).
var ErrUnsupported = errors.New("unsupported key")

// unsupportedError says which rule a key failed; it matches ErrUnsupported.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string        { return e.msg }
func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Check returns the family of pub when the key may serve purpose p: its family serves
// p and, for RSA, its modulus is at least p.MinRSABits. The error says which rule
// failed and matches ErrUnsupported.
func Check(pub crypto.PublicKey, p Purpose) (Family, error) {
	f := Of(pub)
	if f == Unsupported {
		return f, &unsupportedError{describe(pub) + " is not supported"}
	}
	if _, ok := Default(f, p); !ok {
		return Unsupported, &unsupportedError{fmt.Sprintf("an %s key cannot be used for %s", f, p)}
	}
	if f == RSA {
		if bits := pub.(*rsa.PublicKey).N.BitLen(); bits < p.MinRSABits() {
			return Unsupported, &unsupportedError{fmt.Sprintf("RSA-%d key: %s needs at least %d bits", bits, p, p.MinRSABits())}
		}
	}
	return f, nil
}

// describe names a key that is not in the table, for error messages.
func describe(pub crypto.PublicKey) string {
	if p, ok := pub.(*ecdsa.PublicKey); ok && p != nil && p.Curve != nil && p.Curve.Params() != nil {
		return "an ECDSA key on curve " + p.Curve.Params().Name
	}
	return fmt.Sprintf("a key of type %T", pub)
}
