package envelope

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs7"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite the ours-*.der and gmsm-*.der fuzz seeds in ../cms/testdata/envelopes")

// seedObjects makes one object of every shape this package writes (and a few gmsm
// writes), for fuzz seeds. The keys are the test fixture's.
func seedObjects(t testing.TB) map[string][]byte {
	f := getFixture(t)
	content := []byte("seed content for the cms parsers\n")
	out := map[string][]byte{}
	add := func(name string, der []byte, err error) {
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		out[name] = der
	}
	der, err := Envelope(content, certs(f.sm2a), nil)
	add("ours-sm2-gmt-sm4cbc.der", der, err)
	der, err = Envelope(content, certs(f.sm2a), &Options{RecipientID: RecipientSubjectKeyID, Dialect: DialectPKCS7})
	add("ours-sm2-keyid-pkcs7-sm4cbc.der", der, err)
	der, err = Envelope(content, certs(f.sm2a), &Options{Cipher: SM4GCM})
	add("ours-sm2-sm4gcm.der", der, err)
	der, err = Envelope(content, certs(f.ec384, f.rsa), &Options{RecipientID: RecipientSubjectKeyID, Cipher: AES256CBC})
	add("ours-p384-rsa-keyid-aes256cbc.der", der, err)
	der, err = Envelope(content, certs(f.rsa, f.ec256, f.sm2a), &Options{RSA: RSAPKCS1v15})
	add("ours-mixed-aes256gcm.der", der, err)
	der, err = SignAndEnvelope(content, f.sm2Sign.key, f.chain(f.sm2Sign), certs(f.sm2a), &SignAndEnvelopeOptions{Form: FormSignedAndEnveloped})
	add("ours-sae-sm2-gmt.der", der, err)
	der, err = SignAndEnvelope(content, f.rsaSign.key, f.chain(f.rsaSign), certs(f.rsa), &SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Envelope: Options{RSA: RSAPKCS1v15}})
	add("ours-sae-rsa-pkcs7.der", der, err)
	der, err = pkcs7.EnvelopeMessageCFCA(pkcs.SM4CBC, content, certs(f.sm2a))
	add("gmsm-cfca-sm2-sm4cbc.der", der, err)
	der, err = pkcs7.EncryptSM(pkcs.SM4GCM, content, certs(f.sm2a))
	add("gmsm-sm2-sm4gcm-in-envelopeddata.der", der, err)
	return out
}

// TestWriteSeeds rewrites the seeds with -write-seeds; without it it checks that the
// seed shapes can still be made.
//
//	go test ./pkg/envelope -run TestWriteSeeds -write-seeds
func TestWriteSeeds(t *testing.T) {
	objs := seedObjects(t)
	if !*writeSeeds {
		return
	}
	dir := filepath.Join("..", "cms", "testdata", "envelopes")
	for name, der := range objs {
		if err := os.WriteFile(filepath.Join(dir, name), der, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
