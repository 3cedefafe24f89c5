package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// Errors from Sign. A signer's own error (an HSM that is down, a busy session pool)
// is returned wrapped, so errors.Is finds it.
var (
	// ErrUnsupportedKey: the signer's public key is not RSA (2048 bits or more),
	// ECDSA P-256/P-384 or SM2.
	ErrUnsupportedKey = errors.New("sign: unsupported key")
	// ErrInvalidOptions: the options do not fit the key (SHA-256 with SM2, PSS with
	// ECDSA, GM/T 0010 with RSA, an unknown hash).
	ErrInvalidOptions = errors.New("sign: invalid options")
	// ErrCertificate: no signer certificate was given, its public key is not the
	// signer's, or it lacks the SubjectKeyIdentifier that SubjectKeyID needs.
	ErrCertificate = errors.New("sign: signer certificate unusable")
	// ErrSelfCheck: the signer returned a signature that does not verify with its
	// certificate's public key. The signature is not returned.
	ErrSelfCheck = errors.New("sign: the signer produced an invalid signature")
)

// defaultSM2UID is the GM/T 0009 default user ID; read-only.
var defaultSM2UID = []byte("1234567812345678")

// plan is what Sign decided from the key and the options.
type plan struct {
	kind       keyKind
	digest     digestAlg
	scheme     scheme
	sigAlg     cms.AlgorithmIdentifier
	outerType  asn1.ObjectIdentifier
	eType      asn1.ObjectIdentifier
	pssOptions *rsa.PSSOptions
}

func makePlan(pub crypto.PublicKey, o *Options) (plan, error) {
	var p plan
	if !signable(pub) {
		return p, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	p.kind = kindOf(pub)
	switch p.kind {
	case keySM2:
		if o.Hash != 0 {
			return p, fmt.Errorf("%w: SM2 signs with SM3 only; leave Hash zero", ErrInvalidOptions)
		}
		if o.PSS {
			return p, fmt.Errorf("%w: PSS needs an RSA key", ErrInvalidOptions)
		}
		p.digest = digestSM3
		p.scheme = schemeSM2
		p.sigAlg.Algorithm = cms.OIDSM2WithSM3
		if o.SM2SignatureOID != nil {
			if !o.SM2SignatureOID.Equal(cms.OIDSM2WithSM3) && !o.SM2SignatureOID.Equal(cms.OIDSM2Sign) {
				return p, fmt.Errorf("%w: SM2SignatureOID must be %s or %s", ErrInvalidOptions, cms.OIDSM2WithSM3, cms.OIDSM2Sign)
			}
			p.sigAlg.Algorithm = o.SM2SignatureOID
		}
	default:
		p.digest = digestSHA256
		if o.Hash != 0 {
			if p.digest = digestFromHash(o.Hash); p.digest == digestUnknown {
				return p, fmt.Errorf("%w: hash %v (use SHA-256, SHA-384 or SHA-512)", ErrInvalidOptions, o.Hash)
			}
		}
		if o.SM2SignatureOID != nil {
			return p, fmt.Errorf("%w: SM2SignatureOID with a %v key", ErrInvalidOptions, p.kind)
		}
		switch {
		case p.kind == keyRSA && o.PSS:
			p.scheme = schemeRSAPSS
			p.sigAlg = cms.AlgorithmIdentifier{Algorithm: cms.OIDRSASSAPSS, Parameters: pssParamsFor(p.digest)}
			p.pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: p.digest.cryptoHash()}
		case p.kind == keyRSA:
			// rsaEncryption, as OpenSSL writes it and RFC 3370 §3.2 requires readers to accept.
			p.scheme = schemeRSAPKCS1
			p.sigAlg = cms.AlgorithmIdentifier{Algorithm: cms.OIDRSAEncryption, Parameters: cms.NullParameters}
		case o.PSS:
			return p, fmt.Errorf("%w: PSS needs an RSA key", ErrInvalidOptions)
		default:
			p.scheme = schemeECDSA
			switch p.digest {
			case digestSHA256:
				p.sigAlg.Algorithm = cms.OIDECDSAWithSHA256
			case digestSHA384:
				p.sigAlg.Algorithm = cms.OIDECDSAWithSHA384
			case digestSHA512:
				p.sigAlg.Algorithm = cms.OIDECDSAWithSHA512
			}
		}
	}
	gm := false
	switch o.Dialect {
	case DialectAuto:
		gm = p.kind == keySM2
	case DialectPKCS7:
	case DialectGMT0010:
		if p.kind != keySM2 {
			return p, fmt.Errorf("%w: GM/T 0010 dialect needs an SM2 key", ErrInvalidOptions)
		}
		gm = true
	default:
		return p, fmt.Errorf("%w: unknown dialect %d", ErrInvalidOptions, o.Dialect)
	}
	if gm {
		p.outerType, p.eType = cms.OIDSM2SignedData, cms.OIDSM2Data
		// GM/T 0010 names sm2-1 (1.2.156.10197.1.301.1) as the SignerInfo's signature
		// algorithm, and the GM/T stacks in the wild (gmsm's pkcs7 among them) read
		// only that one; the PKCS#7 dialect keeps SM2-with-SM3 (1.2.156.10197.1.501).
		if o.SM2SignatureOID == nil {
			p.sigAlg.Algorithm = cms.OIDSM2Sign
		}
	} else {
		p.outerType, p.eType = cms.OIDSignedData, cms.OIDData
	}
	return p, nil
}

