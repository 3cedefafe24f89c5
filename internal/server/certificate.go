package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/trust"
)

type certificateService struct {
	*Server
	signsvrv1.UnimplementedCertificateServiceServer
}

// purposeOf maps the API purpose to the trust package's.
func purposeOf(p signsvrv1.CertificatePurpose) (trust.Purpose, error) {
	switch p {
	case signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_UNSPECIFIED:
		return trust.PurposeAny, nil
	case signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN:
		return trust.PurposeSign, nil
	case signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_ENCRYPT:
		return trust.PurposeEncrypt, nil
	case signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_CLIENT_AUTH:
		return trust.PurposeClientAuth, nil
	}
	return 0, invalidRequest("unknown certificate purpose %d", p)
}

// ValidateCertificate implements signsvrv1.CertificateServiceServer. It uses the
// server's signer trust (Options.Validator): the anchors, revocation policy and
// verdict cache Verify uses.
func (s certificateService) ValidateCertificate(ctx context.Context, req *signsvrv1.ValidateCertificateRequest) (*signsvrv1.ValidateCertificateResponse, error) {
	if len(req.GetCertificate()) == 0 {
		return nil, invalidRequest("no certificate given")
	}
	leaf, err := s.certs.parse(req.GetCertificate())
	if err != nil {
		return nil, malformed("certificate", err)
	}
	inters, err := s.parseCerts(req.GetIntermediates(), "intermediates")
	if err != nil {
		return nil, err
	}
	purpose, err := purposeOf(req.GetPurpose())
	if err != nil {
		return nil, err
	}
	at := s.now()
	if t := req.GetTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, invalidRequest("time is not a valid timestamp")
		}
		at = t.AsTime()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vd := s.validator.Validate(ctx, leaf, inters, at, purpose)
	if err := ctx.Err(); err != nil {
		// The request's end stopped the revocation check: that is the answer, not a
		// verdict the deadline cut short (which raced the client's own deadline).
		return nil, err
	}
	resp := &signsvrv1.ValidateCertificateResponse{Verdict: apiVerdict(vd)}
	for _, c := range vd.Checks {
		rc := &signsvrv1.RevocationCheck{Subject: c.Subject, Method: c.Method.String(), Source: c.Source, Error: c.Error}
		if !c.ThisUpdate.IsZero() {
			rc.ThisUpdate = timestamppb.New(c.ThisUpdate)
		}
		if !c.NextUpdate.IsZero() {
			rc.NextUpdate = timestamppb.New(c.NextUpdate)
		}
		resp.RevocationChecks = append(resp.RevocationChecks, rc)
	}
	return resp, nil
}

// apiVerdict is the API form of a trust verdict.
func apiVerdict(v *trust.Verdict) *signsvrv1.CertificateVerdict {
	pv := &signsvrv1.CertificateVerdict{
		Status:     signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNKNOWN,
		Reason:     v.Reason,
		Detail:     v.Detail,
		Revocation: v.Revocation.String(),
	}
	if !v.At.IsZero() {
		pv.ValidatedAt = timestamppb.New(v.At)
	}
	if int(v.Status) < len(certStatus) {
		pv.Status = certStatus[v.Status].api
	}
	if len(v.Chain) > 0 {
		pv.Chain = make([][]byte, len(v.Chain))
		for i, c := range v.Chain {
			pv.Chain[i] = c.Raw
		}
	}
	if !v.RevokedAt.IsZero() {
		pv.RevokedAt = timestamppb.New(v.RevokedAt)
		pv.RevocationReason = v.RevocationReason.String()
	}
	return pv
}

// ParseCertificate implements signsvrv1.CertificateServiceServer.
func (s certificateService) ParseCertificate(ctx context.Context, req *signsvrv1.ParseCertificateRequest) (*signsvrv1.ParseCertificateResponse, error) {
	if len(req.GetCertificate()) == 0 {
		return nil, invalidRequest("no certificate given")
	}
	c, err := s.certs.parse(req.GetCertificate())
	if err != nil {
		return nil, malformed("certificate", err)
	}
	return &signsvrv1.ParseCertificateResponse{Info: DescribeCertificate(c)}, nil
}

