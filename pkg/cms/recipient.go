package cms

import (
	"bytes"
	"crypto/sha1"
	"encoding/asn1"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RecipientInfos (RFC 5652 §6.2), as far as they are read here:
//
//	RecipientInfo ::= CHOICE {
//	  ktri KeyTransRecipientInfo,
//	  kari [1] KeyAgreeRecipientInfo,
//	  kekri [2] KEKRecipientInfo,
//	  pwri [3] PasswordRecipientinfo,
//	  ori [4] OtherRecipientInfo }
//
//	KeyTransRecipientInfo ::= SEQUENCE {
//	  version CMSVersion,  -- 0 (issuerAndSerialNumber) or 2 (subjectKeyIdentifier); 1 in GM/T 0010
//	  rid RecipientIdentifier,
//	  keyEncryptionAlgorithm AlgorithmIdentifier,
//	  encryptedKey OCTET STRING }
//
//	RecipientIdentifier ::= CHOICE {
//	  issuerAndSerialNumber IssuerAndSerialNumber,
//	  subjectKeyIdentifier [0] SubjectKeyIdentifier }
//
//	KeyAgreeRecipientInfo ::= SEQUENCE {
//	  version CMSVersion,  -- always 3
//	  originator [0] EXPLICIT OriginatorIdentifierOrKey,
//	  ukm [1] EXPLICIT UserKeyingMaterial OPTIONAL,
//	  keyEncryptionAlgorithm AlgorithmIdentifier,
//	  recipientEncryptedKeys SEQUENCE OF RecipientEncryptedKey }
//
//	OriginatorIdentifierOrKey ::= CHOICE {
//	  issuerAndSerialNumber IssuerAndSerialNumber,
//	  subjectKeyIdentifier [0] SubjectKeyIdentifier,
//	  originatorKey [1] OriginatorPublicKey }
//
//	OriginatorPublicKey ::= SEQUENCE { algorithm AlgorithmIdentifier, publicKey BIT STRING }
//
//	RecipientEncryptedKey ::= SEQUENCE { rid KeyAgreeRecipientIdentifier, encryptedKey OCTET STRING }
//
//	KeyAgreeRecipientIdentifier ::= CHOICE {
//	  issuerAndSerialNumber IssuerAndSerialNumber,
//	  rKeyId [0] IMPLICIT RecipientKeyIdentifier }
//
//	RecipientKeyIdentifier ::= SEQUENCE {
//	  subjectKeyIdentifier SubjectKeyIdentifier,
//	  date GeneralizedTime OPTIONAL,
//	  other OtherKeyAttribute OPTIONAL }
//
// kekri and pwri are read too (recipient_symmetric.go); ori and any future choice are
// kept as raw elements and skipped: a message that also carries one of them still
// opens for its other recipients.

// RecipientIdentifier names a recipient's certificate. Exactly one of
// IssuerAndSerial and SubjectKeyID is set.
type RecipientIdentifier struct {
	IssuerAndSerial *IssuerAndSerial
	SubjectKeyID    []byte
}

// RecipientCertificate is what a RecipientIdentifier is matched against: the parts of
// a certificate that name it.
type RecipientCertificate struct {
	RawIssuer []byte
	Serial    *big.Int
	// SubjectKeyID is the certificate's SubjectKeyIdentifier extension, or nil.
	SubjectKeyID []byte
	// RawSubjectPublicKeyInfo is used to compute the RFC 5280 method 1 key identifier
	// when the certificate has no SubjectKeyIdentifier extension.
	RawSubjectPublicKeyInfo []byte
}

// Matches reports whether rid names the certificate c.
func (rid RecipientIdentifier) Matches(c RecipientCertificate) bool {
	if rid.IssuerAndSerial != nil {
		return rid.IssuerAndSerial.Matches(c.RawIssuer, c.Serial)
	}
	if len(rid.SubjectKeyID) == 0 {
		return false
	}
	if len(c.SubjectKeyID) > 0 {
		return bytes.Equal(rid.SubjectKeyID, c.SubjectKeyID)
	}
	kid := KeyIDFromSPKI(c.RawSubjectPublicKeyInfo)
	return kid != nil && bytes.Equal(rid.SubjectKeyID, kid)
}

// KeyIDFromSPKI returns the RFC 5280 §4.2.1.2 method 1 key identifier (SHA-1 of the
// subjectPublicKey bits) of a DER SubjectPublicKeyInfo, or nil when it does not parse.
func KeyIDFromSPKI(spki []byte) []byte {
	s := cryptobyte.String(spki)
	var seq cryptobyte.String
	var bits asn1.BitString
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.SEQUENCE) || !seq.ReadASN1BitString(&bits) {
		return nil
	}
	sum := sha1.Sum(bits.Bytes)
	return sum[:]
}

