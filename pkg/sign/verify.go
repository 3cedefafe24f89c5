package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// Reasons a SignatureVerdict gives when not Valid. They are stable API: clients and
// the server's error details use them.
const (
	// ReasonSignatureInvalid: the signature value does not verify.
	ReasonSignatureInvalid = "signature-invalid"
	// ReasonMessageDigestMismatch: the messageDigest attribute is not the digest of the content.
	ReasonMessageDigestMismatch = "message-digest-mismatch"
	// ReasonContentTypeMismatch: the contentType attribute differs from eContentType.
	ReasonContentTypeMismatch = "content-type-mismatch"
	// ReasonMissingAttribute: signed attributes are present but contentType or
	// messageDigest is missing, repeated or has several values; or there are no
	// signed attributes while eContentType is not id-data (RFC 5652 §5.3 requires
	// them then).
	ReasonMissingAttribute = "missing-signed-attribute"
	// ReasonMalformedAttribute: a contentType, messageDigest or signingTime value
	// cannot be read.
	ReasonMalformedAttribute = "malformed-signed-attribute"
	// ReasonSignerCertNotFound: no certificate in the message or VerifyOptions.Certs
	// matches the signer identifier.
	ReasonSignerCertNotFound = "signer-certificate-not-found"
	// ReasonUnsupportedAlgorithm: a digest or signature algorithm this package does
	// not verify, or one that does not fit the certificate's key.
	ReasonUnsupportedAlgorithm = "unsupported-algorithm"
	// ReasonWeakAlgorithm: SHA-1, refused unless VerifyOptions.AllowSHA1.
	ReasonWeakAlgorithm = "weak-algorithm"
	// ReasonContentNeeded: the content was given by its digests
	// (VerifyOptions.ContentDigests), and the signer needs another digest, or the
	// content itself (SM2 without signed attributes covers SM3(Z || content)).
	ReasonContentNeeded = "content-needed"
)

// Default limits of VerifyOptions.MaxSigners and MaxCertificates. Every signer costs
// at least one signature check, and each certificate a parse and a place in every
// signer's chain search, so a message with thousands of either is work out of all
// proportion to its size; real messages carry one or a few signers and a short chain.
const (
	DefaultMaxSigners      = 64
	DefaultMaxCertificates = 256
)

var (
	// ErrLimit: the message has more signers or certificates than the
	// VerifyOptions allow. It is checked before any certificate is parsed or any
	// signature checked.
	ErrLimit = errors.New("sign: message exceeds a verification limit")
	// ErrNoContent: the signature is detached and VerifyOptions.Content is nil.
	ErrNoContent = errors.New("sign: detached signature and no content given")
	// ErrContentConflict: the message carries its content and VerifyOptions.Content
	// is different.
	ErrContentConflict = errors.New("sign: the given content differs from the encapsulated content")
)

var errSignature = errors.New("signature does not verify")

// noVerifyOptions stands for nil options; never modified.
var noVerifyOptions VerifyOptions

func verify(der []byte, opts *VerifyOptions) (*Result, error) {
	sd, err := cms.ParseSignedDataContentInfo(der)
	if err != nil {
		return nil, err
	}
	return VerifyParsed(sd, opts)
}

// VerifyParsed checks a SignedData already parsed with pkg/cms (for example one
// found inside another structure), exactly as Verify does.
func VerifyParsed(sd *cms.SignedData, opts *VerifyOptions) (*Result, error) {
	return verifyParsed(sd, opts, nil)
}

// limit is a VerifyOptions limit: 0 means def, negative means none.
func limit(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return int(^uint(0) >> 1)
	}
	return n
}

