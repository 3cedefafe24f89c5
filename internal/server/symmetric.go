package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/smx509"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/keystore"
)

// Recipients with symmetric keys
//
// A KEKRecipientInfo names a symmetric key-encryption key by its key id; the server
// holds such keys under names (Options.SecretKeys), as it holds private keys, and
// authorizes them the same way: decrypt (Decrypt, DecryptAndVerify) and wrap
// (Envelope to the key) are key operations on the key's name. Wrap is apart from
// envelope because enveloping to a certificate uses only a public key, while a KEK
// envelope is made with the shared secret: whoever may wrap can make messages the
// key's holders take as coming from one of them.
//
// A PasswordRecipientInfo uses no key of the server; the caller brings the password
// (EnvelopeRequest.recipient_passwords, DecryptOptions.password). The operation
// "password" allows a caller to use them at all: PBKDF2 costs the server CPU by
// design. The password is never logged and never recorded: the audit record of
// such a call names the algorithm "password" and nothing else of it, and its input
// digest never covers a password (passwordFree).

// Operations of symmetric recipients.
const (
	// OpWrap is Envelope to a KEK recipient (a key operation on the KEK's name).
	OpWrap Operation = "wrap"
	// OpPassword is Envelope to a password, or Decrypt with one (no key).
	OpPassword Operation = "password"
)

// Defaults of EncryptionLimits.
const (
	// DefaultMaxPBKDF2Iterations is pkg/envelope's bound.
	DefaultMaxPBKDF2Iterations = envelope.DefaultMaxPBKDF2Iterations
	// DefaultMaxRawBytes bounds EncryptRaw data and DecryptRaw ciphertexts.
	DefaultMaxRawBytes = 4096
	// maxPasswordBytes bounds one password of a request.
	maxPasswordBytes = 1024
)

// EncryptionLimits bound what an envelope or a raw encryption may cost. Zero fields
// take the defaults.
type EncryptionLimits struct {
	// MaxPBKDF2Iterations bounds the PBKDF2 iterations of one password envelope when
	// it is opened (over all its password recipients) and the count a request may ask
	// for when one is made. Default DefaultMaxPBKDF2Iterations.
	MaxPBKDF2Iterations int
	// MaxRawBytes bounds EncryptRaw's data and DecryptRaw's ciphertext. Default
	// DefaultMaxRawBytes.
	MaxRawBytes int
}

func (l EncryptionLimits) withDefaults() EncryptionLimits {
	if l.MaxPBKDF2Iterations <= 0 {
		l.MaxPBKDF2Iterations = DefaultMaxPBKDF2Iterations
	}
	if l.MaxRawBytes <= 0 {
		l.MaxRawBytes = DefaultMaxRawBytes
	}
	return l
}

// authorizeOp checks an operation that names no key.
func (s *Server) authorizeOp(ctx context.Context, op Operation) error {
	return s.authorizer.Authorize(ctx, IdentityFrom(ctx), op, "")
}

// useSecretKey finds a symmetric key-encryption key for op (OpWrap or OpDecrypt),
// authorization first, as useKey does for private keys. ok is false when the server
// holds no secret key of that name (the name may then be a private key's).
func (s *Server) useSecretKey(ctx context.Context, name string, op Operation) (k keystore.SecretKey, ok bool, err error) {
	if s.secrets == nil || name == "" {
		return nil, false, nil
	}
	k, err = s.secrets.SecretKey(ctx, name)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, false, nil
	}
	noteKey(ctx, name)
	if aerr := s.authorizer.Authorize(ctx, IdentityFrom(ctx), op, name); aerr != nil {
		return nil, true, aerr
	}
	return k, true, err
}

// boundKEK is a SecretKey as pkg/envelope's KeyWrapper, bound to a request's context.
type boundKEK struct {
	ctx context.Context
	k   keystore.SecretKey
}

func (b boundKEK) KeySize() int                       { return b.k.KeySize() }
func (b boundKEK) WrapKey(key []byte) ([]byte, error) { return b.k.WrapKey(b.ctx, key) }
func (b boundKEK) UnwrapKey(w []byte) ([]byte, error) { return b.k.UnwrapKey(b.ctx, w) }

func kekRecipient(ctx context.Context, k keystore.SecretKey) envelope.KEKRecipient {
	return envelope.KEKRecipient{ID: k.KeyID(), Key: boundKEK{ctx, k}}
}

// symmetricRequest is what Envelope and SignAndEnvelope requests say of symmetric
// recipients.
type symmetricRequest interface {
	GetRecipientKekKeys() []string
	GetRecipientPasswords() [][]byte
}