// RecipientInfo is one element of RecipientInfos. For the choices read here exactly
// one of KeyTrans, KeyAgree, KEK and Password is set. For the others (ori) all are
// nil and Raw holds the element, which Marshal writes back unchanged.
type RecipientInfo struct {
	KeyTrans *KeyTransRecipientInfo
	KeyAgree *KeyAgreeRecipientInfo
	KEK      *KEKRecipientInfo
	Password *PasswordRecipientInfo
	// Raw is the complete DER element as read (nil for a RecipientInfo built in code).
	Raw []byte
}

// KeyTransRecipientInfo is a key-transport recipient (RSA, SM2).
type KeyTransRecipientInfo struct {
	Version                int
	RID                    RecipientIdentifier
	KeyEncryptionAlgorithm AlgorithmIdentifier
	EncryptedKey           []byte
}

// KeyAgreeRecipientInfo is a key-agreement recipient (ECDH).
type KeyAgreeRecipientInfo struct {
	Version    int
	Originator OriginatorIdentifierOrKey
	// UKM is the user keying material, or nil when absent.
	UKM []byte
	// KeyEncryptionAlgorithm is the key-agreement scheme; its Parameters are the DER
	// AlgorithmIdentifier of the key-wrap algorithm.
	KeyEncryptionAlgorithm AlgorithmIdentifier
	RecipientEncryptedKeys []RecipientEncryptedKey
}

// OriginatorIdentifierOrKey names the originator's key. Exactly one field is set;
// OpenSSL and this package write PublicKey (an ephemeral ECDH key).
type OriginatorIdentifierOrKey struct {
	IssuerAndSerial *IssuerAndSerial
	SubjectKeyID    []byte
	PublicKey       *OriginatorPublicKey
}

// OriginatorPublicKey is the originator's public key.
type OriginatorPublicKey struct {
	Algorithm AlgorithmIdentifier
	// PublicKey is the content of the BIT STRING (an encoded EC point).
	PublicKey []byte
}

// RecipientEncryptedKey is one recipient of a KeyAgreeRecipientInfo. An rKeyId is
// read into RID.SubjectKeyID (its date and other fields are read and dropped).
type RecipientEncryptedKey struct {
	RID          RecipientIdentifier
	EncryptedKey []byte
}

var (
	envTagCtx0Prim = cbasn1.Tag(0).ContextSpecific()
	envTagCtx0Cons = cbasn1.Tag(0).ContextSpecific().Constructed()
	envTagCtx1Cons = cbasn1.Tag(1).ContextSpecific().Constructed()
	envTagCtx2Cons = cbasn1.Tag(2).ContextSpecific().Constructed()
)

// readRecipientInfos reads the contents of a RecipientInfos SET.
func readRecipientInfos(set cryptobyte.String) ([]RecipientInfo, error) {
	if set.Empty() {
		return nil, malformed("RecipientInfos is empty")
	}
	var out []RecipientInfo
	for !set.Empty() {
		var elem cryptobyte.String
		var tag cbasn1.Tag
		if !set.ReadAnyASN1Element(&elem, &tag) {
			return nil, malformed("RecipientInfo")
		}
		ri := RecipientInfo{Raw: elem}
		switch {
		case tag == cbasn1.SEQUENCE:
			ktri, err := parseKeyTrans(elem)
			if err != nil {
				return nil, err
			}
			ri.KeyTrans = ktri
		case tag == envTagCtx1Cons:
			kari, err := parseKeyAgree(elem)
			if err != nil {
				return nil, err
			}
			ri.KeyAgree = kari
		case tag == envTagCtx2Cons:
			kekri, err := parseKEK(elem)
			if err != nil {
				return nil, err
			}
			ri.KEK = kekri
		case tag == envTagCtx3Cons:
			pwri, err := parsePassword(elem)
			if err != nil {
				return nil, err
			}
			ri.Password = pwri
		case tag&0xc0 == 0x80 && tag&0x20 != 0:
			// ori [4] (or a future choice): kept raw.
		default:
			return nil, malformed("RecipientInfo choice")
		}
		out = append(out, ri)
	}
	return out, nil
}

