package server_test

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/sign"
)

// TestDecryptAndVerifyFailsAsOne: once the server's key has opened an envelope,
// whatever is wrong with the decrypted SignedData, even something it merely does not
// support (PKCS#7's ANY content), is answered DECRYPTION_FAILED with the one message,
// like a wrong key or a bad padding: a CBC ciphertext can be tampered into any of
// them, so a different answer would be an oracle.
func TestDecryptAndVerifyFailsAsOne(t *testing.T) {
	ts := startServer(t)
	key, chain := loadKeyFile(t, keyFile(t, "ecdsa-sign"))
	sd, err := sign.Sign([]byte{0x04, 0x03, 'a', 'b', 'c'}, key, chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	anyContent := bytes.Replace(sd, []byte{0xa0, 0x07, 0x04, 0x05, 0x04, 0x03, 'a', 'b', 'c'},
		[]byte{0xa0, 0x07, 0x30, 0x05, 0x04, 0x03, 'a', 'b', 'c'}, 1)
	if bytes.Equal(anyContent, sd) {
		t.Fatal("no eContent to relabel")
	}
	_, recip := loadKeyFile(t, keyFile(t, "rsa-enc"))
	var msgs []string
	for _, inner := range [][]byte{anyContent, sd[:len(sd)/2]} {
		der, err := envelope.Envelope(inner, recip[:1], nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.env.DecryptAndVerify(ctxT(t), &signsvrv1.DecryptAndVerifyRequest{Key: "rsa-enc", Cms: der})
		msgs = append(msgs, wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED").Message())
	}
	if msgs[0] != msgs[1] {
		t.Errorf("messages differ after decryption: %q vs %q", msgs[0], msgs[1])
	}
	ts.assertServing(t)
}
