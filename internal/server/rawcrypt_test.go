package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/pem"
	"os"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
)

// pubKeyFile writes the public key of a development key's certificate as PEM.
func pubKeyFile(t *testing.T, name string) string {
	t.Helper()
	return writeFile(t, "pub.pem", openssl(t, nil, "x509", "-in", keyFile(t, name).CertPath, "-pubkey", "-noout"))
}

// sm2PrivateKey reads a development SM2 key, for gmsm as the independent peer.
func sm2PrivateKey(t *testing.T, name string) *sm2.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(keyFile(t, name).KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	k, err := smx509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*sm2.PrivateKey)
}

// RSA raw encryption against openssl pkeyutl in both directions; a tampered OAEP
// ciphertext fails with DECRYPTION_FAILED, a tampered PKCS#1 v1.5 one answers with
// the same synthetic message every time (implicit rejection), never an error.
func TestRawCryptRSAWithOpenSSL(t *testing.T) {
	ts := startServer(t)
	rc := signsvrv1.NewRawCryptServiceClient(ts.conn)
	data := []byte("a 32-byte session key, say......")
	in := writeFile(t, "data", data)
	pub := pubKeyFile(t, "rsa-enc")
	kf := keyFile(t, "rsa-enc")
	oaep := func(md string) []string {
		return []string{"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:" + md, "-pkeyopt", "rsa_mgf1_md:" + md}
	}
	for _, tc := range []struct {
		name   string
		args   []string
		scheme signsvrv1.RsaEncryptionScheme
		digest signsvrv1.DigestAlgorithm
	}{
		{"oaep-sha256 (default)", oaep("sha256"), 0, 0},
		{"oaep-sha384", oaep("sha384"), signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_OAEP, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384},
		{"oaep-sha512", oaep("sha512"), signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_OAEP, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512},
		{"pkcs1", nil, signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := openssl(t, nil, append([]string{"pkeyutl", "-encrypt", "-pubin", "-inkey", pub, "-in", in}, tc.args...)...)
			d, err := rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "rsa-enc", Ciphertext: ct, RsaScheme: tc.scheme, OaepDigest: tc.digest})
			if err != nil || !bytes.Equal(d.GetData(), data) {
				t.Fatalf("DecryptRaw of openssl's: %v", err)
			}
			e, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "rsa-enc", Data: data, RsaScheme: tc.scheme, OaepDigest: tc.digest})
			if err != nil {
				t.Fatal(err)
			}
			ours := writeFile(t, "ct", e.GetCiphertext())
			if out := openssl(t, nil, append([]string{"pkeyutl", "-decrypt", "-inkey", kf.KeyPath, "-in", ours}, tc.args...)...); !bytes.Equal(out, data) {
				t.Fatalf("openssl decrypts ours to %q", out)
			}
			bad := bytes.Clone(ct)
			bad[len(bad)/2] ^= 1
			req := &signsvrv1.DecryptRawRequest{Key: "rsa-enc", Ciphertext: bad, RsaScheme: tc.scheme, OaepDigest: tc.digest}
			d1, err := rc.DecryptRaw(ctxT(t), req)
			if tc.scheme != signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15 {
				wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
				return
			}
			if err != nil {
				t.Fatalf("a bad PKCS#1 v1.5 padding gave an error: %v", err)
			}
			d2, err := rc.DecryptRaw(ctxT(t), req)
			if err != nil || !bytes.Equal(d1.GetData(), d2.GetData()) || bytes.Equal(d1.GetData(), data) {
				t.Fatalf("implicit rejection: %x then %x (%v)", d1.GetData(), d2.GetData(), err)
			}
		})
	}
	_, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "rsa-enc", Data: make([]byte, 300)})
	wantStatus(t, err, codes.InvalidArgument, "TOO_LARGE")
	_, err = rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "rsa-enc", Data: data, RsaScheme: signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15, OaepDigest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	_, err = rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "rsa-enc", Ciphertext: make([]byte, server.DefaultMaxRawBytes+1)})
	wantStatus(t, err, codes.InvalidArgument, "TOO_LARGE")
	_, err = rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "ecdsa-enc", Data: data})
	wantStatus(t, err, codes.FailedPrecondition, "CERTIFICATE_UNUSABLE")
}

