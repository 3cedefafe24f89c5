package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/testca"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
)

// gmsslFixtures holds SignedData written by GmSSL 3.x's cmssign (see
// scripts/gmssl-fixtures.sh): no signed attributes, SM2 over SM3 of the DER
// EncapsulatedContentInfo, no Z value.
const gmsslFixtures = "../../pkg/sign/testdata/gmssl"

func gmsslPEM(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gmsslFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	return block.Bytes
}

// gmsslServer is a server that also trusts the GmSSL fixtures' CA, with its clock
// inside the fixture certificates' validity. allowDefault is its
// verify.allow_sm2_without_z.
func gmsslServer(t *testing.T, allowDefault bool, opts ...serverOption) *testServer {
	t.Helper()
	ca, err := smx509.ParseCertificate(gmsslPEM(t, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Config{Anchors: append([]*smx509.Certificate{ca}, pki.Roots...),
		Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	at := ca.NotBefore.Add(24 * time.Hour)
	return startServer(t, append([]serverOption{func(o *server.Options) {
		o.Validator = v
		o.Now = func() time.Time { return at }
		o.AllowSM2WithoutZ = allowDefault
	}}, opts...)...)
}

// TestGmSSLSignedData: GmSSL's SignedData verifies through Verify, VerifyBatch and
// DecryptAndVerify when the request or the deployment allows the form without Z,
// flagged in the signer result; refused otherwise; a tampered copy always fails.
func TestGmSSLSignedData(t *testing.T) {
	signed := gmsslPEM(t, "signed.pem")
	content, err := os.ReadFile(filepath.Join(gmsslFixtures, "content.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(signed)
	tampered[bytes.Index(tampered, content)] ^= 0x20

	for _, tc := range []struct {
		name         string
		allowDefault bool
		request      *bool // VerifyOptions.allow_sm2_without_z
		want         bool
	}{
		{"default-off", false, nil, false},
		{"request-on", false, proto.Bool(true), true},
		{"deployment-on", true, nil, true},
		{"deployment-on-request-off", true, proto.Bool(false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := gmsslServer(t, tc.allowDefault)
			opts := &signsvrv1.VerifyOptions{AllowSm2WithoutZ: tc.request}
			check := func(what string, verified bool, signers []*signsvrv1.SignerResult, got []byte, want bool) {
				t.Helper()
				if len(signers) != 1 {
					t.Fatalf("%s: %d signers", what, len(signers))
				}
				s := signers[0]
				if verified != want || s.GetSignature().GetValid() != want || s.GetSm2WithoutZ() != want {
					t.Fatalf("%s: verified %v, signer %v; want %v", what, verified, s, want)
				}
				if !want && s.GetSignature().GetReason() != "signature-invalid" {
					t.Errorf("%s: reason %q", what, s.GetSignature().GetReason())
				}
				if want {
					if st := s.GetCertificateVerdict().GetStatus(); st != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD {
						t.Errorf("%s: certificate %v", what, s.GetCertificateVerdict())
					}
					if !bytes.Equal(got, content) {
						t.Errorf("%s: content %q", what, got)
					}
				}
			}
			v, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: signed, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			check("Verify", v.GetVerified(), v.GetSigners(), v.GetContent(), tc.want)
			v, err = ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: tampered, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			check("Verify of a tampered copy", v.GetVerified(), v.GetSigners(), nil, false)

			b, err := ts.sign.VerifyBatch(ctxT(t), &signsvrv1.VerifyBatchRequest{Items: []*signsvrv1.VerifyRequest{
				{Cms: signed, Options: opts}, {Cms: tampered, Options: opts},
			}})
			if err != nil {
				t.Fatal(err)
			}
			r := b.GetResults()
			check("VerifyBatch item 0", r[0].GetResult().GetVerified(), r[0].GetResult().GetSigners(), r[0].GetResult().GetContent(), tc.want)
			check("VerifyBatch item 1 (tampered)", r[1].GetResult().GetVerified(), r[1].GetResult().GetSigners(), nil, false)

			for _, in := range []struct {
				what string
				cms  []byte
				want bool
			}{{"DecryptAndVerify", signed, tc.want}, {"DecryptAndVerify of a tampered copy", tampered, false}} {
				env, err := ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{Data: in.cms, RecipientKeys: []string{"sm2-enc"}})
				if err != nil {
					t.Fatal(err)
				}
				dv, err := ts.env.DecryptAndVerify(ctxT(t), &signsvrv1.DecryptAndVerifyRequest{
					Key: "sm2-enc", Cms: env.GetCms(), VerifyOptions: opts})
				if err != nil {
					t.Fatalf("%s: %v", in.what, err)
				}
				check(in.what, dv.GetVerified(), dv.GetSigners(), dv.GetContent(), in.want)
			}
		})
	}
	t.Run("own-signatures-unflagged", func(t *testing.T) {
		ts := gmsslServer(t, true)
		s, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "sm2-sign", Data: content,
			Options: &signsvrv1.SignOptions{NoSignedAttributes: true}})
		if err != nil {
			t.Fatal(err)
		}
		v, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: s.GetCms()})
		if err != nil {
			t.Fatal(err)
		}
		if !v.GetVerified() || v.GetSigners()[0].GetSm2WithoutZ() {
			t.Fatalf("a standard SM2 signature: %v", v)
		}
	})
}

