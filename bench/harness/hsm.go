package harness

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/bench/baseline"
	"signsvr.dev/signsvr/bench/loadgen"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/keystore"
)

// The HSM phase runs scenarios against keys held in a SoftHSM2 token, on a server
// started with a configuration file as in production (mutual TLS, audit log, keys in
// keystore.pkcs11), next to the same token's direct C_Sign calls on the server's
// core: the server should reach at least 90 % of what the same token does with direct
// C_Sign calls, measured in the same run as everything else.
// SoftHSM2 computes inside the server's process, so the server's CPU per call includes
// the token's; so does the direct baseline's.

// DefaultHSMModule is SoftHSM2's library on Debian.
const DefaultHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// HSMSuite configures the HSM phase.
type HSMSuite struct {
	// Scenarios are Sign scenarios ("Sign/rsa/1KiB/unary", "Sign/ecdsa/1KiB/batch64")
	// of the rsa and ecdsa families (SoftHSM2 has no SM2); each uses the token's key of
	// its family, hsm-<alg>-sign.
	Scenarios []string `json:"scenarios"`
	// Sessions is the token's session pool (pool_size); default 4.
	Sessions int `json:"sessions,omitempty"`
	// Module is the PKCS#11 library; default DefaultHSMModule.
	Module string `json:"module,omitempty"`
}

func (h *HSMSuite) check() error {
	if len(h.Scenarios) == 0 {
		return errors.New("hsm: no scenarios")
	}
	for _, n := range h.Scenarios {
		sc, err := loadgen.ParseName(n)
		if err != nil {
			return fmt.Errorf("hsm: %w", err)
		}
		if sc.Op != "Sign" || (sc.Alg != "rsa" && sc.Alg != "ecdsa") {
			return fmt.Errorf("hsm: scenario %s: only Sign with rsa or ecdsa keys (SoftHSM2 has no SM2)", n)
		}
	}
	if h.Sessions < 0 {
		return fmt.Errorf("hsm: sessions %d", h.Sessions)
	}
	return nil
}

// sessions is the token's session pool size, default 4.
func (h *HSMSuite) sessions() int {
	if h.Sessions <= 0 {
		return 4
	}
	return h.Sessions
}

// hsmKeyName is the server's name (and the token's CKA_LABEL) of a family's key.
func hsmKeyName(alg string) string { return "hsm-" + alg + "-sign" }

// HSMResult is one HSM scenario: the server against the token's direct C_Sign.
type HSMResult struct {
	Name     string           `json:"name"`
	Error    string           `json:"error,omitempty"`
	Sessions int              `json:"sessions"`
	Direct   *baseline.Result `json:"direct,omitempty"`
	Load     *loadgen.Result  `json:"load,omitempty"`
	// Efficiency is direct C_Sign CPU per signature (digest included) over the
	// server's CPU per signature; the target is 0.90.
	Efficiency float64 `json:"efficiency,omitempty"`
	// DirectAfter is direct C_Sign measured again right after the load (0 when that
	// failed); Unreliable says the two differ by more than baselineAgreement.
	DirectAfter time.Duration `json:"direct_after_ns,omitempty"`
	Unreliable  bool          `json:"unreliable,omitempty"`
}

// hsmEnv is a provisioned token, its keys' certificates, TLS files and the server's
// configuration, in one directory.
type hsmEnv struct {
	dir, conf, module, token, pinFile string
	config                            string // the server's configuration file
	tlsCA, tlsCert, tlsKey            string // the client's TLS files
}

func (e *hsmEnv) path(name string) string { return filepath.Join(e.dir, name) }

func (e *hsmEnv) env() []string { return []string{"SOFTHSM2_CONF=" + e.conf} }

// clientArgs are loadgen's TLS flags.
func (e *hsmEnv) clientArgs() []string {
	return []string{"-tls-ca", e.tlsCA, "-tls-cert", e.tlsCert, "-tls-key", e.tlsKey}
}

