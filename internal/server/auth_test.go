package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/testca"
	"signsvr.dev/signsvr/pkg/identity"
	"signsvr.dev/signsvr/pkg/login"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
)

// signChallenge makes a raw login signature in Go, as a client library would.
func signChallenge(t testing.TB, key crypto.Signer, msg []byte) []byte {
	t.Helper()
	var sig []byte
	var err error
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	case *ecdsa.PublicKey:
		switch {
		case sm2.IsSM2PublicKey(pub):
			sig, err = key.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
		case pub.Curve == elliptic.P384():
			d := sha512.Sum384(msg)
			sig, err = key.Sign(rand.Reader, d[:], crypto.SHA384)
		default:
			d := sha256.Sum256(msg)
			sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
		}
	default:
		t.Fatalf("unsupported key %T", pub)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// clock is a settable clock for a server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// loginEnv is three openssl-made PKIs (RSA, ECDSA, SM2) with CRLs on loopback, and
// login options that trust them.
type loginEnv struct {
	envs  map[testca.Algo]*revEnv
	other *testca.PKI
	v     *trust.Validator
	opts  server.LoginOptions
}

func newLoginEnv(t *testing.T) *loginEnv {
	t.Helper()
	le := &loginEnv{envs: map[testca.Algo]*revEnv{}}
	var anchors []*smx509.Certificate
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, algo := range testca.Algos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := newRevEnv(t, algo, "L"+string(algo), "/inter.crl", ocspNone)
			mu.Lock()
			le.envs[algo] = e
			anchors = append(anchors, e.p.Root.Cert)
			mu.Unlock()
		}()
	}
	le.other = testca.New(t, testca.Options{Algo: testca.ECDSA, Name: "Stranger"})
	wg.Wait()
	le.v = newValidator(t, anchors, trust.RevocationConfig{HardFail: true, FetchTimeout: 5 * time.Second})
	key := make([]byte, 32)
	rand.Read(key)
	le.opts = server.LoginOptions{ChallengeKeys: [][]byte{key}, Audience: "customs-portal", TokenKey: "rsa-sign", Validator: le.v}
	return le
}

func (le *loginEnv) start(t *testing.T, mod func(*server.LoginOptions), opts ...serverOption) signsvrv1.AuthServiceClient {
	t.Helper()
	lo := le.opts
	if mod != nil {
		mod(&lo)
	}
	ts := startServer(t, append([]serverOption{func(o *server.Options) { o.Login = &lo }}, opts...)...)
	return signsvrv1.NewAuthServiceClient(ts.conn)
}

func challenge(t *testing.T, ac signsvrv1.AuthServiceClient) string {
	t.Helper()
	ch, err := ac.CreateChallenge(ctxT(t), &signsvrv1.CreateChallengeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ch.GetChallenge(), login.ChallengePrefix) || !ch.GetExpiresAt().AsTime().After(ch.GetIssuedAt().AsTime()) {
		t.Fatalf("challenge %+v", ch)
	}
	return ch.GetChallenge()
}

func rawAnswer(t *testing.T, ch string, c *testca.Cert, key crypto.Signer, inter *smx509.Certificate) *signsvrv1.LoginRequest {
	return &signsvrv1.LoginRequest{Challenge: ch, Signature: signChallenge(t, key, []byte(ch)),
		Certificate: c.Cert.Raw, Intermediates: [][]byte{inter.Raw}}
}

