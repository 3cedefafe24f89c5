package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/testca"
)

// reloadEnv is a production configuration whose files a test rewrites between
// reloads: the server's TLS certificate (from one of two TLS CAs), the clients' CA
// and CRL (a PKI made by openssl), a signing key.
type reloadEnv struct {
	dir     string
	clients *testca.PKI
	cfgFile string
	// roots trusts both TLS CAs, for clients that must connect before and after the
	// server's certificate changes.
	roots *x509.CertPool
}

func newReloadEnv(t *testing.T) *reloadEnv {
	t.Helper()
	e := &reloadEnv{dir: t.TempDir(), clients: testca.New(t, testca.Options{Name: "Reload"})}
	tlsFiles(t, e.dir, "tls1")
	tlsFiles(t, e.dir, "tls2")
	e.copy(t, "tls1-server.pem", "server.pem")
	e.copy(t, "tls1-server.key", "server.key")
	e.writeCRL(t, e.clients.CRL)
	e.roots = x509.NewCertPool()
	for _, ca := range []string{"tls1-ca.pem", "tls2-ca.pem"} {
		e.roots.AppendCertsFromPEM(readFileT(t, filepath.Join(e.dir, ca)))
	}
	e.cfgFile = filepath.Join(e.dir, "signsvr.yaml")
	e.writeConfig(t, "")
	return e
}

func (e *reloadEnv) copy(t *testing.T, from, to string) {
	t.Helper()
	b := readFileT(t, filepath.Join(e.dir, from))
	writeAtomically(t, filepath.Join(e.dir, to), b)
}

