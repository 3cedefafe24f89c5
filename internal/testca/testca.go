// Package testca builds a small, real PKI with the openssl command line for tests.
//
// Tests across the module need certificates made by a peer other than our own code:
// a root, an intermediate, end entities that are good, revoked, expired or carry the
// wrong key usage, a CRL, and an OCSP responder. This package drives `openssl` 3.0
// (genpkey, req, ca, crl, ocsp) in a t.TempDir() to make them, so what the tests check
// is what OpenSSL writes, not what our own encoder believes it writes.
//
// The three key families are supported: RSA-2048 (SHA-256), ECDSA P-256 (SHA-256)
// and SM2 (SM3, signer ID 1234567812345678 passed to OpenSSL with -sigopt distid, so
// the SM2 signatures verify with the default ID that gmsm uses).
//
// A PKI is made once per test (about half a second for RSA) with New. Certificates
// carry the CRL distribution point and OCSP responder URLs given in Options, so a test
// first picks its loopback addresses (an httptest server for the CRL, FreePort for
// the responder), then builds the PKI, then starts the servers.
//
// If openssl is missing the test fails with a clear message; it never skips.
package testca

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// Algo is a key family.
type Algo string

// Key families.
const (
	RSA   Algo = "rsa"
	ECDSA Algo = "ecdsa"
	SM2   Algo = "sm2"
)

// Algos lists every key family, for table tests.
var Algos = []Algo{RSA, ECDSA, SM2}

// SM2ID is the SM2 signer ID the PKI signs with (the GM/T 0009 default).
const SM2ID = "1234567812345678"

// Options say where the certificates point for revocation information.
type Options struct {
	// Algo is the key family of every key in the PKI. Default RSA.
	Algo Algo
	// CRLURL is written as the CRL distribution point of the end-entity
	// certificates (the intermediate's CRL). Empty: no distribution point.
	CRLURL string
	// RootCRLURL is written as the CRL distribution point of the intermediate
	// (the root's CRL). Empty: none.
	RootCRLURL string
	// OCSPURL is written as the OCSP responder (AIA) of the end-entity
	// certificates. Empty: none.
	OCSPURL string
	// Name prefixes every subject common name, so two PKIs in one test differ.
	// Default "Test".
	Name string
}

// Cert is a certificate with its private key, both also on disk.
type Cert struct {
	Cert     *smx509.Certificate
	Key      crypto.Signer
	CertFile string // PEM
	KeyFile  string // PKCS#8 PEM
}

// Profile describes an end-entity certificate to issue.
type Profile struct {
	// KeyUsage is the OpenSSL keyUsage value, e.g. "critical,digitalSignature".
	// Empty: no keyUsage extension.
	KeyUsage string
	// ExtKeyUsage is the OpenSSL extendedKeyUsage value, e.g. "clientAuth".
	// Empty: no extendedKeyUsage extension.
	ExtKeyUsage string
	// NotBefore and NotAfter default to now-1h and now+30 days.
	NotBefore, NotAfter time.Time
	// NoRevocationInfo leaves out the CRL distribution point and the AIA.
	NoRevocationInfo bool
}

// Common profiles.
var (
	// SignProfile is a signing certificate also good for TLS client auth.
	SignProfile = Profile{KeyUsage: "critical,digitalSignature,nonRepudiation", ExtKeyUsage: "clientAuth,emailProtection"}
	// EncryptRSAProfile is an RSA encryption certificate.
	EncryptRSAProfile = Profile{KeyUsage: "critical,keyEncipherment,dataEncipherment", ExtKeyUsage: "emailProtection"}
	// EncryptECProfile is an EC / SM2 encryption certificate.
	EncryptECProfile = Profile{KeyUsage: "critical,keyAgreement,keyEncipherment,dataEncipherment", ExtKeyUsage: "emailProtection"}
	// WrongUsageProfile allows only certificate signing and server auth: wrong for
	// signing data, encrypting, and client authentication.
	WrongUsageProfile = Profile{KeyUsage: "critical,keyCertSign", ExtKeyUsage: "serverAuth"}
)

// PKI is a root, an intermediate and the end entities they issued.
type PKI struct {
	Dir  string
	Opts Options

	Root         *Cert
	Intermediate *Cert

	Good       *Cert // valid, SignProfile
	Encrypt    *Cert // valid, encryption profile for the key family
	Revoked    *Cert // SignProfile, revoked (keyCompromise) in the CRL and OCSP index
	Expired    *Cert // SignProfile, valid from 2020 to 2021
	WrongUsage *Cert // WrongUsageProfile
	OCSPSigner *Cert // delegated OCSP responder (EKU OCSPSigning), issued by the intermediate

	// CRL is the intermediate's current CRL (DER); RootCRL is the root's (DER).
	CRL, RootCRL []byte

	rootDB, interDB string
	t               testing.TB
}

