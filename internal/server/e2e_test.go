package server_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
)

var families = []string{"rsa", "ecdsa", "sm2"}

func leafOf(t *testing.T, name string) *smx509.Certificate {
	t.Helper()
	certs, err := devpki.ReadCertsPEM(keyFile(t, name).CertPath)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// wantVerified checks a verification result: verified, one signer with both verdicts
// good, and the expected content.
func wantVerified(t *testing.T, verified bool, signers []*signsvrv1.SignerResult, content, want []byte) {
	t.Helper()
	if !verified || len(signers) != 1 {
		t.Fatalf("verified = %v with %d signers, want verified with 1: %v", verified, len(signers), signers)
	}
	s := signers[0]
	if !s.GetVerified() || !s.GetSignature().GetValid() ||
		s.GetCertificateVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD {
		t.Fatalf("signer not verified: %v", s)
	}
	if len(s.GetCertificateVerdict().GetChain()) != 2 {
		t.Errorf("certificate chain has %d certificates, want leaf + development root", len(s.GetCertificateVerdict().GetChain()))
	}
	if !bytes.Equal(content, want) {
		t.Errorf("content = %q, want %q", content, want)
	}
}

func TestSignVerifyEveryFamily(t *testing.T) {
	ts := startServer(t)
	data := []byte("customs declaration 2026-0001\n")
	for _, fam := range families {
		for _, detached := range []bool{false, true} {
			name := fam
			if detached {
				name += "/detached"
			}
			t.Run(name, func(t *testing.T) {
				ctx := ctxT(t)
				s, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: fam + "-sign", Data: data, Detached: detached})
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				req := &signsvrv1.VerifyRequest{Cms: s.GetCms()}
				if detached {
					req.Data = data
					if bytes.Contains(s.GetCms(), data) {
						t.Errorf("detached signature contains the content")
					}
				}
				v, err := ts.sign.Verify(ctx, req)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
				if !strings.Contains(v.GetSigners()[0].GetSubject(), fam+"-sign") {
					t.Errorf("signer subject %q", v.GetSigners()[0].GetSubject())
				}
				if v.GetSigners()[0].GetSigningTime() == nil {
					t.Errorf("no signing time")
				}
			})
		}
	}
	ts.assertServing(t)
}

func TestSignOptions(t *testing.T) {
	ts := startServer(t)
	data := []byte("options")
	for _, tc := range []struct {
		key  string
		opts *signsvrv1.SignOptions
	}{
		{"rsa-sign", &signsvrv1.SignOptions{RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS, Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384}},
		{"rsa-sign", &signsvrv1.SignOptions{SignerId: signsvrv1.SignerIdType_SIGNER_ID_TYPE_SUBJECT_KEY_ID, Certificates: signsvrv1.CertInclusion_CERT_INCLUSION_CHAIN}},
		{"ecdsa-sign", &signsvrv1.SignOptions{Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512, NoSignedAttributes: true}},
		{"sm2-sign", &signsvrv1.SignOptions{Sm2Dialect: signsvrv1.Sm2Dialect_SM2_DIALECT_PKCS7, Sm2UserId: []byte("alice@example")}},
		{"sm2-sign", &signsvrv1.SignOptions{Sm2Dialect: signsvrv1.Sm2Dialect_SM2_DIALECT_GMT0010, Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3}},
	} {
		t.Run(tc.key+"/"+strings.ReplaceAll(tc.opts.String(), " ", ","), func(t *testing.T) {
			ctx := ctxT(t)
			s, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: tc.key, Data: data, Options: tc.opts})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms(),
				Options: &signsvrv1.VerifyOptions{Sm2UserId: tc.opts.GetSm2UserId()}})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
		})
	}
	// A certificate-less signature verifies when the verifier supplies the certificate.
	ctx := ctxT(t)
	s, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data,
		Options: &signsvrv1.SignOptions{Certificates: signsvrv1.CertInclusion_CERT_INCLUSION_NONE}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms()})
	if err != nil {
		t.Fatal(err)
	}
	if v.GetVerified() || v.GetSigners()[0].GetCertificateVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_NOT_CHECKED {
		t.Errorf("certificate-less signature without certificates: %v", v)
	}
	v, err = ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms(),
		Options: &signsvrv1.VerifyOptions{Certificates: [][]byte{leafOf(t, "ecdsa-sign").Raw}}})
	if err != nil {
		t.Fatal(err)
	}
	wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
}

