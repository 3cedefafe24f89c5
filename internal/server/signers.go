package server

// The per-signer results of a verification: each signer's certificate validated
// and both verdicts, signature and certificate, reported apart.

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
)

// signerResults validates every signer's certificate and builds the per-signer results.
// verified is true only when there is a signer and every signer has both verdicts good.
func (s *Server) signerResults(ctx context.Context, res *sign.Result) (out []*signsvrv1.SignerResult, verified bool) {
	return s.signerResultsAt(ctx, res, nil)
}

// signerResultsAt is signerResults where a signer with a valid signature timestamp
// (stamps, may be nil) has its certificate validated at the timestamp's time; the
// verdict at the current time is then reported with the timestamp.
func (s *Server) signerResultsAt(ctx context.Context, res *sign.Result, stamps *signerStamps) (out []*signsvrv1.SignerResult, verified bool) {
	now := s.now()
	out = make([]*signsvrv1.SignerResult, len(res.Signers))
	verified = len(res.Signers) > 0
	for i := range res.Signers {
		sr := &res.Signers[i]
		r := &signsvrv1.SignerResult{
			Index:              uint32(sr.Index),
			Signature:          &signsvrv1.SignatureVerdict{Valid: sr.Signature.Valid, Reason: sr.Signature.Reason},
			Serial:             sr.Serial,
			SubjectKeyId:       sr.SubjectKeyID,
			DigestAlgorithm:    sr.DigestAlgorithm,
			SignatureAlgorithm: sr.SignatureAlgorithm,
			Sm2WithoutZ:        sr.SM2WithoutZ,
		}
		if sr.Certificate != nil {
			at := now
			if stamps != nil && !stamps.at[i].IsZero() {
				at = stamps.at[i]
				stamps.used[i].SignerCertificateVerdictNow, _ = s.checkCert(ctx, sr.Certificate, res.Certificates, now)
			}
			r.CertificateVerdict, sr.CertVerdict = s.checkCert(ctx, sr.Certificate, res.Certificates, at)
			n := s.certs.namesOf(sr.Certificate)
			r.Certificate = sr.Certificate.Raw
			r.Subject = n.subject
			r.Issuer = n.issuer
		} else {
			sr.CertVerdict = sign.CertVerdict{Status: sign.CertNotChecked, Reason: trust.ReasonNoCertificate}
			r.CertificateVerdict = &signsvrv1.CertificateVerdict{
				Status: signsvrv1.CertificateStatus_CERTIFICATE_STATUS_NOT_CHECKED,
				Reason: trust.ReasonNoCertificate,
				Detail: "the signer's certificate is neither in the message nor in the given certificates",
			}
			if len(sr.Issuer) > 0 {
				r.Issuer = nameString(sr.Issuer)
			}
		}
		if !sr.Signature.Valid && r.Signature.Reason == "" {
			r.Signature.Reason = "signature-invalid"
		}
		r.Verified = sr.Verified()
		if !r.Verified {
			verified = false
		}
		if !sr.SigningTime.IsZero() {
			r.SigningTime = timestamppb.New(sr.SigningTime)
		}
		out[i] = r
	}
	return out, verified
}

// checkCert validates a signer's certificate for signing at time at, and gives the
// verdict both as the API shows it and as pkg/sign counts it.
func (s *Server) checkCert(ctx context.Context, leaf *smx509.Certificate, intermediates []*smx509.Certificate,
	at time.Time) (*signsvrv1.CertificateVerdict, sign.CertVerdict) {
	return s.checkCertFor(ctx, s.validator, leaf, intermediates, at, trust.PurposeSign)
}

// checkCertFor is checkCert with a given validator and purpose.
func (s *Server) checkCertFor(ctx context.Context, validator CertValidator, leaf *smx509.Certificate,
	intermediates []*smx509.Certificate, at time.Time, purpose trust.Purpose) (*signsvrv1.CertificateVerdict, sign.CertVerdict) {
	v := validator.Validate(ctx, leaf, intermediates, at, purpose)
	sv := sign.CertVerdict{Status: sign.CertUnknown, Reason: v.Reason, Chain: v.Chain}
	if int(v.Status) < len(certStatus) {
		sv.Status = certStatus[v.Status].sign
	}
	return apiVerdict(v), sv
}

// nameString formats a DER Name, for signers whose certificate was not found.
func nameString(der []byte) string {
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdn); err != nil || len(rest) != 0 {
		return ""
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return n.String()
}

// certStatus maps trust.Status to the API's and pkg/sign's verdicts.
var certStatus = [...]struct {
	api  signsvrv1.CertificateStatus
	sign sign.CertStatus
}{
	trust.StatusUnknown:    {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNKNOWN, sign.CertUnknown},
	trust.StatusGood:       {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD, sign.CertGood},
	trust.StatusRevoked:    {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED, sign.CertRevoked},
	trust.StatusExpired:    {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED, sign.CertExpired},
	trust.StatusUntrusted:  {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNTRUSTED, sign.CertUntrusted},
	trust.StatusWrongUsage: {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_WRONG_USAGE, sign.CertWrongUsage},
}
