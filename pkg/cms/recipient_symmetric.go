package cms

import (
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The two RecipientInfo choices whose key-encryption key is symmetric:
//
//	KEKRecipientInfo ::= SEQUENCE {     -- [2] IMPLICIT in RecipientInfo
//	  version CMSVersion,  -- always 4
//	  kekid KEKIdentifier,
//	  keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
//	  encryptedKey EncryptedKey }
//
//	KEKIdentifier ::= SEQUENCE {
//	  keyIdentifier OCTET STRING,
//	  date GeneralizedTime OPTIONAL,
//	  other OtherKeyAttribute OPTIONAL }
//
//	PasswordRecipientInfo ::= SEQUENCE {   -- [3] IMPLICIT in RecipientInfo (RFC 3211)
//	  version CMSVersion,  -- always 0
//	  keyDerivationAlgorithm [0] KeyDerivationAlgorithmIdentifier OPTIONAL,
//	  keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
//	  encryptedKey EncryptedKey }
//
//	PBKDF2-params ::= SEQUENCE {           -- RFC 8018 appendix A.2
//	  salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
//	  iterationCount INTEGER (1..MAX),
//	  keyLength INTEGER (1..MAX) OPTIONAL,
//	  prf AlgorithmIdentifier DEFAULT algid-hmacWithSHA1 }

// KEKRecipientInfo is a recipient holding a symmetric key-encryption key known by its
// identifier (RFC 5652 §6.2.3).
type KEKRecipientInfo struct {
	Version int
	// KeyID is the kekid keyIdentifier. The optional date and other fields are read
	// and dropped.
	KeyID                  []byte
	KeyEncryptionAlgorithm AlgorithmIdentifier
	EncryptedKey           []byte
}

// PasswordRecipientInfo is a recipient whose key-encryption key is derived from a
// password (RFC 3211).
type PasswordRecipientInfo struct {
	Version int
	// KeyDerivationAlgorithm is nil when absent (the key-encryption key was agreed
	// some other way, which this project does not do).
	KeyDerivationAlgorithm *AlgorithmIdentifier
	// KeyEncryptionAlgorithm is id-alg-PWRI-KEK; its parameters are the DER
	// AlgorithmIdentifier of the block cipher (with its IV) the key wrap uses.
	KeyEncryptionAlgorithm AlgorithmIdentifier
	EncryptedKey           []byte
}

var (
	envTagCtx3Cons = cbasn1.Tag(3).ContextSpecific().Constructed()
)

func parseKEK(elem cryptobyte.String) (*KEKRecipientInfo, error) {
	var seq, kekid, id, ek cryptobyte.String
	k := &KEKRecipientInfo{}
	if !elem.ReadASN1(&seq, envTagCtx2Cons) || !seq.ReadASN1Integer(&k.Version) ||
		!seq.ReadASN1(&kekid, cbasn1.SEQUENCE) || !kekid.ReadASN1(&id, cbasn1.OCTET_STRING) ||
		!kekid.SkipOptionalASN1(cbasn1.GeneralizedTime) || !kekid.SkipOptionalASN1(cbasn1.SEQUENCE) || !kekid.Empty() ||
		!readAlgorithmIdentifier(&seq, &k.KeyEncryptionAlgorithm) ||
		!seq.ReadASN1(&ek, cbasn1.OCTET_STRING) || !seq.Empty() {
		return nil, malformed("KEKRecipientInfo")
	}
	k.KeyID, k.EncryptedKey = id, ek
	if k.KeyID == nil {
		k.KeyID = []byte{}
	}
	return k, nil
}

func parsePassword(elem cryptobyte.String) (*PasswordRecipientInfo, error) {
	var seq, ek cryptobyte.String
	p := &PasswordRecipientInfo{}
	if !elem.ReadASN1(&seq, envTagCtx3Cons) || !seq.ReadASN1Integer(&p.Version) {
		return nil, malformed("PasswordRecipientInfo")
	}
	if seq.PeekASN1Tag(envTagCtx0Cons) {
		var kda cryptobyte.String
		a := &AlgorithmIdentifier{}
		if !seq.ReadASN1(&kda, envTagCtx0Cons) || !sdReadOID(&kda, &a.Algorithm) {
			return nil, malformed("PasswordRecipientInfo.keyDerivationAlgorithm")
		}
		if !kda.Empty() {
			var params cryptobyte.String
			var tag cbasn1.Tag
			if !kda.ReadAnyASN1Element(&params, &tag) || !kda.Empty() {
				return nil, malformed("PasswordRecipientInfo.keyDerivationAlgorithm")
			}
			a.Parameters = params
		}
		p.KeyDerivationAlgorithm = a
	}
	if !readAlgorithmIdentifier(&seq, &p.KeyEncryptionAlgorithm) ||
		!seq.ReadASN1(&ek, cbasn1.OCTET_STRING) || !seq.Empty() {
		return nil, malformed("PasswordRecipientInfo")
	}
	p.EncryptedKey = ek
	return p, nil
}

func (k *KEKRecipientInfo) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(envTagCtx2Cons, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(k.Version))
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1OctetString(k.KeyID) })
		k.KeyEncryptionAlgorithm.marshalInto(b)
		b.AddASN1OctetString(k.EncryptedKey)
	})
}

