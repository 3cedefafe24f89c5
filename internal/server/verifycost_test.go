package server_test

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/sign"
)

// signedBy signs data with the server's key, then rewrites the message with edit.
func signedBy(t *testing.T, ts *testServer, key string, data []byte, o *signsvrv1.SignOptions, edit func(*cms.SignedData)) []byte {
	t.Helper()
	resp, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: key, Data: data, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := cms.ParseSignedDataContentInfo(resp.GetCms())
	if err != nil {
		t.Fatal(err)
	}
	edit(sd)
	der, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func copySigners(n int) func(*cms.SignedData) {
	return func(sd *cms.SignedData) {
		one := sd.SignerInfos[0]
		sd.SignerInfos = make([]cms.SignerInfo, n)
		for i := range sd.SignerInfos {
			sd.SignerInfos[i] = one
		}
	}
}

// The attack: a large content with some 300 SM2 signers without signed attributes.
// It is refused before any signature is checked, in Verify and in each VerifyBatch
// item; a limit set in Options applies.
func TestVerifyTooManySigners(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	content := bytes.Repeat([]byte("x"), 1<<20)
	noAttrs := &signsvrv1.SignOptions{NoSignedAttributes: true}
	many := signedBy(t, ts, "sm2-sign", content, noAttrs, copySigners(300))

	_, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: many})
	st := wantStatus(t, err, codes.ResourceExhausted, "TOO_LARGE")
	if !bytes.Contains([]byte(st.Message()), []byte("300 signers")) {
		t.Errorf("message %q does not say why", st.Message())
	}

	ok := signedBy(t, ts, "sm2-sign", content, noAttrs, copySigners(sign.DefaultMaxSigners))
	resp, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: ok, Options: &signsvrv1.VerifyOptions{OmitContent: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetSigners()) != sign.DefaultMaxSigners || !resp.GetSigners()[0].GetSignature().GetValid() {
		t.Fatalf("%d signers at the limit: %+v", len(resp.GetSigners()), resp.GetSigners()[0])
	}

	br, err := ts.sign.VerifyBatch(ctx, &signsvrv1.VerifyBatchRequest{Items: []*signsvrv1.VerifyRequest{
		{Cms: ok, Options: &signsvrv1.VerifyOptions{OmitContent: true}}, {Cms: many},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if br.GetResults()[0].GetResult() == nil || br.GetResults()[1].GetError().GetReason() != "TOO_LARGE" {
		t.Fatalf("batch results: %v", br.GetResults())
	}

	small := startServer(t, func(o *server.Options) { o.Verify.MaxSigners = 2 })
	three := signedBy(t, small, "ecdsa-sign", []byte("hello"), nil, copySigners(3))
	_, err = small.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: three})
	wantStatus(t, err, codes.ResourceExhausted, "TOO_LARGE")
}

// Copies of a certificate past the limit are refused; within it, they are kept once.
func TestVerifyTooManyCertificates(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	copies := func(n int) func(*cms.SignedData) {
		return func(sd *cms.SignedData) {
			c := sd.Certificates[0]
			sd.Certificates = make([][]byte, n)
			for i := range sd.Certificates {
				sd.Certificates[i] = c
			}
		}
	}
	_, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: signedBy(t, ts, "ecdsa-sign", []byte("hi"), nil, copies(sign.DefaultMaxCertificates+1))})
	wantStatus(t, err, codes.ResourceExhausted, "TOO_LARGE")
	resp, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: signedBy(t, ts, "ecdsa-sign", []byte("hi"), nil, copies(sign.DefaultMaxCertificates))})
	if err != nil || !resp.GetVerified() {
		t.Fatalf("at the limit: %v %v", err, resp)
	}
}

// A certificate far larger than any real one is refused before it is parsed or kept.
func TestVerifyRawRefusesHugeCertificate(t *testing.T) {
	ts := startServer(t)
	huge := make([]byte, 8<<20)
	huge[0] = 0x30
	_, err := ts.sign.VerifyRaw(ctxT(t), &signsvrv1.VerifyRawRequest{Certificate: huge, Signature: []byte{1}, Data: []byte("x")})
	st := wantStatus(t, err, codes.InvalidArgument, "TOO_LARGE")
	if !bytes.Contains([]byte(st.Message()), []byte("certificate")) {
		t.Errorf("message %q", st.Message())
	}
	_, err = ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: []byte{0x30}, Options: &signsvrv1.VerifyOptions{Certificates: [][]byte{huge}}})
	wantStatus(t, err, codes.InvalidArgument, "TOO_LARGE")
}

// RFC 5652 §5.3: a signature without signed attributes relabelled as a timestamp
// token is not valid.
func TestVerifyRelabelledWithoutSignedAttributes(t *testing.T) {
	ts := startServer(t)
	der := signedBy(t, ts, "ecdsa-sign", []byte("hello"), &signsvrv1.SignOptions{NoSignedAttributes: true},
		func(sd *cms.SignedData) { sd.EContentType = cms.OIDTSTInfo })
	resp, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: der})
	if err != nil {
		t.Fatal(err)
	}
	if s := resp.GetSigners()[0].GetSignature(); s.GetValid() || s.GetReason() != sign.ReasonMissingAttribute || resp.GetVerified() {
		t.Fatalf("relabelled message: %+v", resp.GetSigners()[0])
	}
}