// Bin returns the path of openssl, failing the test when it is missing.
func Bin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("testca: the openssl command is required (apt-get install -y openssl): %v", err)
	}
	return p
}

// New builds the PKI in a new t.TempDir().
func New(t testing.TB, opts Options) *PKI {
	t.Helper()
	Bin(t)
	if opts.Algo == "" {
		opts.Algo = RSA
	}
	if opts.Name == "" {
		opts.Name = "Test"
	}
	p := &PKI{Dir: t.TempDir(), Opts: opts, t: t}
	p.rootDB = p.newDB("rootdb")
	p.interDB = p.newDB("interdb")

	// Root: self-signed with `openssl ca -selfsign`, so that its validity can
	// start in the past (req -x509 in OpenSSL 3.0 cannot set notBefore).
	caStart := time.Now().Add(-7 * 24 * time.Hour)
	rootKey := p.genKey("root")
	rootCSR := filepath.Join(p.Dir, "root.csr")
	args := []string{"req", "-new", "-key", rootKey, "-subj", "/O=" + opts.Name + " Org/CN=" + opts.Name + " Root CA",
		"-config", p.cnf(p.rootDB), "-out", rootCSR}
	p.run(append(args, p.mdArgs("-sigopt")...)...)
	rootCrt := filepath.Join(p.Dir, "root.crt")
	args = []string{"ca", "-batch", "-notext", "-selfsign", "-config", p.cnf(p.rootDB), "-keyfile", rootKey,
		"-in", rootCSR, "-out", rootCrt, "-extensions", "ext",
		"-startdate", caStart.UTC().Format("20060102150405Z"), "-enddate", caStart.Add(20 * 365 * 24 * time.Hour).UTC().Format("20060102150405Z")}
	if opts.Algo == SM2 {
		args = append(args, "-md", "sm3", "-sigopt", "distid:"+SM2ID, "-vfyopt", "distid:"+SM2ID)
	}
	p.run(args...)
	p.Root = p.load(rootCrt, rootKey)

	// Intermediate, issued by the root.
	interExt := "basicConstraints = critical,CA:true,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
	if opts.RootCRLURL != "" {
		interExt += "crlDistributionPoints = URI:" + opts.RootCRLURL + "\n"
	}
	p.Intermediate = p.issue(p.rootDB, p.Root, "inter", opts.Name+" Intermediate CA", interExt, caStart, caStart.Add(10*365*24*time.Hour))

	p.Good = p.Issue("good", SignProfile)
	if opts.Algo == RSA {
		p.Encrypt = p.Issue("encrypt", EncryptRSAProfile)
	} else {
		p.Encrypt = p.Issue("encrypt", EncryptECProfile)
	}
	p.Revoked = p.Issue("revoked", SignProfile)
	exp := SignProfile
	exp.NotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	exp.NotAfter = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Expired = p.Issue("expired", exp)
	p.WrongUsage = p.Issue("wrongusage", WrongUsageProfile)
	p.OCSPSigner = p.Issue("ocsp", Profile{KeyUsage: "critical,digitalSignature", ExtKeyUsage: "OCSPSigning", NoRevocationInfo: true})

	p.Revoke(p.Revoked, "keyCompromise")
	p.RootCRL = p.genCRL(p.rootDB, p.Root)
	return p
}

// Issue makes a new end-entity certificate from the intermediate with profile pr.
func (p *PKI) Issue(name string, pr Profile) *Cert {
	p.t.Helper()
	ext := "basicConstraints = critical,CA:false\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
	if pr.KeyUsage != "" {
		ext += "keyUsage = " + pr.KeyUsage + "\n"
	}
	if pr.ExtKeyUsage != "" {
		ext += "extendedKeyUsage = " + pr.ExtKeyUsage + "\n"
	}
	if !pr.NoRevocationInfo {
		if p.Opts.CRLURL != "" {
			ext += "crlDistributionPoints = URI:" + p.Opts.CRLURL + "\n"
		}
		if p.Opts.OCSPURL != "" {
			ext += "authorityInfoAccess = OCSP;URI:" + p.Opts.OCSPURL + "\n"
		}
	}
	return p.issue(p.interDB, p.Intermediate, name, p.Opts.Name+" "+name, ext, pr.NotBefore, pr.NotAfter)
}

// Revoke marks c revoked in the intermediate's database with an OpenSSL CRL reason
// (e.g. "keyCompromise", "superseded") and regenerates p.CRL.
func (p *PKI) Revoke(c *Cert, reason string) {
	p.t.Helper()
	args := []string{"ca", "-config", p.cnf(p.interDB), "-cert", p.Intermediate.CertFile, "-keyfile", p.Intermediate.KeyFile,
		"-revoke", c.CertFile}
	if reason != "" {
		args = append(args, "-crl_reason", reason)
	}
	p.run(args...)
	p.CRL = p.genCRL(p.interDB, p.Intermediate)
}

