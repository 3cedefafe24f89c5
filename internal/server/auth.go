package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/login"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
)

// Authorization of every call
//
// Every API method is an operation an authorization policy names. Key operations
// (sign, sign_raw, decrypt) are checked against the key a request uses; the others
// are checked per caller only. A method the table below does not name is refused, so
// a service added later is denied until someone decides who may call it.
//
//	sign       Sign, SignBatch (each item), SignAndEnvelope (its signature)   key
//	sign_raw   SignRaw (needs sign on the key too)                          key
//	decrypt    Decrypt, DecryptAndVerify (its decryption)                    key
//	verify     Verify, VerifyBatch, VerifyRaw, DecryptAndVerify
//	envelope   Envelope, SignAndEnvelope
//	list_keys  ListKeys
//	validate   ValidateCertificate, ParseCertificate
//	login      CreateChallenge, Login, GetTokenKey
//	timestamp  Timestamp (TimestampService)
//	encrypt_raw EncryptRaw (RawCryptService)
//	decrypt_raw DecryptRaw (needs decrypt on the key too)                   key
//	wrap       Envelope, SignAndEnvelope to a KEK recipient (symmetric.go)  key
//	password   a password recipient made or opened (symmetric.go)
//
// sign_raw is apart from sign because a raw signature covers whatever bytes the
// caller chose, with no signed attributes: a client allowed it can make signatures
// that are indistinguishable from any other use of the key (a login answer, a
// protocol message). A SignRaw call needs both sign and sign_raw on the key.

// Operations beyond OpSign and OpDecrypt (identity.go).
const (
	OpSignRaw   Operation = "sign_raw"
	OpVerify    Operation = "verify"
	OpEnvelope  Operation = "envelope"
	OpListKeys  Operation = "list_keys"
	OpValidate  Operation = "validate"
	OpLogin     Operation = "login"
	OpTimestamp Operation = "timestamp"
)

// Operations lists every operation an authorization rule may name.
var Operations = []Operation{OpSign, OpSignRaw, OpDecrypt, OpVerify, OpEnvelope, OpListKeys, OpValidate, OpLogin, OpTimestamp,
	OpEncryptRaw, OpDecryptRaw, OpWrap, OpPassword}

// IsKeyOperation reports whether op is checked against a key name.
func IsKeyOperation(op Operation) bool {
	return op == OpSign || op == OpSignRaw || op == OpDecrypt || op == OpDecryptRaw || op == OpWrap
}

// methodAccess is what a method needs beyond the key checks its handler makes.
type methodAccess struct {
	// op is checked by the interceptor before the handler; "" when the handler's
	// key checks (useKey) are the whole story.
	op Operation
	// key extracts the key name for a key operation.
	key func(req any) string
}

// methodOps covers every unary method of the API (a test checks it against the
// service descriptors).
var methodOps = map[string]methodAccess{
	signsvrv1.SignService_Sign_FullMethodName:        {},
	signsvrv1.SignService_SignBatch_FullMethodName:   {},
	signsvrv1.SignService_Verify_FullMethodName:      {op: OpVerify},
	signsvrv1.SignService_VerifyBatch_FullMethodName: {op: OpVerify},
	signsvrv1.SignService_SignRaw_FullMethodName: {op: OpSignRaw, key: func(req any) string {
		r, _ := req.(*signsvrv1.SignRawRequest)
		return r.GetKey()
	}},
	signsvrv1.SignService_VerifyRaw_FullMethodName:                  {op: OpVerify},
	signsvrv1.EnvelopeService_Envelope_FullMethodName:               {op: OpEnvelope},
	signsvrv1.EnvelopeService_Decrypt_FullMethodName:                {},
	signsvrv1.EnvelopeService_SignAndEnvelope_FullMethodName:        {op: OpEnvelope},
	signsvrv1.EnvelopeService_DecryptAndVerify_FullMethodName:       {op: OpVerify},
	signsvrv1.KeyService_ListKeys_FullMethodName:                    {op: OpListKeys},
	signsvrv1.CertificateService_ValidateCertificate_FullMethodName: {op: OpValidate},
	signsvrv1.CertificateService_ParseCertificate_FullMethodName:    {op: OpValidate},
	signsvrv1.AuthService_CreateChallenge_FullMethodName:            {op: OpLogin},
	signsvrv1.AuthService_Login_FullMethodName:                      {op: OpLogin},
	signsvrv1.AuthService_GetTokenKey_FullMethodName:                {op: OpLogin},
	signsvrv1.TimestampService_Timestamp_FullMethodName:             {op: OpTimestamp},
	signsvrv1.RawCryptService_EncryptRaw_FullMethodName:             {op: OpEncryptRaw},
	signsvrv1.RawCryptService_DecryptRaw_FullMethodName: {op: OpDecryptRaw, key: func(req any) string {
		r, _ := req.(*signsvrv1.DecryptRawRequest)
		return r.GetKey()
	}},
}