// provisionHSM initialises a SoftHSM2 token in dir, makes one signing key per family
// with `signsvr keys generate` (so the keys are made as an operator makes them),
// certifies them with the development ECDSA root through `signsvr keys csr`, and
// writes TLS files and the server's configuration.
func provisionHSM(ctx context.Context, dir, signsvr, pki string, h *HSMSuite, algs []string) (*hsmEnv, error) {
	module := h.Module
	if module == "" {
		module = DefaultHSMModule
	}
	if _, err := os.Stat(module); err != nil {
		return nil, fmt.Errorf("hsm: SoftHSM2 is not installed (%s missing): `make deps` installs it as root (apt-get install softhsm2)", module)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return nil, errors.New("hsm: softhsm2-util is not installed: `make deps` installs it as root (apt-get install softhsm2)")
	}
	e := &hsmEnv{dir: dir, conf: filepath.Join(dir, "softhsm2.conf"), module: module, token: "signsvr-bench", pinFile: filepath.Join(dir, "pin")}
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return nil, err
	}
	if err := writeFiles(map[string]string{
		e.conf:    "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
		e.pinFile: "271828\n",
	}); err != nil {
		return nil, err
	}
	if _, err := runTool(ctx, e.env(), "softhsm2-util", "--init-token", "--free", "--label", e.token, "--so-pin", "31415926", "--pin", "271828"); err != nil {
		return nil, err
	}
	ca, err := devpki.ReadCA(pki, "ecdsa")
	if err != nil {
		return nil, fmt.Errorf("hsm: the development ECDSA root: %w", err)
	}
	tok := []string{"--module", module, "--token", e.token, "--pin-file", e.pinFile}
	uriRE := regexp.MustCompile(`(?m)^uri: (\S+)$`)
	var keysYAML strings.Builder
	var names []string
	for _, alg := range algs {
		name := hsmKeyName(alg)
		typ := map[string]string{"rsa": "rsa-2048", "ecdsa": "ecdsa-p256"}[alg]
		out, err := runTool(ctx, e.env(), signsvr, append([]string{"keys", "generate", "--label", name, "--type", typ, "--usage", "sign"}, tok...)...)
		if err != nil {
			return nil, err
		}
		m := uriRE.FindStringSubmatch(out)
		if m == nil {
			return nil, fmt.Errorf("hsm: keys generate printed no URI:\n%s", out)
		}
		csr := e.path(name + ".csr")
		if _, err := runTool(ctx, e.env(), signsvr, append([]string{"keys", "csr", "--key", m[1], "--subject", "CN=" + name + ",O=signsvr bench", "--out", csr}, tok...)...); err != nil {
			return nil, err
		}
		leaf, err := certifyCSR(csr, ca)
		if err != nil {
			return nil, fmt.Errorf("hsm: certifying %s: %w", name, err)
		}
		chain := e.path(name + ".chain.pem")
		if err := devpki.WriteCertsPEM(chain, leaf, ca.Cert); err != nil {
			return nil, err
		}
		fmt.Fprintf(&keysYAML, "      - name: %s\n        uri: %q\n        cert_file: %s\n        usages: [sign]\n", name, m[1], chain)
		names = append(names, name)
	}
	if err := e.writeTLS(); err != nil {
		return nil, err
	}
	e.config = e.path("signsvr.yaml")
	cfg := fmt.Sprintf(`# signsvr for the benchmark's HSM phase (bench/harness/hsm.go)
listen: 127.0.0.1:0
log:
  level: warn
  format: text
tls:
  cert_file: %[1]s/tls-server.pem
  key_file: %[1]s/tls-server.key
  client_ca_files: [%[1]s/tls-ca.pem]
trust:
  anchors: [%[2]s/roots.pem]
  revocation:
    disabled: true
keystore:
  soft:
    keys:
      - name: audit
        key_file: %[2]s/keys/audit.key.pem
        cert_file: %[2]s/keys/audit.chain.pem
        usages: [sign]
  pkcs11:
    tokens:
      - module: %[3]s
        label: %[4]s
        pin_file: %[5]s
        pool_size: %[6]d
        wait_timeout: 10s
    keys:
%[7]saudit:
  dir: %[1]s/audit
  key: audit
authorization:
  rules:
    - subjects: ["CN=signsvr bench client,O=signsvr development"]
      issuer: "CN=signsvr bench TLS CA,O=signsvr development"
      keys: [%[8]s]
      operations: [sign, verify, list_keys]
`, e.dir, pki, module, e.token, e.pinFile, h.sessions(), keysYAML.String(), strings.Join(names, ", "))
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return e, nil
}

// writeTLS makes a TLS CA, the server's certificate for 127.0.0.1 and the client's.
func (e *hsmEnv) writeTLS() error {
	now := time.Now()
	ca, err := devpki.NewCA(devpki.ECDSAP256, "signsvr bench TLS CA", now)
	if err != nil {
		return err
	}
	if err := devpki.WriteCertsPEM(e.path("tls-ca.pem"), ca.Cert); err != nil {
		return err
	}
	for _, leaf := range []struct {
		name string
		opts devpki.LeafOptions
	}{
		{"tls-server", devpki.LeafOptions{CommonName: "signsvr bench server", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []smx509.ExtKeyUsage{smx509.ExtKeyUsageServerAuth}}},
		{"tls-client", devpki.LeafOptions{CommonName: "signsvr bench client",
			ExtKeyUsage: []smx509.ExtKeyUsage{smx509.ExtKeyUsageClientAuth}}},
	} {
		opts := leaf.opts
		opts.Usage, opts.Now = keystore.UsageSign, now
		key, cert, err := ca.Issue(devpki.ECDSAP256, opts)
		if err != nil {
			return err
		}
		if err := devpki.WriteKeyPEM(e.path(leaf.name+".key"), key); err != nil {
			return err
		}
		if err := devpki.WriteCertsPEM(e.path(leaf.name+".pem"), cert); err != nil {
			return err
		}
	}
	e.tlsCA, e.tlsCert, e.tlsKey = e.path("tls-ca.pem"), e.path("tls-client.pem"), e.path("tls-client.key")
	return nil
}

