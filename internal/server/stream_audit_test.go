package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/streamclient"
	"signsvr.dev/signsvr/pkg/cms"
)

// TestStreamAuditRecordIsTheUnaryOne: for the same input, a streamed operation
// leaves the record its unary form leaves: the same op, key, algorithms, key
// generation and serial, the same input digest, and the digest of what the client
// got as output (the same bytes for decryptions; for signatures, which differ from
// call to call, each record's output is its own signature's digest).
func TestStreamAuditRecordIsTheUnaryOne(t *testing.T) {
	// One instant for every call, so that the verdicts (their validated_at) of two
	// calls are the same and so the outputs of two decryptions.
	now := time.Now()
	as := startAuditedServer(t, nil, func(o *server.Options) { o.Now = func() time.Time { return now } })
	ctx := ctxT(t)
	sc := as.streams()
	data := streamContent(200_000)
	type pair struct {
		name             string
		unaryOut, strOut []byte // the signerInfos of the outputs, for calls whose outputs differ
		noKey            bool
	}
	var pairs []pair

	// Sign, attached and detached.
	for _, detached := range []bool{false, true} {
		for _, key := range []string{"ecdsa-sign", "sm2-sign"} {
			u, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: key, Data: data, Detached: detached})
			if err != nil {
				t.Fatal(err)
			}
			var sig bytes.Buffer
			if _, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: key, Detached: detached}, bytes.NewReader(data), &sig, nil); err != nil {
				t.Fatal(err)
			}
			pairs = append(pairs, pair{name: "sign " + key, unaryOut: signerInfos(t, u.GetCms()), strOut: signerInfos(t, sig.Bytes())})
		}
	}

	// Decrypt and DecryptAndVerify of the same envelope, GCM and CBC, with and
	// without the content in the answer.
	for _, c := range []signsvrv1.Cipher{signsvrv1.Cipher_CIPHER_AES256_GCM, signsvrv1.Cipher_CIPHER_AES128_CBC} {
		eo := &signsvrv1.EnvelopeOptions{Cipher: c}
		e, err := as.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{RecipientKeys: []string{"rsa-enc"}, Data: data, Options: eo})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := as.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: e.GetCms()}); err != nil {
			t.Fatal(err)
		}
		if _, err := streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Key: "rsa-enc"}, bytes.NewReader(e.GetCms()), &bytes.Buffer{}, nil); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{name: "decrypt " + c.String()})

		se, err := as.env.SignAndEnvelope(ctx, &signsvrv1.SignAndEnvelopeRequest{Key: "ecdsa-sign", RecipientKeys: []string{"rsa-enc"}, Data: data, EnvelopeOptions: eo})
		if err != nil {
			t.Fatal(err)
		}
		for _, omit := range []bool{false, true} {
			vo := &signsvrv1.VerifyOptions{OmitContent: omit}
			u, err := as.env.DecryptAndVerify(ctx, &signsvrv1.DecryptAndVerifyRequest{Key: "rsa-enc", Cms: se.GetCms(), VerifyOptions: vo})
			if err != nil || !u.GetVerified() {
				t.Fatalf("DecryptAndVerify: %v", err)
			}
			var content bytes.Buffer
			s, err := streamclient.DecryptAndVerify(ctx, sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: "rsa-enc", VerifyOptions: vo}, bytes.NewReader(se.GetCms()), &content, nil)
			if err != nil || !s.GetVerified() {
				t.Fatalf("DecryptAndVerifyStream: %v", err)
			}
			if !omit && !bytes.Equal(content.Bytes(), data) {
				t.Fatalf("DecryptAndVerifyStream gave %d bytes of content", content.Len())
			}
			pairs = append(pairs, pair{name: fmt.Sprintf("decrypt_and_verify %s omit=%v", c, omit)})
		}
	}

	// A password: recorded as one, never digested, by both forms.
	pw := []byte("streamed password")
	pe, err := as.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{RecipientPasswords: [][]byte{pw}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Cms: pe.GetCms(), Options: &signsvrv1.DecryptOptions{Password: pw}}); err != nil {
		t.Fatal(err)
	}
	if _, err := streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Options: &signsvrv1.DecryptOptions{Password: pw}}, bytes.NewReader(pe.GetCms()), &bytes.Buffer{}, nil); err != nil {
		t.Fatal(err)
	}
	pairs = append(pairs, pair{name: "decrypt with a password", noKey: true})

	recs := as.stopAndRead(t)
	// The records of the pairs, in order, skipping the envelopes made for them.
	var paired []map[string]any
	for _, r := range recs {
		if op := r["op"]; op != "envelope" && op != "sign_and_envelope" {
			paired = append(paired, r)
		}
	}
	if len(paired) != 2*len(pairs) {
		t.Fatalf("%d records of the compared calls, want %d", len(paired), 2*len(pairs))
	}
	field := func(r map[string]any, k string) string {
		b, _ := json.Marshal(r[k])
		return string(b)
	}
	for i, p := range pairs {
		u, s := paired[2*i], paired[2*i+1]
		if s["code"] != "OK" || u["code"] != "OK" {
			t.Fatalf("%s: codes %v %v", p.name, u["code"], s["code"])
		}
		for _, k := range []string{"op", "key", "algs", "key_generation", "key_serial", "in"} {
			if field(u, k) != field(s, k) {
				t.Errorf("%s: %s unary %s, streamed %s", p.name, k, field(u, k), field(s, k))
			}
		}
		if p.noKey {
			if field(s, "algs") != `["password"]` {
				t.Errorf("%s: algorithms %s", p.name, field(s, "algs"))
			}
		} else if u["key_serial"] == nil {
			t.Errorf("%s: the record names no key serial", p.name)
		}
		if p.unaryOut == nil {
			if u["out"] != s["out"] || u["out"] == nil {
				t.Errorf("%s: out unary %v, streamed %v", p.name, u["out"], s["out"])
			}
			continue
		}
		if u["out"] != sha(p.unaryOut) || s["out"] != sha(p.strOut) {
			t.Errorf("%s: out unary %v streamed %v, want the digests of their signerInfos %s %s", p.name, u["out"], s["out"], sha(p.unaryOut), sha(p.strOut))
		}
	}
}

// signerInfos is the DER of a SignedData's signerInfos SET, what a sign record's out
// digests.
func signerInfos(t *testing.T, der []byte) []byte {
	t.Helper()
	si, err := cms.SignerInfosDER(der)
	if err != nil {
		t.Fatal(err)
	}
	return si
}
