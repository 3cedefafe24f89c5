package soft_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs8"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

var allKinds = []string{"RSA-2048", "ECDSA-P256", "ECDSA-P384", "SM2"}

var requireAll = []keystoretest.Want{
	{Algorithm: "RSA-2048", Usage: keystore.UsageSign},
	{Algorithm: "RSA-2048", Usage: keystore.UsageDecrypt},
	{Algorithm: "ECDSA-P256", Usage: keystore.UsageSign},
	{Algorithm: "ECDSA-P256", Usage: keystore.UsageDecrypt},
	{Algorithm: "ECDSA-P384", Usage: keystore.UsageSign},
	{Algorithm: "ECDSA-P384", Usage: keystore.UsageDecrypt},
	{Algorithm: "SM2", Usage: keystore.UsageSign},
	{Algorithm: "SM2", Usage: keystore.UsageDecrypt},
}

func TestConformanceInMemory(t *testing.T) {
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	var entries []soft.Entry
	for _, kind := range allKinds {
		for _, u := range []keystore.Usage{keystore.UsageSign, keystore.UsageDecrypt, keystore.UsageSign | keystore.UsageDecrypt} {
			k := keystoretest.GenerateKey(t, kind)
			name := strings.ToLower(kind) + "-" + strings.ReplaceAll(u.String(), ",", "-")
			cert := ca.Issue(t, name, k.Public(), u.Has(keystore.UsageSign), u.Has(keystore.UsageDecrypt), 0)
			entries = append(entries, soft.Entry{Name: name, Key: k, Chain: []*smx509.Certificate{cert, ca.Cert}, Usages: u})
		}
	}
	s, err := soft.NewFromKeys(entries...)
	if err != nil {
		t.Fatal(err)
	}
	keystoretest.Run(t, s, keystoretest.Options{Require: requireAll})
}

