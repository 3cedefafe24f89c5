//go:build cgo

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// These tests run the real server from a YAML configuration whose keys live in a
// SoftHSM2 token, the token set up the way an operator would: `signsvr keys generate`
// inside the token, `signsvr keys csr`, a CA (OpenSSL) issues the certificate, and
// `signsvr keys import-cert` stores it next to the key. OpenSSL then checks the
// server's work from outside.

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// hsmEnv is one SoftHSM2 installation with a provisioned token, a CA and the files a
// configuration names, all in one temporary directory.
type hsmEnv struct {
	dir, conf, tokenDir string
	label, pin          string
	uris                map[string]string // key label -> URI printed by `keys generate`
	certs               map[string]string // key label -> leaf certificate (PEM file)
}

func requireTools(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(softhsmModule); err != nil {
		t.Fatalf("SoftHSM2 is not installed (%s missing): `make test` installs it (apt-get install softhsm2)", softhsmModule)
	}
	for _, bin := range []string{"softhsm2-util", "openssl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: `make test` installs it (apt-get install softhsm2 openssl)", bin)
		}
	}
}

func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newHSMEnv initialises a token in t.TempDir() and provisions the keys through the
// CLI:
//
//	hsm-rsa-sign   RSA-2048 sign      CSR -> CA -> import-cert (chain read from the token)
//	hsm-p256-sign  P-256 sign         CSR -> CA (valid 10 days: expires soon) -> import-cert
//	hsm-rsa-enc    RSA-2048 decrypt   public key -> CA -> cert_file in the config
//	hsm-p256-enc   P-256 decrypt      public key -> CA -> import-cert
//
// plus a soft P-256 signing key with a certificate of the same CA. The token finds a
// key's issuers by subject among all its certificates, so hsm-p256-enc gets the CA too.
func newHSMEnv(t *testing.T) *hsmEnv {
	t.Helper()
	requireTools(t)
	dir := t.TempDir()
	e := &hsmEnv{dir: dir, conf: filepath.Join(dir, "softhsm2.conf"), tokenDir: filepath.Join(dir, "tokens"),
		label: "signsvr", pin: "314159", uris: map[string]string{}, certs: map[string]string{}}
	if err := os.MkdirAll(e.tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.writeConf(t, "softhsm2.conf", e.tokenDir)
	e.write(t, "pin", e.pin+"\n")
	t.Setenv("SOFTHSM2_CONF", e.conf)
	e.initToken(t, e.conf)

	ossl := func(args ...string) string { return runTool(t, nil, "openssl", args...) }
	ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", e.path("ca.key"))
	ossl("req", "-x509", "-new", "-key", e.path("ca.key"), "-subj", "/CN=signsvr HSM test CA/O=signsvr tests", "-days", "365",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", e.path("ca.pem"))
	e.write(t, "sign.ext", "keyUsage=critical,digitalSignature,nonRepudiation\nsubjectKeyIdentifier=hash\n")
	e.write(t, "enc-rsa.ext", "keyUsage=critical,keyEncipherment\nsubjectKeyIdentifier=hash\n")
	e.write(t, "enc-ec.ext", "keyUsage=critical,keyAgreement\nsubjectKeyIdentifier=hash\n")
	serial := 100
	issue := func(label, csr, ext string, days int, extra ...string) string {
		serial++
		out := e.path(label + ".pem")
		args := append([]string{"x509", "-req", "-in", csr, "-CA", e.path("ca.pem"), "-CAkey", e.path("ca.key"),
			"-set_serial", strconv.Itoa(serial), "-days", strconv.Itoa(days), "-extfile", e.path(ext), "-out", out}, extra...)
		ossl(args...)
		e.certs[label] = out
		return out
	}

	tok := []string{"--module", softhsmModule, "--token", e.label, "--pin-file", e.path("pin")}
	uriRE := regexp.MustCompile(`(?m)^uri: (\S+)$`)
	for _, k := range []struct{ label, typ, usage string }{
		{"hsm-rsa-sign", "rsa-2048", "sign"},
		{"hsm-p256-sign", "ecdsa-p256", "sign"},
		{"hsm-rsa-enc", "rsa-2048", "decrypt"},
		{"hsm-p256-enc", "ecdsa-p256", "decrypt"},
	} {
		out := e.signsvr(t, nil, append([]string{"keys", "generate", "--label", k.label, "--type", k.typ, "--usage", k.usage}, tok...)...)
		m := uriRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("keys generate printed no URI:\n%s", out)
		}
		e.uris[k.label] = m[1]
		pub := out[strings.Index(out, "-----BEGIN PUBLIC KEY-----"):]
		e.write(t, k.label+".pub", pub)
	}
	// Signing keys: the token signs its own certificate request.
	for _, k := range []struct {
		label string
		days  int
	}{{"hsm-rsa-sign", 365}, {"hsm-p256-sign", 10}} {
		csr := e.path(k.label + ".csr")
		e.signsvr(t, nil, append([]string{"keys", "csr", "--key", e.uris[k.label], "--subject", "CN=" + k.label + ",O=signsvr tests", "--out", csr}, tok...)...)
		leaf := issue(k.label, csr, "sign.ext", k.days)
		chain := e.write(t, k.label+".chain.pem", e.read(t, leaf)+e.read(t, e.path("ca.pem")))
		e.signsvr(t, nil, append([]string{"keys", "import-cert", "--key", e.uris[k.label], "--cert", chain}, tok...)...)
	}
	// Decryption keys may not sign, so not their own request either: the CA certifies
	// the public key that `keys generate` printed (OpenSSL takes it with -force_pubkey;
	// the request only carries it there).
	anyCSR := e.path("hsm-rsa-sign.csr")
	issue("hsm-rsa-enc", anyCSR, "enc-rsa.ext", 365, "-force_pubkey", e.path("hsm-rsa-enc.pub"), "-subj", "/CN=hsm-rsa-enc/O=signsvr tests")
	p256enc := issue("hsm-p256-enc", anyCSR, "enc-ec.ext", 365, "-force_pubkey", e.path("hsm-p256-enc.pub"), "-subj", "/CN=hsm-p256-enc/O=signsvr tests")
	e.signsvr(t, nil, append([]string{"keys", "import-cert", "--key", e.uris["hsm-p256-enc"], "--cert", p256enc}, tok...)...)

	// A soft key beside them, certified by the same CA.
	ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", e.path("soft-p256-sign.key"))
	ossl("req", "-new", "-key", e.path("soft-p256-sign.key"), "-subj", "/CN=soft-p256-sign/O=signsvr tests", "-out", e.path("soft-p256-sign.csr"))
	issue("soft-p256-sign", e.path("soft-p256-sign.csr"), "sign.ext", 365)

	tlsFiles(t, dir, "tls")
	return e
}

func (e *hsmEnv) path(name string) string { return filepath.Join(e.dir, name) }

func (e *hsmEnv) write(t *testing.T, name, content string) string {
	t.Helper()
	p := e.path(name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *hsmEnv) read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeConf writes a SoftHSM2 configuration keeping its tokens in tokenDir.
func (e *hsmEnv) writeConf(t *testing.T, name, tokenDir string) string {
	t.Helper()
	return e.write(t, name, "directories.tokendir = "+tokenDir+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n")
}

// initToken initialises a token labelled e.label, with e.pin as its user PIN, in the
// token directory of the SoftHSM2 configuration conf.
func (e *hsmEnv) initToken(t *testing.T, conf string) {
	t.Helper()
	runTool(t, []string{"SOFTHSM2_CONF=" + conf}, "softhsm2-util", "--init-token", "--free", "--label", e.label,
		"--so-pin", "27182818", "--pin", e.pin)
}

// signsvr runs a signsvr command in this process, as the binary would, and fails the
// test unless it exits 0.
func (e *hsmEnv) signsvr(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), args, bytes.NewReader(stdin), &stdout, &stderr); code != 0 {
		t.Fatalf("signsvr %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// config is the server's YAML configuration; every file it names is relative to it.
func (e *hsmEnv) config() string {
	return fmt.Sprintf(`# signsvr with keys in a SoftHSM2 token
listen: 127.0.0.1:0
log:
  level: debug
  format: json
tls:
  cert_file: tls-server.pem
  key_file: tls-server.key
  client_ca_files: [tls-ca.pem]
trust:
  anchors: [ca.pem, tls-ca.pem]
  revocation:
    disabled: true
keystore:
  expiry_warning: 720h
  soft:
    keys:
      - name: soft-p256-sign
        key_file: soft-p256-sign.key
        cert_file: soft-p256-sign.pem
        usages: [sign]
  pkcs11:
    tokens:
      - module: %s
        label: %s
        pin_file: pin
        pool_size: 4
        wait_timeout: 5s
        retry_interval: 100ms
    keys:
      - name: hsm-rsa-sign
        uri: "%s"
        usages: [sign]
      - name: hsm-p256-sign
        uri: "%s"
        usages: [sign]
      - name: hsm-rsa-enc
        uri: "%s"
        cert_file: hsm-rsa-enc.pem
        usages: [decrypt]
      - name: hsm-p256-enc
        uri: "%s"
        usages: [decrypt]
authorization:
  rules:
    - subjects: ["CN=tls client,O=signsvr development"]
      issuer: "CN=tls tls ca,O=signsvr development"
      keys: ["*"]
      operations: [sign, decrypt, envelope, verify, list_keys]
`, softhsmModule, e.label, e.uris["hsm-rsa-sign"], e.uris["hsm-p256-sign"], e.uris["hsm-rsa-enc"], e.uris["hsm-p256-enc"])
}

// hsmClient is a mutual-TLS gRPC client of the server.
type hsmClient struct {
	conn   *grpc.ClientConn
	sign   signsvrv1.SignServiceClient
	env    signsvrv1.EnvelopeServiceClient
	keys   signsvrv1.KeyServiceClient
	health healthpb.HealthClient
}

// clientCreds is the mutual-TLS client side of the test's TLS files: the client
// certificate, the TLS CA as the only root, the server name localhost.
func (e *hsmEnv) clientCreds(t *testing.T) credentials.TransportCredentials {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(e.path("tls-client.pem"), e.path("tls-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(e.read(t, e.path("tls-ca.pem"))))
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
}

func dialHSMServer(t *testing.T, e *hsmEnv, addr string) *hsmClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(e.clientCreds(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &hsmClient{conn: conn, sign: signsvrv1.NewSignServiceClient(conn), env: signsvrv1.NewEnvelopeServiceClient(conn),
		keys: signsvrv1.NewKeyServiceClient(conn), health: healthpb.NewHealthClient(conn)}
}

func startHSMServer(t *testing.T, e *hsmEnv) (*devServer, *hsmClient) {
	t.Helper()
	cfg := e.write(t, "signsvr.yaml", e.config())
	ds := startServe(t, "--config", cfg)
	return ds, dialHSMServer(t, e, ds.addr)
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestHSMServerEndToEnd: keys made and certified through the CLI sign and decrypt
// through the server; OpenSSL verifies the signatures and made the envelopes.
func TestHSMServerEndToEnd(t *testing.T) {
	e := newHSMEnv(t)
	ds, c := startHSMServer(t, e)
	if logs := ds.stderr.String(); !strings.Contains(logs, `"msg":"HSM token ready"`) || !strings.Contains(logs, `"pool_size":4`) ||
		!strings.Contains(logs, `key certificate expires soon`) || !strings.Contains(logs, `"key":"hsm-p256-sign"`) {
		t.Errorf("the startup log does not show the token or the expiring certificate:\n%s", logs)
	}

	t.Run("ListKeys", func(t *testing.T) {
		resp, err := c.keys.ListKeys(callCtx(t), &signsvrv1.ListKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]struct {
			backend string
			soon    bool
			chain   int
		}{
			"hsm-p256-enc": {"pkcs11", false, 2}, "hsm-p256-sign": {"pkcs11", true, 2}, "hsm-rsa-enc": {"pkcs11", false, 1},
			"hsm-rsa-sign": {"pkcs11", false, 2}, "soft-p256-sign": {"soft", false, 1},
		}
		if len(resp.GetKeys()) != len(want) {
			t.Fatalf("ListKeys gives %d keys, want %d", len(resp.GetKeys()), len(want))
		}
		for _, k := range resp.GetKeys() {
			w, ok := want[k.GetName()]
			if !ok || k.GetBackend() != w.backend || k.GetExpiresSoon() != w.soon || len(k.GetCertificateChain()) != w.chain {
				t.Errorf("%s: backend %q expires_soon %v chain %d; want %+v", k.GetName(), k.GetBackend(), k.GetExpiresSoon(), len(k.GetCertificateChain()), w)
			}
		}
	})

	data := []byte("signed inside SoftHSM2, verified by OpenSSL\n")
	dataFile := e.write(t, "data.txt", string(data))
	t.Run("OpenSSLVerifiesSignatures", func(t *testing.T) {
		for _, tc := range []struct {
			name, key string
			detached  bool
			opts      *signsvrv1.SignOptions
		}{
			{"rsa", "hsm-rsa-sign", false, nil},
			{"rsa/pss-sha384-detached", "hsm-rsa-sign", true, &signsvrv1.SignOptions{RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS, Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384}},
			{"rsa/chain-ski", "hsm-rsa-sign", false, &signsvrv1.SignOptions{Certificates: signsvrv1.CertInclusion_CERT_INCLUSION_CHAIN, SignerId: signsvrv1.SignerIdType_SIGNER_ID_TYPE_SUBJECT_KEY_ID}},
			{"p256", "hsm-p256-sign", false, nil},
			{"p256/sha384-detached", "hsm-p256-sign", true, &signsvrv1.SignOptions{Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384}},
			{"soft-p256", "soft-p256-sign", false, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, err := c.sign.Sign(callCtx(t), &signsvrv1.SignRequest{Key: tc.key, Data: data, Detached: tc.detached, Options: tc.opts})
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				sig := e.write(t, "sig-"+strings.ReplaceAll(tc.name, "/", "-")+".der", string(s.GetCms()))
				args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-CAfile", e.path("ca.pem")}
				if tc.detached {
					args = append(args, "-content", dataFile)
				}
				cmd := exec.Command("openssl", args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil || !bytes.Equal(out, data) || !strings.Contains(stderr.String(), "Verification successful") {
					t.Fatalf("openssl cms -verify: %v, content %q\n%s", err, out, stderr.String())
				}
				req := &signsvrv1.VerifyRequest{Cms: s.GetCms()}
				if tc.detached {
					req.Data = data
				}
				v, err := c.sign.Verify(callCtx(t), req)
				if err != nil || !v.GetVerified() {
					t.Fatalf("the server does not verify its own signature: %v %v", err, v)
				}
			})
		}
	})

	t.Run("DecryptsOpenSSLEnvelopes", func(t *testing.T) {
		for _, tc := range []struct {
			name, key string
			args      []string
		}{
			{"rsa/pkcs1v15-aes256-cbc", "hsm-rsa-enc", []string{"-aes-256-cbc"}},
			{"rsa/oaep-sha256-aes128-cbc", "hsm-rsa-enc", []string{"-aes-128-cbc", "-recip", e.certs["hsm-rsa-enc"], "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"}},
			{"rsa/oaep-sha1-aes256-gcm", "hsm-rsa-enc", []string{"-aes-256-gcm", "-recip", e.certs["hsm-rsa-enc"], "-keyopt", "rsa_padding_mode:oaep"}},
			{"p256/ecdh-sha256-aes256-cbc", "hsm-p256-enc", []string{"-aes-256-cbc", "-recip", e.certs["hsm-p256-enc"], "-keyopt", "ecdh_kdf_md:sha256"}},
			{"p256/ecdh-sha384-aes128-gcm", "hsm-p256-enc", []string{"-aes-128-gcm", "-recip", e.certs["hsm-p256-enc"], "-keyopt", "ecdh_kdf_md:sha384"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"cms", "-encrypt", "-binary", "-in", dataFile, "-outform", "DER"}, tc.args...)
				if !strings.Contains(strings.Join(tc.args, " "), "-recip") {
					args = append(args, e.certs[tc.key])
				}
				env := runToolBytes(t, "openssl", args...)
				d, err := c.env.Decrypt(callCtx(t), &signsvrv1.DecryptRequest{Key: tc.key, Cms: env})
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				if !bytes.Equal(d.GetData(), data) {
					t.Fatalf("Decrypt = %q, want %q", d.GetData(), data)
				}
			})
		}
		// The server's own envelopes to the token keys, the defaults (RSA-OAEP, ECDH).
		for _, key := range []string{"hsm-rsa-enc", "hsm-p256-enc"} {
			env, err := c.env.Envelope(callCtx(t), &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{key}})
			if err != nil {
				t.Fatalf("Envelope to %s: %v", key, err)
			}
			d, err := c.env.Decrypt(callCtx(t), &signsvrv1.DecryptRequest{Key: key, Cms: env.GetCms()})
			if err != nil || !bytes.Equal(d.GetData(), data) {
				t.Fatalf("Decrypt of the server's envelope to %s: %v %q", key, err, d.GetData())
			}
		}
		// A signing key is not a decryption key, and a wrong key gives no plaintext.
		env := runToolBytes(t, "openssl", "cms", "-encrypt", "-binary", "-in", dataFile, "-outform", "DER", "-aes-256-cbc", e.certs["hsm-rsa-enc"])
		_, err := c.env.Decrypt(callCtx(t), &signsvrv1.DecryptRequest{Key: "hsm-rsa-sign", Cms: env})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("Decrypt with a signing key: %v, want FailedPrecondition", err)
		}
	})
}

func runToolBytes(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// closeAllSessions calls C_CloseAllSessions on the token's slot through a second
// handle on the library, as another part of the process could: every session of the
// server's pool is closed under it.
func closeAllSessions(t *testing.T, label string) {
	t.Helper()
	ctx := p11.New(softhsmModule)
	if ctx == nil {
		t.Fatal("cannot load SoftHSM2 a second time")
	}
	defer ctx.Destroy()
	if err := ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && strings.TrimRight(ti.Label, " ") == label {
			if err := ctx.CloseAllSessions(s); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("token %q not found", label)
}

// waitTimeout bounds every wait for the server to reach a state. It only turns a hang
// into a failure: nothing depends on how soon the state is reached.
const waitTimeout = 2 * time.Minute

// eventually polls cond until it holds, and fails the test with the message of
// failure once waitTimeout has passed first.
func eventually(t *testing.T, cond func() bool, failure func() string) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatal(failure())
		case <-tick.C:
		}
	}
}

// removeAllEventually removes dir, trying again while it fails: a SoftHSM2 in this
// process that still looks at a token there creates its lock files as it reads, and
// a file created between RemoveAll's listing and its final rmdir makes it fail with
// "directory not empty".
func removeAllEventually(t *testing.T, dir string) {
	t.Helper()
	var err error
	eventually(t, func() bool { err = os.RemoveAll(dir); return err == nil },
		func() string { return fmt.Sprintf("cannot remove %s: %v", dir, err) })
}

// TestHSMServerHealsUnderLoad produces real faults in SoftHSM2 under concurrent gRPC
// load: every session closed under the pool (three times), then the token replaced by
// an empty one of the same label and later restored. Calls in flight may fail with
// Unavailable; health says NOT_SERVING while the keys are gone; afterwards the server
// serves again with no restart, health says SERVING, and no later call fails.
//
// The sessions are closed between calls, not under one: the load pauses for the
// instant of C_CloseAllSessions (a gate the clients hold shared for each call), since
// libsofthsm2 2.6.1 segfaults when C_CloseAllSessions frees a session another thread is
// inside C_Sign with (pkg/keystore/pkcs11's fault test holds the library's lock for the
// same reason). Every idle session of the pool is still dead when the load resumes.
//
// The token directories are swapped by renaming, never written or removed while the
// server's SoftHSM2 may read them: a rename is atomic, whereas the library creates
// lock files in a token directory whenever it reads it (a RemoveAll of it races), and
// a token initialised in place can be seen half made. The empty token is made in a
// directory of its own before it moves in, and removed once the server has stopped.
//
// Every wait polls what the server shows (the count of successful or Unavailable
// calls, the health status) under waitTimeout; none assumes how fast the machine is.
func TestHSMServerHealsUnderLoad(t *testing.T) {
	e := newHSMEnv(t)
	ds, c := startHSMServer(t, e)
	ctx := t.Context()
	data := []byte("under load")
	rsaEnv := runToolBytes(t, "openssl", "cms", "-encrypt", "-binary", "-in", e.write(t, "load.txt", string(data)), "-outform", "DER",
		"-aes-256-cbc", "-recip", e.certs["hsm-rsa-enc"], "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256")
	ecEnv := runToolBytes(t, "openssl", "cms", "-encrypt", "-binary", "-in", e.path("load.txt"), "-outform", "DER",
		"-aes-256-gcm", "-recip", e.certs["hsm-p256-enc"], "-keyopt", "ecdh_kdf_md:sha256")
	call := func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, waitTimeout)
		defer cancel()
		switch i % 4 {
		case 0:
			_, err := c.sign.Sign(cctx, &signsvrv1.SignRequest{Key: "hsm-rsa-sign", Data: data})
			return err
		case 1:
			_, err := c.sign.Sign(cctx, &signsvrv1.SignRequest{Key: "hsm-p256-sign", Data: data})
			return err
		case 2:
			d, err := c.env.Decrypt(cctx, &signsvrv1.DecryptRequest{Key: "hsm-rsa-enc", Cms: rsaEnv})
			if err == nil && !bytes.Equal(d.GetData(), data) {
				return errors.New("wrong plaintext")
			}
			return err
		default:
			d, err := c.env.Decrypt(cctx, &signsvrv1.DecryptRequest{Key: "hsm-p256-enc", Cms: ecEnv})
			if err == nil && !bytes.Equal(d.GetData(), data) {
				return errors.New("wrong plaintext")
			}
			return err
		}
	}
	healthStatus := func() healthpb.HealthCheckResponse_ServingStatus {
		hctx, cancel := context.WithTimeout(ctx, waitTimeout)
		defer cancel()
		r, err := c.health.Check(hctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("health check: %v", err)
		}
		return r.GetStatus()
	}

	var (
		gate                  sync.RWMutex
		stop                  = make(chan struct{})
		wg                    sync.WaitGroup
		ok, unavailable, busy atomic.Int64
		misreported           atomic.Int64
		otherErr              atomic.Value
	)
	// backOff is a client's pause before it retries a server that said it is down, so
	// that the load does not spin on fast failures; it waits for nothing, and its
	// length changes only how many calls fail, never the outcome.
	backOff := func() bool {
		pause := time.NewTimer(5 * time.Millisecond)
		defer pause.Stop()
		select {
		case <-stop:
			return false
		case <-pause.C:
			return true
		}
	}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				gate.RLock()
				err := call(i)
				gate.RUnlock()
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.Unavailable:
					unavailable.Add(1)
					if !backOff() {
						return
					}
				case codes.ResourceExhausted:
					busy.Add(1)
				case codes.InvalidArgument:
					if i%4 >= 2 && strings.Contains(err.Error(), "cannot be decrypted") {
						// A decryption that met the token down, reported as if the
						// message were bad: checked below.
						misreported.Add(1)
						if !backOff() {
							return
						}
						break
					}
					fallthrough
				default:
					otherErr.Store(fmt.Errorf("goroutine %d call %d: %w", g, i, err))
				}
			}
		}(g)
	}
	// The load stops before the server does, also when the test fails half way.
	var stopOnce sync.Once
	stopLoad := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(stopLoad)
	waitOK := func(what string) {
		t.Helper()
		n := ok.Load()
		eventually(t, func() bool { return ok.Load() >= n+40 }, func() string {
			return fmt.Sprintf("%s: the server did not serve again (ok %d, unavailable %d)\n%s", what, ok.Load(), unavailable.Load(), ds.stderr.String())
		})
	}
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus, what string) {
		t.Helper()
		eventually(t, func() bool { return healthStatus() == want },
			func() string { return fmt.Sprintf("%s: health never became %v", what, want) })
	}

	waitOK("warm-up")
	for i := 0; i < 3; i++ {
		gate.Lock()
		closeAllSessions(t, e.label)
		gate.Unlock()
		waitOK("after C_CloseAllSessions")
	}
	if healthStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Error("health is not SERVING after the pool recovered from closed sessions")
	}

	// The token goes: an empty token of the same label takes its place. It is made
	// whole beside the token directory first, so that the server's SoftHSM2 never sees
	// it half made (initialised but without its user PIN yet, which it would keep
	// refusing the login with after the real token came back).
	saved, staged, emptied := e.path("tokens.saved"), e.path("tokens.staged"), e.path("tokens.emptied")
	if err := os.MkdirAll(staged, 0o700); err != nil {
		t.Fatal(err)
	}
	e.initToken(t, e.writeConf(t, "softhsm2-staged.conf", staged))
	if err := os.Rename(e.tokenDir, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, e.tokenDir); err != nil {
		t.Fatal(err)
	}
	un := unavailable.Load()
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING, "token replaced by an empty one")
	eventually(t, func() bool { return unavailable.Load() >= un+5 },
		func() string { return "calls did not fail with Unavailable while the keys were gone" })
	// The token comes back with its keys; the empty one moves aside.
	if err := os.Rename(e.tokenDir, emptied); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(saved, e.tokenDir); err != nil {
		t.Fatal(err)
	}
	waitOK("after the token came back")
	waitHealth(healthpb.HealthCheckResponse_SERVING, "token restored")
	stopLoad()
	if v := otherErr.Load(); v != nil {
		var causes []string
		for _, l := range strings.Split(ds.stderr.String(), "\n") {
			if strings.Contains(l, `"cause"`) && !strings.Contains(l, `"Unavailable"`) {
				causes = append(causes, l)
			}
		}
		t.Fatalf("a call failed with something other than Unavailable/ResourceExhausted: %v\nserver errors:\n%s", v, strings.Join(causes, "\n"))
	}
	for i := 0; i < 200; i++ {
		if err := call(i); err != nil {
			t.Fatalf("call %d after healing: %v", i, err)
		}
	}
	t.Logf("under load: ok %d, unavailable %d, resource exhausted %d, decryptions misreported %d",
		ok.Load(), unavailable.Load(), busy.Load(), misreported.Load())
	if n := misreported.Load(); n > 0 {
		// The token being down says nothing about the message: a client told
		// INVALID_ARGUMENT / DECRYPTION_FAILED would drop a good message instead of
		// retrying. The server maps keystore.ErrUnavailable to UNAVAILABLE
		// (decryptError), but pkg/envelope's Open turns every error of the
		// Decrypter / KeyAgreer, the token's among them, into ErrDecrypt.
		t.Errorf("%d decryptions that met the token down failed with INVALID_ARGUMENT (DECRYPTION_FAILED) instead of UNAVAILABLE", n)
	}
	ds.shutdown(t)
	if !strings.Contains(ds.stderr.String(), "key backend is down: NOT_SERVING") || !strings.Contains(ds.stderr.String(), "key backend is back: SERVING") {
		t.Errorf("the log does not record the outage")
	}
	removeAllEventually(t, emptied)
}

