package server_test

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// These tests hold the server to an independent CMS implementation: OpenSSL 3 verifies
// and decrypts what the server made, and the server verifies and decrypts what
// OpenSSL made. OpenSSL 3.0 cannot make SM2 CMS, so SM2 is covered by
// the server's own round trips and, for envelopes, by OpenSSL decrypting the PKCS#7
// dialect.

func TestOpenSSLVerifiesServerSignatures(t *testing.T) {
	ts := startServer(t)
	data := []byte("verified by openssl\n")
	dataFile := writeFile(t, "data", data)
	for _, tc := range []struct {
		name     string
		key      string
		detached bool
		opts     *signsvrv1.SignOptions
	}{
		{"rsa", "rsa-sign", false, nil},
		{"rsa/detached", "rsa-sign", true, nil},
		{"rsa/pss-sha512", "rsa-sign", false, &signsvrv1.SignOptions{RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS, Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512}},
		{"rsa/ski-chain", "rsa-sign", false, &signsvrv1.SignOptions{SignerId: signsvrv1.SignerIdType_SIGNER_ID_TYPE_SUBJECT_KEY_ID, Certificates: signsvrv1.CertInclusion_CERT_INCLUSION_CHAIN}},
		{"ecdsa", "ecdsa-sign", false, nil},
		{"ecdsa/detached-sha384", "ecdsa-sign", true, &signsvrv1.SignOptions{Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: tc.key, Data: data, Detached: tc.detached, Options: tc.opts})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			sig := writeFile(t, "sig.der", s.GetCms())
			args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-CAfile", pki.RootsPath}
			if tc.detached {
				args = append(args, "-content", dataFile)
			}
			out := openssl(t, nil, args...)
			if !bytes.Equal(out, data) {
				t.Fatalf("openssl gives content %q, want %q", out, data)
			}
		})
	}
}

func TestOpenSSLDecryptsServerEnvelopes(t *testing.T) {
	ts := startServer(t)
	data := []byte("decrypted by openssl\n")
	for _, tc := range []struct {
		name string
		key  string
		opts *signsvrv1.EnvelopeOptions
	}{
		{"rsa/default", "rsa-enc", nil},
		{"rsa/oaep-aes128-cbc", "rsa-enc", &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES128_CBC}},
		{"rsa/pkcs1-aes256-cbc", "rsa-enc", &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES256_CBC, RsaScheme: signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15}},
		{"rsa/aes128-gcm-ski", "rsa-enc", &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES128_GCM, RecipientId: signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_SUBJECT_KEY_ID}},
		{"ecdsa/default", "ecdsa-enc", nil},
		{"ecdsa/aes256-cbc", "ecdsa-enc", &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES256_CBC}},
		{"sm2/pkcs7-sm4-cbc", "sm2-enc", &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_SM4_CBC, Sm2Dialect: signsvrv1.Sm2Dialect_SM2_DIALECT_PKCS7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{tc.key}, Options: tc.opts})
			if err != nil {
				t.Fatalf("Envelope: %v", err)
			}
			kf := keyFile(t, tc.key)
			leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
			in := writeFile(t, "env.der", e.GetCms())
			out := openssl(t, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", in, "-inkey", kf.KeyPath, "-recip", leaf)
			if !bytes.Equal(out, data) {
				t.Fatalf("openssl gives %q, want %q", out, data)
			}
		})
	}
}

func TestServerVerifiesOpenSSLSignatures(t *testing.T) {
	ts := startServer(t)
	data := []byte("signed by openssl\n")
	dataFile := writeFile(t, "data", data)
	for _, tc := range []struct {
		name     string
		key      string
		detached bool
		extra    []string
	}{
		{"rsa", "rsa-sign", false, nil},
		{"rsa/detached", "rsa-sign", true, nil},
		{"rsa/pss", "rsa-sign", false, []string{"-keyopt", "rsa_padding_mode:pss"}},
		{"rsa/keyid-sha512", "rsa-sign", false, []string{"-keyid", "-md", "sha512"}},
		{"ecdsa", "ecdsa-sign", false, nil},
		{"ecdsa/detached-noattr", "ecdsa-sign", true, []string{"-noattr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kf := keyFile(t, tc.key)
			leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
			args := []string{"cms", "-sign", "-binary", "-in", dataFile, "-signer", leaf, "-inkey", kf.KeyPath, "-outform", "DER"}
			if !tc.detached {
				args = append(args, "-nodetach")
			}
			args = append(args, tc.extra...)
			sig := openssl(t, nil, args...)
			req := &signsvrv1.VerifyRequest{Cms: sig}
			if tc.detached {
				req.Data = data
			}
			v, err := ts.sign.Verify(ctxT(t), req)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
		})
	}
	t.Run("streaming-ber", func(t *testing.T) {
		// -stream with PEM/SMIME writes indefinite-length BER; DER output of -stream too.
		kf := keyFile(t, "rsa-sign")
		leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
		sig := openssl(t, nil, "cms", "-sign", "-binary", "-stream", "-nodetach", "-in", dataFile, "-signer", leaf,
			"-inkey", kf.KeyPath, "-outform", "DER")
		v, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: sig})
		if err != nil {
			t.Fatalf("Verify of BER: %v", err)
		}
		wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
	})
}

