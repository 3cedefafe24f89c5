package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
	"signsvr.dev/signsvr/pkg/tsa"
)

// Timestamps (RFC 3161)
//
// TimestampService issues tokens with the configured TSA key (pkg/tsa). Sign embeds
// a token over each new signature value as the unsigned attribute
// id-aa-signatureTimeStampToken (CAdES-T) when asked, from that TSA key or from an
// external RFC 3161 URL. Verify checks every embedded token and, for a signer with a
// valid one, validates the signer's certificate at the token's time: the policy is
// documented on SignerTimestamp in sign.proto.

// DefaultExternalTSATimeout bounds one call to the external TSA.
const DefaultExternalTSATimeout = 10 * time.Second

// maxTokensPerSigner bounds the tokens Verify checks per signer.
const maxTokensPerSigner = 4

// TimestampOptions enable timestamps.
type TimestampOptions struct {
	// Key is the keystore key of the server's TSA: its certificate must carry the
	// critical extendedKeyUsage id-kp-timeStamping only. "" leaves TimestampService
	// and SIGNATURE_TIMESTAMP_SERVER answering FAILED_PRECONDITION.
	Key string
	// Policy is the TSA policy OID (default tsa.DefaultPolicy).
	Policy asn1.ObjectIdentifier
	// Accuracy is written into every token when not zero.
	Accuracy tsa.Accuracy
	// ExternalURL is the RFC 3161 TSA used for SIGNATURE_TIMESTAMP_EXTERNAL.
	ExternalURL string
	// ExternalPolicy, when set, is asked of the external TSA.
	ExternalPolicy asn1.ObjectIdentifier
	// ExternalTimeout bounds one external call, within the request's deadline
	// (default DefaultExternalTSATimeout).
	ExternalTimeout time.Duration
	// HTTPClient calls the external TSA; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Validator validates TSA certificates (chain at the token's time); nil means
	// Options.Validator.
	Validator CertValidator
	// Store holds Key; nil means Options.Store. A store of its own keeps the TSA key
	// out of reach of client requests: a raw signature (SignRaw) with the TSA key over
	// chosen signed attributes would forge a token. With the shared store, the
	// authorization policy must give no client sign or sign_raw on Key.
	Store keystore.Store
}

type timestamper struct {
	key       string
	authority *tsa.Authority
	// imprint is the hash algorithm of a signature timestamp's message imprint.
	imprint   asn1.ObjectIdentifier
	client    *tsa.Client
	timeout   time.Duration
	validator CertValidator
	store     keystore.Store
}

// newTimestamper checks o against the key store: the TSA key must exist, sign, and
// have a timestamping certificate.
func (s *Server) newTimestamper(o *TimestampOptions) (*timestamper, error) {
	t := &timestamper{key: o.Key, timeout: o.ExternalTimeout, validator: o.Validator, store: o.Store}
	if t.store == nil {
		t.store = s.store
	}
	if t.timeout <= 0 {
		t.timeout = DefaultExternalTSATimeout
	}
	if t.validator == nil {
		t.validator = s.validator
	}
	if o.ExternalURL != "" {
		t.client = &tsa.Client{URL: o.ExternalURL, HTTP: o.HTTPClient, Policy: o.ExternalPolicy}
	}
	if o.Key == "" {
		return t, nil
	}
	k, err := t.store.Key(context.Background(), o.Key)
	if err != nil {
		return nil, fmt.Errorf("server: timestamps: TSA key %q: %w", o.Key, err)
	}
	if !k.Usages().Has(keystore.UsageSign) {
		return nil, fmt.Errorf("server: timestamps: TSA key %q is not configured to sign", o.Key)
	}
	t.authority, err = tsa.NewAuthority(tsa.AuthorityConfig{Chain: k.Chain(), Policy: o.Policy, Accuracy: o.Accuracy, Now: s.now})
	if err != nil {
		return nil, fmt.Errorf("server: timestamps: TSA key %q: %w", o.Key, err)
	}
	// A signature timestamp's imprint uses the digest the TSA key signs tokens with by
	// default (SM3 for SM2), SHA-256 for a key outside the table, which cannot sign.
	t.imprint = cms.OIDSHA256
	if u, ok := algorithm.Default(algorithm.Of(k.Public()), algorithm.SignCMS); ok {
		t.imprint = u.Digest.OID()
	}
	return t, nil
}

var errNoTSA = newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED,
	"no time-stamping authority key is configured on this server", nil)

// issueToken makes a token with the server's TSA key, bound to ctx.
func (s *Server) issueToken(ctx context.Context, req *tsa.Request) (*tsa.Issued, error) {
	ts := s.timestamps
	if ts == nil || ts.authority == nil {
		return nil, errNoTSA
	}
	noteKey(ctx, ts.key)
	signer, err := ts.signer(ctx)
	if err != nil {
		return nil, err
	}
	is, err := ts.authority.Issue(req, signer)
	var rej *tsa.RejectError
	if errors.As(err, &rej) {
		reason := signsvrv1.ErrorReason_ERROR_REASON_INVALID_REQUEST
		if rej.FailInfo&(tsa.FailBadAlg|tsa.FailUnacceptedExtension|tsa.FailUnacceptedPolicy) != 0 {
			reason = signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED
		}
		return nil, newError(codes.InvalidArgument, reason, rej.Msg, err)
	}
	return is, err
}