func sign(content []byte, signer crypto.Signer, chain []*smx509.Certificate, opts *Options) ([]byte, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: no signer", ErrInvalidOptions)
	}
	if len(chain) == 0 || chain[0] == nil {
		return nil, fmt.Errorf("%w: no signer certificate", ErrCertificate)
	}
	for _, c := range chain {
		if c == nil {
			return nil, fmt.Errorf("%w: nil certificate in the chain", ErrCertificate)
		}
	}
	leaf := chain[0]
	pub := signer.Public()
	if !publicKeysEqual(pub, leaf.PublicKey) {
		return nil, fmt.Errorf("%w: the certificate's public key is not the signer's", ErrCertificate)
	}
	p, err := makePlan(pub, &o)
	if err != nil {
		return nil, err
	}
	if err := applyContentOptions(&p, &o); err != nil {
		return nil, err
	}

	si := cms.SignerInfo{
		Version:            1,
		DigestAlgorithm:    cms.AlgorithmIdentifier{Algorithm: p.digest.oid()},
		SignatureAlgorithm: p.sigAlg,
	}
	switch o.SignerID {
	case IssuerAndSerial:
		si.SID.IssuerAndSerial = cms.IssuerAndSerial{Issuer: leaf.RawIssuer, Serial: leaf.SerialNumber}
	case SubjectKeyID:
		if len(leaf.SubjectKeyId) == 0 {
			return nil, fmt.Errorf("%w: SubjectKeyID chosen but the certificate has no SubjectKeyIdentifier", ErrCertificate)
		}
		si.Version = 3
		si.SID.SubjectKeyID = leaf.SubjectKeyId
	default:
		return nil, fmt.Errorf("%w: unknown signer identifier type %d", ErrInvalidOptions, o.SignerID)
	}

	var mdBuf [maxDigestSize]byte
	md := p.digest.sum(&mdBuf, content)

	// tbs is what the signature covers: the DER SET of signed attributes, or the
	// content itself when there are none.
	tbs := content
	if !o.NoSignedAttributes {
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		t := now()
		attrs := make([]byte, 0, cms.SigningAttributesSize(p.eType, md, t))
		if attrs, err = cms.AppendSigningAttributes(attrs, p.eType, md, t); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
		}
		if len(o.ExtraSignedAttributes) > 0 {
			if attrs, err = addSignedAttributes(attrs, o.ExtraSignedAttributes); err != nil {
				return nil, err
			}
		}
		tbs = attrs
		si.RawSignedAttrs = attrs
	}

	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	uid := o.SM2UID
	if len(uid) == 0 {
		uid = defaultSM2UID
	}
	sig, err := signTBS(signer, rnd, &p, tbs, md, o.NoSignedAttributes, uid)
	if err != nil {
		return nil, err
	}
	if !o.SkipSelfCheck {
		var hBuf [maxDigestSize]byte
		var h []byte
		if o.NoSignedAttributes {
			h = md // the digest of the content is the digest of what was signed
		} else if p.kind != keySM2 {
			h = p.digest.sum(&hBuf, tbs)
		}
		if err := verifyPrepared(leaf.PublicKey, p.scheme, p.digest, rsa.PSSSaltLengthEqualsHash, tbs, nil, h, sig, uid); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSelfCheck, err)
		}
	}
	si.Signature = sig

	sd := cms.SignedData{
		ContentType:  p.outerType,
		Version:      1,
		EContentType: p.eType,
	}
	if si.Version == 3 {
		sd.Version = 3
	}
	var digestAlgs [1]cms.AlgorithmIdentifier
	digestAlgs[0] = si.DigestAlgorithm
	sd.DigestAlgorithms = digestAlgs[:]
	if !o.Detached {
		sd.EContent = content
		if sd.EContent == nil {
			sd.EContent = []byte{}
		}
	}
	var certBuf [4][]byte
	switch o.Certs {
	case IncludeLeaf:
		certBuf[0] = leaf.Raw
		sd.Certificates = certBuf[:1]
	case IncludeChain:
		certs := certBuf[:0]
		for _, c := range chain {
			certs = append(certs, c.Raw)
		}
		sd.Certificates = certs
	case IncludeNone:
	default:
		return nil, fmt.Errorf("%w: unknown certificate inclusion %d", ErrInvalidOptions, o.Certs)
	}
	var infos [1]cms.SignerInfo
	infos[0] = si
	sd.SignerInfos = infos[:]
	out, err := sd.Marshal()
	if err == nil && o.ContentDigest != nil {
		*o.ContentDigest = ContentDigest{Algorithm: p.digest.oid(), Digest: append([]byte(nil), md...)}
	}
	return out, err
}