func TestServerDecryptsOpenSSLEnvelopes(t *testing.T) {
	ts := startServer(t)
	data := []byte("encrypted by openssl\n")
	dataFile := writeFile(t, "data", data)
	for _, tc := range []struct {
		name    string
		key     string
		cipher  string
		keyopts []string // after -recip, as openssl wants them
		legacy  bool
	}{
		{"rsa/pkcs1-aes256-cbc", "rsa-enc", "-aes-256-cbc", nil, false},
		{"rsa/oaep-aes128-cbc", "rsa-enc", "-aes-128-cbc", []string{"-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"}, false},
		{"rsa/aes256-gcm", "rsa-enc", "-aes-256-gcm", nil, false},
		{"rsa/keyid", "rsa-enc", "-aes-256-cbc", []string{"-keyid"}, false},
		{"ecdsa/ecdh-sha256-aes256-cbc", "ecdsa-enc", "-aes-256-cbc", []string{"-keyopt", "ecdh_kdf_md:sha256"}, false},
		{"ecdsa/ecdh-sha256-aes128-gcm", "ecdsa-enc", "-aes-128-gcm", []string{"-keyopt", "ecdh_kdf_md:sha256"}, false},
		// OpenSSL's default ECDH KDF uses SHA-1, which is read as it is.
		{"ecdsa/ecdh-sha1-default", "ecdsa-enc", "-aes-256-cbc", nil, false},
		// 3DES is read only with allow_legacy.
		{"rsa/des3-legacy", "rsa-enc", "-des3", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kf := keyFile(t, tc.key)
			leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
			args := []string{"cms", "-encrypt", "-binary", "-in", dataFile, "-outform", "DER", tc.cipher, "-recip", leaf}
			env := openssl(t, nil, append(args, tc.keyopts...)...)
			if tc.legacy {
				_, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: tc.key, Cms: env})
				st := wantStatus(t, err, codes.InvalidArgument, "UNSUPPORTED")
				if !strings.Contains(st.Message(), "legacy") {
					t.Errorf("the refusal does not say why: %q", st.Message())
				}
			}
			d, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: tc.key, Cms: env,
				Options: &signsvrv1.DecryptOptions{AllowLegacy: tc.legacy}})
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(d.GetData(), data) {
				t.Fatalf("Decrypt = %q, want %q", d.GetData(), data)
			}
		})
	}
	t.Run("sign-then-encrypt", func(t *testing.T) {
		// OpenSSL's nested form, as DecryptAndVerify reads it.
		sk := keyFile(t, "ecdsa-sign")
		ek := keyFile(t, "rsa-enc")
		signer := writeFile(t, "signer.pem", openssl(t, nil, "x509", "-in", sk.CertPath))
		recip := writeFile(t, "recip.pem", openssl(t, nil, "x509", "-in", ek.CertPath))
		signed := writeFile(t, "signed.der", openssl(t, nil, "cms", "-sign", "-binary", "-nodetach", "-in", dataFile,
			"-signer", signer, "-inkey", sk.KeyPath, "-outform", "DER"))
		env := openssl(t, nil, "cms", "-encrypt", "-binary", "-in", signed, "-inform", "DER", "-outform", "DER",
			"-aes-256-gcm", "-recip", recip)
		v, err := ts.env.DecryptAndVerify(ctxT(t), &signsvrv1.DecryptAndVerifyRequest{Key: "rsa-enc", Cms: env})
		if err != nil {
			t.Fatalf("DecryptAndVerify: %v", err)
		}
		wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
	})
}
