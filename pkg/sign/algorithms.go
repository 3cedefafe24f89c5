package sign

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
)

// digestAlg is a message digest algorithm. SM3 has no crypto.Hash value, so the
// package uses its own small enumeration rather than crypto.Hash.
type digestAlg int

const (
	digestUnknown digestAlg = iota
	digestSHA1
	digestSHA256
	digestSHA384
	digestSHA512
	digestSM3
)

const maxDigestSize = 64

func (d digestAlg) oid() asn1.ObjectIdentifier {
	switch d {
	case digestSHA1:
		return cms.OIDSHA1
	case digestSHA256:
		return cms.OIDSHA256
	case digestSHA384:
		return cms.OIDSHA384
	case digestSHA512:
		return cms.OIDSHA512
	case digestSM3:
		return cms.OIDSM3
	}
	return nil
}

func (d digestAlg) cryptoHash() crypto.Hash {
	switch d {
	case digestSHA1:
		return crypto.SHA1
	case digestSHA256:
		return crypto.SHA256
	case digestSHA384:
		return crypto.SHA384
	case digestSHA512:
		return crypto.SHA512
	}
	return 0
}

func (d digestAlg) String() string {
	switch d {
	case digestSHA1:
		return "SHA-1"
	case digestSHA256:
		return "SHA-256"
	case digestSHA384:
		return "SHA-384"
	case digestSHA512:
		return "SHA-512"
	case digestSM3:
		return "SM3"
	}
	return "unknown digest"
}

func (d digestAlg) newHash() hash.Hash {
	switch d {
	case digestSHA1:
		return sha1.New()
	case digestSHA256:
		return sha256.New()
	case digestSHA384:
		return sha512.New384()
	case digestSHA512:
		return sha512.New()
	case digestSM3:
		return sm3.New()
	}
	return nil
}

// sum hashes data into out and returns the digest, without allocating.
func (d digestAlg) sum(out *[maxDigestSize]byte, data []byte) []byte {
	switch d {
	case digestSHA1:
		s := sha1.Sum(data)
		return out[:copy(out[:], s[:])]
	case digestSHA256:
		s := sha256.Sum256(data)
		return out[:copy(out[:], s[:])]
	case digestSHA384:
		s := sha512.Sum384(data)
		return out[:copy(out[:], s[:])]
	case digestSHA512:
		s := sha512.Sum512(data)
		return out[:copy(out[:], s[:])]
	case digestSM3:
		s := sm3.Sum(data)
		return out[:copy(out[:], s[:])]
	}
	return nil
}

func digestFromOID(oid asn1.ObjectIdentifier) digestAlg {
	switch {
	case oid.Equal(cms.OIDSHA256):
		return digestSHA256
	case oid.Equal(cms.OIDSHA384):
		return digestSHA384
	case oid.Equal(cms.OIDSHA512):
		return digestSHA512
	case oid.Equal(cms.OIDSM3), oid.Equal(cms.OIDSM3Alt):
		return digestSM3
	case oid.Equal(cms.OIDSHA1):
		return digestSHA1
	}
	return digestUnknown
}

// algorithm is the digest in the algorithm table (NoDigest for SHA-1, which is only
// read, never written).
func (d digestAlg) algorithm() algorithm.Digest {
	if d == digestSM3 {
		return algorithm.SM3
	}
	return algorithm.DigestOf(d.cryptoHash())
}

func digestFromHash(h crypto.Hash) digestAlg {
	switch h {
	case crypto.SHA256:
		return digestSHA256
	case crypto.SHA384:
		return digestSHA384
	case crypto.SHA512:
		return digestSHA512
	}
	return digestUnknown
}

// keyKind is the family of a public key, read from the key itself (never from the
// concrete type of the signer holding it), as far as it decides the signature scheme.
type keyKind int

const (
	keyUnknown keyKind = iota
	keyRSA
	keyECDSA
	keySM2
)

func (k keyKind) String() string {
	switch k {
	case keyRSA:
		return "RSA"
	case keyECDSA:
		return "ECDSA"
	case keySM2:
		return "SM2"
	}
	return "unsupported"
}

// kindOf asks the algorithm table for the key's family: a key outside it (ECDSA on
// P-521, say) is keyUnknown, which neither Sign nor Verify takes.
func kindOf(pub crypto.PublicKey) keyKind {
	switch f := algorithm.Of(pub); {
	case f == algorithm.RSA:
		return keyRSA
	case f.IsECDSA():
		return keyECDSA
	case f == algorithm.SM2:
		return keySM2
	}
	return keyUnknown
}