// RegenerateCRL re-signs the intermediate's CRL with a fresh lastUpdate and the
// given lifetime, and returns it (DER); p.CRL is updated.
func (p *PKI) RegenerateCRL(lifetime time.Duration) []byte {
	p.t.Helper()
	p.CRL = p.genCRLFor(p.interDB, p.Intermediate, lifetime)
	return p.CRL
}

// IndexFile is the intermediate's OpenSSL CA database, as `openssl ocsp -index` reads it.
func (p *PKI) IndexFile() string { return filepath.Join(p.interDB, "index.txt") }

// Anchors returns the root as the only trust anchor.
func (p *PKI) Anchors() []*smx509.Certificate { return []*smx509.Certificate{p.Root.Cert} }

// Chain returns c's certificate followed by the intermediate (no root).
func (p *PKI) Chain(c *Cert) []*smx509.Certificate {
	return []*smx509.Certificate{c.Cert, p.Intermediate.Cert}
}

// FreePort returns a loopback address "127.0.0.1:port" that was free a moment ago.
// It is meant for servers that cannot be handed a listener (openssl ocsp).
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testca: no free loopback port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Responder is a running `openssl ocsp` server.
type Responder struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

// ResponderOptions tune StartOCSP.
type ResponderOptions struct {
	// Signer signs the responses; default p.OCSPSigner (a delegated responder).
	// Pass p.Intermediate to have the issuer sign directly.
	Signer *Cert
	// NextUpdate is the nextUpdate offset written in responses (whole minutes,
	// at least one); default 10 minutes.
	NextUpdate time.Duration
}

// StartOCSP runs `openssl ocsp` as a responder for the intermediate's certificates on
// addr (from FreePort), waits until it accepts connections, and stops it in t.Cleanup.
// OpenSSL 3.0 takes only a port number, so the responder listens on that port on
// every interface; tests reach it through 127.0.0.1.
func (p *PKI) StartOCSP(t testing.TB, addr string, ro ResponderOptions) *Responder {
	t.Helper()
	if ro.Signer == nil {
		ro.Signer = p.OCSPSigner
	}
	mins := int(ro.NextUpdate / time.Minute)
	if mins < 1 {
		mins = 10
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("testca: responder address %q: %v", addr, err)
	}
	args := []string{"ocsp", "-index", p.IndexFile(), "-port", port, "-rsigner", ro.Signer.CertFile,
		"-rkey", ro.Signer.KeyFile, "-CA", p.Intermediate.CertFile, "-nmin", fmt.Sprint(mins), "-ignore_err"}
	switch p.Opts.Algo {
	case SM2:
		args = append(args, "-rmd", "sm3", "-rsigopt", "distid:"+SM2ID)
	default:
		args = append(args, "-rmd", "sha256")
	}
	r := &Responder{Addr: addr, done: make(chan struct{})}
	r.cmd = exec.Command(Bin(t), args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("testca: pipe: %v", err)
	}
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("testca: start openssl ocsp: %v", err)
	}
	pw.Close()
	// Readiness is the responder saying so: a bare TCP probe would be accepted by
	// the single-threaded responder, which then waits on that connection forever.
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			r.mu.Lock()
			r.log.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			if !once && strings.Contains(sc.Text(), "waiting for OCSP client connections") {
				once = true
				close(ready)
			}
		}
		pr.Close()
	}()
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.Stop)
	select {
	case <-ready:
		return r
	case <-r.done:
		t.Fatalf("testca: openssl ocsp exited before listening on %s: %s", addr, r.Log())
	case <-time.After(10 * time.Second):
		r.Stop()
		t.Fatalf("testca: openssl ocsp did not listen on %s within 10s: %s", addr, r.Log())
	}
	return r
}

// Log returns what the responder printed so far.
func (r *Responder) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// Stop kills the responder (only the process this Responder started) and waits for it.
func (r *Responder) Stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Kill()
	<-r.done
}

func (p *PKI) newDB(name string) string {
	dir := filepath.Join(p.Dir, name)
	must(p.t, os.MkdirAll(filepath.Join(dir, "newcerts"), 0o700))
	must(p.t, os.WriteFile(filepath.Join(dir, "index.txt"), nil, 0o600))
	must(p.t, os.WriteFile(filepath.Join(dir, "index.txt.attr"), []byte("unique_subject = no\n"), 0o600))
	must(p.t, os.WriteFile(filepath.Join(dir, "serial"), []byte("1000\n"), 0o600))
	must(p.t, os.WriteFile(filepath.Join(dir, "crlnumber"), []byte("1000\n"), 0o600))
	md := "sha256"
	if p.Opts.Algo == SM2 {
		md = "sm3"
	}
	cnf := `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ` + dir + `
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = ` + md + `
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
organizationName = optional
[ req ]
distinguished_name = dn
[ dn ]
[ ext ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`
	must(p.t, os.WriteFile(filepath.Join(dir, "openssl.cnf"), []byte(cnf), 0o600))
	return dir
}

