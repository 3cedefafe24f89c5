package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/identity"
	"signsvr.dev/signsvr/pkg/trust"
)

func TestPolicyDeniesByDefault(t *testing.T) {
	p, err := server.NewPolicy([]server.PolicyRule{
		{Subjects: []string{"CN=acme-fep,O=ACME"}, Issuer: "CN=ACME CA", Keys: []string{"acme-sign"}, Operations: []server.Operation{server.OpSign}},
		{Fingerprints: []string{"AB:CD"}, Keys: []string{"*"}, Operations: []server.Operation{server.OpDecrypt, server.OpSign}},
	})
	if err != nil {
		t.Fatal(err)
	}
	acme := &server.Identity{Holder: identity.Holder{Subject: "CN=acme-fep,O=ACME", Issuer: "CN=ACME CA", FingerprintSHA256: "00"}}
	// The same subject from another client CA.
	forged := &server.Identity{Holder: identity.Holder{Subject: "CN=acme-fep,O=ACME", Issuer: "CN=Other CA", FingerprintSHA256: "01"}}
	customs := &server.Identity{Holder: identity.Holder{Subject: "CN=customs", FingerprintSHA256: "abcd"}}
	for _, tc := range []struct {
		name string
		id   *server.Identity
		op   server.Operation
		key  string
		want codes.Code
	}{
		{"own key", acme, server.OpSign, "acme-sign", codes.OK},
		{"same subject, other issuer", forged, server.OpSign, "acme-sign", codes.PermissionDenied},
		{"other key", acme, server.OpSign, "customs-sign", codes.PermissionDenied},
		{"other operation", acme, server.OpDecrypt, "acme-sign", codes.PermissionDenied},
		{"wildcard by fingerprint", customs, server.OpDecrypt, "customs-enc", codes.OK},
		{"nobody", &server.Identity{Holder: identity.Holder{Subject: "CN=x"}}, server.OpSign, "acme-sign", codes.PermissionDenied},
		{"no identity", nil, server.OpSign, "acme-sign", codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Authorize(context.Background(), tc.id, tc.op, tc.key)
			got := codes.OK
			var e *server.Error
			if errors.As(err, &e) {
				got = e.Code
			} else if err != nil {
				t.Fatalf("not an *Error: %v", err)
			}
			if got != tc.want {
				t.Errorf("Authorize = %v, want %v", err, tc.want)
			}
		})
	}
	for _, bad := range [][]server.PolicyRule{
		{{Keys: []string{"k"}, Operations: []server.Operation{server.OpSign}}},
		{{Subjects: []string{"CN=a"}, Issuer: "CN=CA", Operations: []server.Operation{server.OpSign}}},
		{{Subjects: []string{"CN=a"}, Issuer: "CN=CA", Keys: []string{"k"}, Operations: []server.Operation{"delete"}}},
		{{Subjects: []string{"CN=a"}, Keys: []string{"k"}, Operations: []server.Operation{server.OpSign}}},
		{{Subjects: []string{"*", "CN=a"}, Operations: []server.Operation{server.OpVerify}}},
		{{Issuer: "CN=CA", Operations: []server.Operation{server.OpVerify}}},
	} {
		if _, err := server.NewPolicy(bad); err == nil {
			t.Errorf("NewPolicy(%+v) accepted a bad rule", bad)
		}
	}
}