// writeAtomically replaces path by a rename, as operators (and cert-manager) do.
func writeAtomically(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (e *reloadEnv) writeCRL(t *testing.T, der []byte) {
	t.Helper()
	writeAtomically(t, filepath.Join(e.dir, "clients.crl"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

// writeConfig writes the configuration; keys is the YAML of extra soft keys (each
// "      - name: ..." with its fields), added after the signing key.
func (e *reloadEnv) writeConfig(t *testing.T, keys string) {
	t.Helper()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
log:
  level: info
  format: json
tls:
  cert_file: server.pem
  key_file: server.key
  client_trust:
    anchors: [%s]
    intermediates: [%s]
    revocation:
      crl_files: [clients.crl]
trust:
  anchors: [%s, %s]
keystore:
  soft:
    keys:
      - name: sig
        key_file: %s
        cert_file: %s
        usages: [sign]
%sauthorization:
  rules:
    - subjects: ["*"]
      issuer: %q
      keys: ["*"]
      operations: [sign, verify, envelope, decrypt, list_keys]
ops:
  listen: 127.0.0.1:0
`, e.clients.Root.CertFile, e.clients.Intermediate.CertFile, devFile("roots.pem"), e.clients.Root.CertFile,
		devFile("keys", "ecdsa-sign.key.pem"), devFile("keys", "ecdsa-sign.chain.pem"), keys,
		e.clients.Intermediate.Cert.Subject.String())
	writeAtomically(t, e.cfgFile, []byte(cfg))
}

// dial opens a gRPC connection as client c, trusting both TLS CAs.
func (e *reloadEnv) dial(t *testing.T, addr string, c *testca.Cert) *grpc.ClientConn {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: e.roots, ServerName: "localhost", Certificates: []tls.Certificate{cert},
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// load calls Sign over conn from several goroutines until stop is called, and
// counts what succeeded and what failed.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       func()
}

func startLoad(t *testing.T, conn *grpc.ClientConn, workers int, call func(ctx context.Context) error) *load {
	t.Helper()
	l := &load{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				err := call(cctx)
				ccancel()
				switch {
				case err == nil:
					l.ok.Add(1)
				case ctx.Err() != nil:
				default:
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == nil {
						l.firstErr = err
					}
					l.mu.Unlock()
				}
			}
		}()
	}
	l.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(l.stop)
	return l
}

// advance waits until n more calls of the load succeeded.
func (l *load) advance(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	pollUntil(t, func() bool { return l.ok.Load() >= want || l.failed.Load() > 0 },
		func() string { return fmt.Sprintf("the load did not advance: %d ok", l.ok.Load()) })
}

func (l *load) check(t *testing.T) {
	t.Helper()
	if f := l.failed.Load(); f > 0 {
		t.Fatalf("%d calls of the load failed (%d ok); the first: %v", f, l.ok.Load(), l.firstErr)
	}
}

// reload sends SIGHUP and waits for the server to say it reloaded (want "configuration
// reloaded") or refused (want "configuration reload refused").
func (p *process) reload(t *testing.T, want string) {
	t.Helper()
	before := p.count(want)
	p.signal(t, syscall.SIGHUP)
	pollUntil(t, func() bool { return p.count(want) > before },
		func() string { return "no " + want + " after SIGHUP:\n" + p.stderr.String() })
}

// servedCertificate is the leaf certificate the server shows a new connection, as
// openssl s_client sees it.
func servedCertificate(t *testing.T, e *reloadEnv, addr string, c *testca.Cert) []byte {
	t.Helper()
	cmd := exec.Command(testca.Bin(t), "s_client", "-connect", addr, "-servername", "localhost", "-showcerts",
		"-cert", c.CertFile, "-key", c.KeyFile)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	blk, _ := pem.Decode(out)
	if blk == nil {
		t.Fatalf("openssl s_client showed no certificate:\n%s", out)
	}
	return blk.Bytes
}

func pemCertDER(t *testing.T, file string) []byte {
	t.Helper()
	blk, _ := pem.Decode(readFileT(t, file))
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	return blk.Bytes
}

// TestReloadSwapsTLSCertificateCRLAndRefusesABrokenConfig: a server process under
// load is reloaded with SIGHUP three times. A new TLS certificate: new connections
// see it (openssl s_client), the connection of the load keeps working. A CRL that
// revokes a client: that client is refused from then on, on its old connection and
// on new ones. A broken configuration: refused, the old one keeps serving, and
// `config check` names the broken line. No call of the load fails.
func TestReloadSwapsTLSCertificateCRLAndRefusesABrokenConfig(t *testing.T) {
	e := newReloadEnv(t)
	alice := e.clients.Issue("alice", testca.SignProfile) // revoked later
	bob := e.clients.Issue("bob", testca.SignProfile)
	srv := reloadProcess(t, "--config", e.cfgFile)

	bobConn := e.dial(t, srv.addr, bob)
	aliceConn := e.dial(t, srv.addr, alice)
	sign := func(conn *grpc.ClientConn) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := signsvrv1.NewSignServiceClient(conn).Sign(ctx, &signsvrv1.SignRequest{Key: "sig", Data: []byte("reload")})
			return err
		}
	}
	if err := sign(aliceConn)(context.Background()); err != nil {
		t.Fatalf("alice before the reloads: %v", err)
	}
	l := startLoad(t, bobConn, 4, sign(bobConn))
	l.advance(t, 20)

	// 1. A new TLS certificate.
	if got, want := servedCertificate(t, e, srv.addr, bob), pemCertDER(t, filepath.Join(e.dir, "tls1-server.pem")); !bytes.Equal(got, want) {
		t.Fatal("before the reload the server does not show its first certificate")
	}
	e.copy(t, "tls2-server.pem", "server.pem")
	e.copy(t, "tls2-server.key", "server.key")
	srv.reload(t, "configuration reloaded")
	if got, want := servedCertificate(t, e, srv.addr, bob), pemCertDER(t, filepath.Join(e.dir, "tls2-server.pem")); !bytes.Equal(got, want) {
		t.Fatal("after the reload a new connection does not see the new certificate")
	}
	l.advance(t, 20) // the load's connection, made before, keeps working
	fresh := e.dial(t, srv.addr, bob)
	if err := sign(fresh)(context.Background()); err != nil {
		t.Fatalf("a new connection after the certificate change: %v", err)
	}

	// 2. A CRL that revokes alice.
	if err := sign(aliceConn)(context.Background()); err != nil {
		t.Fatalf("alice before her revocation: %v", err)
	}
	e.clients.Revoke(alice, "keyCompromise")
	e.writeCRL(t, e.clients.CRL)
	srv.reload(t, "configuration reloaded")
	if err := sign(aliceConn)(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("alice on her old connection after the CRL reload: %v, want Unauthenticated", err)
	}
	if err := sign(e.dial(t, srv.addr, alice))(context.Background()); err == nil {
		t.Fatal("alice on a new connection after the CRL reload: allowed")
	}
	l.advance(t, 20)

	// 3. A broken configuration: a misspelt key on line 9.
	good := readFileT(t, e.cfgFile)
	broken := strings.Replace(string(good), "      crl_files:", "      crl_filez:", 1)
	if broken == string(good) {
		t.Fatal("the test's config has no crl_files line")
	}
	line := 1 + strings.Count(broken[:strings.Index(broken, "crl_filez")], "\n")
	writeAtomically(t, e.cfgFile, []byte(broken))
	srv.reload(t, "configuration reload refused")
	if !strings.Contains(srv.stderr.String(), fmt.Sprintf("line %d", line)) {
		t.Errorf("the refused reload's log does not name line %d:\n%s", line, srv.stderr.String())
	}
	l.advance(t, 20)
	if err := sign(aliceConn)(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("alice after the refused reload: %v (the old configuration should still refuse her)", err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"config", "check", e.cfgFile}, nil, &stdout, &stderr); code != exitFailure ||
		!strings.Contains(stderr.String(), fmt.Sprintf("line %d", line)) || !strings.Contains(stderr.String(), "crl_filez") {
		t.Errorf("config check of the broken file: exit %d, %s%s (want the line %d named)", code, stdout.String(), stderr.String(), line)
	}
	writeAtomically(t, e.cfgFile, good)
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"config", "check", e.cfgFile}, nil, &stdout, &stderr); code != exitOK {
		t.Errorf("config check of the good file: exit %d, %s", code, stderr.String())
	}

	// The operations listener counted the two reloads that took effect and the one refused.
	ops := opsRE.FindStringSubmatch(srv.stderr.String())
	if ops == nil {
		t.Fatalf("no operations listener in the log:\n%s", srv.stderr.String())
	}
	m := scrapeMetrics(t, ops[1])
	m.want(t, "signsvr_config_reloads_total", map[string]string{"result": "success"}, is(2))
	m.want(t, "signsvr_config_reloads_total", map[string]string{"result": "failure"}, is(1))

	l.stop()
	l.check(t)
	t.Logf("%d calls of the load, none failed, across 3 reloads", l.ok.Load())
}

// encGeneration is the YAML of one generation of the key "enc".
func encGeneration(id, state string, c *testca.Cert) string {
	s := fmt.Sprintf("      - name: enc\n        generation: %q\n        key_file: %s\n        cert_file: %s\n        usages: [decrypt]\n",
		id, c.KeyFile, c.CertFile)
	if state != "" {
		s += "        state: " + state + "\n"
	}
	return s
}

// TestReloadRotatesAnEncryptionKeyUnderLoad: clients envelope to the key name "enc"
// and decrypt with it without pause while its certificate is rotated by a config
// rewrite and SIGHUP: the new generation becomes active, the old one decrypt-only.
// Envelopes made to the old certificate before still decrypt, envelopes made after
// go to the new certificate (openssl opens them with the new key, not with the old
// one), and no call fails.
func TestReloadRotatesAnEncryptionKeyUnderLoad(t *testing.T) {
	e := newReloadEnv(t)
	old, next := e.clients.Issue("enc-2025", testca.EncryptRSAProfile), e.clients.Issue("enc-2026", testca.EncryptRSAProfile)
	client := e.clients.Issue("fep", testca.SignProfile)
	e.writeConfig(t, encGeneration("2025", "", old))
	srv := reloadProcess(t, "--config", e.cfgFile)
	conn := e.dial(t, srv.addr, client)
	envc := signsvrv1.NewEnvelopeServiceClient(conn)
	envelopeTo := func(ctx context.Context, data []byte) ([]byte, error) {
		r, err := envc.Envelope(ctx, &signsvrv1.EnvelopeRequest{RecipientKeys: []string{"enc"}, Data: data})
		return r.GetCms(), err
	}
	decrypt := func(ctx context.Context, der, want []byte) error {
		r, err := envc.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "enc", Cms: der})
		if err == nil && !bytes.Equal(r.GetData(), want) {
			err = fmt.Errorf("decrypted %q, want %q", r.GetData(), want)
		}
		return err
	}
	var n atomic.Int64
	l := startLoad(t, conn, 4, func(ctx context.Context) error {
		data := fmt.Appendf(nil, "declaration %d", n.Add(1))
		der, err := envelopeTo(ctx, data)
		if err != nil {
			return err
		}
		return decrypt(ctx, der, data)
	})
	l.advance(t, 20)
	before := []byte("made to the 2025 certificate")
	oldEnv, err := envelopeTo(context.Background(), before)
	if err != nil {
		t.Fatal(err)
	}

	e.writeConfig(t, encGeneration("2026", "", next)+encGeneration("2025", "decrypt-only", old))
	srv.reload(t, "configuration reloaded")
	l.advance(t, 20)
	if err := decrypt(context.Background(), oldEnv, before); err != nil {
		t.Fatalf("an envelope made to the old certificate, after the rotation: %v", err)
	}
	after := []byte("made after the rotation")
	newEnv, err := envelopeTo(context.Background(), after)
	if err != nil {
		t.Fatal(err)
	}
	// The answers name the generation and certificate used; ListKeys lists both.
	serial := func(c *testca.Cert) string { return c.Cert.SerialNumber.Text(16) }
	if r, err := envc.Envelope(context.Background(), &signsvrv1.EnvelopeRequest{RecipientKeys: []string{"enc"}, Data: after}); err != nil ||
		len(r.GetRecipientKeysUsed()) != 1 || r.GetRecipientKeysUsed()[0].GetGeneration() != "2026" || r.GetRecipientKeysUsed()[0].GetCertificateSerial() != serial(next) {
		t.Errorf("Envelope after the rotation names %v (%v), want generation 2026", r.GetRecipientKeysUsed(), err)
	}
	if r, err := envc.Decrypt(context.Background(), &signsvrv1.DecryptRequest{Key: "enc", Cms: oldEnv}); err != nil ||
		r.GetKeyUsed().GetGeneration() != "2025" || r.GetKeyUsed().GetCertificateSerial() != serial(old) {
		t.Errorf("Decrypt of the old envelope names %v (%v), want generation 2025", r.GetKeyUsed(), err)
	}
	lk, err := signsvrv1.NewKeyServiceClient(conn).ListKeys(context.Background(), &signsvrv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var gens []string
	for _, k := range lk.GetKeys() {
		if k.GetName() == "enc" {
			for _, g := range k.GetGenerations() {
				gens = append(gens, g.GetId()+":"+g.GetState().String()+":"+g.GetCertificateSerial())
			}
		}
	}
	if want := []string{"2026:KEY_GENERATION_STATE_ACTIVE:" + serial(next), "2025:KEY_GENERATION_STATE_DECRYPT_ONLY:" + serial(old)}; strings.Join(gens, " ") != strings.Join(want, " ") {
		t.Errorf("ListKeys generations of enc: %v, want %v", gens, want)
	}
	envFile := filepath.Join(e.dir, "after.der")
	if err := os.WriteFile(envFile, newEnv, 0o600); err != nil {
		t.Fatal(err)
	}
	opensslDecrypt := func(c *testca.Cert) ([]byte, error) {
		return exec.Command(testca.Bin(t), "cms", "-decrypt", "-inform", "DER", "-in", envFile, "-inkey", c.KeyFile, "-recip", c.CertFile).Output()
	}
	if out, err := opensslDecrypt(next); err != nil || !bytes.Equal(out, after) {
		t.Fatalf("openssl with the new key: %q, %v", out, err)
	}
	if out, err := opensslDecrypt(old); err == nil {
		t.Fatalf("openssl opened the new envelope with the old key: %q", out)
	}

	// Retired: the old generation opens nothing any more.
	e.writeConfig(t, encGeneration("2026", "", next)+encGeneration("2025", "retired", old))
	srv.reload(t, "configuration reloaded")
	l.advance(t, 20)
	if err := decrypt(context.Background(), oldEnv, before); err == nil {
		t.Fatal("a retired generation still decrypts")
	}
	l.stop()
	l.check(t)
	t.Logf("%d envelope+decrypt calls of the load, none failed, across 2 rotations", l.ok.Load())
}