// signable returns the family of a key Sign supports (the algorithm table's SignCMS:
// RSA of at least 2048 bits, ECDSA on P-256 or P-384, SM2), or ErrUnsupportedKey
// saying why not.
func signable(pub crypto.PublicKey) (algorithm.Family, error) {
	f, err := algorithm.Check(pub, algorithm.SignCMS)
	if err != nil {
		return f, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return f, nil
}

// signingUse is the table's row for a scheme and digest Sign chose; ok is false when
// the table does not allow them to the family.
func signingUse(f algorithm.Family, s scheme, d digestAlg) (u algorithm.Use, ok bool) {
	u = algorithm.Use{Scheme: s.algorithm(), Digest: d.algorithm()}
	return u, algorithm.Allows(f, algorithm.SignCMS, u)
}

// scheme is a signature scheme as a SignerInfo names it.
type scheme int

const (
	schemeUnknown scheme = iota
	schemeRSAPKCS1
	schemeRSAPSS
	schemeECDSA
	schemeSM2
)

func (s scheme) keyKind() keyKind {
	switch s {
	case schemeRSAPKCS1, schemeRSAPSS:
		return keyRSA
	case schemeECDSA:
		return keyECDSA
	case schemeSM2:
		return keySM2
	}
	return keyUnknown
}

func (s scheme) algorithm() algorithm.Scheme {
	switch s {
	case schemeRSAPKCS1:
		return algorithm.PKCS1v15
	case schemeRSAPSS:
		return algorithm.PSS
	case schemeECDSA:
		return algorithm.ECDSA
	case schemeSM2:
		return algorithm.SM2WithSM3
	}
	return 0
}

// sigParams is a parsed signatureAlgorithm.
type sigParams struct {
	scheme scheme
	// digest is the hash the signature algorithm names, digestUnknown when it names
	// none (rsaEncryption, SM2 identifiers): then the SignerInfo's digest applies.
	digest digestAlg
	// saltLen is the PSS salt length.
	saltLen int
}

// parseSignatureAlgorithm maps a signatureAlgorithm to a scheme. ok is false for an
// algorithm this package does not verify.
func parseSignatureAlgorithm(a cms.AlgorithmIdentifier) (p sigParams, ok bool) {
	oid := a.Algorithm
	switch {
	case oid.Equal(cms.OIDRSAEncryption):
		return sigParams{scheme: schemeRSAPKCS1}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDSHA256WithRSA):
		return sigParams{scheme: schemeRSAPKCS1, digest: digestSHA256}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDSHA384WithRSA):
		return sigParams{scheme: schemeRSAPKCS1, digest: digestSHA384}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDSHA512WithRSA):
		return sigParams{scheme: schemeRSAPKCS1, digest: digestSHA512}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDSHA1WithRSA):
		return sigParams{scheme: schemeRSAPKCS1, digest: digestSHA1}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDRSASSAPSS):
		d, salt, ok := parsePSSParams(a.Parameters)
		return sigParams{scheme: schemeRSAPSS, digest: d, saltLen: salt}, ok
	case oid.Equal(cms.OIDECDSAWithSHA256):
		return sigParams{scheme: schemeECDSA, digest: digestSHA256}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDECDSAWithSHA384):
		return sigParams{scheme: schemeECDSA, digest: digestSHA384}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDECDSAWithSHA512):
		return sigParams{scheme: schemeECDSA, digest: digestSHA512}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDECDSAWithSHA1):
		return sigParams{scheme: schemeECDSA, digest: digestSHA1}, a.HasNullOrNoParameters()
	case oid.Equal(cms.OIDECPublicKey):
		// Some writers name the key type; the SignerInfo's digest applies.
		return sigParams{scheme: schemeECDSA}, true
	case oid.Equal(cms.OIDSM2WithSM3), oid.Equal(cms.OIDSM2Sign), oid.Equal(cms.OIDSM2):
		return sigParams{scheme: schemeSM2, digest: digestSM3}, a.HasNullOrNoParameters()
	}
	return sigParams{}, false
}

// pssParams returns the DER RSASSA-PSS-params as OpenSSL writes them: every field
// explicit (hash with NULL parameters, MGF1 with the same hash, salt length = hash
// length), trailerField omitted (its default, 1).
func pssParams(d digestAlg) []byte {
	var b cryptobyte.Builder
	hashAlg := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(d.oid())
			b.AddASN1NULL()
		})
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), hashAlg)
		b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(cms.OIDMGF1)
				hashAlg(b)
			})
		})
		b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(int64(d.cryptoHash().Size()))
		})
	})
	return b.BytesOrPanic()
}

// The parameters are fixed per hash: made once, never modified.
var (
	pssParamsSHA256 = pssParams(digestSHA256)
	pssParamsSHA384 = pssParams(digestSHA384)
	pssParamsSHA512 = pssParams(digestSHA512)
)

