package server

import (
	"context"
	"errors"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/sign"
)

type envelopeService struct {
	*Server
	signsvrv1.UnimplementedEnvelopeServiceServer
}

// recipients gathers the recipient certificates of an envelope request: the DER ones
// given, then the leaf certificates of the named keys, which must be decryption keys.
func (s *Server) recipients(ctx context.Context, ders [][]byte, names []string) ([]*smx509.Certificate, error) {
	if len(ders)+len(names) == 0 {
		return nil, invalidRequest("no recipients given")
	}
	out, err := s.parseCerts(ders, "recipient_certs")
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		_, transport := algorithm.Check(c.PublicKey, algorithm.KeyTransport)
		_, agreement := algorithm.Check(c.PublicKey, algorithm.KeyAgreement)
		if transport != nil && agreement != nil {
			return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
				"a recipient certificate has a key that cannot receive an envelope", nil)
		}
	}
	for _, n := range names {
		k, err := s.lookupKey(ctx, n)
		if err != nil {
			return nil, err
		}
		if !k.k.Usages().Has(keystore.UsageDecrypt) || k.leaf == nil {
			return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_KEY_USAGE_NOT_ALLOWED,
				"key "+n+" is not an encryption key", nil)
		}
		out = append(out, k.leaf)
	}
	return out, nil
}

// Envelope implements signsvrv1.EnvelopeServiceServer.
func (s envelopeService) Envelope(ctx context.Context, req *signsvrv1.EnvelopeRequest) (*signsvrv1.EnvelopeResponse, error) {
	var (
		rcpts []*smx509.Certificate
		err   error
	)
	symmetric := len(req.GetRecipientKekKeys()) + len(req.GetRecipientPasswords())
	if symmetric == 0 || len(req.GetRecipientCerts())+len(req.GetRecipientKeys()) > 0 {
		if rcpts, err = s.recipients(ctx, req.GetRecipientCerts(), req.GetRecipientKeys()); err != nil {
			return nil, err
		}
	}
	opts, err := envelopeOptions(req.GetOptions())
	if err != nil {
		return nil, err
	}
	if err := s.symmetricRecipients(ctx, req, req.GetOptions(), &opts); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := envelope.Envelope(req.GetData(), rcpts, &opts)
	if err != nil {
		return nil, err
	}
	return &signsvrv1.EnvelopeResponse{Cms: der, RecipientKeysUsed: s.keysUsed(ctx, req.GetRecipientKeys())}, nil
}

// decryptionKey finds the named key for opening an envelope: the caller must be
// allowed to decrypt with it, and it needs a certificate and a Decrypter (RSA, SM2) or
// a KeyAgreer (EC).
func (s *Server) decryptionKey(ctx context.Context, name string) (priv any, leaf *smx509.Certificate, err error) {
	k, err := s.useKey(ctx, name, OpDecrypt)
	if err != nil {
		return nil, nil, err
	}
	if d := k.k.Decrypter(ctx); d != nil {
		priv = d
	} else if a := k.k.KeyAgreer(ctx); a != nil {
		priv = a
	} else {
		return nil, nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_KEY_USAGE_NOT_ALLOWED,
			"key "+name+" cannot decrypt", nil)
	}
	if k.leaf == nil {
		return nil, nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
			"key "+name+" has no certificate", nil)
	}
	return priv, k.leaf, ctx.Err()
}

// openOptions are the envelope options of a request: legacy algorithms only when asked,
// backend failures of the key reported as themselves, the server's PBKDF2 bound.
func (s *Server) openOptions(o *signsvrv1.DecryptOptions) *envelope.OpenOptions {
	oo := openOptions(o)
	oo.MaxPBKDF2Iterations = s.encLimits.MaxPBKDF2Iterations
	return oo
}

// openOptions are a request's envelope options with the default PBKDF2 bound.
func openOptions(o *signsvrv1.DecryptOptions) *envelope.OpenOptions {
	return &envelope.OpenOptions{AllowLegacy: o.GetAllowLegacy(), BackendError: isBackendError}
}