// symmetricRecipients adds a request's KEK and password recipients to opts, with the
// PBKDF2 iteration count of o.
func (s *Server) symmetricRecipients(ctx context.Context, req symmetricRequest, o *signsvrv1.EnvelopeOptions, opts *envelope.Options) error {
	for _, n := range req.GetRecipientKekKeys() {
		k, ok, err := s.useSecretKey(ctx, n, OpWrap)
		if err != nil {
			return err
		}
		if !ok {
			// As useKey: a caller not allowed the name learns nothing of whether it exists.
			noteKey(ctx, n)
			if err := s.authorizer.Authorize(ctx, IdentityFrom(ctx), OpWrap, n); err != nil {
				return err
			}
			return newError(codes.NotFound, signsvrv1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND, "no key-encryption key "+n, nil)
		}
		opts.KEKRecipients = append(opts.KEKRecipients, kekRecipient(ctx, k))
	}
	if pws := req.GetRecipientPasswords(); len(pws) > 0 {
		if err := s.authorizeOp(ctx, OpPassword); err != nil {
			return err
		}
		for _, pw := range pws {
			if err := checkPassword(pw); err != nil {
				return err
			}
			opts.Passwords = append(opts.Passwords, envelope.Password(pw))
		}
	}
	it := int(o.GetPbkdf2Iterations())
	if it > s.encLimits.MaxPBKDF2Iterations {
		return invalidRequest("pbkdf2_iterations %d is over the server's limit of %d", it, s.encLimits.MaxPBKDF2Iterations)
	}
	opts.PBKDF2Iterations = it
	// Making an envelope costs no more than the server would spend opening it: the
	// iterations of all its password recipients within the same bound.
	perPassword := it
	if perPassword == 0 {
		perPassword = envelope.DefaultPBKDF2Iterations
	}
	if n := len(opts.Passwords); n > 0 && n*perPassword > s.encLimits.MaxPBKDF2Iterations {
		return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
			fmt.Sprintf("%d password recipients of %d PBKDF2 iterations each are over the server's limit of %d in all",
				n, perPassword, s.encLimits.MaxPBKDF2Iterations), nil)
	}
	return nil
}

func checkPassword(pw []byte) error {
	switch {
	case len(pw) == 0:
		return invalidRequest("an empty password")
	case len(pw) > maxPasswordBytes:
		return invalidRequest("a password longer than %d bytes", maxPasswordBytes)
	}
	return nil
}

// passwordFree reports whether req holds no password, and otherwise returns a copy
// without them: what an audit record may digest.
func passwordFree(req any) (clean any, hadPassword bool) {
	switch r := req.(type) {
	case *signsvrv1.EnvelopeRequest:
		if len(r.GetRecipientPasswords()) == 0 {
			return req, false
		}
		c := &signsvrv1.EnvelopeRequest{Data: r.GetData(), RecipientCerts: r.GetRecipientCerts(), RecipientKeys: r.GetRecipientKeys(),
			Options: r.GetOptions(), RecipientKekKeys: r.GetRecipientKekKeys()}
		return c, true
	case *signsvrv1.SignAndEnvelopeRequest:
		if len(r.GetRecipientPasswords()) == 0 {
			return req, false
		}
		c := proto.Clone(r).(*signsvrv1.SignAndEnvelopeRequest)
		c.RecipientPasswords = nil
		return c, true
	case *signsvrv1.DecryptRequest:
		if len(r.GetOptions().GetPassword()) == 0 {
			return req, false
		}
		return &signsvrv1.DecryptRequest{Key: r.GetKey(), Cms: r.GetCms(), Options: &signsvrv1.DecryptOptions{AllowLegacy: r.GetOptions().GetAllowLegacy()}}, true
	case *signsvrv1.DecryptAndVerifyRequest:
		if len(r.GetDecryptOptions().GetPassword()) == 0 {
			return req, false
		}
		return &signsvrv1.DecryptAndVerifyRequest{Key: r.GetKey(), Cms: r.GetCms(), VerifyOptions: r.GetVerifyOptions(),
			DecryptOptions: &signsvrv1.DecryptOptions{AllowLegacy: r.GetDecryptOptions().GetAllowLegacy()}}, true
	}
	return req, false
}

// auditPassword is the algorithm an audit record names for a password recipient.
const auditPassword = "password"

// openerFor finds what opens an envelope for a Decrypt or DecryptAndVerify request:
// a password (options.password, no key named), a symmetric key-encryption key, or a
// private key with its certificate (cert nil for the first two).
func (s *Server) openerFor(ctx context.Context, name string, o *signsvrv1.DecryptOptions) (key any, cert *smx509.Certificate, err error) {
	if pw := o.GetPassword(); len(pw) > 0 {
		if name != "" {
			return nil, nil, invalidRequest("give a key or a password, not both")
		}
		if err := checkPassword(pw); err != nil {
			return nil, nil, err
		}
		if err := s.authorizeOp(ctx, OpPassword); err != nil {
			return nil, nil, err
		}
		return envelope.Password(pw), nil, ctx.Err()
	}
	k, ok, err := s.useSecretKey(ctx, name, OpDecrypt)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		return kekRecipient(ctx, k), nil, ctx.Err()
	}
	return s.decryptionKey(ctx, name)
}
