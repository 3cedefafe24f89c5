package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/testca"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
)

// revEnv is a testca PKI whose certificates point at a loopback HTTP server for their
// CRL and, depending on the mode, at a real `openssl ocsp` responder, at a URL that
// never answers, or at nothing.
type revEnv struct {
	p    *testca.PKI
	srv  *httptest.Server
	crl  atomic.Pointer[[]byte]
	ocsp *testca.Responder
	hang chan struct{}
}

type ocspMode int

const (
	ocspNone ocspMode = iota
	ocspReal          // openssl ocsp on loopback
	ocspHang          // a responder that never answers
)

// newRevEnv builds the PKI. crlPath is "/inter.crl" (served) or "/down" (503).
func newRevEnv(t testing.TB, algo testca.Algo, name, crlPath string, mode ocspMode) *revEnv {
	t.Helper()
	e := &revEnv{hang: make(chan struct{})}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/inter.crl":
			w.Write(*e.crl.Load())
		case "/hang":
			select {
			case <-e.hang:
			case <-r.Context().Done():
			}
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(func() { close(e.hang); e.srv.Close() })
	opts := testca.Options{Algo: algo, Name: name, CRLURL: e.srv.URL + crlPath}
	var ocspAddr string
	switch mode {
	case ocspReal:
		ocspAddr = testca.FreePort(t)
		opts.OCSPURL = "http://" + ocspAddr
	case ocspHang:
		opts.OCSPURL = e.srv.URL + "/hang"
	}
	e.p = testca.New(t, opts)
	crl := e.p.CRL
	e.crl.Store(&crl)
	if mode == ocspReal {
		e.ocsp = e.p.StartOCSP(t, ocspAddr, testca.ResponderOptions{})
	}
	return e
}