// open decrypts an envelope with the named key. Every failure after the key was found
// and the message parsed is the same DECRYPTION_FAILED error.
// The KeyUse names the generation that opened it (nil for a password or a KEK).
func (s *Server) open(ctx context.Context, name string, der []byte, o *signsvrv1.DecryptOptions) ([]byte, *signsvrv1.KeyUse, error) {
	if len(der) == 0 {
		return nil, nil, invalidRequest("no CMS message given")
	}
	priv, leaf, err := s.openerFor(ctx, name, o)
	if err != nil {
		return nil, nil, err
	}
	var data []byte
	used, err := s.openWithGenerations(ctx, name, priv, leaf, func(priv any, leaf *smx509.Certificate) (err error) {
		data, err = envelope.Open(der, priv, leaf, s.openOptions(o))
		return err
	})
	if err != nil {
		return nil, nil, decryptError(err)
	}
	return data, used, nil
}

// decryptError keeps the failures of an open apart only where that tells an attacker
// nothing: a message that does not parse (before any key is used), an algorithm the
// server lacks, a busy or missing backend, or the request's end. Everything else is the
// one DECRYPTION_FAILED error.
func decryptError(err error) error {
	switch {
	case errors.Is(err, envelope.ErrDecrypt), errors.Is(err, envelope.ErrNoRecipient):
		return errDecryptFailed(err)
	case errors.Is(err, envelope.ErrTooCostly):
		return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE, err.Error(), err)
	case errors.Is(err, cms.ErrMalformed), errors.Is(err, cms.ErrUnsupported),
		errors.Is(err, keystore.ErrBusy), errors.Is(err, keystore.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	}
	return errDecryptFailed(err)
}