func (p *PKI) cnf(db string) string { return filepath.Join(db, "openssl.cnf") }

// mdArgs gives the digest and, for SM2, the signer ID option named opt.
func (p *PKI) mdArgs(opt string) []string {
	switch p.Opts.Algo {
	case SM2:
		return []string{"-sm3", opt, "distid:" + SM2ID}
	default:
		return []string{"-sha256"}
	}
}

func (p *PKI) genKey(name string) string {
	out := filepath.Join(p.Dir, name+".key")
	var args []string
	switch p.Opts.Algo {
	case RSA:
		args = []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}
	case ECDSA:
		args = []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}
	case SM2:
		args = []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2"}
	default:
		p.t.Fatalf("testca: unknown algorithm %q", p.Opts.Algo)
	}
	p.run(append(args, "-out", out)...)
	return out
}

func (p *PKI) extFile(name, body string) string {
	f := filepath.Join(p.Dir, name+".ext")
	must(p.t, os.WriteFile(f, []byte("[ ext ]\n"+body), 0o600))
	return f
}

func (p *PKI) issue(db string, issuer *Cert, name, cn, ext string, nb, na time.Time) *Cert {
	p.t.Helper()
	key := p.genKey(name)
	csr := filepath.Join(p.Dir, name+".csr")
	args := []string{"req", "-new", "-key", key, "-subj", "/O=" + p.Opts.Name + " Org/CN=" + cn, "-config", p.cnf(db), "-out", csr}
	p.run(append(args, p.mdArgs("-sigopt")...)...)
	crt := filepath.Join(p.Dir, name+".crt")
	args = []string{"ca", "-batch", "-notext", "-config", p.cnf(db), "-cert", issuer.CertFile, "-keyfile", issuer.KeyFile,
		"-in", csr, "-out", crt, "-extfile", p.extFile(name, ext), "-extensions", "ext"}
	if p.Opts.Algo == SM2 {
		args = append(args, "-md", "sm3", "-sigopt", "distid:"+SM2ID, "-vfyopt", "distid:"+SM2ID)
	}
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = time.Now().Add(30 * 24 * time.Hour)
	}
	args = append(args, "-startdate", nb.UTC().Format("20060102150405Z"), "-enddate", na.UTC().Format("20060102150405Z"))
	p.run(args...)
	return p.load(crt, key)
}

func (p *PKI) genCRL(db string, issuer *Cert) []byte {
	return p.genCRLFor(db, issuer, 24*time.Hour)
}

func (p *PKI) genCRLFor(db string, issuer *Cert, lifetime time.Duration) []byte {
	p.t.Helper()
	pemOut := filepath.Join(db, "crl.pem")
	args := []string{"ca", "-config", p.cnf(db), "-cert", issuer.CertFile, "-keyfile", issuer.KeyFile, "-gencrl", "-out", pemOut}
	if lifetime%time.Hour == 0 && lifetime >= time.Hour {
		args = append(args, "-crlhours", fmt.Sprint(int(lifetime/time.Hour)))
	} else {
		args = append(args, "-crlsec", fmt.Sprint(int(lifetime/time.Second)))
	}
	if p.Opts.Algo == SM2 {
		args = append(args, "-md", "sm3", "-sigopt", "distid:"+SM2ID)
	}
	p.run(args...)
	der := filepath.Join(db, "crl.der")
	p.run("crl", "-in", pemOut, "-outform", "DER", "-out", der)
	b, err := os.ReadFile(der)
	must(p.t, err)
	return b
}

func (p *PKI) load(certFile, keyFile string) *Cert {
	p.t.Helper()
	c, err := LoadCert(certFile)
	must(p.t, err)
	k, err := LoadKey(keyFile)
	must(p.t, err)
	return &Cert{Cert: c, Key: k, CertFile: certFile, KeyFile: keyFile}
}

// LoadCert reads one PEM certificate.
func LoadCert(file string) (*smx509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("testca: no PEM in %s", file)
	}
	return smx509.ParseCertificate(blk.Bytes)
}

// LoadKey reads a PKCS#8 PEM private key (RSA, ECDSA or SM2) as a crypto.Signer.
func LoadKey(file string) (crypto.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("testca: no PEM in %s", file)
	}
	k, err := smx509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("testca: %T is not a crypto.Signer", k)
	}
	return s, nil
}

func (p *PKI) run(args ...string) {
	p.t.Helper()
	cmd := exec.Command(Bin(p.t), args...)
	cmd.Dir = p.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("testca: openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