// signer is the TSA key bound to ctx (an HSM session waits no longer than the
// request).
func (t *timestamper) signer(ctx context.Context) (crypto.Signer, error) {
	k, err := t.store.Key(ctx, t.key)
	if err != nil {
		return nil, err
	}
	signer := k.Signer(ctx)
	if signer == nil {
		return nil, internal(errors.New("the TSA key cannot sign"))
	}
	return signer, ctx.Err()
}

type timestampService struct {
	*Server
	signsvrv1.UnimplementedTimestampServiceServer
}

// Timestamp implements signsvrv1.TimestampServiceServer.
func (s timestampService) Timestamp(ctx context.Context, req *signsvrv1.TimestampRequest) (*signsvrv1.TimestampResponse, error) {
	n := 0
	for _, b := range [][]byte{req.GetRequest(), req.GetDigest(), req.GetData()} {
		if len(b) > 0 {
			n++
		}
	}
	if n != 1 {
		return nil, invalidRequest("give exactly one of request, digest and data")
	}
	var tr *tsa.Request
	if len(req.GetRequest()) > 0 {
		if len(req.GetNonce()) > 0 || req.GetOmitCertificate() || req.GetDigestAlgorithm() != signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED {
			return nil, invalidRequest("nonce, omit_certificate and digest_algorithm are for digest and data requests")
		}
		var err error
		if tr, err = tsa.ParseRequest(req.GetRequest()); err != nil {
			return nil, malformed("the TimeStampReq", err)
		}
	} else {
		alg, err := imprintAlgorithm(req.GetDigestAlgorithm())
		if err != nil {
			return nil, err
		}
		digest := req.GetDigest()
		if len(req.GetData()) > 0 {
			digest, _ = tsa.Digest(alg, req.GetData())
		}
		if len(req.GetNonce()) > 32 {
			return nil, invalidRequest("nonce longer than 32 bytes")
		}
		tr = &tsa.Request{
			MessageImprint: tsa.MessageImprint{HashAlgorithm: alg, HashedMessage: digest},
			CertReq:        !req.GetOmitCertificate(),
		}
		if len(req.GetNonce()) > 0 {
			tr.Nonce = new(big.Int).SetBytes(req.GetNonce())
		}
	}
	is, err := s.issueToken(ctx, tr)
	if err != nil {
		return nil, err
	}
	resp, err := (&tsa.Response{Status: tsa.StatusGranted, Token: is.Token}).Marshal()
	if err != nil {
		return nil, internal(err)
	}
	return &signsvrv1.TimestampResponse{
		Response:       resp,
		Token:          is.Token,
		Time:           timestamppb.New(is.Info.GenTime),
		Serial:         is.Info.SerialNumber.String(),
		Policy:         is.Info.Policy.String(),
		TsaCertificate: s.timestamps.authority.Certificate().Raw,
	}, nil
}

func imprintAlgorithm(d signsvrv1.DigestAlgorithm) (asn1.ObjectIdentifier, error) {
	switch d {
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256:
		return cms.OIDSHA256, nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384:
		return cms.OIDSHA384, nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512:
		return cms.OIDSHA512, nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3:
		return cms.OIDSM3, nil
	}
	return nil, invalidRequest("unknown digest %d", d)
}