// checkToken verifies the token offline with the key GetTokenKey gives, in Go and,
// for RS256, with `openssl dgst -verify` as a business system without our code would.
func checkToken(t *testing.T, ac signsvrv1.AuthServiceClient, resp *signsvrv1.LoginResponse, who *smx509.Certificate) {
	t.Helper()
	if !resp.GetAuthenticated() {
		t.Fatalf("login refused: %s (%s) %v", resp.GetRefusalReason(), resp.GetRefusalMessage(), resp.GetCertificateVerdict())
	}
	tk, err := ac.GetTokenKey(ctxT(t), &signsvrv1.GetTokenKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := smx509.ParsePKIXPublicKey(tk.GetPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := login.VerifyToken(resp.GetToken(), pub, login.VerifyOptions{Audience: tk.GetAudience(), Issuer: tk.GetIssuer(), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(who.Raw)
	if claims.Subject != who.Subject.String() || claims.Confirmation.X5tS256 != base64.RawURLEncoding.EncodeToString(fp[:]) ||
		resp.GetIdentity().GetSubject() != claims.Subject || tk.GetAudience() != "customs-portal" || tk.GetIssuer() != "signsvr" {
		t.Errorf("claims %+v, identity %v", claims, resp.GetIdentity())
	}
	if tk.GetAlgorithm() == login.AlgRS256 {
		parts := strings.Split(resp.GetToken(), ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		pubPEM := filepath.Join(dir, "token-key.pem")
		os.WriteFile(pubPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: tk.GetPublicKey()}), 0o600)
		sigFile := filepath.Join(dir, "sig")
		os.WriteFile(sigFile, sig, 0o600)
		out := openssl(t, []byte(parts[0]+"."+parts[1]), "dgst", "-sha256", "-verify", pubPEM, "-signature", sigFile)
		if !strings.Contains(string(out), "Verified OK") {
			t.Errorf("openssl: %s", out)
		}
	}
}

// TestLogin runs the full challenge and response over gRPC for RSA, ECDSA and SM2
// certificates, with signatures made in Go, by `openssl dgst` and by `openssl cms`,
// and checks the token offline.
func TestLogin(t *testing.T) {
	le := newLoginEnv(t)
	ac := le.start(t, nil)
	for _, algo := range testca.Algos {
		e := le.envs[algo]
		good, inter := e.p.Good, e.p.Intermediate.Cert
		t.Run(string(algo)+"/raw-go", func(t *testing.T) {
			resp, err := ac.Login(ctxT(t), rawAnswer(t, challenge(t, ac), good, good.Key, inter))
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, ac, resp, good.Cert)
			if resp.GetCertificateVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD ||
				resp.GetCertificateVerdict().GetRevocation() != "crl" {
				t.Errorf("verdict %v", resp.GetCertificateVerdict())
			}
		})
		t.Run(string(algo)+"/cms-go", func(t *testing.T) {
			ch := challenge(t, ac)
			der, err := sign.Sign([]byte(ch), good.Key, e.p.Chain(good), &sign.Options{Certs: sign.IncludeChain})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch, Cms: der})
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, ac, resp, good.Cert)
		})
		if algo == testca.SM2 {
			continue // OpenSSL 3.0 cms cannot sign with SM2 ("illegal zero content"); dgst needs distid options
		}
		t.Run(string(algo)+"/openssl-dgst", func(t *testing.T) {
			ch := challenge(t, ac)
			chFile := writeFile(t, "challenge", []byte(ch))
			sig := openssl(t, nil, "dgst", "-sha256", "-sign", good.KeyFile, chFile)
			resp, err := ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch, Signature: sig, Certificate: good.Cert.Raw,
				Intermediates: [][]byte{inter.Raw}, RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_UNSPECIFIED})
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, ac, resp, good.Cert)
		})
		for _, detached := range []bool{false, true} {
			name := "/openssl-cms-attached"
			if detached {
				name = "/openssl-cms-detached"
			}
			t.Run(string(algo)+name, func(t *testing.T) {
				ch := challenge(t, ac)
				chFile := writeFile(t, "challenge", []byte(ch))
				interFile := writeFile(t, "inter.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}))
				args := []string{"cms", "-sign", "-binary", "-in", chFile, "-signer", good.CertFile, "-inkey", good.KeyFile,
					"-certfile", interFile, "-outform", "DER"}
				if !detached {
					args = append(args, "-nodetach")
				}
				der := openssl(t, nil, args...)
				resp, err := ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch, Cms: der})
				if err != nil {
					t.Fatal(err)
				}
				checkToken(t, ac, resp, good.Cert)
			})
		}
	}
}