func TestTamperedSignatureIsAResult(t *testing.T) {
	ts := startServer(t)
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			ctx := ctxT(t)
			data := []byte("pay 100 to ACME")
			s, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: fam + "-sign", Data: data, Detached: true})
			if err != nil {
				t.Fatal(err)
			}
			// The content was changed after signing.
			v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms(), Data: []byte("pay 900 to ACME")})
			if err != nil {
				t.Fatalf("a tampered message must be an OK status with a failed result, got %v", err)
			}
			if v.GetVerified() || len(v.GetSigners()) != 1 || v.GetSigners()[0].GetSignature().GetValid() ||
				v.GetSigners()[0].GetSignature().GetReason() == "" {
				t.Fatalf("tampered content verified: %v", v)
			}
			if v.GetSigners()[0].GetCertificateVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD {
				t.Errorf("the certificate verdict should still be good: %v", v.GetSigners()[0].GetCertificateVerdict())
			}
			// The signature value itself was changed: flip a bit near the end, where the
			// signature value sits in a certificate-carrying SignedData.
			att, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: fam + "-sign", Data: data})
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(att.GetCms())
			bad[len(bad)-3] ^= 0x01
			v, err = ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: bad})
			if err != nil {
				t.Fatalf("a tampered signature must be an OK status with a failed result, got %v", err)
			}
			if v.GetVerified() || v.GetSigners()[0].GetSignature().GetValid() {
				t.Fatalf("tampered signature verified: %v", v)
			}
		})
	}
	ts.assertServing(t)
}

func TestMalformedCMSIsInvalidArgument(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	for _, in := range [][]byte{{0x30}, {0x30, 0x81}, []byte("hello, not CMS"), {0x30, 0x03, 0x06, 0x01, 0x00}} {
		_, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: in})
		wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
		_, err = ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: in})
		wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
	}
	ts.assertServing(t)
}

