package server_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/cms"
)

// The single SignedAndEnvelopedData (PKCS#7 type 4, GM/T 0010 .4 for SM2) that SM2
// peers expect: made by SignAndEnvelope, opened by DecryptAndVerify. It carries key
// transport only, so an EC (key agreement) recipient is refused.
func TestSignedAndEnvelopedDataFormat(t *testing.T) {
	ts := startServer(t)
	data := []byte("customs declaration, signed and sealed in one structure")
	for _, tc := range []struct {
		fam  string
		want string // outer content type
	}{
		{"sm2", cms.OIDSM2SignedAndEnvelopedData.String()},
		{"rsa", cms.OIDSignedAndEnvelopedData.String()},
	} {
		t.Run(tc.fam, func(t *testing.T) {
			ctx := ctxT(t)
			e, err := ts.env.SignAndEnvelope(ctx, &signsvrv1.SignAndEnvelopeRequest{
				Key: tc.fam + "-sign", Data: data, RecipientKeys: []string{tc.fam + "-enc"},
				Format: signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_SIGNED_AND_ENVELOPED_DATA,
			})
			if err != nil {
				t.Fatalf("SignAndEnvelope: %v", err)
			}
			ci, err := cms.ParseContentInfo(e.GetCms())
			if err != nil {
				t.Fatal(err)
			}
			if got := ci.ContentType.String(); got != tc.want {
				t.Fatalf("content type %s, want %s", got, tc.want)
			}
			v, err := ts.env.DecryptAndVerify(ctx, &signsvrv1.DecryptAndVerifyRequest{Key: tc.fam + "-enc", Cms: e.GetCms()})
			if err != nil {
				t.Fatalf("DecryptAndVerify: %v", err)
			}
			wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)

			// Plain Decrypt will not hand out content whose signature nobody checked.
			_, err = ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: tc.fam + "-enc", Cms: e.GetCms()})
			wantStatus(t, err, codes.InvalidArgument, "UNSUPPORTED")

			// A flipped byte at the end (the encrypted content) is a decryption failure
			// or an invalid signature, never a transport error of another kind.
			bad := append([]byte(nil), e.GetCms()...)
			bad[len(bad)-1] ^= 1
			v, err = ts.env.DecryptAndVerify(ctx, &signsvrv1.DecryptAndVerifyRequest{Key: tc.fam + "-enc", Cms: bad})
			if err != nil {
				wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
			} else if v.GetVerified() {
				t.Fatal("a tampered SignedAndEnvelopedData verified")
			}
		})
	}
	_, err := ts.env.SignAndEnvelope(ctxT(t), &signsvrv1.SignAndEnvelopeRequest{
		Key: "ecdsa-sign", Data: data, RecipientKeys: []string{"ecdsa-enc"},
		Format: signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_SIGNED_AND_ENVELOPED_DATA,
	})
	if err == nil {
		t.Fatal("SignedAndEnvelopedData to an EC (key agreement) recipient was made")
	}
	if c := status.Code(err); c == codes.Internal || c == codes.Unknown {
		t.Fatalf("EC recipient refused with %v: %v, want a clear client error", c, err)
	}
	ts.assertServing(t)
}
