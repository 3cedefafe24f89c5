package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/identity"
)

// Identity is who called: taken from the verified client certificate under mutual TLS,
// or the marked development identity in the embedded default.
type Identity struct {
	// Holder names the client certificate: subject, issuer, serial (lower-case hex,
	// as the audit log and the login tokens write it) and SHA-256 fingerprint.
	identity.Holder
	// Development marks the identity of every caller of a development server, which
	// does not authenticate clients.
	Development bool
}

// DevelopmentIdentity is the identity of every caller of a development server.
var DevelopmentIdentity = &Identity{Holder: identity.Holder{Subject: "development (unauthenticated)"}, Development: true}

// IdentityFrom is the caller's identity, or nil when there is none (production mode
// without a verified client certificate, which the TLS handshake already refuses).
func IdentityFrom(ctx context.Context) *Identity {
	ri := requestFrom(ctx)
	if ri == nil {
		return identityFromPeer(ctx)
	}
	if ri.identity == nil {
		if ri.dev {
			ri.identity = DevelopmentIdentity
		} else {
			ri.identity = identityFromPeer(ctx)
		}
	}
	return ri.identity
}

// Operation is what a request does with a key, as an authorization policy names it.
type Operation string

const (
	OpSign    Operation = "sign"
	OpDecrypt Operation = "decrypt"
)

// Authorizer decides whether a caller may use a key for an operation. It returns nil to
// allow, or an error (an *Error with PermissionDenied, normally) to refuse.
//
// A nil Authorizer in Options refuses every operation that needs one (every use of a
// key, every method that names an operation): a server that was not told who may do
// what does nothing with its keys. A server where everybody may do everything says so
// with AllowAll, as the development setup does.
type Authorizer interface {
	Authorize(ctx context.Context, id *Identity, op Operation, key string) error
}

// AllowAll is the Authorizer that lets every caller use every key for every
// operation: only for a development server, whose callers are all the developer.
var AllowAll Authorizer = allowAll{}

type allowAll struct{}

func (allowAll) Authorize(context.Context, *Identity, Operation, string) error { return nil }

// denyAll is what a server without an Authorizer uses.
type denyAll struct{}

func (denyAll) Authorize(_ context.Context, _ *Identity, op Operation, key string) error {
	return newError(codes.PermissionDenied, signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
		"no authorization is configured: every operation with a key is refused",
		fmt.Errorf("the server has no authorizer; refused %s with key %q", op, key))
}

// AuditEvent is what the server knows about a finished call, handed to an Auditor.
type AuditEvent struct {
	Time      time.Time
	RequestID string
	Method    string
	// Key is the first key the call used, or "".
	Key      string
	Identity *Identity
	Code     codes.Code
	Reason   string
	// Request is the decoded request message (nil when it could not be decoded), and
	// Response the response message on success (nil otherwise). An auditor digests
	// them; it must never record their payloads.
	Request  any
	Response any
}

// Auditor receives one event per finished API call (success or refusal). A nil Auditor
// in Options records nothing.
type Auditor interface {
	Audit(ctx context.Context, ev *AuditEvent)
}

// identityFromPeer derives the caller's identity from the TLS client certificate the
// handshake verified.
func identityFromPeer(ctx context.Context) *Identity {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return &Identity{Holder: identity.OfX509(ti.State.VerifiedChains[0][0])}
}
