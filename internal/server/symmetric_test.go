package server_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/keystore/secret"
)

var (
	testKEK   = []byte("0123456789abcdef0123456789abcdef")
	testKEKID = []byte("customs-kek-2026")
)

func withTestKEK(t testing.TB) serverOption {
	k, err := secret.NewKey("shared-kek", testKEKID, testKEK)
	if err != nil {
		t.Fatal(err)
	}
	s, err := secret.NewFromKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *server.Options) { o.SecretKeys = s }
}

// flipPad flips the bit of a CBC envelope's next-to-last ciphertext block that
// changes the last padding byte, so decryption fails for certain (a change elsewhere
// in unauthenticated CBC may decrypt to other bytes). The encrypted content is the
// last field of the DER.
func flipPad(der []byte) []byte {
	out := bytes.Clone(der)
	out[len(out)-17] ^= 1
	return out
}

// Envelopes OpenSSL made with -secretkey, -pwri_password and cofactor ECDH open
// through the server; ours open with openssl; tampered copies and wrong secrets fail
// with the one DECRYPTION_FAILED.
func TestSymmetricRecipientsWithOpenSSL(t *testing.T) {
	ts := startServer(t, withTestKEK(t), func(o *server.Options) { o.Encryption.MaxPBKDF2Iterations = 50_000 })
	data := []byte("customs declaration for a KEK, a password and cofactor ECDH\n")
	in := writeFile(t, "data", data)
	hk, hid := hex.EncodeToString(testKEK), hex.EncodeToString(testKEKID)
	const pw = "pass word 1"

	t.Run("kek", func(t *testing.T) {
		der := openssl(t, nil, "cms", "-encrypt", "-binary", "-outform", "DER", "-in", in, "-aes256", "-secretkey", hk, "-secretkeyid", hid)
		d, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "shared-kek", Cms: der})
		if err != nil || !bytes.Equal(d.GetData(), data) {
			t.Fatalf("Decrypt: %v", err)
		}
		_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "shared-kek", Cms: flipPad(der)})
		wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
		other := openssl(t, nil, "cms", "-encrypt", "-binary", "-outform", "DER", "-in", in, "-aes256", "-secretkey", hk, "-secretkeyid", "01")
		_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "shared-kek", Cms: other})
		wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")

		e, err := ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientKekKeys: []string{"shared-kek"},
			Options: &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES128_GCM}})
		if err != nil {
			t.Fatal(err)
		}
		out := openssl(t, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", writeFile(t, "kek.der", e.GetCms()), "-secretkey", hk, "-secretkeyid", hid)
		if !bytes.Equal(out, data) {
			t.Fatalf("openssl: %q", out)
		}
		_, err = ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientKekKeys: []string{"no-such-kek"}})
		wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	})

	t.Run("password", func(t *testing.T) {
		der := openssl(t, nil, "cms", "-encrypt", "-binary", "-outform", "DER", "-in", in, "-aes128", "-pwri_password", pw)
		d, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Cms: der, Options: &signsvrv1.DecryptOptions{Password: []byte(pw)}})
		if err != nil || !bytes.Equal(d.GetData(), data) {
			t.Fatalf("Decrypt: %v", err)
		}
		for _, c := range []struct {
			der []byte
			pw  string
		}{{der, "pass word 2"}, {flipPad(der), pw}} {
			_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Cms: c.der, Options: &signsvrv1.DecryptOptions{Password: []byte(c.pw)}})
			wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
		}
		_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: der, Options: &signsvrv1.DecryptOptions{Password: []byte(pw)}})
		wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")

		e, err := ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientPasswords: [][]byte{[]byte(pw)}, RecipientKeys: []string{"rsa-enc"},
			Options: &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES256_CBC, Pbkdf2Iterations: 20_000}})
		if err != nil {
			t.Fatal(err)
		}
		out := openssl(t, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", writeFile(t, "pw.der", e.GetCms()), "-pwri_password", pw)
		if !bytes.Equal(out, data) {
			t.Fatalf("openssl: %q", out)
		}
		// A hostile envelope: more iterations than the server spends.
		// (openssl cms has no option for the count: pkg/envelope writes it.)
		costly, err := envelope.Envelope(data, nil, &envelope.Options{Passwords: []envelope.Password{envelope.Password(pw)}, PBKDF2Iterations: 60_000})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Cms: costly, Options: &signsvrv1.DecryptOptions{Password: []byte(pw)}})
		wantStatus(t, err, codes.ResourceExhausted, "TOO_LARGE")
		_, err = ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientPasswords: [][]byte{[]byte(pw)},
			Options: &signsvrv1.EnvelopeOptions{Pbkdf2Iterations: 60_000}})
		wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
		// Three passwords of 20000 iterations each are over 50000 in all.
		_, err = ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientPasswords: [][]byte{[]byte("a"), []byte("b"), []byte("c")},
			Options: &signsvrv1.EnvelopeOptions{Pbkdf2Iterations: 20_000}})
		wantStatus(t, err, codes.InvalidArgument, "TOO_LARGE")

		// DecryptAndVerify opens a signed-then-enveloped message with a password or a KEK.
		signed, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			env *signsvrv1.EnvelopeRequest
			dv  *signsvrv1.DecryptAndVerifyRequest
		}{
			{&signsvrv1.EnvelopeRequest{Data: signed.GetCms(), RecipientPasswords: [][]byte{[]byte(pw)}, Options: &signsvrv1.EnvelopeOptions{Pbkdf2Iterations: 1000}},
				&signsvrv1.DecryptAndVerifyRequest{DecryptOptions: &signsvrv1.DecryptOptions{Password: []byte(pw)}}},
			{&signsvrv1.EnvelopeRequest{Data: signed.GetCms(), RecipientKekKeys: []string{"shared-kek"}},
				&signsvrv1.DecryptAndVerifyRequest{Key: "shared-kek"}},
		} {
			e, err := ts.env.Envelope(ctxT(t), c.env)
			if err != nil {
				t.Fatal(err)
			}
			c.dv.Cms = e.GetCms()
			dv, err := ts.env.DecryptAndVerify(ctxT(t), c.dv)
			if err != nil || !dv.GetVerified() || !bytes.Equal(dv.GetContent(), data) {
				t.Fatalf("DecryptAndVerify: %v, %v", dv, err)
			}
		}
		// SignAndEnvelope to a password and a KEK at once.
		sae, err := ts.env.SignAndEnvelope(ctxT(t), &signsvrv1.SignAndEnvelopeRequest{Key: "ecdsa-sign", Data: data,
			RecipientPasswords: [][]byte{[]byte(pw)}, RecipientKekKeys: []string{"shared-kek"}, EnvelopeOptions: &signsvrv1.EnvelopeOptions{Pbkdf2Iterations: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		for _, dv := range []*signsvrv1.DecryptAndVerifyRequest{
			{Cms: sae.GetCms(), DecryptOptions: &signsvrv1.DecryptOptions{Password: []byte(pw)}},
			{Cms: sae.GetCms(), Key: "shared-kek"},
		} {
			res, err := ts.env.DecryptAndVerify(ctxT(t), dv)
			if err != nil || !res.GetVerified() || !bytes.Equal(res.GetContent(), data) {
				t.Fatalf("DecryptAndVerify of SignAndEnvelope: %v, %v", res, err)
			}
		}
		_, err = ts.env.SignAndEnvelope(ctxT(t), &signsvrv1.SignAndEnvelopeRequest{Key: "rsa-sign", Data: data, RecipientPasswords: [][]byte{[]byte(pw)},
			Format: signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_SIGNED_AND_ENVELOPED_DATA})
		wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	})

	t.Run("ecdh cofactor", func(t *testing.T) {
		kf := keyFile(t, "ecdsa-enc")
		leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
		der := openssl(t, nil, "cms", "-encrypt", "-binary", "-outform", "DER", "-in", in, "-aes-256-gcm", "-recip", leaf,
			"-keyopt", "ecdh_kdf_md:sha256", "-keyopt", "ecdh_cofactor_mode:1")
		d, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "ecdsa-enc", Cms: der})
		if err != nil || !bytes.Equal(d.GetData(), data) {
			t.Fatalf("Decrypt: %v", err)
		}
		bad := bytes.Clone(der)
		bad[len(bad)-1] ^= 1 // the GCM tag
		_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "ecdsa-enc", Cms: bad})
		wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
		e, err := ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"ecdsa-enc"},
			Options: &signsvrv1.EnvelopeOptions{EcdhCofactor: true}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(e.GetCms(), []byte{0x2b, 0x81, 0x04, 0x01, 0x0e, 0x01}) { // 1.3.132.1.14.1
			t.Fatal("the envelope does not name dhSinglePass-cofactorDH-sha256kdf-scheme")
		}
		out := openssl(t, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", writeFile(t, "cof.der", e.GetCms()), "-inkey", kf.KeyPath, "-recip", leaf)
		if !bytes.Equal(out, data) {
			t.Fatalf("openssl: %q", out)
		}
	})

	t.Run("cfca sm2", func(t *testing.T) {
		chain, err := devpki.ReadCertsPEM(keyFile(t, "sm2-enc").CertPath)
		if err != nil {
			t.Fatal(err)
		}
		der, err := pkcs7.EncryptCFCA(pkcs.SM4CBC, data, []*smx509.Certificate{chain[0]})
		if err != nil {
			t.Fatal(err)
		}
		d, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "sm2-enc", Cms: der})
		if err != nil || !bytes.Equal(d.GetData(), data) {
			t.Fatalf("Decrypt: %v", err)
		}
		_, err = ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "sm2-enc", Cms: flipPad(der)})
		wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
	})
}

