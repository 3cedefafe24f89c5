package server_test

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
)

// allowList is an Authorizer that allows the (operation, key) pairs it holds.
type allowList struct {
	mu    sync.Mutex
	allow map[[2]string]bool
}

func (a *allowList) set(pairs ...[2]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.allow = map[[2]string]bool{}
	for _, p := range pairs {
		a.allow[p] = true
	}
}

func (a *allowList) Authorize(_ context.Context, _ *server.Identity, op server.Operation, key string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.allow[[2]string{string(op), key}] {
		return nil
	}
	return &server.Error{Code: codes.PermissionDenied, Reason: signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED, Msg: "not allowed: " + string(op) + " " + key}
}

// The operations of the new calls: decrypt_raw beside decrypt, encrypt_raw, wrap on
// a KEK, decrypt on a KEK, password for password recipients.
func TestSymmetricAndRawOperations(t *testing.T) {
	al := &allowList{}
	ts := startServer(t, withTestKEK(t), func(o *server.Options) { o.Authorizer = al })
	rc := signsvrv1.NewRawCryptServiceClient(ts.conn)
	data := []byte("authorized?")
	op := func(o server.Operation, key string) [2]string { return [2]string{string(o), key} }

	al.set(op(server.OpEncryptRaw, ""))
	e, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "rsa-enc", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		allow [][2]string
		want  codes.Code
	}{
		{[][2]string{op(server.OpDecrypt, "rsa-enc")}, codes.PermissionDenied},
		{[][2]string{op(server.OpDecryptRaw, "rsa-enc")}, codes.PermissionDenied},
		{[][2]string{op(server.OpDecryptRaw, "rsa-enc"), op(server.OpDecrypt, "rsa-enc")}, codes.OK},
	} {
		al.set(c.allow...)
		_, err := rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "rsa-enc", Ciphertext: e.GetCiphertext()})
		if code := statusCode(err); code != c.want {
			t.Errorf("DecryptRaw with %v: %v, want %v", c.allow, err, c.want)
		}
	}
	al.set()
	_, err = rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "rsa-enc", Data: data})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")

	// KEK: envelope and wrap to make, decrypt to open.
	al.set(op(server.OpEnvelope, ""))
	kekReq := &signsvrv1.EnvelopeRequest{Data: data, RecipientKekKeys: []string{"shared-kek"}}
	_, err = ts.env.Envelope(ctxT(t), kekReq)
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	// An unknown name is refused like a known one to a caller not allowed it.
	_, err = ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientKekKeys: []string{"no-such-kek"}})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	al.set(op(server.OpEnvelope, ""), op(server.OpWrap, "shared-kek"))
	kek, err := ts.env.Envelope(ctxT(t), kekReq)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "shared-kek", Cms: kek.GetCms()})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	al.set(op(server.OpDecrypt, "shared-kek"))
	if _, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "shared-kek", Cms: kek.GetCms()}); err != nil {
		t.Fatal(err)
	}

	// Passwords: envelope and password to make, password to open.
	pwReq := &signsvrv1.EnvelopeRequest{Data: data, RecipientPasswords: [][]byte{[]byte("pw")}, Options: &signsvrv1.EnvelopeOptions{Pbkdf2Iterations: 1000}}
	al.set(op(server.OpEnvelope, ""))
	_, err = ts.env.Envelope(ctxT(t), pwReq)
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	al.set(op(server.OpEnvelope, ""), op(server.OpPassword, ""))
	pw, err := ts.env.Envelope(ctxT(t), pwReq)
	if err != nil {
		t.Fatal(err)
	}
	al.set()
	dreq := &signsvrv1.DecryptRequest{Cms: pw.GetCms(), Options: &signsvrv1.DecryptOptions{Password: []byte("pw")}}
	_, err = ts.env.Decrypt(ctxT(t), dreq)
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	al.set(op(server.OpPassword, ""))
	if _, err := ts.env.Decrypt(ctxT(t), dreq); err != nil {
		t.Fatal(err)
	}
	for _, o := range []server.Operation{server.OpEncryptRaw, server.OpDecryptRaw, server.OpWrap, server.OpPassword} {
		found := false
		for _, p := range server.Operations {
			found = found || p == o
		}
		if !found {
			t.Errorf("%s is not in server.Operations", o)
		}
	}
}

func statusCode(err error) codes.Code { return status.Code(err) }