// keyUsageNames are the keyUsage bits in RFC 5280 order and spelling.
var keyUsageNames = [...]struct {
	bit  smx509.KeyUsage
	name string
}{
	{smx509.KeyUsageDigitalSignature, "digitalSignature"},
	{smx509.KeyUsageContentCommitment, "nonRepudiation"},
	{smx509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{smx509.KeyUsageDataEncipherment, "dataEncipherment"},
	{smx509.KeyUsageKeyAgreement, "keyAgreement"},
	{smx509.KeyUsageCertSign, "keyCertSign"},
	{smx509.KeyUsageCRLSign, "cRLSign"},
	{smx509.KeyUsageEncipherOnly, "encipherOnly"},
	{smx509.KeyUsageDecipherOnly, "decipherOnly"},
}

var extKeyUsageNames = map[smx509.ExtKeyUsage]string{
	smx509.ExtKeyUsageAny:                            "any",
	smx509.ExtKeyUsageServerAuth:                     "serverAuth",
	smx509.ExtKeyUsageClientAuth:                     "clientAuth",
	smx509.ExtKeyUsageCodeSigning:                    "codeSigning",
	smx509.ExtKeyUsageEmailProtection:                "emailProtection",
	smx509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
	smx509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
	smx509.ExtKeyUsageIPSECUser:                      "ipsecUser",
	smx509.ExtKeyUsageTimeStamping:                   "timeStamping",
	smx509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
	smx509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
	smx509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
	smx509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
	smx509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCode",
}

// DescribeCertificate decodes what a parsed certificate says (ParseCertificate).
// It reads only fields smx509 already parsed, so it cannot fail on a certificate
// that parsed.
func DescribeCertificate(c *smx509.Certificate) *signsvrv1.CertificateInfo {
	sum := sha256.Sum256(c.Raw)
	info := &signsvrv1.CertificateInfo{
		Version:                uint32(c.Version),
		Subject:                c.Subject.String(),
		Issuer:                 c.Issuer.String(),
		NotBefore:              timestamppb.New(c.NotBefore),
		NotAfter:               timestamppb.New(c.NotAfter),
		SignatureAlgorithm:     c.SignatureAlgorithm.String(),
		SubjectKeyId:           c.SubjectKeyId,
		AuthorityKeyId:         c.AuthorityKeyId,
		DnsNames:               c.DNSNames,
		EmailAddresses:         c.EmailAddresses,
		CrlDistributionPoints:  c.CRLDistributionPoints,
		OcspServers:            c.OCSPServer,
		IssuingCertificateUrls: c.IssuingCertificateURL,
		IsCa:                   c.BasicConstraintsValid && c.IsCA,
		MaxPathLen:             -1,
		FingerprintSha256:      hex.EncodeToString(sum[:]),
		SelfIssued:             string(c.RawSubject) == string(c.RawIssuer),
	}
	if c.SerialNumber != nil {
		info.Serial = c.SerialNumber.String()
		info.SerialHex = c.SerialNumber.Text(16)
	}
	if info.IsCa && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
		info.MaxPathLen = int32(min(c.MaxPathLen, 1<<30))
	}
	switch p := c.PublicKey.(type) {
	case *rsa.PublicKey:
		info.KeyAlgorithm = signsvrv1.KeyAlgorithm_KEY_ALGORITHM_RSA
		info.KeyBits = uint32(p.N.BitLen())
	case *ecdsa.PublicKey:
		if p.Curve != nil {
			info.KeyBits = uint32(p.Curve.Params().BitSize)
		}
		// Any curve is described, also one the algorithm table does not support
		// (P-521, say); the table says which curve is SM2's.
		if algorithm.Of(p) == algorithm.SM2 {
			info.KeyAlgorithm = signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2
			info.Curve = "SM2"
		} else if p.Curve != nil {
			info.KeyAlgorithm = signsvrv1.KeyAlgorithm_KEY_ALGORITHM_EC
			info.Curve = p.Curve.Params().Name
		}
	}
	for _, ku := range keyUsageNames {
		if c.KeyUsage&ku.bit != 0 {
			info.KeyUsages = append(info.KeyUsages, ku.name)
		}
	}
	for _, u := range c.ExtKeyUsage {
		if n, ok := extKeyUsageNames[u]; ok {
			info.ExtKeyUsages = append(info.ExtKeyUsages, n)
		} else {
			info.ExtKeyUsages = append(info.ExtKeyUsages, "eku("+strconv.Itoa(int(u))+")")
		}
	}
	for _, o := range c.UnknownExtKeyUsage {
		info.ExtKeyUsages = append(info.ExtKeyUsages, o.String())
	}
	for _, ip := range c.IPAddresses {
		info.IpAddresses = append(info.IpAddresses, ip.String())
	}
	for _, u := range c.URIs {
		info.Uris = append(info.Uris, u.String())
	}
	if len(c.Policies) > 0 {
		for _, p := range c.Policies {
			info.Policies = append(info.Policies, p.String())
		}
	} else {
		for _, p := range c.PolicyIdentifiers {
			info.Policies = append(info.Policies, p.String())
		}
	}
	return info
}