// signTBS asks the signer for the signature over tbs. md is the digest of the
// content, which is also the digest of tbs when there are no signed attributes.
func signTBS(signer crypto.Signer, rnd io.Reader, p *plan, tbs, md []byte, noAttrs bool, uid []byte) ([]byte, error) {
	var sig []byte
	var err error
	switch p.scheme {
	case schemeSM2:
		// The signer gets the whole message and computes Z and SM3 itself: gmsm's
		// convention for *sm2.PrivateKey, followed by the HSM backends.
		sig, err = signer.Sign(rnd, tbs, sm2SignerOpts(uid))
	default:
		// The digest handed to the signer escapes (an interface call); it is made
		// here so that the caller's buffers stay on the stack.
		var hBuf [maxDigestSize]byte
		var h []byte
		if noAttrs {
			h = hBuf[:copy(hBuf[:], md)]
		} else {
			h = p.digest.sum(&hBuf, tbs)
		}
		var so crypto.SignerOpts = p.digest.cryptoHash()
		if p.pssOptions != nil {
			so = p.pssOptions
		}
		sig, err = signer.Sign(rnd, h, so)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: signer: %w", err)
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("%w: empty signature", ErrSelfCheck)
	}
	return sig, nil
}

// sm2SignerOpts is the option for a signer given the whole message: gmsm's own
// DefaultSM2SignerOpts for the default user ID (no allocation, and a value signers
// can recognise, e.g. to use a Z value computed once per key), else a new option.
func sm2SignerOpts(uid []byte) *sm2.SM2SignerOption {
	if len(uid) == len(defaultSM2UID) && string(uid) == string(defaultSM2UID) {
		return sm2.DefaultSM2SignerOpts
	}
	return sm2.NewSM2SignerOption(true, uid)
}

// publicKeysEqual compares public keys. The keys' own Equal methods compare the
// coordinates in constant time through big.Int.Bytes (four allocations for ECDSA);
// public values need no constant time, so the common types are compared directly.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	switch ka := a.(type) {
	case *ecdsa.PublicKey:
		kb, ok := b.(*ecdsa.PublicKey)
		return ok && ka.Curve == kb.Curve && ka.X != nil && kb.X != nil && ka.Y != nil && kb.Y != nil &&
			ka.X.Cmp(kb.X) == 0 && ka.Y.Cmp(kb.Y) == 0
	case *rsa.PublicKey:
		kb, ok := b.(*rsa.PublicKey)
		return ok && ka.N != nil && kb.N != nil && ka.E == kb.E && ka.N.Cmp(kb.N) == 0
	}
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && ka.Equal(b)
}