func newValidator(t testing.TB, anchors []*smx509.Certificate, rev trust.RevocationConfig) *trust.Validator {
	t.Helper()
	v, err := trust.New(trust.Config{Anchors: anchors, Revocation: rev})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// devStore is the development PKI's keys in a soft store.
func devStore(t testing.TB) keystore.Store {
	t.Helper()
	var keys []soft.KeyConfig
	for _, k := range pki.Keys {
		keys = append(keys, soft.KeyConfig{Name: k.Name, KeyFile: k.KeyPath, CertFile: k.CertPath,
			Usages: strings.Split(k.Usage.String(), ",")})
	}
	store, err := soft.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// tlsServer is a production-mode server (mutual TLS through pkg/trust) on loopback.
type tlsServer struct {
	addr  string
	roots *x509.CertPool
	logs  *syncBuffer
}

// startTLSServer serves with a fresh server certificate for "localhost", client
// certificates validated by clients, and the given options on top.
func startTLSServer(t testing.TB, clients *trust.Validator, verifyTimeout time.Duration, opts ...serverOption) *tlsServer {
	t.Helper()
	now := time.Now()
	ca, err := devpki.NewCA(devpki.ECDSAP256, "tls test ca", now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := ca.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: "localhost", Usage: keystore.UsageSign,
		Now: now, ExtKeyUsage: []smx509.ExtKeyUsage{smx509.ExtKeyUsageServerAuth}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tc, err := server.ServerTLS(server.ServerTLSConfig{
		Certificates:    []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}},
		ClientValidator: clients, VerifyTimeout: verifyTimeout, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := server.Options{
		Store: devStore(t), Backend: "soft", Validator: newValidator(t, pki.Roots, trust.RevocationConfig{Disabled: true}),
		Logger: log, TLS: tc, ClientValidator: clients, Authorizer: server.AllowAll,
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := server.New(o)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, lis, 2*time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(mustX509(t, ca.Cert.Raw))
	return &tlsServer{addr: lis.Addr().String(), roots: roots, logs: logs}
}

func mustX509(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dial connects as client (nil: no client certificate), sending its certificate and
// the given intermediates; tweak adjusts the client's TLS configuration.
func (ts *tlsServer) dial(t testing.TB, client *testca.Cert, inters []*smx509.Certificate, tweak func(*tls.Config)) *grpc.ClientConn {
	t.Helper()
	tc := &tls.Config{RootCAs: ts.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if client != nil {
		kp := tls.Certificate{Certificate: [][]byte{client.Cert.Raw}, PrivateKey: client.Key}
		for _, c := range inters {
			kp.Certificate = append(kp.Certificate, c.Raw)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	if tweak != nil {
		tweak(tc)
	}
	cc, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func listKeys(ctx context.Context, cc *grpc.ClientConn) error {
	_, err := signsvrv1.NewKeyServiceClient(cc).ListKeys(ctx, &signsvrv1.ListKeysRequest{})
	return err
}

// TestMutualTLSThroughTrust runs the real server with TLS on loopback. Client
// certificates come from an openssl-made PKI whose revocation is answered by a real
// `openssl ocsp` responder; the authorization policy is the deploy example's shape:
// the front-end processor signs only with its own key, only the customs backend
// decrypts with the customs key.
func TestMutualTLSThroughTrust(t *testing.T) {
	env := newRevEnv(t, testca.RSA, "Clients", "/inter.crl", ocspReal)
	intruders := testca.New(t, testca.Options{Algo: testca.ECDSA, Name: "Intruders"})
	fep := env.p.Issue("acme-fep", testca.SignProfile)
	customs := env.p.Issue("customs-backend", testca.SignProfile)

	clients := newValidator(t, env.p.Anchors(), trust.RevocationConfig{HardFail: true, FetchTimeout: 3 * time.Second})
	policy, err := server.NewPolicy([]server.PolicyRule{
		{Subjects: []string{fep.Cert.Subject.String()}, Issuer: fep.Cert.Issuer.String(), Keys: []string{"ecdsa-sign"},
			Operations: []server.Operation{server.OpSign, server.OpEnvelope, server.OpVerify, server.OpListKeys}},
		{Subjects: []string{customs.Cert.Subject.String()}, Issuer: customs.Cert.Issuer.String(), Keys: []string{"rsa-enc", "rsa-sign"},
			Operations: []server.Operation{server.OpDecrypt, server.OpSign, server.OpVerify, server.OpListKeys}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := startTLSServer(t, clients, 5*time.Second, func(o *server.Options) { o.Authorizer = policy })
	inter := []*smx509.Certificate{env.p.Intermediate.Cert}
	// Clients send their intermediate, as TLS clients do.
	chainOf := func(c *testca.Cert) []*smx509.Certificate {
		switch {
		case c == nil:
			return nil
		case c == intruders.Good:
			return []*smx509.Certificate{intruders.Intermediate.Cert}
		}
		return inter
	}

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			client *testca.Cert
			tweak  func(*tls.Config)
			logged string
		}{
			{"no client certificate", nil, nil, ""},
			{"untrusted", intruders.Good, nil, "reason=unknown_authority"},
			{"revoked", env.p.Revoked, nil, "reason=revoked"},
			{"expired", env.p.Expired, nil, "reason=expired"},
			{"wrong usage", env.p.WrongUsage, nil, "reason=key_usage"},
			{"TLS 1.1", fep, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := listKeys(ctxT(t), ts.dial(t, tc.client, chainOf(tc.client), tc.tweak))
				if code := status.Code(err); code != codes.Unavailable {
					t.Fatalf("ListKeys = %v, want the connection refused (Unavailable)", err)
				}
				if tc.logged != "" && !strings.Contains(ts.logs.String(), tc.logged) {
					t.Errorf("the refusal (%s) is not logged:\n%s", tc.logged, ts.logs.String())
				}
			})
		}
	})

	fc := ts.dial(t, fep, inter, nil)
	var p peer.Peer
	if _, err := signsvrv1.NewKeyServiceClient(fc).ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatalf("authorized client refused: %v", err)
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); !ok || ti.State.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %v, want TLS 1.3", p.AuthInfo)
	}
	if !strings.Contains(ts.logs.String(), `msg="client authenticated" subject="`+fep.Cert.Subject.String()+`"`) ||
		!strings.Contains(ts.logs.String(), "revocation=ocsp") {
		t.Errorf("the identity is not logged with its OCSP check:\n%s", ts.logs.String())
	}
	// The serial is logged as the audit log and the login tokens write it (hex).
	if !strings.Contains(ts.logs.String(), " serial="+fep.Cert.SerialNumber.Text(16)+" ") {
		t.Errorf("the client's serial is not logged in hex:\n%s", ts.logs.String())
	}
	sc := signsvrv1.NewSignServiceClient(fc)
	signed, err := sc.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("manifest")})
	if err != nil {
		t.Fatalf("FEP signing with its own key: %v", err)
	}
	_, err = sc.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "rsa-sign", Data: []byte("manifest")})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	_, err = sc.SignRaw(ctxT(t), &signsvrv1.SignRawRequest{Key: "ecdsa-sign", Data: []byte("manifest")})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED") // sign_raw not granted
	_, err = signsvrv1.NewCertificateServiceClient(fc).ParseCertificate(ctxT(t), &signsvrv1.ParseCertificateRequest{Certificate: fep.Cert.Raw})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED") // validate not granted
	env1, err := signsvrv1.NewEnvelopeServiceClient(fc).Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{
		Data: []byte("for customs only"), RecipientKeys: []string{"rsa-enc"}})
	if err != nil {
		t.Fatalf("FEP envelope: %v", err)
	}
	_, err = signsvrv1.NewEnvelopeServiceClient(fc).Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: env1.GetCms()})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	if !strings.Contains(ts.logs.String(), `no rule allows \"`+fep.Cert.Subject.String()) {
		t.Errorf("the refusal's cause is not logged")
	}

	cc := ts.dial(t, customs, inter, nil)
	dec, err := signsvrv1.NewEnvelopeServiceClient(cc).Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: env1.GetCms()})
	if err != nil || string(dec.GetData()) != "for customs only" {
		t.Fatalf("customs decrypt: %v", err)
	}
	v, err := signsvrv1.NewSignServiceClient(cc).Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: signed.GetCms()})
	if err != nil || !v.GetVerified() {
		t.Fatalf("customs verifies the FEP's signature: %v %v", v, err)
	}
	_, err = signsvrv1.NewEnvelopeServiceClient(cc).Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{
		Data: []byte("x"), RecipientKeys: []string{"rsa-enc"}})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED") // envelope not granted to customs
}