// TestLoginAcrossInstances: a challenge issued by one server is accepted by a second
// started with the same login configuration, and refused by one with other keys.
func TestLoginAcrossInstances(t *testing.T) {
	le := newLoginEnv(t)
	a := le.start(t, nil)
	b := le.start(t, nil)
	other := le.start(t, func(o *server.LoginOptions) {
		k := make([]byte, 32)
		rand.Read(k)
		o.ChallengeKeys = [][]byte{k}
	})
	rotated := le.start(t, func(o *server.LoginOptions) {
		k := make([]byte, 32)
		rand.Read(k)
		o.ChallengeKeys = [][]byte{k, le.opts.ChallengeKeys[0]} // a new key first, the old one still accepted
	})
	e := le.envs[testca.ECDSA]
	for _, tc := range []struct {
		name   string
		srv    signsvrv1.AuthServiceClient
		reason string
	}{
		{"same config", b, ""},
		{"rotated keys", rotated, ""},
		{"other keys", other, login.ReasonChallengeTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.srv.Login(ctxT(t), rawAnswer(t, challenge(t, a), e.p.Good, e.p.Good.Key, e.p.Intermediate.Cert))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				checkToken(t, tc.srv, resp, e.p.Good.Cert)
			} else if resp.GetAuthenticated() || resp.GetRefusalReason() != tc.reason {
				t.Fatalf("got %v / %s, want refused %s", resp.GetAuthenticated(), resp.GetRefusalReason(), tc.reason)
			}
		})
	}
}

// TestLoginRefusals: each bad answer is refused with its own reason.
func TestLoginRefusals(t *testing.T) {
	le := newLoginEnv(t)
	clk := &clock{t: time.Now()}
	ac := le.start(t, nil, func(o *server.Options) { o.Now = clk.Now })
	e := le.envs[testca.RSA]
	inter := e.p.Intermediate.Cert
	for _, tc := range []struct {
		name   string
		answer func(ch string) *signsvrv1.LoginRequest
		before func()
		reason string
		status signsvrv1.CertificateStatus
	}{
		{name: "tampered challenge", reason: login.ReasonChallengeTampered, answer: func(ch string) *signsvrv1.LoginRequest {
			b := []byte(ch)
			i := len(login.ChallengePrefix) + 20
			b[i] ^= 'A' ^ 'B'
			if b[i] == ch[i] {
				b[i] = 'Q'
			}
			return rawAnswer(t, string(b), e.p.Good, e.p.Good.Key, inter)
		}},
		{name: "not a challenge", reason: login.ReasonMalformed, answer: func(ch string) *signsvrv1.LoginRequest {
			return rawAnswer(t, "hello", e.p.Good, e.p.Good.Key, inter)
		}},
		{name: "expired challenge", reason: login.ReasonChallengeExpired, before: func() { clk.Add(3 * time.Minute) },
			answer: func(ch string) *signsvrv1.LoginRequest { return rawAnswer(t, ch, e.p.Good, e.p.Good.Key, inter) }},
		{name: "wrong key", reason: login.ReasonBadSignature, answer: func(ch string) *signsvrv1.LoginRequest {
			return rawAnswer(t, ch, e.p.Good, e.p.Encrypt.Key, inter)
		}},
		{name: "other content", reason: login.ReasonBadSignature, answer: func(ch string) *signsvrv1.LoginRequest {
			r := rawAnswer(t, ch+"x", e.p.Good, e.p.Good.Key, inter)
			r.Challenge = ch
			return r
		}},
		{name: "CMS over other content", reason: login.ReasonBadSignature, answer: func(ch string) *signsvrv1.LoginRequest {
			der, err := sign.Sign([]byte("something else"), e.p.Good.Key, e.p.Chain(e.p.Good), &sign.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return &signsvrv1.LoginRequest{Challenge: ch, Cms: der}
		}},
		{name: "revoked certificate", reason: login.ReasonCertRevoked, status: signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED,
			answer: func(ch string) *signsvrv1.LoginRequest { return rawAnswer(t, ch, e.p.Revoked, e.p.Revoked.Key, inter) }},
		{name: "expired certificate", reason: login.ReasonCertExpired, status: signsvrv1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED,
			answer: func(ch string) *signsvrv1.LoginRequest { return rawAnswer(t, ch, e.p.Expired, e.p.Expired.Key, inter) }},
		{name: "wrong usage", reason: login.ReasonCertWrongUsage, status: signsvrv1.CertificateStatus_CERTIFICATE_STATUS_WRONG_USAGE,
			answer: func(ch string) *signsvrv1.LoginRequest {
				return rawAnswer(t, ch, e.p.WrongUsage, e.p.WrongUsage.Key, inter)
			}},
		{name: "untrusted certificate", reason: login.ReasonCertUntrusted, status: signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNTRUSTED,
			answer: func(ch string) *signsvrv1.LoginRequest {
				return rawAnswer(t, ch, le.other.Good, le.other.Good.Key, le.other.Intermediate.Cert)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := challenge(t, ac)
			if tc.before != nil {
				tc.before()
			}
			resp, err := ac.Login(ctxT(t), tc.answer(ch))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetAuthenticated() || resp.GetToken() != "" || resp.GetIdentity() != nil || resp.GetRefusalReason() != tc.reason || resp.GetRefusalMessage() == "" {
				t.Fatalf("response %v, want refused with %s", resp, tc.reason)
			}
			if tc.status != 0 && resp.GetCertificateVerdict().GetStatus() != tc.status {
				t.Errorf("verdict %v, want %v", resp.GetCertificateVerdict(), tc.status)
			}
		})
	}
	ch := challenge(t, ac)
	_, err := ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch, Signature: []byte{1}, Certificate: []byte{0x30, 0x03, 1, 2, 3}})
	wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
	_, err = ac.Login(ctxT(t), &signsvrv1.LoginRequest{Challenge: ch})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")

	// A server without login configured says so.
	ts := startServer(t)
	_, err = signsvrv1.NewAuthServiceClient(ts.conn).CreateChallenge(ctxT(t), &signsvrv1.CreateChallengeRequest{})
	wantStatus(t, err, codes.Unimplemented, "UNSUPPORTED")
}