// isBackendError tells pkg/envelope which errors of a key are about its backend (an
// HSM down or busy, the request's end) and not about the data, so they surface as
// Unavailable / ResourceExhausted / DeadlineExceeded instead of DECRYPTION_FAILED. The
// PKCS#11 backend never wraps a data failure in these sentinels.
func isBackendError(err error) bool {
	return errors.Is(err, keystore.ErrUnavailable) || errors.Is(err, keystore.ErrBusy) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// Decrypt implements signsvrv1.EnvelopeServiceServer.
func (s envelopeService) Decrypt(ctx context.Context, req *signsvrv1.DecryptRequest) (*signsvrv1.DecryptResponse, error) {
	data, used, err := s.open(ctx, req.GetKey(), req.GetCms(), req.GetOptions())
	if err != nil {
		return nil, err
	}
	return &signsvrv1.DecryptResponse{Data: data, KeyUsed: used}, nil
}

// SignAndEnvelope implements signsvrv1.EnvelopeServiceServer.
func (s envelopeService) SignAndEnvelope(ctx context.Context, req *signsvrv1.SignAndEnvelopeRequest) (*signsvrv1.SignAndEnvelopeResponse, error) {
	saed := false
	switch req.GetFormat() {
	case signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_UNSPECIFIED, signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_NESTED:
	case signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_SIGNED_AND_ENVELOPED_DATA:
		saed = true
	default:
		return nil, invalidRequest("unknown envelope format %d", req.GetFormat())
	}
	var rcpts []*smx509.Certificate
	var err error
	symmetric := len(req.GetRecipientKekKeys()) + len(req.GetRecipientPasswords())
	if symmetric == 0 || len(req.GetRecipientCerts())+len(req.GetRecipientKeys()) > 0 {
		if rcpts, err = s.recipients(ctx, req.GetRecipientCerts(), req.GetRecipientKeys()); err != nil {
			return nil, err
		}
	}
	eopts, err := envelopeOptions(req.GetEnvelopeOptions())
	if err != nil {
		return nil, err
	}
	if saed && symmetric > 0 {
		return nil, invalidRequest("a SignedAndEnvelopedData has key-transport recipients only; use the nested format for KEK and password recipients")
	}
	if err := s.symmetricRecipients(ctx, req, req.GetEnvelopeOptions(), &eopts); err != nil {
		return nil, err
	}
	if saed {
		der, err := s.signAndEnvelopeSAED(ctx, req, rcpts, eopts)
		if err != nil {
			return nil, err
		}
		return &signsvrv1.SignAndEnvelopeResponse{Cms: der, KeyUsed: s.keyUsed(ctx, req.GetKey()),
			RecipientKeysUsed: s.keysUsed(ctx, req.GetRecipientKeys())}, nil
	}
	signed, err := s.sign(ctx, &signsvrv1.SignRequest{Key: req.GetKey(), Data: req.GetData(), Options: req.GetSignOptions()}, nil)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := envelope.Envelope(signed, rcpts, &eopts)
	if err != nil {
		return nil, err
	}
	return &signsvrv1.SignAndEnvelopeResponse{Cms: der, KeyUsed: s.keyUsed(ctx, req.GetKey()),
		RecipientKeysUsed: s.keysUsed(ctx, req.GetRecipientKeys())}, nil
}

// signAndEnvelopeSAED makes the single SignedAndEnvelopedData (PKCS#7 type 4, or GM/T
// 0010's for SM2) that SM2 peers expect, with the request's key and options.
func (s *Server) signAndEnvelopeSAED(ctx context.Context, req *signsvrv1.SignAndEnvelopeRequest, rcpts []*smx509.Certificate, eopts envelope.Options) ([]byte, error) {
	k, err := s.useKey(ctx, req.GetKey(), OpSign)
	if err != nil {
		return nil, err
	}
	o := envelope.SignAndEnvelopeOptions{Form: envelope.FormSignedAndEnveloped, Envelope: eopts}
	if err := s.signOptions(k, false, req.GetSignOptions(), &o.Sign); err != nil {
		return nil, err
	}
	signer, err := signerOf(ctx, k)
	if err != nil {
		return nil, err
	}
	der, err := envelope.SignAndEnvelope(req.GetData(), signer, k.chain, rcpts, &o)
	s.signed(ctx, k, err)
	return der, err
}

// DecryptAndVerify implements signsvrv1.EnvelopeServiceServer. It opens either form of
// sign-then-envelope: a SignedData inside an EnvelopedData or AuthEnvelopedData, or one
// SignedAndEnvelopedData.
func (s envelopeService) DecryptAndVerify(ctx context.Context, req *signsvrv1.DecryptAndVerifyRequest) (*signsvrv1.DecryptAndVerifyResponse, error) {
	if len(req.GetCms()) == 0 {
		return nil, invalidRequest("no CMS message given")
	}
	priv, leaf, err := s.openerFor(ctx, req.GetKey(), req.GetDecryptOptions())
	if err != nil {
		return nil, err
	}
	o := req.GetVerifyOptions()
	vo := s.verifyOptions(ctx)
	if err := s.applyVerifyOptions(vo, o, "verify_options"); err != nil {
		return nil, err
	}
	// A decrypted plaintext that is not a SignedData is ErrDecrypt (pkg/envelope), so
	// only a message that does not parse before any key is used says "malformed".
	var res *sign.Result
	used, err := s.openWithGenerations(ctx, req.GetKey(), priv, leaf, func(priv any, leaf *smx509.Certificate) (err error) {
		res, err = envelope.OpenAndVerify(req.GetCms(), priv, leaf, s.openOptions(req.GetDecryptOptions()), vo)
		return err
	})
	if err != nil {
		return nil, decryptError(err)
	}
	resp := &signsvrv1.DecryptAndVerifyResponse{ContentType: res.ContentType, KeyUsed: used}
	if !o.GetOmitContent() {
		resp.Content = res.Content
	}
	resp.Signers, resp.Verified = s.signerResults(ctx, res)
	return resp, nil
}
