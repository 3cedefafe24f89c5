package server_test

import (
	"context"
	"testing"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/generation"
	"signsvr.dev/signsvr/pkg/keystore/soft"
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
	if audited < 10 {
		t.Errorf("%d audit records name a key, want at least 10", audited)
	}
}