// TestDetachedEmptyContent: a detached signature over empty content verifies when
// the request sets data to the empty value (explicit presence), both ours through
// OpenSSL and OpenSSL's through the server; unset data is still "no content".
func TestDetachedEmptyContent(t *testing.T) {
	ts := startServer(t)
	empty := writeFile(t, "empty", nil)
	nonEmpty := writeFile(t, "x", []byte("x"))
	for _, key := range []string{"rsa-sign", "ecdsa-sign", "sm2-sign"} {
		t.Run(key, func(t *testing.T) {
			kf := keyFile(t, key)
			s, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: key, Data: []byte{}, Detached: true})
			if err != nil {
				t.Fatal(err)
			}
			sigs := map[string][]byte{"ours": s.GetCms()}
			if key != "sm2-sign" {
				// OpenSSL verifies ours against empty content, and refuses other content.
				sigFile := writeFile(t, "sig.der", s.GetCms())
				openssl(t, nil, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile,
					"-content", empty, "-CAfile", pki.RootsPath, "-purpose", "any")
				openssl(t, nil, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile,
					"-content", "/dev/null", "-CAfile", pki.RootsPath, "-purpose", "any")
				if _, err := opensslTry(nil, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile,
					"-content", nonEmpty, "-CAfile", pki.RootsPath, "-purpose", "any"); err == nil {
					t.Error("openssl verified the empty-content signature over other content")
				}
				leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
				sigs["openssl"] = openssl(t, nil, "cms", "-sign", "-binary", "-in", empty, "-signer", leaf,
					"-inkey", kf.KeyPath, "-outform", "DER")
			}
			for who, sig := range sigs {
				v, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: sig, Data: []byte{}})
				if err != nil {
					t.Fatalf("%s: %v", who, err)
				}
				if !v.GetVerified() || !v.GetDetached() || len(v.GetContent()) != 0 {
					t.Fatalf("%s: %v", who, v)
				}
				_, err = ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: sig})
				wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
				v, err = ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: sig, Data: []byte("x")})
				if err != nil || v.GetVerified() {
					t.Fatalf("%s over other content: %v %v", who, v, err)
				}
				// The same as batch items: empty content, and none.
				b, err := ts.sign.VerifyBatch(ctxT(t), &signsvrv1.VerifyBatchRequest{Items: []*signsvrv1.VerifyRequest{
					{Cms: sig, Data: []byte{}}, {Cms: sig},
				}})
				if err != nil {
					t.Fatal(err)
				}
				if r := b.GetResults(); !r[0].GetResult().GetVerified() || r[1].GetError().GetReason() != "INVALID_REQUEST" {
					t.Fatalf("%s in a batch: %v", who, r)
				}
			}
		})
	}
	t.Run("attached", func(t *testing.T) {
		s, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("attached")})
		if err != nil {
			t.Fatal(err)
		}
		// An attached signature with data unset verifies as before.
		if v, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: s.GetCms()}); err != nil || !v.GetVerified() {
			t.Fatalf("%v %v", v, err)
		}
	})
}

