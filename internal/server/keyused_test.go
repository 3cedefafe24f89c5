package server_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/streamclient"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/generation"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
)

// TestEveryKeyedAnswerNamesTheGeneration: every response of a call that used a key with
// generations names the generation and certificate serial it used (for an envelope to an
// older generation's certificate, that older generation), and so does its audit record.
func TestEveryKeyedAnswerNamesTheGeneration(t *testing.T) {
	sigK, encNew, encOld := keyFile(t, "ecdsa-sign"), keyFile(t, "ecdsa-enc"), keyFile(t, "rsa-enc")
	inner, err := soft.New([]soft.KeyConfig{
		{Name: "sig@2026", KeyFile: sigK.KeyPath, CertFile: sigK.CertPath, Usages: []string{"sign"}},
		{Name: "enc@2", KeyFile: encNew.KeyPath, CertFile: encNew.CertPath, Usages: []string{"decrypt"}},
		{Name: "enc@1", KeyFile: encOld.KeyPath, CertFile: encOld.CertPath, Usages: []string{"decrypt"}},
		{Name: "renc@7", KeyFile: encOld.KeyPath, CertFile: encOld.CertPath, Usages: []string{"decrypt"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := generation.New(context.Background(), inner, []generation.Spec{
		{Name: "sig", ID: "2026", Inner: "sig@2026"},
		{Name: "enc", ID: "2", Inner: "enc@2"}, {Name: "enc", ID: "1", State: keystore.DecryptOnly, Inner: "enc@1"},
		{Name: "renc", ID: "7", Inner: "renc@7"},
	})
	if err != nil {
		t.Fatal(err)
	}
	as := startAuditedServer(t, nil, func(o *server.Options) { o.Store = store })
	serial := func(k devpki.KeyFile) string {
		_, chain := loadKeyFile(t, k)
		return chain[0].SerialNumber.Text(16)
	}
	_, oldChain := loadKeyFile(t, encOld)
	sigUse := &signsvrv1.KeyUse{Key: "sig", Generation: "2026", CertificateSerial: serial(sigK)}
	newUse := &signsvrv1.KeyUse{Key: "enc", Generation: "2", CertificateSerial: serial(encNew)}
	oldUse := &signsvrv1.KeyUse{Key: "enc", Generation: "1", CertificateSerial: serial(encOld)}
	rawUse := &signsvrv1.KeyUse{Key: "renc", Generation: "7", CertificateSerial: serial(encOld)}
	rc := signsvrv1.NewRawCryptServiceClient(as.conn)
	sc := as.streams()

	envelopeTo := func(t *testing.T, req *signsvrv1.EnvelopeRequest) []byte {
		req.Data = []byte("generations")
		r, err := as.env.Envelope(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		return r.GetCms()
	}
	signAndEnvelopeTo := func(t *testing.T, req *signsvrv1.SignAndEnvelopeRequest) []byte {
		req.Key, req.Data = "sig", []byte("generations")
		r, err := as.env.SignAndEnvelope(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		return r.GetCms()
	}
	audited := 0 // the records that must name a generation
	for _, tc := range []struct {
		name string
		call func(t *testing.T) ([]*signsvrv1.KeyUse, error)
		want []*signsvrv1.KeyUse
	}{
		{"Sign", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := as.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "sig", Data: []byte("x")})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{sigUse}},
		{"SignRaw", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := as.sign.SignRaw(ctxT(t), &signsvrv1.SignRawRequest{Key: "sig", Data: []byte("x")})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{sigUse}},
		{"SignBatch", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := as.sign.SignBatch(ctxT(t), &signsvrv1.SignBatchRequest{Items: []*signsvrv1.SignRequest{
				{Key: "sig", Data: []byte("a")}, {Key: "sig", Data: []byte("b")}}})
			var out []*signsvrv1.KeyUse
			for _, res := range r.GetResults() {
				out = append(out, res.GetKeyUsed())
			}
			return out, err
		}, []*signsvrv1.KeyUse{sigUse, sigUse}},
		{"Envelope", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := as.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{RecipientKeys: []string{"enc"}, Data: []byte("x")})
			return r.GetRecipientKeysUsed(), err
		}, []*signsvrv1.KeyUse{newUse}},
		{"SignAndEnvelope", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := as.env.SignAndEnvelope(ctxT(t), &signsvrv1.SignAndEnvelopeRequest{Key: "sig", RecipientKeys: []string{"enc"}, Data: []byte("x")})
			return append([]*signsvrv1.KeyUse{r.GetKeyUsed()}, r.GetRecipientKeysUsed()...), err
		}, []*signsvrv1.KeyUse{sigUse, newUse}},
		{"Decrypt/active", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := envelopeTo(t, &signsvrv1.EnvelopeRequest{RecipientKeys: []string{"enc"}})
			r, err := as.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "enc", Cms: env})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{newUse}},
		{"Decrypt/decrypt-only", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := envelopeTo(t, &signsvrv1.EnvelopeRequest{RecipientCerts: [][]byte{oldChain[0].Raw}})
			r, err := as.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "enc", Cms: env})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{oldUse}},
		{"DecryptAndVerify/active", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := signAndEnvelopeTo(t, &signsvrv1.SignAndEnvelopeRequest{RecipientKeys: []string{"enc"}})
			r, err := as.env.DecryptAndVerify(ctxT(t), &signsvrv1.DecryptAndVerifyRequest{Key: "enc", Cms: env})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{newUse}},
		{"DecryptAndVerify/decrypt-only", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := signAndEnvelopeTo(t, &signsvrv1.SignAndEnvelopeRequest{RecipientCerts: [][]byte{oldChain[0].Raw}})
			r, err := as.env.DecryptAndVerify(ctxT(t), &signsvrv1.DecryptAndVerifyRequest{Key: "enc", Cms: env})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{oldUse}},
		{"EncryptRaw", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "renc", Data: []byte("x")})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{rawUse}},
		{"DecryptRaw", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			e, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "renc", Data: []byte("x")})
			if err != nil {
				t.Fatal(err)
			}
			r, err := rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "renc", Ciphertext: e.GetCiphertext()})
			return []*signsvrv1.KeyUse{r.GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{rawUse}},
		// The streams answer as their unary forms, and an envelope to an older
		// generation opens through them as through Decrypt.
		{"SignStream", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := streamclient.Sign(ctxT(t), sc, &signsvrv1.SignStreamOptions{Key: "sig"}, strings.NewReader("x"), io.Discard, nil)
			return []*signsvrv1.KeyUse{r.GetStream().GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{sigUse}},
		{"EnvelopeStream", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := streamclient.Envelope(ctxT(t), sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"enc"}}, strings.NewReader("x"), io.Discard, nil)
			return r.GetRecipientKeysUsed(), err
		}, []*signsvrv1.KeyUse{newUse}},
		{"SignAndEnvelopeStream", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			r, err := streamclient.SignAndEnvelope(ctxT(t), sc, &signsvrv1.SignAndEnvelopeStreamOptions{Key: "sig", RecipientKeys: []string{"enc"}}, strings.NewReader("x"), io.Discard, nil)
			return append([]*signsvrv1.KeyUse{r.GetKeyUsed()}, r.GetRecipientKeysUsed()...), err
		}, []*signsvrv1.KeyUse{sigUse, newUse}},
		{"DecryptStream/active", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := envelopeTo(t, &signsvrv1.EnvelopeRequest{RecipientKeys: []string{"enc"}})
			r, err := streamclient.Decrypt(ctxT(t), sc, &signsvrv1.DecryptStreamOptions{Key: "enc"}, bytes.NewReader(env), io.Discard, nil)
			return []*signsvrv1.KeyUse{r.GetStream().GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{newUse}},
		{"DecryptStream/decrypt-only", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := envelopeTo(t, &signsvrv1.EnvelopeRequest{RecipientCerts: [][]byte{oldChain[0].Raw}})
			var out bytes.Buffer
			r, err := streamclient.Decrypt(ctxT(t), sc, &signsvrv1.DecryptStreamOptions{Key: "enc"}, bytes.NewReader(env), &out, nil)
			if err == nil && out.String() != "generations" {
				t.Errorf("DecryptStream gives %q", out.String())
			}
			return []*signsvrv1.KeyUse{r.GetStream().GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{oldUse}},
		{"DecryptAndVerifyStream/active", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := signAndEnvelopeTo(t, &signsvrv1.SignAndEnvelopeRequest{RecipientKeys: []string{"enc"}})
			r, err := streamclient.DecryptAndVerify(ctxT(t), sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: "enc"}, bytes.NewReader(env), io.Discard, nil)
			return []*signsvrv1.KeyUse{r.GetStream().GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{newUse}},
		{"DecryptAndVerifyStream/decrypt-only", func(t *testing.T) ([]*signsvrv1.KeyUse, error) {
			env := signAndEnvelopeTo(t, &signsvrv1.SignAndEnvelopeRequest{RecipientCerts: [][]byte{oldChain[0].Raw}})
			var out bytes.Buffer
			r, err := streamclient.DecryptAndVerify(ctxT(t), sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: "enc"}, bytes.NewReader(env), &out, nil)
			if err == nil && (!r.GetVerified() || out.String() != "generations") {
				t.Errorf("DecryptAndVerifyStream: verified %v, content %q", r.GetVerified(), out.String())
			}
			return []*signsvrv1.KeyUse{r.GetStream().GetKeyUsed()}, err
		}, []*signsvrv1.KeyUse{oldUse}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call(t)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("key uses %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].GetKey() != tc.want[i].GetKey() || got[i].GetGeneration() != tc.want[i].GetGeneration() ||
					got[i].GetCertificateSerial() != tc.want[i].GetCertificateSerial() {
					t.Errorf("key use %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
	// Every record of a call whose answer has key_used names the generation: the
	// signatures (one per batch item) and the openings. Envelope records name no key.
	for _, r := range as.stopAndRead(t) {
		key, _ := r["key"].(string)
		if key == "" {
			continue
		}
		audited++
		if r["key_generation"] == nil || r["key_generation"] == "" || r["key_serial"] == nil || r["key_serial"] == "" {
			t.Errorf("audit record names no generation: %v", r)
		}
	}
	if audited < 18 {
		t.Errorf("%d audit records name a key, want at least 18", audited)
	}
}

// TestStreamDecryptAfterRotation: an envelope streamed to a key's generation 1 still
// opens through DecryptStream and DecryptAndVerifyStream once generation 2 took its
// place (the state reloaded, generation 1 decrypt-only), and the results name
// generation 1.
func TestStreamDecryptAfterRotation(t *testing.T) {
	oldK, newK, sigK := keyFile(t, "rsa-enc"), keyFile(t, "ecdsa-enc"), keyFile(t, "ecdsa-sign")
	inner, err := soft.New([]soft.KeyConfig{
		{Name: "enc@1", KeyFile: oldK.KeyPath, CertFile: oldK.CertPath, Usages: []string{"decrypt"}},
		{Name: "enc@2", KeyFile: newK.KeyPath, CertFile: newK.CertPath, Usages: []string{"decrypt"}},
		{Name: "sig@1", KeyFile: sigK.KeyPath, CertFile: sigK.CertPath, Usages: []string{"sign"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	before, err := generation.New(context.Background(), inner, []generation.Spec{{Name: "enc", ID: "1", Inner: "enc@1"}, {Name: "sig", ID: "1", Inner: "sig@1"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *server.Options) { o.Store = before })
	sc := ts.streams()
	content := streamContent(300_000)
	var env, signedEnv bytes.Buffer
	if _, err := streamclient.Envelope(ctxT(t), sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"enc"}}, bytes.NewReader(content), &env, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := streamclient.SignAndEnvelope(ctxT(t), sc, &signsvrv1.SignAndEnvelopeStreamOptions{Key: "sig", RecipientKeys: []string{"enc"}}, bytes.NewReader(content), &signedEnv, nil); err != nil {
		t.Fatal(err)
	}

	after, err := generation.New(context.Background(), inner, []generation.Spec{
		{Name: "enc", ID: "2", Inner: "enc@2"}, {Name: "enc", ID: "1", State: keystore.DecryptOnly, Inner: "enc@1"},
		{Name: "sig", ID: "1", Inner: "sig@1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Config{Anchors: pki.Roots, Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if err := ts.srv.Reload(server.Options{Store: after, Backend: "soft", Validator: v, Development: true, Authorizer: server.AllowAll}); err != nil {
		t.Fatal(err)
	}
	_, oldChain := loadKeyFile(t, oldK)
	want := &signsvrv1.KeyUse{Key: "enc", Generation: "1", CertificateSerial: oldChain[0].SerialNumber.Text(16)}
	sameUse := func(what string, got *signsvrv1.KeyUse) {
		t.Helper()
		if got.GetKey() != want.GetKey() || got.GetGeneration() != want.GetGeneration() || got.GetCertificateSerial() != want.GetCertificateSerial() {
			t.Errorf("%s: key_used %v, want %v", what, got, want)
		}
	}
	var plain bytes.Buffer
	r, err := streamclient.Decrypt(ctxT(t), sc, &signsvrv1.DecryptStreamOptions{Key: "enc"}, bytes.NewReader(env.Bytes()), &plain, nil)
	if err != nil || !bytes.Equal(plain.Bytes(), content) {
		t.Fatalf("DecryptStream after the rotation: %v (%d bytes)", err, plain.Len())
	}
	sameUse("DecryptStream", r.GetStream().GetKeyUsed())
	plain.Reset()
	vr, err := streamclient.DecryptAndVerify(ctxT(t), sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: "enc"}, bytes.NewReader(signedEnv.Bytes()), &plain, nil)
	if err != nil || !vr.GetVerified() || !bytes.Equal(plain.Bytes(), content) {
		t.Fatalf("DecryptAndVerifyStream after the rotation: %v verified=%v (%d bytes)", err, vr.GetVerified(), plain.Len())
	}
	sameUse("DecryptAndVerifyStream", vr.GetStream().GetKeyUsed())
	// New envelopes go to generation 2.
	env.Reset()
	er, err := streamclient.Envelope(ctxT(t), sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"enc"}}, bytes.NewReader(content), &env, nil)
	if err != nil || len(er.GetRecipientKeysUsed()) != 1 || er.GetRecipientKeysUsed()[0].GetGeneration() != "2" {
		t.Fatalf("EnvelopeStream after the rotation: %v %v", er, err)
	}
	ts.assertServing(t)
}