// TestEveryMethodIsCovered: the authorization table names every unary method of
// every service the server registers, and config and server agree on the names.
func TestEveryMethodIsCovered(t *testing.T) {
	for _, sd := range []grpc.ServiceDesc{signsvrv1.SignService_ServiceDesc, signsvrv1.EnvelopeService_ServiceDesc,
		signsvrv1.KeyService_ServiceDesc, signsvrv1.CertificateService_ServiceDesc, signsvrv1.AuthService_ServiceDesc} {
		for _, m := range sd.Methods {
			if _, ok := server.MethodOperation("/" + sd.ServiceName + "/" + m.MethodName); !ok {
				t.Errorf("%s/%s has no authorization entry", sd.ServiceName, m.MethodName)
			}
		}
	}
	if _, ok := server.MethodOperation("/signsvr.v1.NewService/Do"); ok {
		t.Errorf("an unknown method is covered")
	}
	var names, keyNames []string
	for _, op := range server.Operations {
		names = append(names, string(op))
		if server.IsKeyOperation(op) {
			keyNames = append(keyNames, string(op))
		}
	}
	if !slices.Equal(names, config.Operations) || !slices.Equal(keyNames, config.KeyOperations) {
		t.Errorf("server operations %v / %v, config %v / %v", names, keyNames, config.Operations, config.KeyOperations)
	}
}