// TestPolicySubjectNeedsIssuer: a rule by subject is refused without its issuer, with
// a message that says why; with it, the subject matches only certificates of that
// issuer, and "*" with an issuer every client of that issuer.
func TestPolicySubjectNeedsIssuer(t *testing.T) {
	_, err := server.NewPolicy([]server.PolicyRule{{Subjects: []string{"CN=acme-fep"}, Keys: []string{"k"},
		Operations: []server.Operation{server.OpSign}}})
	if err == nil || !strings.Contains(err.Error(), "issuer") || !strings.Contains(err.Error(), "any client CA") {
		t.Fatalf("NewPolicy = %v, want a refusal that explains the missing issuer", err)
	}
	p, err := server.NewPolicy([]server.PolicyRule{
		{Subjects: []string{"*"}, Issuer: "CN=Customs CA", Operations: []server.Operation{server.OpVerify}},
		{Subjects: []string{"*"}, Operations: []server.Operation{server.OpValidate}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ours := &server.Identity{Holder: identity.Holder{Subject: "CN=x", Issuer: "CN=Customs CA"}}
	theirs := &server.Identity{Holder: identity.Holder{Subject: "CN=x", Issuer: "CN=Other CA"}}
	for _, tc := range []struct {
		id      *server.Identity
		op      server.Operation
		allowed bool
	}{
		{ours, server.OpVerify, true},
		{theirs, server.OpVerify, false},
		{theirs, server.OpValidate, true},
		{server.DevelopmentIdentity, server.OpValidate, false},
	} {
		if err := p.Authorize(context.Background(), tc.id, tc.op, ""); (err == nil) != tc.allowed {
			t.Errorf("%s of %s: %s: %v, want allowed=%v", tc.id.Subject, tc.id.Issuer, tc.op, err, tc.allowed)
		}
	}
}

// TestPolicyBindsTheIssuerOverTLS is the attack on subject-only rules through a real
// production server: two client CAs are trusted for mutual TLS, and the second issues
// a certificate with the subject a rule grants. The rule names the first CA as the
// issuer, so the look-alike passes the handshake (its CA is trusted) but may not sign.
func TestPolicyBindsTheIssuerOverTLS(t *testing.T) {
	customsCA, otherCA := newClientPKI(t, "customs client ca"), newClientPKI(t, "partner client ca")
	fep, lookalike := customsCA.issue(t, "acme-fep"), otherCA.issue(t, "acme-fep")
	if fep.Cert.Subject.String() != lookalike.Cert.Subject.String() {
		t.Fatalf("subjects differ: %s, %s", fep.Cert.Subject, lookalike.Cert.Subject)
	}
	policy, err := server.NewPolicy([]server.PolicyRule{{
		Subjects: []string{fep.Cert.Subject.String()}, Issuer: fep.Cert.Issuer.String(), Keys: []string{"ecdsa-sign"},
		Operations: []server.Operation{server.OpSign, server.OpListKeys},
	}})
	if err != nil {
		t.Fatal(err)
	}
	clients := newValidator(t, []*smx509.Certificate{customsCA.ca.Cert, otherCA.ca.Cert}, trust.RevocationConfig{Disabled: true})
	ts := startTLSServer(t, clients, 5*time.Second, func(o *server.Options) { o.Authorizer = policy })

	req := &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("manifest")}
	if _, err := signsvrv1.NewSignServiceClient(ts.dial(t, fep, nil, nil)).Sign(ctxT(t), req); err != nil {
		t.Fatalf("the client the rule names: %v", err)
	}
	lc := ts.dial(t, lookalike, nil, nil)
	_, err = signsvrv1.NewSignServiceClient(lc).Sign(ctxT(t), req)
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	wantStatus(t, listKeys(ctxT(t), lc), codes.PermissionDenied, "PERMISSION_DENIED")
	if !strings.Contains(ts.logs.String(), `issuer \"`+lookalike.Cert.Issuer.String()) {
		t.Errorf("the refusal's cause does not name the issuer:\n%s", ts.logs.String())
	}
}

// TestNoAuthorizerDeniesKeys: a server given no Authorizer refuses every use of a key
// and every method that names an operation, even a development server; methods that
// touch no key (verification of a given message) still answer. AllowAll is the
// explicit opposite.
func TestNoAuthorizerDeniesKeys(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.Authorizer = nil })
	ctx := ctxT(t)
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x")})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("Sign without an authorizer: %v, want PERMISSION_DENIED", err)
	}
	if _, err := ts.keys.ListKeys(ctx, &signsvrv1.ListKeysRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("ListKeys without an authorizer: %v, want PERMISSION_DENIED", err)
	}
	ts.assertServing(t)

	allowed := startServer(t, func(o *server.Options) { o.Authorizer = server.AllowAll })
	if _, err := allowed.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Errorf("Sign with AllowAll: %v", err)
	}
}
