package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"

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
	// messageDigest is missing, repeated or has several values.
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
)

var (
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
	o := opts
	if o == nil {
		o = &noVerifyOptions
	}
	content := sd.EContent
	detached := content == nil
	if detached {
		if o.Content == nil {
			return nil, ErrNoContent
		}
		content = o.Content
	} else if o.Content != nil && !bytes.Equal(o.Content, content) {
		return nil, ErrContentConflict
	}
	res := &Result{
		Content:     content,
		ContentType: oidString(sd.EContentType),
		Detached:    detached,
	}
	v := verifier{sd: sd, opts: o, content: content}
	v.certs, v.certErr = messageCertificates(sd.Certificates, o)
	res.Certificates = v.certs
	if len(sd.SignerInfos) > 0 {
		res.Signers = make([]SignerResult, len(sd.SignerInfos))
	}
	for i := range sd.SignerInfos {
		r := &res.Signers[i]
		r.Index = i
		r.Info = &sd.SignerInfos[i]
		if reason, err := v.check(&sd.SignerInfos[i], r); reason != "" {
			r.Signature = SignatureVerdict{Reason: reason, Err: err}
		} else {
			r.Signature = SignatureVerdict{Valid: true}
		}
	}
	return res, nil
}

// messageCertificates parses the certificates a message carries. A certificate equal
// to one in opts.Certs is taken from there, already parsed; others go through
// opts.ParseCertificate (a cache) or smx509.ParseCertificate. Choices other than a
// plain Certificate, and certificates that do not parse, are skipped; the first parse
// error is returned for the not-found reason.
func messageCertificates(raw [][]byte, o *VerifyOptions) ([]*smx509.Certificate, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([]*smx509.Certificate, 0, len(raw))
	var firstErr error
	for _, der := range raw {
		if len(der) == 0 || der[0] != 0x30 {
			continue
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
	return out, firstErr
}

type contentDigest struct {
	alg digestAlg
	buf [maxDigestSize]byte
	n   int
}

type verifier struct {
	sd      *cms.SignedData
	opts    *VerifyOptions
	content []byte
	certs   []*smx509.Certificate
	certErr error
	// digests of the content, one per digest algorithm the signers use (usually one).
	digests [2]contentDigest
	nd      int
}

func (v *verifier) contentDigest(d digestAlg) []byte {
	for i := 0; i < v.nd; i++ {
		if v.digests[i].alg == d {
			return v.digests[i].buf[:v.digests[i].n]
		}
	}
	slot := &v.digests[0]
	if v.nd < len(v.digests) {
		slot = &v.digests[v.nd]
		v.nd++
	}
	slot.alg = d
	slot.n = len(d.sum(&slot.buf, v.content))
	return slot.buf[:slot.n]
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
	md := v.contentDigest(digest)
	partA, partB, h, reason, err := v.signedMessage(si, params, md, signingTimeErr)
	if reason != "" {
		return reason, err
	}
	return v.checkSignature(si, r, cert, params, digest, partA, partB, h)
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
// Z value (then r.SM2WithoutZ is set).
func (v *verifier) checkSignature(si *cms.SignerInfo, r *SignerResult, cert *smx509.Certificate, params sigParams,
	digest digestAlg, partA, partB, h []byte) (string, error) {
	uid := v.opts.SM2UID
	if len(uid) == 0 {
		uid = defaultSM2UID
	}
	salt := params.saltLen
	err := verifyPrepared(cert.PublicKey, params.scheme, digest, salt, partA, partB, h, si.Signature, uid)
	if err == nil {
		return "", nil
	}
	if params.scheme == schemeSM2 && v.opts.AllowSM2WithoutZ {
		if verifySM2WithoutZ(cert.PublicKey, partA, partB, si.Signature) ||
			(!si.HasSignedAttrs() && len(v.sd.RawEncapContentInfo) > 0 && v.sd.EContent != nil &&
				verifySM2WithoutZ(cert.PublicKey, v.sd.RawEncapContentInfo, nil, si.Signature)) {
			r.SM2WithoutZ = true
			return "", nil
		}
	}
	return ReasonSignatureInvalid, err
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

// verifySM2WithoutZ checks an SM2 signature over SM3(partA||partB) with no Z value,
// as GmSSL 3.x computes it (see the package documentation).
func verifySM2WithoutZ(pub crypto.PublicKey, partA, partB, sig []byte) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(k) {
		return false
	}
	hh := sm3.New()
	hh.Write(partA)
	hh.Write(partB)
	var e [sm3.Size]byte
	return sm2.VerifyASN1(k, hh.Sum(e[:0]), sig)
}
