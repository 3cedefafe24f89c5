package server_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"

	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/identity"
)

func TestPolicyDeniesByDefault(t *testing.T) {
	p, err := server.NewPolicy([]server.PolicyRule{
		{Subjects: []string{"CN=acme-fep,O=ACME"}, Keys: []string{"acme-sign"}, Operations: []server.Operation{server.OpSign}},
		{Fingerprints: []string{"AB:CD"}, Keys: []string{"*"}, Operations: []server.Operation{server.OpDecrypt, server.OpSign}},
	})
	if err != nil {
		t.Fatal(err)
	}
	acme := &server.Identity{Holder: identity.Holder{Subject: "CN=acme-fep,O=ACME", FingerprintSHA256: "00"}}
	customs := &server.Identity{Holder: identity.Holder{Subject: "CN=customs", FingerprintSHA256: "abcd"}}
	for _, tc := range []struct {
		name string
		id   *server.Identity
		op   server.Operation
		key  string
		want codes.Code
	}{
		{"own key", acme, server.OpSign, "acme-sign", codes.OK},
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
		{{Subjects: []string{"CN=a"}, Operations: []server.Operation{server.OpSign}}},
		{{Subjects: []string{"CN=a"}, Keys: []string{"k"}, Operations: []server.Operation{"delete"}}},
	} {
		if _, err := server.NewPolicy(bad); err == nil {
			t.Errorf("NewPolicy(%+v) accepted a bad rule", bad)
		}
	}
}