// TestHSMBadConfigNamesLine: each configuration mistake stops the server at startup
// with an error naming the file and line of the setting at fault.
func TestHSMBadConfigNamesLine(t *testing.T) {
	e := newHSMEnv(t)
	e.write(t, "wrong-pin", "999999\n")
	e.write(t, "not-a-module.so", "this is not a shared library\n")
	good := e.config()
	for _, tc := range []struct {
		name    string
		from    string // replaced in the good configuration...
		to      string // ...by this
		at      string // the line (in the bad configuration) the error must name starts with this
		nth     int    // ...counting from 1 when several lines do
		cause   string
		setting string
	}{
		{"module path missing", "module: " + softhsmModule, "module: /usr/lib/softhsm/libnothere.so", "- module:", 1, "no such file", "tokens[0].module"},
		{"module not PKCS#11", "module: " + softhsmModule, "module: ./not-a-module.so", "- module:", 1, "not-a-module.so", "tokens[0]"},
		{"token label unknown", "label: " + e.label, "label: no-such-token", "- module:", 1, "no-such-token", "tokens[0]"},
		{"wrong PIN", "pin_file: pin", "pin_file: wrong-pin", "pin_file:", 1, "CKR_PIN_INCORRECT", "tokens[0].pin_file"},
		{"PIN file missing", "pin_file: pin", "pin_file: no-pin-here", "pin_file:", 1, "no such file", "tokens[0].pin_file"},
		{"PIN variable unset", "pin_file: pin", "pin_env: SIGNSVR_TEST_UNSET_PIN", "pin_env:", 1, "SIGNSVR_TEST_UNSET_PIN is not set", "tokens[0].pin_env"},
		{"self_check unknown", "pin_file: pin", "pin_file: pin\n        self_check: sometimes", "self_check:", 1, "want auto, always or off", "tokens[0].self_check"},
		{"object missing", `uri: "` + e.uris["hsm-p256-sign"] + `"`, `uri: "pkcs11:token=signsvr;object=nothing-here"`, "uri:", 2, "no private key", "keys[1].uri"},
		{"token not configured", `uri: "` + e.uris["hsm-rsa-enc"] + `"`, `uri: "pkcs11:token=elsewhere;object=hsm-rsa-enc"`, "uri:", 3, `"elsewhere"`, "keys[2].uri"},
		{"certificate for another key", "cert_file: hsm-rsa-enc.pem", "cert_file: hsm-rsa-sign.pem", "cert_file: hsm-rsa-sign.pem", 1, "is not for the key", "keys[2].cert_file"},
		{"certificate of another type", "cert_file: hsm-rsa-enc.pem", "cert_file: hsm-p256-enc.pem", "cert_file: hsm-p256-enc.pem", 1, "is not for the key", "keys[2].cert_file"},
		// Found only by the store's own self-test (the key may not decrypt): the key's line.
		{"usage the token key lacks", "usages: [sign]\n      - name: hsm-p256-sign", "usages: [sign, decrypt]\n      - name: hsm-p256-sign", "- name: hsm-rsa-sign", 1, "self-test", "keys[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the configuration has no %q", tc.from)
			}
			bad := strings.Replace(good, tc.from, tc.to, 1)
			line := 0
			for i, l := range strings.Split(bad, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), tc.at) {
					if tc.nth--; tc.nth == 0 {
						line = i + 1
						break
					}
				}
			}
			if line == 0 {
				t.Fatalf("no line %q in the configuration", tc.at)
			}
			cfg := e.write(t, "bad.yaml", bad)
			var stderr lockedBuffer
			// Should the configuration be accepted, the server stops as soon as it listens.
			sctx, stop := context.WithCancel(t.Context())
			defer stop()
			code := runServe(sctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, &stderr, func(net.Addr) { stop() })
			msg := stderr.String()
			if code != exitFailure {
				t.Fatalf("serve exited %d, want %d:\n%s", code, exitFailure, msg)
			}
			where := fmt.Sprintf("%s:%d: keystore.pkcs11.%s", cfg, line, tc.setting)
			if !strings.Contains(msg, where) || !strings.Contains(msg, tc.cause) {
				t.Fatalf("the error does not name %q and say %q:\n%s", where, tc.cause, msg)
			}
			if strings.Contains(msg, e.pin) || strings.Contains(msg, "999999") {
				t.Fatalf("the error shows a PIN:\n%s", msg)
			}
		})
	}
	// None of the attempts above locked the PIN: the good configuration starts.
	ds, c := startHSMServer(t, e)
	if _, err := c.sign.Sign(callCtx(t), &signsvrv1.SignRequest{Key: "hsm-rsa-sign", Data: []byte("x")}); err != nil {
		t.Fatalf("Sign after the bad configurations: %v\n%s", err, ds.stderr.String())
	}
}