func pssParamsFor(d digestAlg) []byte {
	switch d {
	case digestSHA256:
		return pssParamsSHA256
	case digestSHA384:
		return pssParamsSHA384
	case digestSHA512:
		return pssParamsSHA512
	}
	return nil
}

// parsePSSParams reads RSASSA-PSS-params (RFC 4055 §3.1). Go's crypto/rsa uses the
// same hash for MGF1, so a different MGF1 hash is unsupported.
func parsePSSParams(der []byte) (digestAlg, int, bool) {
	if len(der) == 0 {
		return digestUnknown, 0, false // absent parameters would mean SHA-1 defaults; refuse
	}
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return digestUnknown, 0, false
	}
	h, mgfHash, salt := digestSHA1, digestSHA1, int64(20)
	if seq.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var e cryptobyte.String
		var a cms.AlgorithmIdentifier
		var err error
		if !seq.ReadASN1(&e, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return digestUnknown, 0, false
		}
		if a, err = cms.ParseAlgorithmIdentifier(e); err != nil || !a.HasNullOrNoParameters() {
			return digestUnknown, 0, false
		}
		h = digestFromOID(a.Algorithm)
	}
	if seq.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		var e, mseq cryptobyte.String
		var mgfOID asn1.ObjectIdentifier
		if !seq.ReadASN1(&e, cbasn1.Tag(1).Constructed().ContextSpecific()) ||
			!e.ReadASN1(&mseq, cbasn1.SEQUENCE) || !e.Empty() ||
			!mseq.ReadASN1ObjectIdentifier(&mgfOID) || !mgfOID.Equal(cms.OIDMGF1) {
			return digestUnknown, 0, false
		}
		a, err := cms.ParseAlgorithmIdentifier(mseq)
		if err != nil || !a.HasNullOrNoParameters() {
			return digestUnknown, 0, false
		}
		mgfHash = digestFromOID(a.Algorithm)
	}
	if seq.PeekASN1Tag(cbasn1.Tag(2).Constructed().ContextSpecific()) {
		var e cryptobyte.String
		if !seq.ReadASN1(&e, cbasn1.Tag(2).Constructed().ContextSpecific()) ||
			!e.ReadASN1Int64WithTag(&salt, cbasn1.INTEGER) || !e.Empty() || salt < 0 || salt > 1<<16 {
			return digestUnknown, 0, false
		}
	}
	if seq.PeekASN1Tag(cbasn1.Tag(3).Constructed().ContextSpecific()) {
		var e cryptobyte.String
		var trailer int64
		if !seq.ReadASN1(&e, cbasn1.Tag(3).Constructed().ContextSpecific()) ||
			!e.ReadASN1Int64WithTag(&trailer, cbasn1.INTEGER) || !e.Empty() || trailer != 1 {
			return digestUnknown, 0, false
		}
	}
	if !seq.Empty() || h != mgfHash || h == digestUnknown || h == digestSM3 {
		return digestUnknown, 0, false
	}
	return h, int(salt), true
}

// knownOIDs gives the dotted form of common OIDs without formatting (Verify
// reports them for every signer). Read-only.
var knownOIDs = []struct {
	oid asn1.ObjectIdentifier
	s   string
}{
	{cms.OIDSHA256, "2.16.840.1.101.3.4.2.1"},
	{cms.OIDSHA384, "2.16.840.1.101.3.4.2.2"},
	{cms.OIDSHA512, "2.16.840.1.101.3.4.2.3"},
	{cms.OIDSM3, "1.2.156.10197.1.401"},
	{cms.OIDSHA1, "1.3.14.3.2.26"},
	{cms.OIDRSAEncryption, "1.2.840.113549.1.1.1"},
	{cms.OIDSHA256WithRSA, "1.2.840.113549.1.1.11"},
	{cms.OIDRSASSAPSS, "1.2.840.113549.1.1.10"},
	{cms.OIDECDSAWithSHA256, "1.2.840.10045.4.3.2"},
	{cms.OIDECDSAWithSHA384, "1.2.840.10045.4.3.3"},
	{cms.OIDSM2WithSM3, "1.2.156.10197.1.501"},
	{cms.OIDSM2Sign, "1.2.156.10197.1.301.1"},
	{cms.OIDData, "1.2.840.113549.1.7.1"},
	{cms.OIDSM2Data, "1.2.156.10197.6.1.4.2.1"},
}

func oidString(oid asn1.ObjectIdentifier) string {
	for _, k := range knownOIDs {
		if k.oid.Equal(oid) {
			return k.s
		}
	}
	return oid.String()
}