func writeFiles(files map[string]string) error {
	for p, s := range files {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// certifyCSR issues a signing certificate for the key of a PEM certificate request.
func certifyCSR(csrFile string, ca *devpki.CA) (*smx509.Certificate, error) {
	pb, err := os.ReadFile(csrFile)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(pb)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM request", csrFile)
	}
	req, err := smx509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("request signature: %w", err)
	}
	return ca.Certify(req.PublicKey, devpki.LeafOptions{
		CommonName: req.Subject.CommonName, Usage: keystore.UsageSign, Now: time.Now(), NotAfter: time.Now().Add(30 * 24 * time.Hour),
	})
}

// runTool runs a program with extra environment and returns its standard output.
func runTool(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// hsmPhase provisions the token, starts the configured server on the one-core CPUs
// and runs each HSM scenario after the token's direct baseline.
func (r *runner) hsmPhase(ctx context.Context) error {
	h := r.suite.HSM
	var algs []string
	var scs []loadgen.Scenario
	for _, n := range h.Scenarios {
		sc, _ := loadgen.ParseName(n) // checked with the suite
		sc.SignKey = hsmKeyName(sc.Alg)
		scs = append(scs, sc)
		if !slices.Contains(algs, sc.Alg) {
			algs = append(algs, sc.Alg)
		}
	}
	sessions := h.sessions()
	fail := func(err error) {
		for _, sc := range scs {
			r.report.HSM = append(r.report.HSM, &HSMResult{Name: sc.Name(), Sessions: sessions, Error: err.Error()})
		}
		r.logf("hsm: %v", err)
	}
	r.logf("hsm: provisioning a SoftHSM2 token (keys: %s)", strings.Join(algs, ", "))
	e, err := provisionHSM(ctx, filepath.Join(r.o.WorkDir, "hsm"), filepath.Join(r.bin, "signsvr"), r.data, h, algs)
	if err != nil {
		fail(err)
		return nil
	}
	srv, err := startConfiguredServer(ctx, r.taskset, filepath.Join(r.bin, "signsvr"), e.config, r.o.ServerCPUs, e.env(), e)
	if err != nil {
		fail(err)
		return nil
	}
	defer srv.stop()
	for _, sc := range scs {
		hr := &HSMResult{Name: sc.Name(), Sessions: sessions}
		r.report.HSM = append(r.report.HSM, hr)
		if err := srv.alive(); err != nil {
			hr.Error = err.Error()
			break
		}
		spec := []string{"-hsm-key", sc.SignKey, "-hsm-module", e.module, "-hsm-token", e.token,
			"-hsm-pin-file", e.pinFile, "-op", "sign", "-alg", sc.Alg, "-size", strconv.Itoa(sc.Size)}
		direct, err := r.baseline(ctx, e.env(), spec...)
		if err != nil {
			hr.Error = "direct C_Sign baseline: " + err.Error()
			r.logf("%-40s %s", hr.Name, hr.Error)
			continue
		}
		hr.Direct = direct
		res, err := r.runLoad(ctx, srv, sc, r.o.ClientCPUs, r.loadFor(sc), 0, r.suite.Warmup.D(), r.suite.Duration.D(), false)
		if err != nil {
			hr.Error = err.Error()
			r.logf("%-40s ERROR %s", hr.Name, hr.Error)
			continue
		}
		hr.Load = res
		// As for the soft keys: direct C_Sign again after the load, to see whether the
		// machine's speed moved while the server was measured.
		if after, err := r.baselineAfter(ctx, e.env(), spec...); err == nil {
			hr.DirectAfter = after.Full.CPU
		}
		if res.ServerCPUPerItem > 0 {
			hr.Efficiency = float64(hr.Direct.Full.CPU) / float64(res.ServerCPUPerItem)
		}
		hr.Unreliable = drift(hr.Direct.Full.CPU, hr.DirectAfter) > baselineAgreement
		r.logf("%-40s %8.0f items/s  server %7.1f µs/item  direct C_Sign %7.1f µs (after the load %.1f)  efficiency %.2f",
			hr.Name, res.ItemsPerSec, us(res.ServerCPUPerItem), us(hr.Direct.Full.CPU), us(hr.DirectAfter), hr.Efficiency)
	}
	if err := srv.stop(); err != nil {
		r.report.Notes = append(r.report.Notes, "hsm server: "+err.Error())
	}
	srv.saveLog(r.o.WorkDir, "server-hsm.log")
	return nil
}