func TestEnvelopeDecryptEveryFamily(t *testing.T) {
	ts := startServer(t)
	data := []byte("confidential manifest")
	for _, fam := range families {
		for _, byCert := range []bool{false, true} {
			name := fam + "/by-name"
			req := &signsvrv1.EnvelopeRequest{Data: data}
			if byCert {
				name = fam + "/by-cert"
				req.RecipientCerts = [][]byte{leafOf(t, fam+"-enc").Raw}
			} else {
				req.RecipientKeys = []string{fam + "-enc"}
			}
			t.Run(name, func(t *testing.T) {
				ctx := ctxT(t)
				e, err := ts.env.Envelope(ctx, req)
				if err != nil {
					t.Fatalf("Envelope: %v", err)
				}
				if bytes.Contains(e.GetCms(), data) {
					t.Fatalf("the envelope holds the plaintext")
				}
				d, err := ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: fam + "-enc", Cms: e.GetCms()})
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				if !bytes.Equal(d.GetData(), data) {
					t.Fatalf("Decrypt = %q, want %q", d.GetData(), data)
				}
			})
		}
	}
	t.Run("ciphers", func(t *testing.T) {
		for _, c := range []signsvrv1.Cipher{signsvrv1.Cipher_CIPHER_AES128_CBC, signsvrv1.Cipher_CIPHER_AES256_CBC,
			signsvrv1.Cipher_CIPHER_AES128_GCM, signsvrv1.Cipher_CIPHER_AES256_GCM} {
			for _, scheme := range []signsvrv1.RsaEncryptionScheme{signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_OAEP, signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15} {
				ctx := ctxT(t)
				e, err := ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"rsa-enc", "ecdsa-enc"},
					Options: &signsvrv1.EnvelopeOptions{Cipher: c, RsaScheme: scheme}})
				if err != nil {
					t.Fatalf("Envelope %v %v: %v", c, scheme, err)
				}
				for _, k := range []string{"rsa-enc", "ecdsa-enc"} {
					d, err := ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: k, Cms: e.GetCms()})
					if err != nil || !bytes.Equal(d.GetData(), data) {
						t.Fatalf("Decrypt %s of %v %v: %v", k, c, scheme, err)
					}
				}
			}
		}
		for _, c := range []signsvrv1.Cipher{signsvrv1.Cipher_CIPHER_SM4_CBC, signsvrv1.Cipher_CIPHER_SM4_GCM} {
			ctx := ctxT(t)
			e, err := ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"sm2-enc"},
				Options: &signsvrv1.EnvelopeOptions{Cipher: c}})
			if err != nil {
				t.Fatalf("Envelope %v: %v", c, err)
			}
			d, err := ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "sm2-enc", Cms: e.GetCms()})
			if err != nil || !bytes.Equal(d.GetData(), data) {
				t.Fatalf("Decrypt of %v: %v", c, err)
			}
		}
	})
	ts.assertServing(t)
}

func TestDecryptFailuresAreIndistinguishable(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	e, err := ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: []byte("secret"), RecipientKeys: []string{"rsa-enc"},
		Options: &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES256_CBC}})
	if err != nil {
		t.Fatal(err)
	}
	// The wrong key: the envelope is not addressed to it.
	_, errWrongKey := ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "ecdsa-enc", Cms: e.GetCms()})
	stWrongKey := wantStatus(t, errWrongKey, codes.InvalidArgument, "DECRYPTION_FAILED")
	// The right key, a corrupted last ciphertext block: bad content padding. The
	// corrupted block decrypts to random bytes, which end in valid padding about once
	// in 256 envelopes (CBC has no integrity: that garbage is returned, as for any CBC
	// envelope), so the corruption is varied until the padding is bad.
	var errPadding error
	for mask := byte(0x55); errPadding == nil; mask++ {
		bad := bytes.Clone(e.GetCms())
		bad[len(bad)-1] ^= mask
		_, errPadding = ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: bad})
	}
	stPadding := wantStatus(t, errPadding, codes.InvalidArgument, "DECRYPTION_FAILED")
	// The same for DecryptAndVerify, whose plaintext here is not a SignedData.
	_, errInner := ts.env.DecryptAndVerify(ctx, &signsvrv1.DecryptAndVerifyRequest{Key: "rsa-enc", Cms: e.GetCms()})
	stInner := wantStatus(t, errInner, codes.InvalidArgument, "DECRYPTION_FAILED")
	if stWrongKey.Message() != stPadding.Message() || stPadding.Message() != stInner.Message() {
		t.Errorf("decryption failures are distinguishable: %q / %q / %q", stWrongKey.Message(), stPadding.Message(), stInner.Message())
	}
	for _, m := range []string{"padding", "tag", "recipient", "key transport", "unwrap"} {
		if strings.Contains(strings.ToLower(stPadding.Message()), m) {
			t.Errorf("decryption error names the step: %q", stPadding.Message())
		}
	}
	ts.assertServing(t)
}