// embedTimestamp adds a signature timestamp token over the first signer's signature
// value to the DER SignedData der, from the source mode names.
func (s *Server) embedTimestamp(ctx context.Context, der []byte, mode signsvrv1.SignatureTimestamp) ([]byte, error) {
	switch mode {
	case signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_UNSPECIFIED:
		return der, nil
	case signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_SERVER, signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_EXTERNAL:
	default:
		return nil, invalidRequest("unknown signature timestamp %d", mode)
	}
	sd, err := cms.ParseSignedDataContentInfo(der)
	if err != nil || len(sd.SignerInfos) != 1 {
		return nil, internal(fmt.Errorf("re-reading our own signature: %v", err))
	}
	si := &sd.SignerInfos[0]
	var token []byte
	if mode == signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_SERVER {
		ts := s.timestamps
		if ts == nil || ts.authority == nil {
			return nil, errNoTSA
		}
		alg := ts.imprint
		digest, _ := tsa.Digest(alg, si.Signature)
		var nb [8]byte
		rand.Read(nb[:])
		// The TSA key is the server's own: it is used under the Sign call's
		// authorization, and the audit record of the call names the signing key.
		signer, err := ts.signer(ctx)
		if err != nil {
			return nil, err
		}
		is, err := ts.authority.Issue(&tsa.Request{
			MessageImprint: tsa.MessageImprint{HashAlgorithm: alg, HashedMessage: digest},
			Nonce:          new(big.Int).SetBytes(nb[:]),
			CertReq:        true,
		}, signer)
		if err != nil {
			return nil, err
		}
		token = is.Token
	} else {
		ts := s.timestamps
		if ts == nil || ts.client == nil {
			return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED,
				"no external time-stamping authority is configured on this server", nil)
		}
		cctx, cancel := context.WithTimeout(ctx, ts.timeout)
		token, _, err = ts.client.Stamp(cctx, cms.OIDSHA256, si.Signature)
		cancel()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, newError(codes.Unavailable, signsvrv1.ErrorReason_ERROR_REASON_UNAVAILABLE,
				"the external time-stamping authority did not give a usable token", err)
		}
	}
	si.AddUnsignedAttribute(cms.Attribute{Type: cms.OIDAttrSignatureTimeStamp, Values: [][]byte{token}})
	out, err := sd.Marshal()
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// signerStamps is what Verify learned from the timestamp tokens of every signer.
type signerStamps struct {
	list []*signsvrv1.SignerTimestamp
	// at[i] is the time signer i's certificate is validated at (zero: now), and
	// used[i] the entry of list that gave it.
	at   []time.Time
	used []*signsvrv1.SignerTimestamp
}

// checkTimestamps verifies every embedded signature timestamp token. It is nil when
// no signer carries one (the common case, which then allocates nothing).
func (s *Server) checkTimestamps(ctx context.Context, res *sign.Result) *signerStamps {
	if !anyTimestamp(res) {
		return nil
	}
	st := &signerStamps{at: make([]time.Time, len(res.Signers)), used: make([]*signsvrv1.SignerTimestamp, len(res.Signers))}
	validator := s.validator
	if s.timestamps != nil {
		validator = s.timestamps.validator
	}
	for i := range res.Signers {
		sr := &res.Signers[i]
		if sr.Info == nil {
			continue
		}
		seen := 0
		for _, a := range sr.Info.UnsignedAttrs {
			if !a.Type.Equal(cms.OIDAttrSignatureTimeStamp) {
				continue
			}
			for _, v := range a.Values {
				if seen == maxTokensPerSigner {
					break
				}
				seen++
				e := s.checkToken(ctx, validator, v, sr.Info.Signature, res.Certificates)
				e.SignerIndex = uint32(sr.Index)
				st.list = append(st.list, e)
				if e.Valid && (st.at[i].IsZero() || e.Time.AsTime().Before(st.at[i])) {
					st.at[i] = e.Time.AsTime()
					st.used[i] = e
				}
			}
		}
		if u := st.used[i]; u != nil {
			u.UsedForValidation = true
		}
	}
	return st
}

func anyTimestamp(res *sign.Result) bool {
	for i := range res.Signers {
		if info := res.Signers[i].Info; info != nil {
			for _, a := range info.UnsignedAttrs {
				if a.Type.Equal(cms.OIDAttrSignatureTimeStamp) {
					return true
				}
			}
		}
	}
	return false
}

func (s *Server) checkToken(ctx context.Context, validator CertValidator, token, signature []byte, certs []*smx509.Certificate) *signsvrv1.SignerTimestamp {
	e := &signsvrv1.SignerTimestamp{}
	tok, err := tsa.VerifyToken(token, &tsa.VerifyOptions{Data: signature, Certs: certs, ParseCertificate: s.certs.parse})
	if err != nil {
		var ve *tsa.VerifyError
		e.Reason = tsa.ReasonMalformed
		if errors.As(err, &ve) {
			e.Reason = ve.Reason
		}
		// Report the time of a token that could be read, for diagnosis.
		if sd, perr := cms.ParseSignedDataContentInfo(token); perr == nil && sd.EContentType.Equal(cms.OIDTSTInfo) {
			if info, ierr := tsa.ParseTSTInfo(sd.EContent); ierr == nil {
				e.Time = timestamppb.New(info.GenTime)
				e.Serial = info.SerialNumber.String()
				e.Policy = info.Policy.String()
			}
		}
		s.log.DebugContext(ctx, "signature timestamp did not verify", "request_id", RequestID(ctx), "reason", e.Reason, "cause", err.Error())
		return e
	}
	e.Time = timestamppb.New(tok.Info.GenTime)
	e.Serial = tok.Info.SerialNumber.String()
	e.Policy = tok.Info.Policy.String()
	e.TsaCertificate = tok.Certificate.Raw
	e.Tsa = s.certs.namesOf(tok.Certificate).subject
	pv, _ := s.checkCertFor(ctx, validator, tok.Certificate, tok.Certificates, tok.Info.GenTime, trust.PurposeAny)
	e.TsaCertificateVerdict = pv
	if pv.Status != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD {
		e.Reason = "tsa-certificate-" + pv.Reason
		return e
	}
	e.Valid = true
	return e
}