// verifyParsed is VerifyParsed; st, when not nil, counts the work done (tests).
func verifyParsed(sd *cms.SignedData, opts *VerifyOptions, st *verifyStats) (*Result, error) {
	o := opts
	if o == nil {
		o = &noVerifyOptions
	}
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if n, max := len(sd.SignerInfos), limit(o.MaxSigners, DefaultMaxSigners); n > max {
		return nil, fmt.Errorf("%w: %d signers, at most %d accepted", ErrLimit, n, max)
	}
	if n, max := len(sd.Certificates), limit(o.MaxCertificates, DefaultMaxCertificates); n > max {
		return nil, fmt.Errorf("%w: %d certificates, at most %d accepted", ErrLimit, n, max)
	}
	content := sd.EContent
	detached := content == nil
	digestsOnly := false
	if detached {
		if o.Content == nil {
			if len(o.ContentDigests) == 0 {
				return nil, ErrNoContent
			}
			digestsOnly = true
		}
		content = o.Content
	} else if o.Content != nil && !bytes.Equal(o.Content, content) {
		return nil, ErrContentConflict
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &Result{
		Content:     content,
		ContentType: oidString(sd.EContentType),
		Detached:    detached,
		SignerInfos: sd.RawSignerInfos,
	}
	v := verifier{ctx: ctx, sd: sd, opts: o, content: content, stats: st, digestsOnly: digestsOnly}
	var err error
	v.certs, v.certErr, err = messageCertificates(ctx, sd.Certificates, o)
	if err != nil {
		return nil, err
	}
	res.Certificates = v.certs
	if len(sd.SignerInfos) > 0 {
		res.Signers = make([]SignerResult, len(sd.SignerInfos))
	}
	for i := range sd.SignerInfos {
		// A request that ended (client gone, deadline passed) stops here, between
		// signers, and inside the hashing of a long content.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := &res.Signers[i]
		r.Index = i
		r.Info = &sd.SignerInfos[i]
		reason, err := v.check(&sd.SignerInfos[i], r)
		if v.ctxErr != nil {
			return nil, v.ctxErr
		}
		if reason != "" {
			r.Signature = SignatureVerdict{Reason: reason, Err: err}
		} else {
			r.Signature = SignatureVerdict{Valid: true}
		}
	}
	return res, nil
}

// verifyStats counts the expensive steps of one verification, for tests that bound
// the work an attacker can cause by counts instead of time.
type verifyStats struct {
	// contentPasses is how many times the whole content (or the encapsulated
	// content info) was hashed.
	contentPasses int
	// signatureChecks is how many public-key signature verifications ran.
	signatureChecks int
}

// messageCertificates parses the certificates a message carries. A certificate equal
// to one in opts.Certs is taken from there, already parsed; others go through
// opts.ParseCertificate (a cache) or smx509.ParseCertificate. Choices other than a
// plain Certificate, and certificates that do not parse, are skipped; the first parse
// error is returned for the not-found reason.
//
// A certificate carried several times is kept once: each signer's trust check reads
// every certificate of the message, so copies would multiply that work for nothing.
// err is the context's error when the request ended during the parsing.
func messageCertificates(ctx context.Context, raw [][]byte, o *VerifyOptions) (_ []*smx509.Certificate, firstErr, err error) {
	if len(raw) == 0 {
		return nil, nil, nil
	}
	out := make([]*smx509.Certificate, 0, len(raw))
	var seen map[[sha256.Size]byte]struct{}
	if len(raw) > 1 {
		seen = make(map[[sha256.Size]byte]struct{}, len(raw))
	}
	for _, der := range raw {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if len(der) == 0 || der[0] != 0x30 {
			continue
		}
		if seen != nil {
			k := sha256.Sum256(der)
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
		}
		var cert *smx509.Certificate
		for _, c := range o.Certs {
			if c != nil && bytes.Equal(c.Raw, der) {
				cert = c
				break
			}
		}
		if cert == nil {
			var err error
			if o.ParseCertificate != nil {
				cert, err = o.ParseCertificate(der)
			} else {
				cert, err = smx509.ParseCertificate(der)
			}
			if err != nil || cert == nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("embedded certificate: %v", err)
				}
				continue
			}
		}
		out = append(out, cert)
	}
	return out, firstErr, nil
}

type contentDigest struct {
	buf [maxDigestSize]byte
	n   int
}

// sm2ContentDigest is SM3(Z || content) for one Z value: what an SM2 signature
// without signed attributes covers. Signers with the same key and user ID share it.
type sm2ContentDigest struct {
	z [sm3.Size]byte
	e [sm3.Size]byte
}