func TestSignAndEnvelopeThenDecryptAndVerify(t *testing.T) {
	ts := startServer(t)
	data := []byte("signed and sealed")
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			ctx := ctxT(t)
			e, err := ts.env.SignAndEnvelope(ctx, &signsvrv1.SignAndEnvelopeRequest{
				Key: fam + "-sign", Data: data, RecipientKeys: []string{fam + "-enc"},
			})
			if err != nil {
				t.Fatalf("SignAndEnvelope: %v", err)
			}
			v, err := ts.env.DecryptAndVerify(ctx, &signsvrv1.DecryptAndVerifyRequest{Key: fam + "-enc", Cms: e.GetCms()})
			if err != nil {
				t.Fatalf("DecryptAndVerify: %v", err)
			}
			wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
		})
	}
	_, err := ts.env.SignAndEnvelope(ctxT(t), &signsvrv1.SignAndEnvelopeRequest{Key: "no-such-key", Data: data, RecipientKeys: []string{"rsa-enc"}})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
}

func TestBatchesFailItemByItem(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	items := []*signsvrv1.SignRequest{
		{Key: "rsa-sign", Data: []byte("one")},
		{Key: "no-such-key", Data: []byte("two")},
		{Key: "ecdsa-sign", Data: []byte("three")},
		{Key: "rsa-enc", Data: []byte("four")},
		{Key: "sm2-sign", Data: []byte("five")},
	}
	sb, err := ts.sign.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: items})
	if err != nil {
		t.Fatalf("SignBatch: %v", err)
	}
	if len(sb.GetResults()) != len(items) {
		t.Fatalf("%d results for %d items", len(sb.GetResults()), len(items))
	}
	wantErr := map[int]string{1: "KEY_NOT_FOUND", 3: "KEY_USAGE_NOT_ALLOWED"}
	var vitems []*signsvrv1.VerifyRequest
	for i, r := range sb.GetResults() {
		if reason, bad := wantErr[i]; bad {
			if r.GetError().GetReason() != reason || len(r.GetCms()) != 0 {
				t.Errorf("item %d: %v, want error %s", i, r, reason)
			}
			vitems = append(vitems, &signsvrv1.VerifyRequest{Cms: []byte("garbage")})
			continue
		}
		if r.GetError() != nil || len(r.GetCms()) == 0 {
			t.Fatalf("item %d failed: %v", i, r.GetError())
		}
		vitems = append(vitems, &signsvrv1.VerifyRequest{Cms: r.GetCms()})
	}
	// One more: a valid signature over other content (detached, wrong data).
	det, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x"), Detached: true})
	if err != nil {
		t.Fatal(err)
	}
	vitems = append(vitems, &signsvrv1.VerifyRequest{Cms: det.GetCms(), Data: []byte("y")})
	vb, err := ts.sign.VerifyBatch(ctx, &signsvrv1.VerifyBatchRequest{Items: vitems})
	if err != nil {
		t.Fatalf("VerifyBatch: %v", err)
	}
	for i, r := range vb.GetResults() {
		switch {
		case i < len(items) && wantErr[i] != "":
			if r.GetError().GetReason() != "MALFORMED_INPUT" || r.GetError().GetCode() != uint32(codes.InvalidArgument) {
				t.Errorf("verify item %d: %v, want MALFORMED_INPUT", i, r)
			}
		case i == len(items):
			if r.GetError() != nil || r.GetResult().GetVerified() {
				t.Errorf("verify item %d (wrong content): %v, want a not-verified result", i, r)
			}
		default:
			if r.GetError() != nil || !r.GetResult().GetVerified() || !bytes.Equal(r.GetResult().GetContent(), items[i].GetData()) {
				t.Errorf("verify item %d: %v", i, r)
			}
		}
	}
}