// SM2 raw encryption: openssl pkeyutl (OpenSSL 3.0, SM2Cipher ASN.1) both ways, and
// gmsm's raw encodings (C1C3C2, C1C2C3, CFCA's C1C2C3 without 04) both ways; a
// tampered ciphertext fails with DECRYPTION_FAILED in every encoding.
func TestRawCryptSM2(t *testing.T) {
	ts := startServer(t)
	rc := signsvrv1.NewRawCryptServiceClient(ts.conn)
	data := []byte("sm2 raw encryption")
	in := writeFile(t, "data", data)
	pub := pubKeyFile(t, "sm2-enc")
	kf := keyFile(t, "sm2-enc")
	priv := sm2PrivateKey(t, "sm2-enc")

	ct := openssl(t, nil, "pkeyutl", "-encrypt", "-pubin", "-inkey", pub, "-in", in)
	d, err := rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "sm2-enc", Ciphertext: ct})
	if err != nil || !bytes.Equal(d.GetData(), data) {
		t.Fatalf("DecryptRaw of openssl's: %v", err)
	}
	e, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "sm2-enc", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if out := openssl(t, nil, "pkeyutl", "-decrypt", "-inkey", kf.KeyPath, "-in", writeFile(t, "ct", e.GetCiphertext())); !bytes.Equal(out, data) {
		t.Fatalf("openssl decrypts ours to %q", out)
	}

	type enc = signsvrv1.Sm2CiphertextEncoding
	for _, tc := range []struct {
		name string
		enc  enc
		opts *sm2.EncrypterOpts
		cut  bool // drop the 04 (CFCA)
	}{
		{"asn1", signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_ASN1, sm2.ASN1EncrypterOpts, false},
		{"c1c3c2", signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C3C2, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C3C2), false},
		{"c1c2c3", signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C2C3), false},
		{"c1c2c3 read without 04", signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C2C3), true},
		{"cfca", signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3_NO_PREFIX, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C2C3), true},
		{"cfca, encoding unspecified", 0, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C2C3), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := sm2.Encrypt(rand.Reader, &priv.PublicKey, data, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.cut {
				ct = ct[1:]
			}
			d, err := rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "sm2-enc", Ciphertext: ct, Sm2Encoding: tc.enc})
			if err != nil || !bytes.Equal(d.GetData(), data) {
				t.Fatalf("DecryptRaw of gmsm's: %v", err)
			}
			bad := bytes.Clone(ct)
			bad[len(bad)-1] ^= 1
			_, err = rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "sm2-enc", Ciphertext: bad, Sm2Encoding: tc.enc})
			wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")

			e, err := rc.EncryptRaw(ctxT(t), &signsvrv1.EncryptRawRequest{Key: "sm2-enc", Data: data, Sm2Encoding: tc.enc})
			if err != nil {
				t.Fatal(err)
			}
			ours := e.GetCiphertext()
			if tc.cut && tc.enc != signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3_NO_PREFIX {
				return // we write the 04 for C1C2C3 and ASN.1 by default
			}
			if tc.cut {
				ours = append([]byte{0x04}, ours...) // gmsm reads only the prefixed raw form
			}
			var dopts *sm2.DecrypterOpts = sm2.ASN1DecrypterOpts
			if tc.enc != signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_ASN1 {
				order := sm2.C1C2C3
				if tc.enc == signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C3C2 {
					order = sm2.C1C3C2
				}
				dopts = sm2.NewPlainDecrypterOpts(order)
			}
			pt, err := priv.Decrypt(nil, ours, dopts)
			if err != nil || !bytes.Equal(pt, data) {
				t.Fatalf("gmsm decrypts ours: %q, %v", pt, err)
			}
		})
	}
	_, err = rc.DecryptRaw(ctxT(t), &signsvrv1.DecryptRawRequest{Key: "sm2-enc", Ciphertext: ct, RsaScheme: signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_OAEP})
	wantStatus(t, err, codes.InvalidArgument, "UNSUPPORTED")
}