type verifier struct {
	ctx     context.Context
	sd      *cms.SignedData
	opts    *VerifyOptions
	content []byte
	certs   []*smx509.Certificate
	certErr error
	// ctxErr is set when the request ended during a step; the verification stops.
	ctxErr error
	// digests of the content, one per digest algorithm (indexed by digestAlg), each
	// computed when a signer first needs it: the content is hashed at most once per
	// algorithm however many signers there are.
	digests [digestSM3 + 1]contentDigest
	// sm2Digests are the SM3(Z || content) computed so far, one per Z value.
	sm2Digests []sm2ContentDigest
	// eciDigest is SM3 of the DER EncapsulatedContentInfo (GmSSL's SM2 form without
	// Z), computed once when first needed.
	eciDigest    [sm3.Size]byte
	eciDigestSet bool
	stats        *verifyStats
	// digestsOnly: the content is known by opts.ContentDigests alone.
	digestsOnly bool
}

// givenDigest is the digest of the content with d among opts.ContentDigests, or nil.
func (v *verifier) givenDigest(d digestAlg) []byte {
	for _, g := range v.opts.ContentDigests {
		if digestFromOID(g.Algorithm) == d && len(g.Digest) > 0 {
			return g.Digest
		}
	}
	return nil
}

// hashChunk is how much content is hashed between two looks at the context, so a
// request that ended stops within a few milliseconds even over a large content.
const hashChunk = 256 << 10

// hashContent writes prefix then data to h, looking at the context between chunks of
// data. It returns false, with v.ctxErr set, when the request ended.
func (v *verifier) hashContent(h hash.Hash, prefix, data []byte) bool {
	if v.stats != nil {
		v.stats.contentPasses++
	}
	h.Write(prefix)
	for len(data) > 0 {
		if err := v.ctx.Err(); err != nil {
			v.ctxErr = err
			return false
		}
		n := min(len(data), hashChunk)
		h.Write(data[:n])
		data = data[n:]
	}
	return true
}

// contentDigest returns the digest of the content with d, computed once per verifier;
// nil when the request ended while hashing (v.ctxErr).
func (v *verifier) contentDigest(d digestAlg) []byte {
	slot := &v.digests[d]
	if slot.n == 0 {
		if len(v.content) <= hashChunk {
			if v.stats != nil {
				v.stats.contentPasses++
			}
			slot.n = len(d.sum(&slot.buf, v.content))
		} else {
			h := d.newHash()
			if !v.hashContent(h, nil, v.content) {
				return nil
			}
			slot.n = len(h.Sum(slot.buf[:0]))
		}
	}
	return slot.buf[:slot.n]
}

// sm2Digest returns SM3(za || content), computed once per distinct za; nil when the
// request ended while hashing.
func (v *verifier) sm2Digest(za []byte) []byte {
	for i := range v.sm2Digests {
		if bytes.Equal(v.sm2Digests[i].z[:], za) {
			return v.sm2Digests[i].e[:]
		}
	}
	h := sm3.New()
	if !v.hashContent(h, za, v.content) {
		return nil
	}
	var d sm2ContentDigest
	copy(d.z[:], za)
	h.Sum(d.e[:0])
	v.sm2Digests = append(v.sm2Digests, d)
	return v.sm2Digests[len(v.sm2Digests)-1].e[:]
}

// encapContentInfoDigest returns SM3 of the DER EncapsulatedContentInfo, computed
// once; nil when the request ended while hashing.
func (v *verifier) encapContentInfoDigest() []byte {
	if !v.eciDigestSet {
		h := sm3.New()
		if !v.hashContent(h, nil, v.sd.RawEncapContentInfo) {
			return nil
		}
		h.Sum(v.eciDigest[:0])
		v.eciDigestSet = true
	}
	return v.eciDigest[:]
}

func findCertificate(sid *cms.SignerIdentifier, lists ...[]*smx509.Certificate) *smx509.Certificate {
	for _, list := range lists {
		for _, c := range list {
			if c == nil {
				continue
			}
			if sid.IsSubjectKeyID() {
				if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sid.SubjectKeyID) {
					return c
				}
			} else if sid.IssuerAndSerial.Matches(c.RawIssuer, c.SerialNumber) {
				return c
			}
		}
	}
	return nil
}