// MethodOperation returns the operation the interceptor checks for a full method
// name ("" when only the handler's key checks apply) and whether the method is
// covered at all.
func MethodOperation(fullMethod string) (Operation, bool) {
	m, ok := methodOps[fullMethod]
	return m.op, ok
}

// authorizeCall is the unary interceptor that applies the authorization policy to
// the method itself. It runs after authenticateCall.
func (s *Server) authorizeCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if requestFrom(ctx) == nil {
		return handler(ctx, req)
	}
	m, ok := methodOps[info.FullMethod]
	if !ok {
		return nil, newError(codes.PermissionDenied, signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			"the method is not open to any caller", fmt.Errorf("method %s has no authorization entry", info.FullMethod))
	}
	if m.op != "" {
		key := ""
		if m.key != nil {
			key = m.key(req)
		}
		if err := s.authorizer.Authorize(ctx, IdentityFrom(ctx), m.op, key); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

// LoginOptions enable AuthService (certificate login).
type LoginOptions struct {
	// ChallengeKeys are HMAC-SHA256 keys of at least 32 bytes; the first MACs new
	// challenges, all are accepted (rotation). Every replica needs the same keys.
	ChallengeKeys [][]byte
	// Audience names the business system (required); Issuer is the tokens' "iss"
	// (default "signsvr").
	Audience, Issuer string
	// ChallengeTTL (default 60s), TokenTTL (default 5m), ClockSkew between replicas
	// (default 30s).
	ChallengeTTL, TokenTTL, ClockSkew time.Duration
	// TokenKey is the keystore key that signs tokens (RSA, ECDSA P-256/P-384 or
	// SM2); TokenKeyID its "kid" (default TokenKey).
	TokenKey, TokenKeyID string
	// Purpose the login certificate must allow: trust.PurposeClientAuth (default)
	// or trust.PurposeSign.
	Purpose trust.Purpose
	// Validator checks login certificates; nil means Options.Validator (the signer
	// trust anchors: enterprises log in with the certificates they sign with).
	Validator CertValidator
	// ReplayGuard makes challenges single-use (shared state); nil keeps them
	// stateless (see pkg/login).
	ReplayGuard login.ReplayGuard
	// Store holds TokenKey; nil means Options.Store (where the key is then reserved
	// for the server's own use). A store of its own keeps it out of reach of clients.
	Store keystore.Store
}

// loginService is the configured login: the config pkg/login needs, without the
// token signer, which is bound to each request's context.
type loginService struct {
	cfg      login.Config
	store    keystore.Store
	tokenKey string
	base     *login.Authenticator // for challenges and the token key's description
	chain    []*smx509.Certificate
	// held are the public keys of every key the server holds (heldKeys).
	held atomic.Pointer[heldKeys]
}

// A login must never name a key the server holds. Sign makes a CMS signature over
// whatever bytes the caller sends, so a client allowed to sign with a key could have
// it sign a login challenge and log in as the key's certificate, a certificate that
// chains to the login trust anchors whenever enterprises log in with the certificates
// they sign with. Keeping sign_raw apart from sign does not stop that: the CMS answer
// is as good as a raw one. So Login refuses a certificate whose public key is the
// public key of a key in any of the server's stores (the client keys, the token key,
// the TSA and audit keys), whatever the caller may do with keys and whichever way it
// answers. The answer is a refusal with reason certificate_wrong_usage: the
// certificate may not be used to log in here. (Production servers only; see
// serverKeyOf.)

// heldKeys maps the DER SubjectPublicKeyInfo of each key the server holds to its
// name. A key is entered twice when its certificate encodes the public key other than
// Go writes it (an SM2 key under either algorithm OID, say), and certificates are
// looked up both as written and re-encoded, so a second certificate for the same key,
// encoded otherwise, is refused too.
type heldKeys map[string]string

// collectHeldKeys lists the keys of every store. A store's keys are fixed for its life
// (the soft and PKCS#11 backends find them when they open), so the set is built when
// the server is; whatever gives the server other keys must build it again
// (refreshHeldKeys) before they serve.
func collectHeldKeys(ctx context.Context, stores ...keystore.Store) (heldKeys, error) {
	h := heldKeys{}
	for _, st := range stores {
		if st == nil {
			continue
		}
		keys, err := st.Keys(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if spki, err := smx509.MarshalPKIXPublicKey(k.Public()); err == nil {
				h[string(spki)] = k.Name()
			}
			if chain := k.Chain(); len(chain) > 0 {
				h[string(chain[0].RawSubjectPublicKeyInfo)] = k.Name()
			}
		}
	}
	return h, nil
}

// holder names the server's key whose public key c certifies, if any.
func (h heldKeys) holder(c *smx509.Certificate) (string, bool) {
	if name, ok := h[string(c.RawSubjectPublicKeyInfo)]; ok {
		return name, true
	}
	spki, err := smx509.MarshalPKIXPublicKey(c.PublicKey)
	if err != nil {
		return "", false
	}
	name, ok := h[string(spki)]
	return name, ok
}

// refreshHeldKeys builds the set of the server's public keys from its stores.
func (s *Server) refreshHeldKeys(ctx context.Context) error {
	stores := []keystore.Store{s.store, s.login.store}
	if s.timestamps != nil {
		stores = append(stores, s.timestamps.store)
	}
	h, err := collectHeldKeys(ctx, stores...)
	if err != nil {
		return fmt.Errorf("server: login: listing the server's keys: %w", err)
	}
	s.login.held.Store(&h)
	return nil
}

// errServerKey is the cause of a login answered with one of the server's own keys.
var errServerKey = errors.New("the certificate certifies a server key")

// serverKeyOf returns an error wrapping errServerKey when c certifies a key the server
// holds.
//
// The development server is the exception: its tour logs in with its own throw-away
// development keys, every caller of it is the development identity already, and it
// serves loopback only.
func (s *Server) serverKeyOf(c *smx509.Certificate) error {
	if s.dev {
		return nil
	}
	h := s.login.held.Load()
	if h == nil {
		// Not built: a server that cannot tell must not log anyone in.
		return fmt.Errorf("%w: the set of server keys is not built", errServerKey)
	}
	if name, ok := h.holder(c); ok {
		return fmt.Errorf("%w %q", errServerKey, name)
	}
	return nil
}

// refuseServerKey is the answer to a login with a certificate of the server's own key.
func (s *Server) refuseServerKey(ctx context.Context, cause error) *signsvrv1.LoginResponse {
	s.log.LogAttrs(ctx, slog.LevelWarn, "login refused",
		slog.String("request_id", RequestID(ctx)), slog.String("reason", login.ReasonCertWrongUsage),
		slog.String("cause", cause.Error()))
	return &signsvrv1.LoginResponse{
		RefusalReason:  login.ReasonCertWrongUsage,
		RefusalMessage: "the certificate is that of a key this server holds; it cannot be used to log in",
	}
}

// newLoginService checks o against the key store: the token key must exist and sign.
func (s *Server) newLoginService(o *LoginOptions) (*loginService, error) {
	if o.TokenKey == "" {
		return nil, errors.New("server: login: no token key configured")
	}
	store := o.Store
	if store == nil {
		store = s.store
	}
	k, err := store.Key(context.Background(), o.TokenKey)
	if err != nil {
		return nil, fmt.Errorf("server: login: token key %q: %w", o.TokenKey, err)
	}
	signer := k.Signer(context.Background())
	if signer == nil {
		return nil, fmt.Errorf("server: login: token key %q cannot sign", o.TokenKey)
	}
	v := o.Validator
	if v == nil {
		v = s.validator
	}
	kid := o.TokenKeyID
	if kid == "" {
		kid = o.TokenKey
	}
	ls := &loginService{store: store, tokenKey: o.TokenKey, chain: k.Chain()}
	ls.cfg = login.Config{
		ChallengeKeys: o.ChallengeKeys, ChallengeTTL: o.ChallengeTTL, ClockSkew: o.ClockSkew,
		Audience: o.Audience, Issuer: o.Issuer, TokenTTL: o.TokenTTL, TokenKeyID: kid,
		Validator: v, Purpose: o.Purpose, VerifyCMS: s.verifyLoginCMS, ReplayGuard: o.ReplayGuard,
		Now: s.now,
	}
	cfg := ls.cfg
	cfg.TokenSigner = signer
	if ls.base, err = login.New(cfg); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return ls, nil
}

// authenticator is the login bound to ctx: its token signer waits for an HSM session
// no longer than the request.
func (s *Server) authenticator(ctx context.Context) (*login.Authenticator, error) {
	k, err := s.login.store.Key(ctx, s.login.tokenKey)
	if err != nil {
		return nil, err
	}
	signer := k.Signer(ctx)
	if signer == nil {
		return nil, internal(errors.New("the token key cannot sign"))
	}
	cfg := s.login.cfg
	cfg.TokenSigner = signer
	a, err := login.New(cfg)
	if err != nil {
		return nil, internal(err)
	}
	return a, nil
}

// verifyLoginCMS is the login.CMSVerifier: a SignedData with exactly one signer whose
// signature verifies over the challenge (pkg/sign). The certificate is judged by
// pkg/login with the trust validator afterwards.
func (s *Server) verifyLoginCMS(ctx context.Context, der, detached []byte) ([]byte, *smx509.Certificate, []*smx509.Certificate, error) {
	vo := s.verifyOptions(ctx)
	vo.Content = detached
	// A login answer must bind the signer's identity: the GmSSL form without Z that a
	// deployment may accept for documents (verify.allow_sm2_without_z) is never one.
	vo.AllowSM2WithoutZ = false
	res, err := sign.Verify(der, vo)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(res.Signers) != 1 {
		return nil, nil, nil, fmt.Errorf("%d signers, want exactly one", len(res.Signers))
	}
	sr := &res.Signers[0]
	if !sr.Signature.Valid {
		return nil, nil, nil, fmt.Errorf("signature: %s", sr.Signature.Reason)
	}
	if sr.Certificate == nil {
		return nil, nil, nil, errors.New("the signer's certificate is not in the message")
	}
	if err := s.serverKeyOf(sr.Certificate); err != nil {
		return nil, nil, nil, err
	}
	return res.Content, sr.Certificate, res.Certificates, nil
}

type authService struct {
	*Server
	signsvrv1.UnimplementedAuthServiceServer
}

func (s *Server) loginConfigured() error {
	if s.login == nil {
		return newError(codes.Unimplemented, signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED,
			"certificate login is not configured on this server", nil)
	}
	return nil
}

// CreateChallenge implements signsvrv1.AuthServiceServer.
func (s authService) CreateChallenge(ctx context.Context, _ *signsvrv1.CreateChallengeRequest) (*signsvrv1.CreateChallengeResponse, error) {
	if err := s.loginConfigured(); err != nil {
		return nil, err
	}
	ch, err := s.login.base.CreateChallenge()
	if err != nil {
		return nil, internal(err)
	}
	return &signsvrv1.CreateChallengeResponse{
		Challenge: ch.Value, IssuedAt: timestamppb.New(ch.IssuedAt), ExpiresAt: timestamppb.New(ch.ExpiresAt),
	}, nil
}

// Login implements signsvrv1.AuthServiceServer.
func (s authService) Login(ctx context.Context, req *signsvrv1.LoginRequest) (*signsvrv1.LoginResponse, error) {
	if err := s.loginConfigured(); err != nil {
		return nil, err
	}
	if req.GetChallenge() == "" {
		return nil, invalidRequest("no challenge given")
	}
	r := login.Response{Challenge: req.GetChallenge()}
	switch {
	case len(req.GetCms()) > 0 && len(req.GetSignature()) > 0:
		return nil, invalidRequest("give signature or cms, not both")
	case len(req.GetCms()) > 0:
		if len(req.GetCertificate()) > 0 {
			return nil, invalidRequest("certificate is for raw signatures; a CMS answer carries its own")
		}
		r.CMS = req.GetCms()
	case len(req.GetSignature()) > 0:
		if len(req.GetCertificate()) == 0 {
			return nil, invalidRequest("a raw signature needs the signer's certificate")
		}
		c, err := s.certs.parse(req.GetCertificate())
		if err != nil {
			return nil, malformed("certificate", err)
		}
		if err := s.serverKeyOf(c); err != nil {
			return s.refuseServerKey(ctx, err), nil
		}
		r.Signature, r.Certificate = req.GetSignature(), c
	default:
		return nil, invalidRequest("give a signature (with its certificate) or a cms answer")
	}
	var err error
	if r.Intermediates, err = s.parseCerts(req.GetIntermediates(), "intermediates"); err != nil {
		return nil, err
	}
	switch req.GetRsaScheme() {
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_UNSPECIFIED:
		r.Scheme = login.SchemeAuto
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PKCS1V15:
		r.Scheme = login.SchemeRSAPKCS1v15
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS:
		r.Scheme = login.SchemeRSAPSS
	default:
		return nil, invalidRequest("unknown RSA signature scheme %d", req.GetRsaScheme())
	}
	a, err := s.authenticator(ctx)
	if err != nil {
		return nil, err
	}
	res, err := a.Login(ctx, r)
	if errors.Is(err, errServerKey) {
		return s.refuseServerKey(ctx, err), nil
	}
	if err == nil {
		// Whatever way the answer came, no token leaves for a server key.
		if kerr := s.serverKeyOf(res.Identity.Certificate); kerr != nil {
			return s.refuseServerKey(ctx, kerr), nil
		}
	}
	if err != nil {
		var le *login.Error
		if !errors.As(err, &le) {
			return nil, err
		}
		// A refusal is a result, like a failed verification: the business system
		// shows the user why; the log keeps the cause.
		s.log.LogAttrs(ctx, slog.LevelInfo, "login refused",
			slog.String("request_id", RequestID(ctx)), slog.String("reason", le.Reason),
			slog.String("cause", le.Error()))
		resp := &signsvrv1.LoginResponse{RefusalReason: le.Reason, RefusalMessage: le.ClientMessage()}
		if le.Verdict != nil {
			resp.CertificateVerdict = apiVerdict(le.Verdict)
		}
		return resp, nil
	}
	id := res.Identity
	s.log.LogAttrs(ctx, slog.LevelInfo, "login",
		slog.String("request_id", RequestID(ctx)), slog.String("subject", id.Subject),
		slog.String("issuer", id.Issuer), slog.String("serial", id.Serial),
		slog.String("fingerprint", id.FingerprintSHA256), slog.String("jti", res.Claims.ID))
	return &signsvrv1.LoginResponse{
		Authenticated: true,
		Token:         res.Token,
		ExpiresAt:     timestamppb.New(res.ExpiresAt),
		Identity: &signsvrv1.LoginIdentity{
			Subject: id.Subject, Issuer: id.Issuer, SerialHex: id.Serial,
			FingerprintSha256: id.FingerprintSHA256, CommonName: id.CommonName,
			Organization: id.Organization, Certificate: id.Certificate.Raw,
		},
		CertificateVerdict: apiVerdict(res.Verdict),
	}, nil
}

// GetTokenKey implements signsvrv1.AuthServiceServer.
func (s authService) GetTokenKey(ctx context.Context, _ *signsvrv1.GetTokenKeyRequest) (*signsvrv1.GetTokenKeyResponse, error) {
	if err := s.loginConfigured(); err != nil {
		return nil, err
	}
	spki, err := smx509.MarshalPKIXPublicKey(s.login.base.TokenPublicKey())
	if err != nil {
		return nil, internal(err)
	}
	resp := &signsvrv1.GetTokenKeyResponse{
		Algorithm: s.login.base.TokenAlgorithm(), KeyId: s.login.cfg.TokenKeyID, PublicKey: spki,
		Issuer: s.login.cfg.Issuer, Audience: s.login.cfg.Audience,
	}
	if resp.Issuer == "" {
		resp.Issuer = "signsvr"
	}
	for _, c := range s.login.chain {
		resp.CertificateChain = append(resp.CertificateChain, c.Raw)
	}
	return resp, nil
}
