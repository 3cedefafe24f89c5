package server_test

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
)

// The server's own keys (audit, TSA, login tokens) live in the same store as the
// clients' keys in production; a client signing with one could forge a checkpoint,
// a timestamp or a login token, so no request may use them, whatever the policy.
func TestReservedKeysRefused(t *testing.T) {
	ts := startServer(t, func(o *server.Options) {
		o.ReservedKeys = []string{"ecdsa-sign"}                                                                                                // as the audit key is listed
		o.Login = &server.LoginOptions{ChallengeKeys: [][]byte{bytes.Repeat([]byte{7}, 32)}, Audience: "customs-portal", TokenKey: "sm2-sign"} // reserved without being listed
	})
	data := []byte("a declaration")
	for _, key := range []string{"ecdsa-sign", "sm2-sign"} {
		_, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: key, Data: data})
		wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
		_, err = ts.sign.SignRaw(ctxT(t), &signsvrv1.SignRawRequest{Key: key, Data: data})
		wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	}
	// Other keys serve as before, and the reserved keys still verify and list.
	if _, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "rsa-sign", Data: data}); err != nil {
		t.Fatalf("Sign with an ordinary key: %v", err)
	}
	ts.assertServing(t)
}