// check verifies one signer and fills r. It returns "" when the signature is valid,
// or the reason and internal cause. The steps run in this order, and the first that
// fails gives the reason: the algorithms, the signer's certificate, the signed
// attributes, the signature value.
func (v *verifier) check(si *cms.SignerInfo, r *SignerResult) (string, error) {
	describeSigner(si, r)
	cert := findCertificate(&si.SID, v.certs, v.opts.Certs)
	r.Certificate = cert

	// Signing time first: it is reported even when the signature fails.
	signingTimeErr := readSigningTime(si, r)

	digest, params, reason, err := v.checkAlgorithms(si)
	if reason != "" {
		return reason, err
	}
	if reason, err := v.checkSignerCert(si, cert, params); reason != "" {
		return reason, err
	}
	if !si.HasSignedAttrs() && !cms.IsDataType(v.sd.EContentType) {
		// RFC 5652 §5.3: without signed attributes nothing binds the content type,
		// so a signature over id-data content could be relabelled (as a timestamp
		// token, say); any other content type needs the contentType attribute.
		return ReasonMissingAttribute, fmt.Errorf("no signed attributes, and eContentType %s is not id-data", v.sd.EContentType)
	}
	var md []byte
	if v.digestsOnly {
		if !si.HasSignedAttrs() && params.scheme == schemeSM2 {
			return ReasonContentNeeded, errors.New("an SM2 signature without signed attributes covers SM3(Z || content): the content is needed")
		}
		if md = v.givenDigest(digest); md == nil {
			return ReasonContentNeeded, fmt.Errorf("no %v digest of the content was given", digest)
		}
	} else if si.HasSignedAttrs() || params.scheme != schemeSM2 {
		// (An SM2 signature without signed attributes covers SM3(Z || content)
		// instead: checkSignature hashes that, and the plain digest only if needed.)
		if md = v.contentDigest(digest); md == nil {
			return "", v.ctxErr
		}
	}
	partA, partB, h, reason, err := v.signedMessage(si, params, md, signingTimeErr)
	if reason != "" {
		return reason, err
	}
	return v.checkSignature(si, r, cert, params, digest, partA, partB, h, md)
}

// describeSigner fills in what r reports of the signer whatever the verdict: its
// identifier and its algorithms.
func describeSigner(si *cms.SignerInfo, r *SignerResult) {
	if si.SID.IsSubjectKeyID() {
		r.SubjectKeyID = si.SID.SubjectKeyID
	} else {
		r.Issuer = si.SID.IssuerAndSerial.Issuer
		if si.SID.IssuerAndSerial.Serial != nil {
			r.Serial = si.SID.IssuerAndSerial.Serial.String()
		}
	}
	r.DigestAlgorithm = oidString(si.DigestAlgorithm.Algorithm)
	r.SignatureAlgorithm = oidString(si.SignatureAlgorithm.Algorithm)
}

// readSigningTime sets r.SigningTime from the signingTime attribute. An attribute
// that cannot be read is returned, to be reported once the signed attributes are
// checked, not before the checks that come first.
func readSigningTime(si *cms.SignerInfo, r *SignerResult) error {
	var signingTimeErr error
	if si.HasSignedAttrs() {
		if a, found, single := cms.FindAttribute(si.SignedAttrs, cms.OIDAttrSigningTime); found {
			if !single {
				signingTimeErr = errors.New("signingTime attribute repeated or multi-valued")
			} else if t, err := cms.ParseTimeAttribute(a.Values[0]); err != nil {
				signingTimeErr = err
			} else {
				r.SigningTime = t
			}
		}
	}
	return signingTimeErr
}

// checkAlgorithms reads the signer's digest and signature algorithms and refuses
// those this package does not verify, those that do not go together, and SHA-1
// unless allowed.
func (v *verifier) checkAlgorithms(si *cms.SignerInfo) (digestAlg, sigParams, string, error) {
	digest := digestFromOID(si.DigestAlgorithm.Algorithm)
	if digest == digestUnknown || !si.DigestAlgorithm.HasNullOrNoParameters() {
		return digest, sigParams{}, ReasonUnsupportedAlgorithm, fmt.Errorf("digest algorithm %s", si.DigestAlgorithm.Algorithm)
	}
	params, ok := parseSignatureAlgorithm(si.SignatureAlgorithm)
	if !ok {
		return digest, params, ReasonUnsupportedAlgorithm, fmt.Errorf("signature algorithm %s", si.SignatureAlgorithm.Algorithm)
	}
	if params.digest != digestUnknown && params.digest != digest {
		return digest, params, ReasonUnsupportedAlgorithm, fmt.Errorf("signature algorithm %s with digest %v", si.SignatureAlgorithm.Algorithm, digest)
	}
	if (params.scheme == schemeSM2) != (digest == digestSM3) {
		return digest, params, ReasonUnsupportedAlgorithm, fmt.Errorf("SM2 goes with SM3 only (digest %v)", digest)
	}
	if digest == digestSHA1 && !v.opts.AllowSHA1 {
		return digest, params, ReasonWeakAlgorithm, errors.New("SHA-1 digest (VerifyOptions.AllowSHA1 not set)")
	}
	return digest, params, "", nil
}

