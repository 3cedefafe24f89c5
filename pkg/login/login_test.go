package login

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/testca"
	"signsvr.dev/signsvr/pkg/trust"
)

type fakeClock struct{ t atomic.Pointer[time.Time] }

func (c *fakeClock) Now() time.Time      { return *c.t.Load() }
func (c *fakeClock) Add(d time.Duration) { t := c.Now().Add(d); c.t.Store(&t) }

func newClock() *fakeClock {
	c := &fakeClock{}
	t := time.Now()
	c.t.Store(&t)
	return c
}

var challengeKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// instance is one "server replica": its own Validator and Authenticator built
// from the same configuration.
func instance(t *testing.T, p *testca.PKI, clk *fakeClock, mod func(*Config)) *Authenticator {
	t.Helper()
	v, err := trust.New(trust.Config{
		Anchors: p.Anchors(), Now: clk.Now,
		Revocation: trust.RevocationConfig{HardFail: true, CRLs: [][]byte{p.CRL}, RefreshInterval: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	cfg := Config{
		ChallengeKeys: [][]byte{challengeKey},
		Audience:      "customs-portal",
		TokenSigner:   p.OCSPSigner.Key, // any key of the family, made by openssl
		TokenKeyID:    "login-1",
		Validator:     v,
		VerifyCMS:     gmsmCMSVerifier,
		Now:           clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// opensslSign signs msg with `openssl dgst` (SM2: SM3 with distid), a real peer.
func opensslSign(t *testing.T, algo testca.Algo, keyFile string, msg []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
	if err := os.WriteFile(in, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"dgst", "-sha256", "-sign", keyFile, "-out", out, in}
	if algo == testca.SM2 {
		args = []string{"dgst", "-sm3", "-sign", keyFile, "-sigopt", "distid:" + testca.SM2ID, "-out", out, in}
	}
	if b, err := exec.Command(testca.Bin(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, b)
	}
	sig, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// opensslCMS signs msg as CMS SignedData with `openssl cms` (RSA and ECDSA only:
// OpenSSL 3.0 cannot make SM2 CMS).
func opensslCMS(t *testing.T, c *testca.Cert, inter string, msg []byte, detached bool) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "msg"), filepath.Join(dir, "cms.der")
	if err := os.WriteFile(in, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"cms", "-sign", "-binary", "-in", in, "-signer", c.CertFile, "-inkey", c.KeyFile, "-md", "sha256", "-certfile", inter, "-outform", "DER", "-out", out}
	if !detached {
		args = append(args, "-nodetach")
	}
	if b, err := exec.Command(testca.Bin(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl cms: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gmsmCMSVerifier is a CMSVerifier over gmsm's pkcs7 (tests only; the server
// passes pkg/sign's verifier).
func gmsmCMSVerifier(_ context.Context, der, detached []byte) ([]byte, *smx509.Certificate, []*smx509.Certificate, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(p7.Content) == 0 {
		p7.Content = detached
	}
	if err := p7.Verify(); err != nil {
		return nil, nil, nil, err
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, nil, nil, errors.New("not exactly one signer")
	}
	return p7.Content, signer, p7.Certificates, nil
}

func TestLogin(t *testing.T) {
	for _, algo := range testca.Algos {
		t.Run(string(algo), func(t *testing.T) {
			t.Parallel()
			p := testca.New(t, testca.Options{Algo: algo})
			otherAlgo := algo
			if algo == testca.RSA {
				otherAlgo = testca.ECDSA // RSA key generation is the slow part of these tests
			}
			other := testca.New(t, testca.Options{Algo: otherAlgo, Name: "Other"})
			clk := newClock()
			a := instance(t, p, clk, nil)
			b := instance(t, p, clk, nil) // a second replica with the same config
			inter := p.Chain(p.Good)[1:]
			ctx := context.Background()

			// Full challenge / response across replicas, signature by openssl.
			ch, err := a.CreateChallenge()
			if err != nil {
				t.Fatal(err)
			}
			sig := opensslSign(t, algo, p.Good.KeyFile, []byte(ch.Value))
			res, err := b.Login(ctx, Response{Challenge: ch.Value, Signature: sig, Certificate: p.Good.Cert, Intermediates: inter})
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if res.Identity.Subject != p.Good.Cert.Subject.String() || res.Identity.CommonName != "Test good" || res.Identity.Organization != "Test Org" {
				t.Fatalf("identity %+v", res.Identity)
			}
			if !res.Verdict.OK() || res.Verdict.Revocation != trust.RevocationCRL {
				t.Fatalf("verdict %v (%v)", res.Verdict, res.Verdict.Revocation)
			}
			// The token verifies offline, with either replica's (identical) key, and with openssl.
			claims, err := VerifyToken(res.Token, a.TokenPublicKey(), VerifyOptions{Now: clk.Now(), Audience: "customs-portal", Issuer: "signsvr"})
			if err != nil {
				t.Fatal(err)
			}
			fp := sha256.Sum256(p.Good.Cert.Raw)
			if claims.Subject != res.Identity.Subject || claims.Confirmation.X5tS256 != b64.EncodeToString(fp[:]) ||
				claims.Expiry-claims.IssuedAt != 300 || claims.CertSerial != p.Good.Cert.SerialNumber.Text(16) {
				t.Fatalf("claims %+v", claims)
			}
			opensslVerifyToken(t, algo, p.OCSPSigner.CertFile, res.Token)

			// Raw signatures made in Go: ASN.1 and r||s, and RSA-PSS.
			ch2, _ := b.CreateChallenge()
			goSig := goSign(t, p.Good.Key, []byte(ch2.Value), false)
			if _, err := a.Login(ctx, Response{Challenge: ch2.Value, Signature: goSig, Certificate: p.Good.Cert, Intermediates: inter}); err != nil {
				t.Fatalf("Go-signed answer: %v", err)
			}
			if algo != testca.RSA {
				raw, err := derToRaw(goSig, 32)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Login(ctx, Response{Challenge: ch2.Value, Signature: raw, Certificate: p.Good.Cert, Intermediates: inter}); err != nil {
					t.Fatalf("r||s answer: %v", err)
				}
			} else {
				pss := goSign(t, p.Good.Key, []byte(ch2.Value), true)
				if _, err := a.Login(ctx, Response{Challenge: ch2.Value, Signature: pss, Scheme: SchemeRSAPSS, Certificate: p.Good.Cert, Intermediates: inter}); err != nil {
					t.Fatalf("PSS answer: %v", err)
				}
				if _, err := a.Login(ctx, Response{Challenge: ch2.Value, Signature: pss, Scheme: SchemeRSAPKCS1v15, Certificate: p.Good.Cert, Intermediates: inter}); ReasonOf(err) != ReasonBadSignature {
					t.Fatalf("PSS answer accepted as PKCS#1 v1.5: %v", err)
				}
			}

			// CMS answers.
			var cms, detached []byte
			if algo == testca.SM2 {
				cms, detached = gmsmSM2CMS(t, p.Good, p.Intermediate.Cert, []byte(ch2.Value))
			} else {
				cms, detached = opensslCMS(t, p.Good, p.Intermediate.CertFile, []byte(ch2.Value), false), opensslCMS(t, p.Good, p.Intermediate.CertFile, []byte(ch2.Value), true)
			}
			for _, c := range [][]byte{cms, detached} {
				if res, err := a.Login(ctx, Response{Challenge: ch2.Value, CMS: c}); err != nil || res.Identity.Subject != p.Good.Cert.Subject.String() {
					t.Fatalf("CMS answer: %v", err)
				}
			}
			ch3, _ := a.CreateChallenge()
			if _, err := a.Login(ctx, Response{Challenge: ch3.Value, CMS: cms}); ReasonOf(err) != ReasonBadSignature {
				t.Fatalf("CMS over another challenge: %v", err)
			}

			// Refusals.
			answer := func(c *testca.Cert, key *testca.Cert, ch string) Response {
				return Response{Challenge: ch, Signature: opensslSign(t, algo, key.KeyFile, []byte(ch)), Certificate: c.Cert, Intermediates: inter}
			}
			tampered := []byte(ch2.Value)
			tampered[len(ChallengePrefix)+3] ^= 0x01 // a letter of the base64
			otherKey := instance(t, p, clk, func(c *Config) { c.ChallengeKeys = [][]byte{[]byte("another-deployment-key-0123456789abcdef")} })
			foreignCh, _ := otherKey.CreateChallenge()
			otherAud := instance(t, p, clk, func(c *Config) { c.Audience = "another-system" })
			audCh, _ := otherAud.CreateChallenge()
			tests := []struct {
				name   string
				r      Response
				reason string
			}{
				{"tampered challenge", answer(p.Good, p.Good, string(tampered)), ReasonChallengeTampered},
				{"challenge of another deployment", answer(p.Good, p.Good, foreignCh.Value), ReasonChallengeTampered},
				{"challenge for another audience", answer(p.Good, p.Good, audCh.Value), ReasonChallengeTampered},
				{"not a challenge", answer(p.Good, p.Good, "hello"), ReasonMalformed},
				{"wrong key", answer(p.Good, p.Encrypt, ch2.Value), ReasonBadSignature},
				{"no signature", Response{Challenge: ch2.Value, Certificate: p.Good.Cert}, ReasonMalformed},
				{"revoked", answer(p.Revoked, p.Revoked, ch2.Value), ReasonCertRevoked},
				{"expired certificate", answer(p.Expired, p.Expired, ch2.Value), ReasonCertExpired},
				{"wrong usage", answer(p.WrongUsage, p.WrongUsage, ch2.Value), ReasonCertWrongUsage},
				{"untrusted", Response{Challenge: ch2.Value, Signature: opensslSign(t, otherAlgo, other.Good.KeyFile, []byte(ch2.Value)), Certificate: other.Good.Cert, Intermediates: other.Chain(other.Good)[1:]}, ReasonCertUntrusted},
			}
			for _, tc := range tests {
				_, err := b.Login(ctx, tc.r)
				var le *Error
				if !errors.As(err, &le) || le.Reason != tc.reason {
					t.Fatalf("%s: got %v, want %s", tc.name, err, tc.reason)
				}
				if le.ClientMessage() == "" || strings.Contains(le.ClientMessage(), "CN=") {
					t.Fatalf("%s: client message %q", tc.name, le.ClientMessage())
				}
			}

			// Expired challenge: past its TTL plus the skew allowance.
			clk.Add(61*time.Second + 30*time.Second)
			if _, err := b.Login(ctx, answer(p.Good, p.Good, ch2.Value)); ReasonOf(err) != ReasonChallengeExpired {
				t.Fatalf("expired challenge: %v", err)
			}
			// An expired token is refused offline.
			clk.Add(5 * time.Minute)
			if _, err := VerifyToken(res.Token, a.TokenPublicKey(), VerifyOptions{Now: clk.Now()}); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("expired token: %v", err)
			}
		})
	}
}

func goSign(t *testing.T, k crypto.Signer, msg []byte, pss bool) []byte {
	t.Helper()
	var sig []byte
	var err error
	switch k.Public().(type) {
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		if pss {
			sig, err = k.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		} else {
			sig, err = k.Sign(rand.Reader, d[:], crypto.SHA256)
		}
	default:
		if pub, ok := k.Public().(*ecdsa.PublicKey); ok && sm2.IsSM2PublicKey(pub) {
			sig, err = k.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
		} else {
			d := sha256.Sum256(msg)
			sig, err = k.Sign(rand.Reader, d[:], crypto.SHA256)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func gmsmSM2CMS(t *testing.T, c *testca.Cert, inter *smx509.Certificate, msg []byte) (attached, detached []byte) {
	t.Helper()
	for i, detach := range []bool{false, true} {
		sd, err := pkcs7.NewSMSignedData(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := sd.AddSignerChain(c.Cert, c.Key, []*smx509.Certificate{inter}, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		if detach {
			sd.Detach()
		}
		b, err := sd.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			attached = b
		} else {
			detached = b
		}
	}
	return attached, detached
}

// opensslVerifyToken checks the token's signature with `openssl dgst -verify`.
func opensslVerifyToken(t *testing.T, algo testca.Algo, certFile, token string) {
	t.Helper()
	dir := t.TempDir()
	parts := strings.Split(token, ".")
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if algo != testca.RSA {
		sig = rawToDER(sig)
	}
	pub := filepath.Join(dir, "pub.pem")
	if b, err := exec.Command(testca.Bin(t), "x509", "-in", certFile, "-noout", "-pubkey", "-out", pub).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, b)
	}
	in, sigFile := filepath.Join(dir, "input"), filepath.Join(dir, "sig")
	os.WriteFile(in, []byte(parts[0]+"."+parts[1]), 0o600)
	os.WriteFile(sigFile, sig, 0o600)
	args := []string{"dgst", "-sha256", "-verify", pub, "-signature", sigFile, in}
	if algo == testca.SM2 {
		args = []string{"dgst", "-sm3", "-verify", pub, "-sigopt", "distid:" + testca.SM2ID, "-signature", sigFile, in}
	}
	if b, err := exec.Command(testca.Bin(t), args...).CombinedOutput(); err != nil || !strings.Contains(string(b), "Verified OK") {
		t.Fatalf("openssl does not verify the %s token: %v\n%s", algo, err, b)
	}
}

func TestNewErrors(t *testing.T) {
	p := testca.New(t, testca.Options{Algo: testca.ECDSA})
	clk := newClock()
	good := func(c *Config) {}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no key", func(c *Config) { c.ChallengeKeys = nil }},
		{"short key", func(c *Config) { c.ChallengeKeys = [][]byte{[]byte("short")} }},
		{"no audience", func(c *Config) { c.Audience = "" }},
		{"no validator", func(c *Config) { c.Validator = nil }},
		{"no token signer", func(c *Config) { c.TokenSigner = nil }},
		{"encrypt purpose", func(c *Config) { c.Purpose = trust.PurposeEncrypt }},
	} {
		cfg := Config{ChallengeKeys: [][]byte{challengeKey}, Audience: "a", TokenSigner: p.Good.Key, Validator: nopValidator{}, Now: clk.Now}
		good(&cfg)
		tc.mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Fatalf("%s: New succeeded", tc.name)
		}
	}
}

type nopValidator struct{}

func (nopValidator) Validate(context.Context, *smx509.Certificate, []*smx509.Certificate, time.Time, trust.Purpose) *trust.Verdict {
	return &trust.Verdict{}
}

// memGuard is a ReplayGuard in memory.
type memGuard struct{ seen map[string]bool }

func (g *memGuard) Use(_ context.Context, nonce []byte, _ time.Time) (bool, error) {
	if g.seen[string(nonce)] {
		return false, nil
	}
	g.seen[string(nonce)] = true
	return true, nil
}

func TestReplayGuard(t *testing.T) {
	p := testca.New(t, testca.Options{Algo: testca.ECDSA})
	clk := newClock()
	a := instance(t, p, clk, func(c *Config) { c.ReplayGuard = &memGuard{seen: map[string]bool{}} })
	ch, _ := a.CreateChallenge()
	r := Response{Challenge: ch.Value, Signature: goSign(t, p.Good.Key, []byte(ch.Value), false), Certificate: p.Good.Cert, Intermediates: p.Chain(p.Good)[1:]}
	if _, err := a.Login(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(context.Background(), r); ReasonOf(err) != ReasonChallengeReplayed {
		t.Fatalf("replay: %v", err)
	}
}