// TestPolicyOfTheDeployExample reads deploy/signsvr.example.yaml and checks
// the policy it documents: an institution's front-end processor signs only with its
// own key, only the customs backend decrypts with the customs key, and a client no
// rule names may do nothing.
func TestPolicyOfTheDeployExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/signsvr.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, "/etc/signsvr")
	if err != nil {
		t.Fatal(err)
	}
	var rules []server.PolicyRule
	for _, r := range cfg.Authorization.Rules {
		pr := server.PolicyRule{Subjects: r.Subjects, Issuer: r.Issuer, Fingerprints: r.Fingerprints, Keys: r.Keys}
		for _, op := range r.Operations {
			pr.Operations = append(pr.Operations, server.Operation(op))
		}
		rules = append(rules, pr)
	}
	p, err := server.NewPolicy(rules)
	if err != nil {
		t.Fatal(err)
	}
	clientCA := "CN=Customs Client CA,O=China Customs"
	fep := &server.Identity{Holder: identity.Holder{Subject: "CN=acme-fep,O=ACME Logistics", Issuer: clientCA, FingerprintSHA256: "00"}}
	// The front-end processor's subject in a certificate of another client CA.
	forged := &server.Identity{Holder: identity.Holder{Subject: "CN=acme-fep,O=ACME Logistics", Issuer: "CN=Other CA",
		FingerprintSHA256: "22"}}
	customs := &server.Identity{Holder: identity.Holder{Subject: "CN=customs-backend,O=China Customs", Issuer: clientCA,
		FingerprintSHA256: "33"}}
	stranger := &server.Identity{Holder: identity.Holder{Subject: "CN=acme-fep,O=Someone Else", Issuer: clientCA, FingerprintSHA256: "11"}}
	for _, tc := range []struct {
		who     *server.Identity
		op      server.Operation
		key     string
		allowed bool
	}{
		{fep, server.OpSign, "acme-sign", true},
		{fep, server.OpSign, "customs-sm2-sign", false},
		{fep, server.OpSignRaw, "acme-sign", false},
		{fep, server.OpDecrypt, "customs-sm2-enc", false},
		{fep, server.OpEnvelope, "", true},
		{fep, server.OpVerify, "", true},
		{fep, server.OpLogin, "", false},
		{customs, server.OpDecrypt, "customs-sm2-enc", true},
		{customs, server.OpDecrypt, "customs-rsa-enc", true},
		{fep, server.OpDecrypt, "customs-rsa-enc", false},
		{customs, server.OpSign, "acme-sign", false},
		{customs, server.OpVerify, "", true},
		{customs, server.OpValidate, "", true},
		{forged, server.OpSign, "acme-sign", false},
		{forged, server.OpVerify, "", false},
		{stranger, server.OpSign, "acme-sign", false},
		{stranger, server.OpListKeys, "", false},
		{stranger, server.OpVerify, "", false},
	} {
		err := p.Authorize(context.Background(), tc.who, tc.op, tc.key)
		if (err == nil) != tc.allowed {
			t.Errorf("%s %s %q: %v, want allowed=%v", tc.who.Subject, tc.op, tc.key, err, tc.allowed)
		}
		var e *server.Error
		if err != nil && (!asError(err, &e) || e.Code != codes.PermissionDenied) {
			t.Errorf("refusal is %v, want PermissionDenied", err)
		}
	}
	if _, err := server.NewPolicy([]server.PolicyRule{{Subjects: []string{"CN=a"}, Issuer: clientCA, Operations: []server.Operation{server.OpSign}}}); err == nil {
		t.Errorf("a sign rule without keys was accepted")
	}
	if _, err := server.NewPolicy([]server.PolicyRule{{Subjects: []string{"CN=a"}, Issuer: clientCA, Operations: []server.Operation{"delete"}}}); err == nil {
		t.Errorf("an unknown operation was accepted")
	}
	any, err := server.NewPolicy([]server.PolicyRule{{Subjects: []string{"*"}, Operations: []server.Operation{server.OpVerify}}})
	if err != nil || any.Authorize(context.Background(), stranger, server.OpVerify, "") != nil ||
		any.Authorize(context.Background(), stranger, server.OpListKeys, "") == nil ||
		any.Authorize(context.Background(), server.DevelopmentIdentity, server.OpVerify, "") == nil {
		t.Errorf("subject * must match every authenticated client, for the operations named only")
	}
}

func asError(err error, e **server.Error) bool {
	x, ok := err.(*server.Error)
	*e = x
	return ok
}