func (p *PasswordRecipientInfo) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(envTagCtx3Cons, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(p.Version))
		if a := p.KeyDerivationAlgorithm; a != nil {
			b.AddASN1(envTagCtx0Cons, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(a.Algorithm)
				if a.Parameters != nil {
					b.AddBytes(a.Parameters)
				}
			})
		}
		p.KeyEncryptionAlgorithm.marshalInto(b)
		b.AddASN1OctetString(p.EncryptedKey)
	})
}

// PBKDF2Params are the parameters of id-PBKDF2 with a specified salt.
type PBKDF2Params struct {
	Salt []byte
	// Iterations is the iteration count, at least 1. A reader bounds it before
	// deriving anything: the count is the attacker's to choose.
	Iterations int
	// KeyLength is the derived key's length in bytes, 0 when absent.
	KeyLength int
	// PRF is the pseudo-random function; Parse fills in the default hmacWithSHA1.
	PRF AlgorithmIdentifier
}

// ParsePBKDF2Params reads PBKDF2-params. A salt from another source (otherSource)
// is refused as unsupported, as is an iteration count or key length beyond int32.
func ParsePBKDF2Params(der []byte) (PBKDF2Params, error) {
	p := PBKDF2Params{PRF: AlgorithmIdentifier{Algorithm: OIDHMACWithSHA1, Parameters: NullParameters}}
	s := cryptobyte.String(der)
	var seq, salt cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return p, malformed("PBKDF2-params")
	}
	if !seq.PeekASN1Tag(cbasn1.OCTET_STRING) {
		return p, malformed("PBKDF2-params.salt: only a specified salt is read")
	}
	var iter, keyLen int64
	if !seq.ReadASN1(&salt, cbasn1.OCTET_STRING) || !seq.ReadASN1Integer(&iter) {
		return p, malformed("PBKDF2-params")
	}
	if seq.PeekASN1Tag(cbasn1.INTEGER) && !seq.ReadASN1Integer(&keyLen) {
		return p, malformed("PBKDF2-params.keyLength")
	}
	if !seq.Empty() && (!readAlgorithmIdentifier(&seq, &p.PRF) || !seq.Empty()) {
		return p, malformed("PBKDF2-params.prf")
	}
	if iter < 1 || iter > 1<<31-1 || keyLen < 0 || keyLen > 1<<16 {
		return p, malformed("PBKDF2-params: iteration count or key length out of range")
	}
	p.Salt, p.Iterations, p.KeyLength = salt, int(iter), int(keyLen)
	return p, nil
}

// Marshal writes the parameters; the PRF is always written (it is never the SHA-1
// default here), the key length when non-zero.
func (p PBKDF2Params) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(p.Salt)
		b.AddASN1Int64(int64(p.Iterations))
		if p.KeyLength > 0 {
			b.AddASN1Int64(int64(p.KeyLength))
		}
		p.PRF.marshalInto(b)
	})
	return b.Bytes()
}

// Password-based key derivation and key wrap.
var (
	OIDPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	OIDHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	OIDHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	OIDHMACWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	OIDHMACWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	OIDHMACWithSM3    = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401, 2}
	OIDPWRIKEK        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 3, 9}
)
