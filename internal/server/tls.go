package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/identity"
	"signsvr.dev/signsvr/pkg/trust"
)

// Mutual TLS
//
// crypto/tls's own client-certificate verification knows neither revocation nor the
// trust package's usage rules, so a production server asks for any client certificate
// (tls.RequireAnyClientCert) and judges it itself, twice:
//
//   - in the handshake, with trust.Validator.VerifyClientConnection: a client whose
//     certificate has no path to a client anchor, is outside its validity, lacks
//     clientAuth usage, or is revoked (per the configured hard/soft-fail policy) never
//     gets a connection;
//   - on every call, with the same validator (a verdict-cache hit: one SHA-256 over
//     the certificates and a map lookup). gRPC connections live for hours or days; a
//     certificate revoked after the handshake is refused from the next call on, as
//     soon as the CRL or OCSP answer the validator caches says so.
//
// The caller's Identity (subject, issuer, serial, fingerprint) comes from the leaf of
// the chain the validator verified, is attached to the request (IdentityFrom) and is
// logged with the request id.
//
// SM2 client certificates: crypto/tls implements neither the SM2 signature schemes of
// RFC 8998 (sm2sig_sm3) nor TLCP (GB/T 38636), and its handshake parses client
// certificates with crypto/x509, which rejects the SM2 curve. A client with only an
// SM2 certificate therefore cannot connect over mutual TLS to this server; it is
// refused in the handshake, never half-accepted. Institutions with SM2-only PKIs give
// their front-end processor an RSA or ECDSA TLS client certificate (the SM2
// certificates stay for signing, envelopes and certificate login through
// AuthService, which supports SM2), or terminate TLCP in a gateway in front of the
// server. This is a limit of the Go TLS stack, not something the server papers over.

// DefaultClientVerifyTimeout bounds the revocation fetches of one TLS handshake.
const DefaultClientVerifyTimeout = 5 * time.Second

// ServerTLSConfig is what ServerTLS needs.
type ServerTLSConfig struct {
	// Certificates are the server's certificates (RSA or ECDSA; see the SM2 note).
	Certificates []tls.Certificate
	// MinVersion is tls.VersionTLS12 (default) or tls.VersionTLS13. TLS 1.3 is
	// always offered and preferred; 1.2 is kept for older clients.
	MinVersion uint16
	// ClientValidator validates client certificates for trust.PurposeClientAuth.
	ClientValidator *trust.Validator
	// VerifyTimeout bounds the revocation fetches of one handshake (default
	// DefaultClientVerifyTimeout).
	VerifyTimeout time.Duration
	// Logger receives a line per refused handshake; nil means slog.Default().
	Logger *slog.Logger
}

// tls12Suites are the TLS 1.2 cipher suites offered: ECDHE with AEAD only (forward
// secrecy, no CBC). TLS 1.3 suites are not configurable in crypto/tls and are all AEAD.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerTLS builds the production TLS configuration: TLS 1.2 or later (1.3
// preferred), a client certificate required and validated by the trust package
// (chain, validity, clientAuth usage, revocation) during the handshake.
func ServerTLS(c ServerTLSConfig) (*tls.Config, error) {
	if len(c.Certificates) == 0 {
		return nil, errors.New("server: TLS without a server certificate")
	}
	if c.ClientValidator == nil {
		return nil, errors.New("server: TLS without a client certificate validator")
	}
	minVersion := c.MinVersion
	switch minVersion {
	case 0:
		minVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, errors.New("server: TLS minimum version must be 1.2 or 1.3")
	}
	timeout := c.VerifyTimeout
	if timeout <= 0 {
		timeout = DefaultClientVerifyTimeout
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	verify := c.ClientValidator.VerifyClientConnection(timeout)
	return &tls.Config{
		MinVersion:   minVersion,
		CipherSuites: tls12Suites,
		Certificates: c.Certificates,
		// The certificate is verified by VerifyConnection below, with revocation.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := verify(cs)
			if err != nil {
				attrs := []slog.Attr{slog.String("error", err.Error())}
				if len(cs.PeerCertificates) > 0 {
					attrs = append(attrs, slog.String("subject", cs.PeerCertificates[0].Subject.String()),
						slog.String("issuer", cs.PeerCertificates[0].Issuer.String()))
				}
				var ve *trust.VerdictError
				if errors.As(err, &ve) {
					attrs = append(attrs, slog.String("reason", ve.Verdict.Reason))
				}
				log.LogAttrs(context.Background(), slog.LevelWarn, "TLS client refused", attrs...)
			}
			return err
		},
		NextProtos: []string{"h2"},
	}, nil
}