// TestMutualTLSResponderDown: the client PKI's OCSP responder never answers and its
// CRL server fails. Hard-fail refuses the client within the handshake's bound;
// soft-fail serves it. Neither waits for the hanging responder.
func TestMutualTLSResponderDown(t *testing.T) {
	env := newRevEnv(t, testca.ECDSA, "Down", "/down", ocspHang)
	for _, hard := range []bool{true, false} {
		name := "soft-fail"
		if hard {
			name = "hard-fail"
		}
		t.Run(name, func(t *testing.T) {
			clients := newValidator(t, env.p.Anchors(), trust.RevocationConfig{HardFail: hard, FetchTimeout: 30 * time.Second})
			ts := startTLSServer(t, clients, 700*time.Millisecond)
			start := time.Now()
			err := listKeys(ctxT(t), ts.dial(t, env.p.Good, []*smx509.Certificate{env.p.Intermediate.Cert}, nil))
			took := time.Since(start)
			if took > 10*time.Second {
				t.Errorf("the call took %v with a 700ms verification bound", took)
			}
			if hard {
				if status.Code(err) != codes.Unavailable || !strings.Contains(ts.logs.String(), "reason=revocation_unavailable") {
					t.Fatalf("hard-fail: %v\n%s", err, ts.logs.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("soft-fail refused the client: %v", err)
			}
			if !strings.Contains(ts.logs.String(), "revocation=soft_failed") {
				t.Errorf("the soft-failed check is not logged:\n%s", ts.logs.String())
			}
		})
	}
}