func TestSignRawVerifyRawEveryFamily(t *testing.T) {
	ts := startServer(t)
	data := []byte("GM/T 0029 SignData")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "data"), data, 0o600)
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			ctx := ctxT(t)
			r, err := ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: fam + "-sign", Data: data})
			if err != nil {
				t.Fatalf("SignRaw: %v", err)
			}
			leaf := leafOf(t, fam+"-sign")
			if !bytes.Equal(r.GetCertificate(), leaf.Raw) {
				t.Errorf("SignRaw returned another certificate")
			}
			// Checked independently of the server.
			var ok bool
			switch pub := leaf.PublicKey.(type) {
			case *rsa.PublicKey:
				h := sha256.Sum256(data)
				ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], r.GetSignature()) == nil
			case *ecdsa.PublicKey:
				if fam == "sm2" {
					ok = sm2.VerifyASN1WithSM2(pub, nil, data, r.GetSignature())
				} else {
					h := sha256.Sum256(data)
					ok = ecdsa.VerifyASN1(pub, h[:], r.GetSignature())
				}
			}
			if !ok {
				t.Fatalf("the raw %s signature does not verify independently", fam)
			}
			if fam != "sm2" {
				// And by OpenSSL.
				pubPEM := openssl(t, nil, "x509", "-in", keyFile(t, fam+"-sign").CertPath, "-pubkey", "-noout")
				pubFile := writeFile(t, "pub.pem", pubPEM)
				sigFile := writeFile(t, "sig", r.GetSignature())
				out := openssl(t, nil, "dgst", "-sha256", "-verify", pubFile, "-signature", sigFile, filepath.Join(dir, "data"))
				if !strings.Contains(string(out), "Verified OK") {
					t.Fatalf("openssl: %s", out)
				}
			}
			for _, by := range []*signsvrv1.VerifyRawRequest{
				{Key: fam + "-sign"}, {Certificate: leaf.Raw},
			} {
				req := proto.Clone(by).(*signsvrv1.VerifyRawRequest)
				req.Data, req.Signature = data, r.GetSignature()
				v, err := ts.sign.VerifyRaw(ctx, req)
				if err != nil {
					t.Fatalf("VerifyRaw: %v", err)
				}
				if !v.GetVerified() || !v.GetSignature().GetValid() ||
					v.GetCertificateVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD {
					t.Fatalf("VerifyRaw: %v", v)
				}
				req.Data = []byte("other data")
				v, err = ts.sign.VerifyRaw(ctx, req)
				if err != nil {
					t.Fatalf("VerifyRaw of a bad signature must be a result: %v", err)
				}
				if v.GetVerified() || v.GetSignature().GetValid() || v.GetSignature().GetReason() != "signature-invalid" {
					t.Fatalf("VerifyRaw of other data: %v", v)
				}
			}
		})
	}
	t.Run("rsa-pss-sha384", func(t *testing.T) {
		ctx := ctxT(t)
		r, err := ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "rsa-sign", Data: data,
			Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384, RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetSignatureAlgorithm() != "1.2.840.113549.1.1.10" {
			t.Errorf("algorithm %s", r.GetSignatureAlgorithm())
		}
		v, err := ts.sign.VerifyRaw(ctx, &signsvrv1.VerifyRawRequest{Key: "rsa-sign", Data: data, Signature: r.GetSignature(),
			Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384, RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS})
		if err != nil || !v.GetVerified() {
			t.Fatalf("VerifyRaw PSS: %v %v", v, err)
		}
	})
	t.Run("sm2-user-id", func(t *testing.T) {
		ctx := ctxT(t)
		uid := []byte("alice@customs")
		r, err := ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "sm2-sign", Data: data, Sm2UserId: uid})
		if err != nil {
			t.Fatal(err)
		}
		if !sm2.VerifyASN1WithSM2(leafOf(t, "sm2-sign").PublicKey.(*ecdsa.PublicKey), uid, data, r.GetSignature()) {
			t.Fatal("the SM2 signature does not carry the given user ID")
		}
		v, err := ts.sign.VerifyRaw(ctx, &signsvrv1.VerifyRawRequest{Key: "sm2-sign", Data: data, Signature: r.GetSignature()})
		if err != nil || v.GetSignature().GetValid() {
			t.Fatalf("verified with the default user ID: %v %v", v, err)
		}
	})
}