// checkSignerCert refuses a signer whose certificate was not found, or whose key is
// not of the signature algorithm's kind.
func (v *verifier) checkSignerCert(si *cms.SignerInfo, cert *smx509.Certificate, params sigParams) (string, error) {
	if cert == nil {
		err := errors.New("no certificate matches the signer identifier")
		if v.certErr != nil {
			err = fmt.Errorf("%w (%v)", err, v.certErr)
		}
		return ReasonSignerCertNotFound, err
	}
	if kindOf(cert.PublicKey) != params.scheme.keyKind() {
		return ReasonUnsupportedAlgorithm, fmt.Errorf("signature algorithm %s does not fit the certificate's %v key",
			si.SignatureAlgorithm.Algorithm, kindOf(cert.PublicKey))
	}
	return "", nil
}

// signedMessage returns what the signature covers, partA||partB, after checking the
// signed attributes when there are any; md is the digest of the content. h is the
// digest of partA||partB when it is already known (the content's, without signed
// attributes; never for SM2, whose digest includes Z), else nil.
func (v *verifier) signedMessage(si *cms.SignerInfo, params sigParams, md []byte, signingTimeErr error) (partA, partB, h []byte, reason string, err error) {
	if !si.HasSignedAttrs() {
		partA = v.content
		if params.scheme != schemeSM2 {
			h = md
		}
		return partA, nil, h, "", nil
	}
	if reason, err := v.checkSignedAttrs(si, md, signingTimeErr); reason != "" {
		return nil, nil, nil, reason, err
	}
	return tagSET[:], si.RawSignedAttrs[1:], nil, "", nil
}

// checkSignedAttrs checks the contentType and messageDigest attributes against the
// message, then reports a signingTime that could not be read (signingTimeErr).
func (v *verifier) checkSignedAttrs(si *cms.SignerInfo, md []byte, signingTimeErr error) (string, error) {
	if len(si.RawSignedAttrs) == 0 {
		return ReasonMalformedAttribute, errors.New("signed attributes without their encoding")
	}
	ct, found, single := cms.FindAttribute(si.SignedAttrs, cms.OIDAttrContentType)
	if !found || !single {
		return ReasonMissingAttribute, errors.New("contentType attribute missing or not single-valued")
	}
	mdAttr, found, single := cms.FindAttribute(si.SignedAttrs, cms.OIDAttrMessageDigest)
	if !found || !single {
		return ReasonMissingAttribute, errors.New("messageDigest attribute missing or not single-valued")
	}
	if !cms.OIDAttributeEquals(ct.Values[0], v.sd.EContentType) {
		if _, err := cms.ParseOIDAttribute(ct.Values[0]); err != nil {
			return ReasonMalformedAttribute, err
		}
		return ReasonContentTypeMismatch, fmt.Errorf("contentType attribute differs from eContentType %s", v.sd.EContentType)
	}
	got, err := cms.ParseOctetStringAttribute(mdAttr.Values[0])
	if err != nil {
		return ReasonMalformedAttribute, err
	}
	if subtle.ConstantTimeCompare(got, md) != 1 {
		return ReasonMessageDigestMismatch, errors.New("messageDigest attribute is not the digest of the content")
	}
	if signingTimeErr != nil {
		return ReasonMalformedAttribute, signingTimeErr
	}
	return "", nil
}