// opensslTry runs openssl and returns its error instead of failing the test.
func opensslTry(stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command("openssl", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return cmd.Output()
}

// TestLoginRefusesSM2WithoutZ: a deployment that accepts GmSSL's SignedData for
// documents still refuses a login answer signed that way, which binds no identity.
func TestLoginRefusesSM2WithoutZ(t *testing.T) {
	le := newLoginEnv(t)
	e := le.envs[testca.SM2]
	ac := le.start(t, nil, func(o *server.Options) { o.AllowSM2WithoutZ = true; o.Validator = le.v })
	ch := challenge(t, ac)
	der, err := sign.Sign([]byte(ch), e.p.Good.Key, e.p.Chain(e.p.Good), &sign.Options{NoSignedAttributes: true, Certs: sign.IncludeChain})
	if err != nil {
		t.Fatal(err)
	}
	// The same message with the signature GmSSL would make: SM2 over SM3 of the DER
	// EncapsulatedContentInfo, no Z, of the same length so that it replaces the
	// standard one in place.
	eci := encapContentInfo(t, der)
	old := lastOctetString(t, der)
	digest := sm3.Sum(eci)
	var sig []byte
	for len(sig) != len(old) {
		if sig, err = e.p.Good.Key.Sign(rand.Reader, digest[:], nil); err != nil {
			t.Fatal(err)
		}
	}
	gmssl := bytes.Replace(der, old, sig, 1)

	resp, err := ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch, Cms: gmssl})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAuthenticated() || resp.GetRefusalReason() != "bad_signature" {
		t.Fatalf("login with an SM2 signature without Z: authenticated %v, refusal %q", resp.GetAuthenticated(), resp.GetRefusalReason())
	}
	// The object is the GmSSL form indeed: it verifies as such, flagged.
	res, err := sign.Verify(gmssl, &sign.VerifyOptions{AllowSM2WithoutZ: true})
	if err != nil || !res.Signers[0].Signature.Valid || !res.Signers[0].SM2WithoutZ {
		t.Fatalf("the forged-form answer: %v %+v", err, res)
	}
}

// encapContentInfo returns the DER EncapsulatedContentInfo of a SignedData
// ContentInfo.
func encapContentInfo(t *testing.T, ci []byte) []byte {
	t.Helper()
	s := cryptobyte.String(ci)
	var ciSeq, content, sd, eci cryptobyte.String
	if !s.ReadASN1(&ciSeq, cbasn1.SEQUENCE) || !ciSeq.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!ciSeq.ReadASN1(&content, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		!content.ReadASN1(&sd, cbasn1.SEQUENCE) || !sd.SkipASN1(cbasn1.INTEGER) || !sd.SkipASN1(cbasn1.SET) ||
		!sd.ReadASN1Element(&eci, cbasn1.SEQUENCE) {
		t.Fatal("not a SignedData")
	}
	return eci
}

// lastOctetString returns the signature value of a SignedData with one signer
// and no unsigned attributes: the OCTET STRING that ends the message.
func lastOctetString(t *testing.T, der []byte) []byte {
	t.Helper()
	for n := 70; n <= 72; n++ {
		if i := len(der) - n - 2; i >= 0 && der[i] == 0x04 && int(der[i+1]) == n {
			return der[len(der)-n:]
		}
	}
	t.Fatal("no signature at the end of the message")
	return nil
}

// TestGmSSLNestedMessage: GmSSL's SignedData enveloped by GmSSL's cmsencrypt to a
// GmSSL-made SM2 key, which the server holds (GmSSL's own encrypted PKCS#8 file):
// DecryptAndVerify opens it and verifies the signature when the form without Z is
// allowed.
func TestGmSSLNestedMessage(t *testing.T) {
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("P@ssw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := soft.New([]soft.KeyConfig{{Name: "gmssl-enc", Usages: []string{"decrypt"}, PasswordFile: pass,
		KeyFile: filepath.Join(gmsslFixtures, "recipient.key.pem"), CertFile: filepath.Join(gmsslFixtures, "recipient.pem")}})
	if err != nil {
		t.Fatalf("the GmSSL key in the soft store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	content, err := os.ReadFile(filepath.Join(gmsslFixtures, "content.txt"))
	if err != nil {
		t.Fatal(err)
	}
	enveloped := gmsslPEM(t, "enveloped.pem")
	for _, allow := range []bool{false, true} {
		ts := gmsslServer(t, allow, func(o *server.Options) { o.Store = store })
		dv, err := ts.env.DecryptAndVerify(ctxT(t), &signsvrv1.DecryptAndVerifyRequest{Key: "gmssl-enc", Cms: enveloped})
		if err != nil {
			t.Fatal(err)
		}
		s := dv.GetSigners()
		if dv.GetVerified() != allow || len(s) != 1 || s[0].GetSm2WithoutZ() != allow || !bytes.Equal(dv.GetContent(), content) {
			t.Fatalf("allow %v: %v", allow, dv)
		}
		d, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "gmssl-enc", Cms: enveloped})
		if err != nil || !bytes.Equal(d.GetData(), gmsslPEM(t, "signed.pem")) {
			t.Fatalf("Decrypt: %v", err)
		}
	}
}