func parseKeyTrans(elem cryptobyte.String) (*KeyTransRecipientInfo, error) {
	var seq cryptobyte.String
	k := &KeyTransRecipientInfo{}
	if !elem.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&k.Version) {
		return nil, malformed("KeyTransRecipientInfo")
	}
	if !readRecipientIdentifier(&seq, &k.RID, false) {
		return nil, malformed("KeyTransRecipientInfo.rid")
	}
	var ek cryptobyte.String
	if !readAlgorithmIdentifier(&seq, &k.KeyEncryptionAlgorithm) ||
		!seq.ReadASN1(&ek, cbasn1.OCTET_STRING) || !seq.Empty() {
		return nil, malformed("KeyTransRecipientInfo")
	}
	k.EncryptedKey = ek
	return k, nil
}

// readRecipientIdentifier reads a RecipientIdentifier, or with keyAgree a
// KeyAgreeRecipientIdentifier ([0] is then an IMPLICIT RecipientKeyIdentifier SEQUENCE).
func readRecipientIdentifier(s *cryptobyte.String, rid *RecipientIdentifier, keyAgree bool) bool {
	switch {
	case s.PeekASN1Tag(cbasn1.SEQUENCE):
		ias := &IssuerAndSerial{}
		if !readIssuerAndSerial(s, ias) {
			return false
		}
		rid.IssuerAndSerial = ias
		return true
	case !keyAgree && s.PeekASN1Tag(envTagCtx0Prim):
		var ski cryptobyte.String
		if !s.ReadASN1(&ski, envTagCtx0Prim) || len(ski) == 0 {
			return false
		}
		rid.SubjectKeyID = ski
		return true
	case keyAgree && s.PeekASN1Tag(envTagCtx0Cons):
		var rkid, ski cryptobyte.String
		if !s.ReadASN1(&rkid, envTagCtx0Cons) || !rkid.ReadASN1(&ski, cbasn1.OCTET_STRING) || len(ski) == 0 {
			return false
		}
		// date GeneralizedTime OPTIONAL, other OtherKeyAttribute OPTIONAL: skipped.
		if !rkid.SkipOptionalASN1(cbasn1.GeneralizedTime) || !rkid.SkipOptionalASN1(cbasn1.SEQUENCE) || !rkid.Empty() {
			return false
		}
		rid.SubjectKeyID = ski
		return true
	}
	return false
}

func parseKeyAgree(elem cryptobyte.String) (*KeyAgreeRecipientInfo, error) {
	var seq, orig cryptobyte.String
	k := &KeyAgreeRecipientInfo{}
	if !elem.ReadASN1(&seq, envTagCtx1Cons) || !seq.ReadASN1Integer(&k.Version) ||
		!seq.ReadASN1(&orig, envTagCtx0Cons) {
		return nil, malformed("KeyAgreeRecipientInfo")
	}
	switch {
	case orig.PeekASN1Tag(cbasn1.SEQUENCE):
		ias := &IssuerAndSerial{}
		if !readIssuerAndSerial(&orig, ias) {
			return nil, malformed("KeyAgreeRecipientInfo.originator")
		}
		k.Originator.IssuerAndSerial = ias
	case orig.PeekASN1Tag(envTagCtx0Prim):
		var ski cryptobyte.String
		if !orig.ReadASN1(&ski, envTagCtx0Prim) {
			return nil, malformed("KeyAgreeRecipientInfo.originator")
		}
		k.Originator.SubjectKeyID = ski
	case orig.PeekASN1Tag(envTagCtx1Cons):
		var opk cryptobyte.String
		pk := &OriginatorPublicKey{}
		var bits asn1.BitString
		if !orig.ReadASN1(&opk, envTagCtx1Cons) || !readAlgorithmIdentifier(&opk, &pk.Algorithm) ||
			!opk.ReadASN1BitString(&bits) || bits.BitLength%8 != 0 || !opk.Empty() {
			return nil, malformed("KeyAgreeRecipientInfo.originatorKey")
		}
		pk.PublicKey = bits.Bytes
		k.Originator.PublicKey = pk
	default:
		return nil, malformed("KeyAgreeRecipientInfo.originator")
	}
	if !orig.Empty() {
		return nil, malformed("KeyAgreeRecipientInfo.originator")
	}
	if seq.PeekASN1Tag(envTagCtx1Cons) {
		var ukmExp, ukm cryptobyte.String
		if !seq.ReadASN1(&ukmExp, envTagCtx1Cons) || !ukmExp.ReadASN1(&ukm, cbasn1.OCTET_STRING) || !ukmExp.Empty() {
			return nil, malformed("KeyAgreeRecipientInfo.ukm")
		}
		k.UKM = ukm
		if k.UKM == nil {
			k.UKM = []byte{}
		}
	}
	var reks cryptobyte.String
	if !readAlgorithmIdentifier(&seq, &k.KeyEncryptionAlgorithm) ||
		!seq.ReadASN1(&reks, cbasn1.SEQUENCE) || !seq.Empty() {
		return nil, malformed("KeyAgreeRecipientInfo")
	}
	for !reks.Empty() {
		var rek, ek cryptobyte.String
		var r RecipientEncryptedKey
		if !reks.ReadASN1(&rek, cbasn1.SEQUENCE) || !readRecipientIdentifier(&rek, &r.RID, true) ||
			!rek.ReadASN1(&ek, cbasn1.OCTET_STRING) || !rek.Empty() {
			return nil, malformed("RecipientEncryptedKey")
		}
		r.EncryptedKey = ek
		k.RecipientEncryptedKeys = append(k.RecipientEncryptedKeys, r)
	}
	if len(k.RecipientEncryptedKeys) == 0 {
		return nil, malformed("RecipientEncryptedKeys is empty")
	}
	return k, nil
}