// writeKey writes key as PEM: plain PKCS#8 when encrypter is nil, else encrypted.
func writeKey(t *testing.T, path string, key crypto.PrivateKey, password []byte, encrypter pkcs.PBESEncrypter) {
	t.Helper()
	var (
		der []byte
		err error
		typ = "PRIVATE KEY"
	)
	if password == nil {
		der, err = smx509.MarshalPKCS8PrivateKey(key)
	} else {
		der, err = pkcs8.MarshalPrivateKey(key, password, encrypter)
		typ = "ENCRYPTED PRIVATE KEY"
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeChain(t *testing.T, path string, chain ...*smx509.Certificate) {
	t.Helper()
	var b []byte
	for _, c := range chain {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConformanceFromFiles loads keys from PEM files in every supported encoding:
// plain PKCS#8, gmsm PBES2 with AES-256 and with SM4 (password from a file or the
// environment), and keys OpenSSL wrote and encrypted.
func TestConformanceFromFiles(t *testing.T) {
	dir := t.TempDir()
	ca := keystoretest.NewCA(t, "RSA-2048")
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFT_TEST_PASSWORD", "env password")

	var cfgs []soft.KeyConfig
	add := func(name string, key crypto.Signer, usages []string, encrypt func(path string) soft.KeyConfig) {
		kc := encrypt(filepath.Join(dir, name+".key"))
		kc.Name = name
		kc.Usages = usages
		kc.CertFile = filepath.Join(dir, name+".crt")
		u, _ := keystore.ParseUsage(strings.Join(usages, ","))
		writeChain(t, kc.CertFile, ca.Issue(t, name, key.Public(), u.Has(keystore.UsageSign), u.Has(keystore.UsageDecrypt), 0), ca.Cert)
		cfgs = append(cfgs, kc)
	}
	plain := func(key crypto.Signer) func(string) soft.KeyConfig {
		return func(p string) soft.KeyConfig { writeKey(t, p, key, nil, nil); return soft.KeyConfig{KeyFile: p} }
	}
	aesFile := func(key crypto.Signer) func(string) soft.KeyConfig {
		return func(p string) soft.KeyConfig {
			writeKey(t, p, key, []byte("correct horse battery staple"), pkcs8.DefaultOpts)
			return soft.KeyConfig{KeyFile: p, PasswordFile: pwFile}
		}
	}
	sm4Env := func(key crypto.Signer) func(string) soft.KeyConfig {
		return func(p string) soft.KeyConfig {
			writeKey(t, p, key, []byte("env password"), pkcs.NewSMPBESEncrypter(16, 2048))
			return soft.KeyConfig{KeyFile: p, PasswordEnv: "SOFT_TEST_PASSWORD"}
		}
	}
	for _, kind := range allKinds {
		n := strings.ToLower(kind)
		k1, k2, k3 := keystoretest.GenerateKey(t, kind), keystoretest.GenerateKey(t, kind), keystoretest.GenerateKey(t, kind)
		add(n+"-plain", k1, []string{"sign", "decrypt"}, plain(k1))
		add(n+"-aes", k2, []string{"sign"}, aesFile(k2))
		add(n+"-sm4", k3, []string{"decrypt"}, sm4Env(k3))
	}

	// Keys written by OpenSSL, encrypted the way `openssl genpkey -aes-256-cbc` does.
	for _, c := range []struct{ name, alg, opt string }{
		{"openssl-rsa", "RSA", "rsa_keygen_bits:2048"},
		{"openssl-p256", "EC", "ec_paramgen_curve:P-256"},
		{"openssl-p384", "EC", "ec_paramgen_curve:P-384"},
	} {
		keyPath := filepath.Join(dir, c.name+".key")
		runOpenSSL(t, "genpkey", "-algorithm", c.alg, "-pkeyopt", c.opt, "-aes-256-cbc", "-pass", "file:"+pwFile, "-out", keyPath)
		b, err := os.ReadFile(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ENCRYPTED PRIVATE KEY") {
			t.Fatalf("openssl wrote an unexpected key format:\n%s", b)
		}
		priv, err := soft.ParsePrivateKeyPEM(b, []byte("correct horse battery staple"))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		certPath := filepath.Join(dir, c.name+".crt")
		writeChain(t, certPath, ca.Issue(t, c.name, priv.(crypto.Signer).Public(), true, true, 0), ca.Cert)
		cfgs = append(cfgs, soft.KeyConfig{Name: c.name, KeyFile: keyPath, CertFile: certPath, Usages: []string{"sign,decrypt"}, PasswordFile: pwFile})
	}

	s, err := soft.New(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	keystoretest.Run(t, s, keystoretest.Options{Require: requireAll})

	k, err := s.Key(t.Context(), "sm2-sm4")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(k.Chain()); got != 2 {
		t.Errorf("chain has %d certificates, want 2", got)
	}
}

func runOpenSSL(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed; `make test` installs it (apt-get install openssl)")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	key := keystoretest.GenerateKey(t, "ECDSA-P256")
	other := keystoretest.GenerateKey(t, "ECDSA-P256")

	keyFile := filepath.Join(dir, "key.pem")
	writeKey(t, keyFile, key, nil, nil)
	encFile := filepath.Join(dir, "enc.pem")
	writeKey(t, encFile, key, []byte("right"), pkcs8.DefaultOpts)
	certFile := filepath.Join(dir, "cert.pem")
	writeChain(t, certFile, ca.Issue(t, "leaf", key.Public(), true, false, 0), ca.Cert)
	otherCert := filepath.Join(dir, "other.pem")
	writeChain(t, otherCert, ca.Issue(t, "other", other.Public(), true, false, 0))
	wrongPW := filepath.Join(dir, "wrong.pw")
	os.WriteFile(wrongPW, []byte("wrong\n"), 0o600)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a PEM file"), 0o600)

	good := soft.KeyConfig{Name: "k1", KeyFile: keyFile, CertFile: certFile, Usages: []string{"sign"}}
	mod := func(f func(*soft.KeyConfig)) soft.KeyConfig { c := good; f(&c); return c }

	tests := []struct {
		name string
		cfgs []soft.KeyConfig
		want []string // substrings the error must hold
	}{
		{"missing key file", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.KeyFile = filepath.Join(dir, "nope.pem") })}, []string{`"k1"`, "nope.pem"}},
		{"missing cert file", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.CertFile = filepath.Join(dir, "nope.crt") })}, []string{`"k1"`, "nope.crt"}},
		{"cert does not match", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.CertFile = otherCert })}, []string{`"k1"`, "other.pem", "does not match"}},
		{"garbage key", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.KeyFile = garbage })}, []string{`"k1"`, "garbage.pem"}},
		{"garbage cert", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.CertFile = garbage })}, []string{`"k1"`, "garbage.pem"}},
		{"no usages", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.Usages = nil })}, []string{`"k1"`, "usage"}},
		{"unknown usage", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.Usages = []string{"sign", "wrap"} })}, []string{`"k1"`, "wrap"}},
		{"encrypted without password", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.KeyFile = encFile })}, []string{`"k1"`, "enc.pem", "encrypted"}},
		{"wrong password", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.KeyFile = encFile; c.PasswordFile = wrongPW })}, []string{`"k1"`, "enc.pem", "wrong password"}},
		{"password env unset", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.KeyFile = encFile; c.PasswordEnv = "SOFT_TEST_UNSET_VARIABLE" })}, []string{`"k1"`, "SOFT_TEST_UNSET_VARIABLE"}},
		{"two password sources", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.PasswordEnv = "X"; c.PasswordFile = wrongPW })}, []string{`"k1"`, "not both"}},
		{"no name", []soft.KeyConfig{mod(func(c *soft.KeyConfig) { c.Name = "" })}, []string{"no name", "key.pem"}},
		{"duplicate", []soft.KeyConfig{good, good}, []string{`"k1"`, "twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := soft.New(tc.cfgs)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "right") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
	if _, err := soft.New([]soft.KeyConfig{good}); err != nil {
		t.Fatalf("the good configuration fails: %v", err)
	}
}

func TestNewFromKeysRejects(t *testing.T) {
	ca := keystoretest.NewCA(t, "SM2")
	sm2Key := keystoretest.GenerateKey(t, "SM2")
	rsaKey := keystoretest.GenerateKey(t, "RSA-2048")
	cert := ca.Issue(t, "sm2", sm2Key.Public(), true, false, 0)
	tests := []struct {
		name string
		e    soft.Entry
	}{
		{"no chain", soft.Entry{Name: "a", Key: sm2Key, Usages: keystore.UsageSign}},
		{"nil leaf", soft.Entry{Name: "a", Key: sm2Key, Chain: []*smx509.Certificate{nil}, Usages: keystore.UsageSign}},
		{"no key", soft.Entry{Name: "a", Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign}},
		{"mismatch", soft.Entry{Name: "a", Key: rsaKey, Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign}},
		{"no usage", soft.Entry{Name: "a", Key: sm2Key, Chain: []*smx509.Certificate{cert}}},
		{"bad usage bits", soft.Entry{Name: "a", Key: sm2Key, Chain: []*smx509.Certificate{cert}, Usages: 0x80}},
		{"unsupported key", soft.Entry{Name: "a", Key: "a string", Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := soft.NewFromKeys(tc.e); err == nil {
				t.Fatal("NewFromKeys accepted it")
			} else if !strings.Contains(err.Error(), `"a"`) {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
	s, err := soft.NewFromKeys(soft.Entry{Name: "a", Key: sm2Key, Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(t.Context(), "b"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Key(b) = %v, want ErrNotFound", err)
	}
}

func TestSmallRSAKeyRejected(t *testing.T) {
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	k, err := rsaKey1024()
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.Issue(t, "small", k.Public(), true, false, 0)
	_, err = soft.NewFromKeys(soft.Entry{Name: "small", Key: k, Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign})
	if err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("a 1024-bit RSA key: err = %v, want too small", err)
	}
}

// TestECKeysByCurve: an *ecdsa.PrivateKey is taken by its curve's family: SM2 signs
// and decrypts, P-256 and P-384 sign and agree keys, and any other curve is refused.
func TestECKeysByCurve(t *testing.T) {
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	for _, c := range []struct {
		name    string
		curve   elliptic.Curve
		dec, ka bool
	}{
		{"SM2", sm2.P256(), true, false},
		{"P-256", elliptic.P256(), false, true},
		{"P-384", elliptic.P384(), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			cert := ca.Issue(t, c.name, k.Public(), true, true, 0)
			s, err := soft.NewFromKeys(soft.Entry{Name: "k", Key: k, Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign | keystore.UsageDecrypt})
			if err != nil {
				t.Fatal(err)
			}
			key, err := s.Key(t.Context(), "k")
			if err != nil {
				t.Fatal(err)
			}
			if key.Signer(t.Context()) == nil {
				t.Error("no signer")
			}
			if got := key.Decrypter(t.Context()) != nil; got != c.dec {
				t.Errorf("decrypter: %v, want %v", got, c.dec)
			}
			if got := key.KeyAgreer(t.Context()) != nil; got != c.ka {
				t.Errorf("key agreer: %v, want %v", got, c.ka)
			}
		})
	}
	k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.Issue(t, "p521", k.Public(), true, false, 0)
	_, err = soft.NewFromKeys(soft.Entry{Name: "p521", Key: k, Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign})
	if err == nil || !strings.Contains(err.Error(), "unsupported EC curve P-521") {
		t.Fatalf("a P-521 key: err = %v, want unsupported EC curve", err)
	}
}

func TestParseRejectsLegacyEncryptedPEM(t *testing.T) {
	b := []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n")
	if _, err := soft.ParsePrivateKeyPEM(b, []byte("x")); err == nil || !strings.Contains(err.Error(), "legacy") {
		t.Fatalf("err = %v, want a legacy-encryption error", err)
	}
}

func rsaKey1024() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 1024) }