// checkSignature verifies the signature value over partA||partB with the
// certificate's key and, for SM2 when allowed, also as GmSSL computes it without the
// Z value (then r.SM2WithoutZ is set). md is the digest of the content.
func (v *verifier) checkSignature(si *cms.SignerInfo, r *SignerResult, cert *smx509.Certificate, params sigParams,
	digest digestAlg, partA, partB, h, md []byte) (string, error) {
	uid := v.opts.SM2UID
	if len(uid) == 0 {
		uid = defaultSM2UID
	}
	var err error
	if params.scheme == schemeSM2 && !si.HasSignedAttrs() {
		// The signature covers SM3(Z || content): hashed once per Z value, so signers
		// sharing a key share the pass over a large content.
		err = v.verifySM2Content(cert.PublicKey, uid, si.Signature)
	} else {
		v.countSignature()
		err = verifyPrepared(cert.PublicKey, params.scheme, digest, params.saltLen, partA, partB, h, si.Signature, uid)
	}
	if v.ctxErr != nil {
		return "", v.ctxErr
	}
	if err == nil {
		return "", nil
	}
	if params.scheme == schemeSM2 && v.opts.AllowSM2WithoutZ && v.verifySM2WithoutZ(si, cert.PublicKey, partA, partB, md) {
		r.SM2WithoutZ = true
		return "", nil
	}
	if v.ctxErr != nil {
		return "", v.ctxErr
	}
	return ReasonSignatureInvalid, err
}

func (v *verifier) countSignature() {
	if v.stats != nil {
		v.stats.signatureChecks++
	}
}

// verifySM2Content checks an SM2 signature without signed attributes, over the
// content with the Z value of pub and uid.
func (v *verifier) verifySM2Content(pub crypto.PublicKey, uid, sig []byte) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(k) {
		return errors.New("not an SM2 key")
	}
	za, err := sm2.CalculateZA(k, uid)
	if err != nil {
		return err
	}
	e := v.sm2Digest(za)
	if e == nil {
		return v.ctxErr
	}
	v.countSignature()
	if !sm2.VerifyASN1(k, e, sig) {
		return errSignature
	}
	return nil
}

// verifySM2WithoutZ checks an SM2 signature with no Z value, as GmSSL 3.x computes
// it (see the package documentation): over SM3(partA||partB), which without signed
// attributes is md, or, for an encapsulated content without signed attributes, over
// SM3 of the DER EncapsulatedContentInfo.
func (v *verifier) verifySM2WithoutZ(si *cms.SignerInfo, pub crypto.PublicKey, partA, partB, md []byte) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(k) {
		return false
	}
	var e [sm3.Size]byte
	if si.HasSignedAttrs() {
		hh := sm3.New()
		hh.Write(partA)
		hh.Write(partB)
		hh.Sum(e[:0])
	} else {
		if md == nil {
			if md = v.contentDigest(digestSM3); md == nil {
				return false
			}
		}
		copy(e[:], md)
	}
	v.countSignature()
	if sm2.VerifyASN1(k, e[:], si.Signature) {
		return true
	}
	if si.HasSignedAttrs() || len(v.sd.RawEncapContentInfo) == 0 || v.sd.EContent == nil {
		return false
	}
	d := v.encapContentInfoDigest()
	if d == nil {
		return false
	}
	v.countSignature()
	return sm2.VerifyASN1(k, d, si.Signature)
}

var tagSET = [1]byte{0x31}

// verifyPrepared checks sig over the message partA||partB. h, when not nil, is the
// digest of that message already computed (not used for SM2, whose digest includes Z).
func verifyPrepared(pub crypto.PublicKey, s scheme, d digestAlg, saltLen int, partA, partB, h, sig []byte, uid []byte) error {
	if s != schemeSM2 && h == nil {
		hh := d.newHash()
		hh.Write(partA)
		hh.Write(partB)
		h = hh.Sum(nil)
	}
	switch s {
	case schemeRSAPKCS1:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errors.New("not an RSA key")
		}
		return rsa.VerifyPKCS1v15(k, d.cryptoHash(), h, sig)
	case schemeRSAPSS:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errors.New("not an RSA key")
		}
		return rsa.VerifyPSS(k, d.cryptoHash(), h, sig, &rsa.PSSOptions{SaltLength: saltLen, Hash: d.cryptoHash()})
	case schemeECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("not an ECDSA key")
		}
		if !ecdsa.VerifyASN1(k, h, sig) {
			return errSignature
		}
		return nil
	case schemeSM2:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || !sm2.IsSM2PublicKey(k) {
			return errors.New("not an SM2 key")
		}
		za, err := sm2.CalculateZA(k, uid)
		if err != nil {
			return err
		}
		hh := sm3.New()
		hh.Write(za)
		hh.Write(partA)
		hh.Write(partB)
		var e [sm3.Size]byte
		if !sm2.VerifyASN1(k, hh.Sum(e[:0]), sig) {
			return errSignature
		}
		return nil
	}
	return errors.New("unknown signature scheme")
}