// addRecipientInfos appends the RecipientInfos SET, its elements sorted by their
// encoding as DER requires of a SET OF.
func addRecipientInfos(b *cryptobyte.Builder, ris []RecipientInfo) {
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		addSetOfElements(b, len(ris), func(i int, b *cryptobyte.Builder) { ris[i].marshalInto(b) })
	})
}

func (ri *RecipientInfo) marshalInto(b *cryptobyte.Builder) {
	switch {
	case ri.KeyTrans != nil:
		ri.KeyTrans.marshalInto(b)
	case ri.KeyAgree != nil:
		ri.KeyAgree.marshalInto(b)
	case ri.KEK != nil:
		ri.KEK.marshalInto(b)
	case ri.Password != nil:
		ri.Password.marshalInto(b)
	case ri.Raw != nil:
		b.AddBytes(ri.Raw)
	default:
		b.SetError(malformed("empty RecipientInfo"))
	}
}

// marshalInto appends a RecipientIdentifier, or with keyAgree a
// KeyAgreeRecipientIdentifier (the key identifier in an rKeyId).
func (rid RecipientIdentifier) marshalInto(b *cryptobyte.Builder, keyAgree bool) {
	switch {
	case rid.IssuerAndSerial != nil:
		rid.IssuerAndSerial.marshalInto(b)
	case keyAgree:
		b.AddASN1(envTagCtx0Cons, func(b *cryptobyte.Builder) { b.AddASN1OctetString(rid.SubjectKeyID) })
	default:
		addTagged(b, envTagCtx0Prim, rid.SubjectKeyID)
	}
}

func (k *KeyTransRecipientInfo) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(k.Version))
		k.RID.marshalInto(b, false)
		k.KeyEncryptionAlgorithm.marshalInto(b)
		b.AddASN1OctetString(k.EncryptedKey)
	})
}

func (k *KeyAgreeRecipientInfo) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(envTagCtx1Cons, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(k.Version))
		b.AddASN1(envTagCtx0Cons, func(b *cryptobyte.Builder) {
			switch o := k.Originator; {
			case o.PublicKey != nil:
				b.AddASN1(envTagCtx1Cons, func(b *cryptobyte.Builder) {
					o.PublicKey.Algorithm.marshalInto(b)
					b.AddASN1BitString(o.PublicKey.PublicKey)
				})
			case o.IssuerAndSerial != nil:
				o.IssuerAndSerial.marshalInto(b)
			default:
				addTagged(b, envTagCtx0Prim, o.SubjectKeyID)
			}
		})
		if k.UKM != nil {
			b.AddASN1(envTagCtx1Cons, func(b *cryptobyte.Builder) { b.AddASN1OctetString(k.UKM) })
		}
		k.KeyEncryptionAlgorithm.marshalInto(b)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, r := range k.RecipientEncryptedKeys {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					r.RID.marshalInto(b, true)
					b.AddASN1OctetString(r.EncryptedKey)
				})
			}
		})
	})
}

// recipientInfosVersionInputs reports what the RFC 5652 §6.1 version rule needs to
// know about the RecipientInfos.
func recipientInfosVersionInputs(ris []RecipientInfo) (allV0 bool, pwriOrOri bool) {
	allV0 = true
	for i := range ris {
		ri := &ris[i]
		switch {
		case ri.KeyTrans != nil:
			if ri.KeyTrans.Version != 0 {
				allV0 = false
			}
		case ri.KeyAgree != nil, ri.KEK != nil:
			allV0 = false
		case ri.Password != nil:
			allV0, pwriOrOri = false, true
		default:
			allV0 = false
			if len(ri.Raw) > 0 && (ri.Raw[0] == 0xa3 || ri.Raw[0] == 0xa4) {
				pwriOrOri = true
			}
		}
	}
	return allV0, pwriOrOri
}