// The audit record of a password call says "password" and holds neither the
// password nor a digest of it; the server log does not hold it either.
func TestAuditNeverHoldsPasswords(t *testing.T) {
	as := startAuditedServer(t, nil)
	const pw = "audit-must-not-see-this"
	e, err := as.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{RecipientPasswords: [][]byte{[]byte(pw)},
		Options: &signsvrv1.EnvelopeOptions{Pbkdf2Iterations: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Cms: e.GetCms(), Options: &signsvrv1.DecryptOptions{Password: []byte(pw)}}); err != nil {
		t.Fatal(err)
	}
	_, err = as.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Options: &signsvrv1.DecryptOptions{Password: []byte(pw)}})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	logs := as.logs.String()
	recs := as.stopAndRead(t)
	n := 0
	for _, r := range recs {
		if r["op"] != "envelope" && r["op"] != "decrypt" {
			continue
		}
		n++
		algs, _ := r["algs"].([]any)
		if len(algs) == 0 || algs[len(algs)-1] != "password" {
			t.Errorf("record %v does not say a password was used", r)
		}
		for _, field := range []string{"in", "out"} {
			if r[field] == sha([]byte(pw)) {
				t.Errorf("record %v digests the password", r)
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d envelope/decrypt records, want 3", n)
	}
	for _, f := range as.files(t) {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(pw)) {
			t.Fatal("the audit log holds the password")
		}
	}
	if strings.Contains(logs, pw) {
		t.Fatal("the server log holds the password")
	}
}

// Raw encryption leaves records named encrypt_raw and decrypt_raw with the scheme.
func TestAuditRawCrypt(t *testing.T) {
	as := startAuditedServer(t, nil)
	rc := signsvrv1.NewRawCryptServiceClient(as.conn)
	e, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "rsa-enc", Data: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "rsa-enc", Ciphertext: e.GetCiphertext()}); err != nil {
		t.Fatal(err)
	}
	_, err = rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "sm2-enc", Ciphertext: []byte("junk")})
	wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
	var got []string
	for _, r := range as.stopAndRead(t) {
		algs, _ := r["algs"].([]any)
		names := make([]string, len(algs))
		for i, a := range algs {
			names[i] = fmt.Sprint(a)
		}
		got = append(got, fmt.Sprintf("%v %v %v %s", r["op"], r["key"], r["code"], strings.Join(names, "|")))
	}
	want := []string{"encrypt_raw rsa-enc OK RSAES-OAEP|SHA-256", "decrypt_raw rsa-enc OK RSAES-OAEP|SHA-256", "decrypt_raw sm2-enc InvalidArgument SM2 encryption|SM3"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
