package devpki

import (
	"bytes"
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
)

// KeyFile is one development key on disk: an unencrypted PKCS#8 PEM key and a PEM
// certificate chain, leaf first.
type KeyFile struct {
	Name      string
	Algorithm Algorithm
	Usage     keystore.Usage
	KeyPath   string
	CertPath  string
}

// PKI is the development PKI in a data directory.
type PKI struct {
	Dir string
	// Roots are the development trust anchors, one per key family.
	Roots []*smx509.Certificate
	// RootsPath is a PEM file holding every root.
	RootsPath string
	Keys      []KeyFile
	// Audit signs the audit log's checkpoints, TSA issues timestamp tokens and Login
	// signs login tokens. They are the server's own keys, kept apart from Keys so that
	// no client request can name them (a raw signature with one could forge a
	// checkpoint, a timestamp or a login token). All are ECDSA P-256 under the
	// development ECDSA root; the TSA certificate has the critical extendedKeyUsage
	// id-kp-timeStamping. A data directory made before they existed gets them on its
	// next start.
	Audit, TSA, Login KeyFile
}

// serviceKeys are the server's own development keys (PKI.Audit, PKI.TSA).
const (
	auditKeyName = "audit"
	tsaKeyName   = "tsa"
	loginKeyName = "login"
	serviceAlg   = ECDSAP256
)

// devKeys is the fixed set the development setup serves. SM2 is a dual-certificate
// pair (one to sign, one to encrypt to), as SM2 deployments issue them; the RSA and
// ECDSA families follow the same shape so that every operation has a key of each kind.
var devKeys = []struct {
	name  string
	alg   Algorithm
	usage keystore.Usage
}{
	{"rsa-sign", RSA2048, keystore.UsageSign},
	{"rsa-enc", RSA2048, keystore.UsageDecrypt},
	{"ecdsa-sign", ECDSAP256, keystore.UsageSign},
	{"ecdsa-enc", ECDSAP256, keystore.UsageDecrypt},
	{"sm2-sign", SM2, keystore.UsageSign},
	{"sm2-enc", SM2, keystore.UsageDecrypt},
}

var rootFor = map[Algorithm]string{RSA2048: "rsa", ECDSAP256: "ecdsa", SM2: "sm2"}

const doneMarker = ".complete"

// Ensure returns the development PKI in dir, creating it on first use. Creation
// happens in a temporary directory beside dir that is renamed into place when
// complete, so an interrupted first start leaves nothing half-made.
func Ensure(dir string, now func() time.Time) (*PKI, error) {
	if _, err := os.Stat(filepath.Join(dir, doneMarker)); err == nil {
		if err := ensureServiceKeys(dir, nil, now()); err != nil {
			return nil, err
		}
		return load(dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("devpki: %s exists but holds no complete development PKI; remove it or choose another --data-dir", dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".signsvr-devpki-")
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := createPKI(tmp, now()); err != nil {
		return nil, err
	}
	os.Remove(dir) // an empty directory may be in the way of the rename
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	return load(dir)
}

func createPKI(dir string, now time.Time) error {
	for _, sub := range []string{"ca", "keys"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	cas := map[Algorithm]*CA{}
	var roots []*smx509.Certificate
	for _, alg := range []Algorithm{RSA2048, ECDSAP256, SM2} {
		family := rootFor[alg]
		ca, err := NewCA(alg, "signsvr development "+family+" root", now)
		if err != nil {
			return err
		}
		cas[alg] = ca
		roots = append(roots, ca.Cert)
		if err := WriteKeyPEM(filepath.Join(dir, "ca", family+"-root.key.pem"), ca.Key); err != nil {
			return err
		}
		if err := WriteCertsPEM(filepath.Join(dir, "ca", family+"-root.pem"), ca.Cert); err != nil {
			return err
		}
	}
	if err := WriteCertsPEM(filepath.Join(dir, "roots.pem"), roots...); err != nil {
		return err
	}
	for _, k := range devKeys {
		ca := cas[k.alg]
		key, cert, err := ca.Issue(k.alg, LeafOptions{CommonName: "signsvr development " + k.name, Usage: k.usage, Now: now})
		if err != nil {
			return err
		}
		if err := WriteKeyPEM(filepath.Join(dir, "keys", k.name+".key.pem"), key); err != nil {
			return err
		}
		if err := WriteCertsPEM(filepath.Join(dir, "keys", k.name+".chain.pem"), cert, ca.Cert); err != nil {
			return err
		}
	}
	if err := ensureServiceKeys(dir, cas[serviceAlg], now); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, doneMarker), []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o600)
}

func load(dir string) (*PKI, error) {
	p := &PKI{Dir: dir, RootsPath: filepath.Join(dir, "roots.pem")}
	roots, err := ReadCertsPEM(p.RootsPath)
	if err != nil {
		return nil, err
	}
	p.Roots = roots
	for _, k := range devKeys {
		kf := KeyFile{
			Name: k.name, Algorithm: k.alg, Usage: k.usage,
			KeyPath:  filepath.Join(dir, "keys", k.name+".key.pem"),
			CertPath: filepath.Join(dir, "keys", k.name+".chain.pem"),
		}
		for _, f := range []string{kf.KeyPath, kf.CertPath} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("devpki: development PKI in %s is incomplete: %w", dir, err)
			}
		}
		p.Keys = append(p.Keys, kf)
	}
	p.Audit = serviceKeyFile(dir, auditKeyName)
	p.TSA = serviceKeyFile(dir, tsaKeyName)
	p.Login = serviceKeyFile(dir, loginKeyName)
	for _, f := range []string{p.Audit.KeyPath, p.Audit.CertPath, p.TSA.KeyPath, p.TSA.CertPath, p.Login.KeyPath, p.Login.CertPath} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("devpki: development PKI in %s is incomplete: %w", dir, err)
		}
	}
	return p, nil
}