// peerEntry is a client certificate chain parsed once, with its identity.
type peerEntry struct {
	leaf   *smx509.Certificate
	inters []*smx509.Certificate
	id     *Identity
}

// peerCache maps the DER of the certificates a client sent to their parsed form, so
// a call costs a map lookup, not a certificate parse.
type peerCache struct {
	mu sync.RWMutex
	m  map[string]*peerEntry
}

const maxPeerCache = 4096

// entry returns the parsed chain of the certificates in cs; first reports a chain
// not seen before (for the log).
func (c *peerCache) entry(cs *tls.ConnectionState) (e *peerEntry, first bool, err error) {
	certs := cs.PeerCertificates
	key := peerKey(certs)
	c.mu.RLock()
	e = c.m[key]
	c.mu.RUnlock()
	if e != nil {
		return e, false, nil
	}
	e = &peerEntry{inters: make([]*smx509.Certificate, 0, len(certs)-1)}
	for i, pc := range certs {
		sc, err := smx509.ParseCertificate(pc.Raw)
		if err != nil {
			return nil, false, err
		}
		if i == 0 {
			e.leaf = sc
		} else {
			e.inters = append(e.inters, sc)
		}
	}
	e.id = &Identity{Holder: identity.Of(e.leaf)}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxPeerCache {
		c.m = make(map[string]*peerEntry)
	}
	c.m[key] = e
	c.mu.Unlock()
	return e, true, nil
}

// peerKey is the leaf's DER for the usual single certificate, else every DER joined
// with lengths (the same leaf with other intermediates is another entry).
func peerKey(certs []*x509.Certificate) string {
	if len(certs) == 1 {
		return string(certs[0].Raw)
	}
	n := 0
	for _, c := range certs {
		n += len(c.Raw) + 4
	}
	b := make([]byte, 0, n)
	for _, c := range certs {
		l := len(c.Raw)
		b = append(b, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		b = append(b, c.Raw...)
	}
	return string(b)
}

// securityInterceptors puts authentication (with a ClientValidator) and
// authorization in front of the configured interceptors.
func (s *Server) securityInterceptors(rest []grpc.UnaryServerInterceptor) []grpc.UnaryServerInterceptor {
	out := make([]grpc.UnaryServerInterceptor, 0, len(rest)+2)
	if s.clientValidator != nil {
		out = append(out, s.authenticateCall)
	}
	out = append(out, s.authorizeCall)
	return append(out, rest...)
}

// authenticateCall is the first unary interceptor of a server with a
// ClientValidator. It validates the TLS client certificate of the call's connection
// again (cached) and attaches the caller's Identity to the request. A call without a
// valid client certificate is UNAUTHENTICATED.
func (s *Server) authenticateCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ri := requestFrom(ctx)
	if ri == nil {
		// Not an API call (health checks): the handshake already validated the
		// client.
		return handler(ctx, req)
	}
	id, err := s.authenticatePeer(ctx)
	if err != nil {
		return nil, err
	}
	ri.identity = id
	return handler(ctx, req)
}

func (s *Server) authenticatePeer(ctx context.Context) (*Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil, errUnauthenticated("no TLS connection", nil)
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, errUnauthenticated("no client certificate", nil)
	}
	e, first, err := s.peers.entry(&ti.State)
	if err != nil {
		return nil, errUnauthenticated("the client certificate cannot be read", err)
	}
	vctx := ctx
	if s.clientVerifyTimeout > 0 {
		var cancel context.CancelFunc
		vctx, cancel = context.WithTimeout(ctx, s.clientVerifyTimeout)
		defer cancel()
	}
	vd := s.clientValidator.Validate(vctx, e.leaf, e.inters, s.now(), trust.PurposeClientAuth)
	if !vd.OK() {
		return nil, errUnauthenticated("the client certificate is not acceptable ("+vd.Reason+")",
			errors.New("client "+e.id.Subject+" (fingerprint "+e.id.FingerprintSHA256+"): "+vd.String()))
	}
	if first {
		s.log.LogAttrs(ctx, slog.LevelInfo, "client authenticated",
			slog.String("subject", e.id.Subject), slog.String("issuer", e.id.Issuer),
			slog.String("serial", e.id.Serial), slog.String("fingerprint", e.id.FingerprintSHA256),
			slog.String("revocation", vd.Revocation.String()), slog.String("reason", vd.Reason))
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "caller",
			slog.String("request_id", RequestID(ctx)), slog.String("subject", e.id.Subject),
			slog.String("issuer", e.id.Issuer), slog.String("serial", e.id.Serial),
			slog.String("fingerprint", e.id.FingerprintSHA256))
	}
	return e.id, nil
}

func errUnauthenticated(msg string, cause error) *Error {
	return newError(codes.Unauthenticated, signsvrv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, msg, cause)
}