func serviceKeyFile(dir, name string) KeyFile {
	return KeyFile{
		Name: name, Algorithm: serviceAlg, Usage: keystore.UsageSign,
		KeyPath:  filepath.Join(dir, "keys", name+".key.pem"),
		CertPath: filepath.Join(dir, "keys", name+".chain.pem"),
	}
}

// ensureServiceKeys creates the audit and TSA keys that dir lacks, issued by ca (nil:
// the ECDSA root read from dir). The chain file is written last, by rename, so a key
// whose chain file exists is complete.
func ensureServiceKeys(dir string, ca *CA, now time.Time) error {
	for _, name := range []string{auditKeyName, tsaKeyName, loginKeyName} {
		kf := serviceKeyFile(dir, name)
		if _, err := os.Stat(kf.CertPath); err == nil {
			continue
		}
		if ca == nil {
			var err error
			if ca, err = ReadCA(dir, rootFor[serviceAlg]); err != nil {
				return err
			}
		}
		opts := LeafOptions{CommonName: "signsvr development " + name, Usage: keystore.UsageSign, Now: now}
		var key crypto.Signer
		var cert *smx509.Certificate
		var err error
		if name == tsaKeyName {
			key, cert, err = ca.IssueTSA(serviceAlg, opts)
		} else {
			key, cert, err = ca.Issue(serviceAlg, opts)
		}
		if err != nil {
			return err
		}
		if err := WriteKeyPEM(kf.KeyPath, key); err != nil {
			return err
		}
		tmp := kf.CertPath + ".tmp"
		if err := WriteCertsPEM(tmp, cert, ca.Cert); err != nil {
			return err
		}
		if err := os.Rename(tmp, kf.CertPath); err != nil {
			return fmt.Errorf("devpki: %w", err)
		}
	}
	return nil
}

// ReadCA reads the development root of a family ("rsa", "ecdsa", "sm2") from dir.
func ReadCA(dir, family string) (*CA, error) {
	certs, err := ReadCertsPEM(filepath.Join(dir, "ca", family+"-root.pem"))
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "ca", family+"-root.key.pem"))
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("devpki: %s root key is not a PKCS#8 PEM file", family)
	}
	k, err := smx509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devpki: %s root key: %w", family, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("devpki: %s root key cannot sign", family)
	}
	return &CA{Cert: certs[0], Key: signer, Chain: certs[:1]}, nil
}

// WriteKeyPEM writes key as an unencrypted PKCS#8 "PRIVATE KEY" PEM file, mode 0600.
func WriteKeyPEM(path string, key crypto.Signer) error {
	der, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("devpki: %w", err)
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// WriteCertsPEM writes certificates as concatenated "CERTIFICATE" PEM blocks.
func WriteCertsPEM(path string, certs ...*smx509.Certificate) error {
	return os.WriteFile(path, CertsPEM(certs...), 0o644)
}

// CertsPEM encodes certificates as concatenated PEM blocks.
func CertsPEM(certs ...*smx509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// ReadCertsPEM reads every CERTIFICATE block of a PEM file (keystore.ParseCertificatesPEM).
func ReadCertsPEM(path string) ([]*smx509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	certs, err := keystore.ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("devpki: %s: %w", path, err)
	}
	return certs, nil
}
