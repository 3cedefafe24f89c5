// Package hsmkeys is the `signsvr keys generate|csr|import-cert` subcommands: the life
// of a key in an HSM, from a key pair made inside the token, through a certificate
// request the token signs for the CA, to the issued certificate stored next to the key
// (where the server's PKCS#11 store finds it when a key has no cert_file).
//
// They talk to the token directly through PKCS#11, not to a running server: an
// operator runs them once per key, with the same module, token label and PIN source
// as the server's configuration.
package hsmkeys

import (
	"context"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
)

const usage = `usage: signsvr keys <command> [flags]

Commands that manage keys inside an HSM token (PKCS#11):
  generate     make a key pair inside the token; prints its URI and public key
  csr          make a PKCS#10 certificate request signed by a token key (PEM)
  import-cert  store the issued certificate (and its chain) next to the key
  import-secret  store an AES key-encryption key (KEK recipients) in the token

Token flags (all commands):
  --module PATH      PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
  --token LABEL      token label
  --pin-file FILE    file holding the user PIN   (or --pin-env VAR)
  --sm2-preset NAME  vendor SM2 mechanisms: tass, sansec or luna

Run 'signsvr keys <command> -h' for the command's own flags.
`

// Run runs one `signsvr keys` subcommand; args starts with its name. It returns the
// process exit code: 0 on success, 1 on failure, 2 on a usage error.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var cmd func([]string, io.Reader, io.Writer, io.Writer) error
	switch args[0] {
	case "generate":
		cmd = generate
	case "csr":
		cmd = csr
	case "import-cert":
		cmd = importCert
	case "import-secret":
		cmd = importSecret
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "signsvr keys: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd(args[1:], stdin, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "signsvr keys %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "signsvr keys %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

type tokenFlags struct {
	module, token, pinFile, pinEnv, sm2Preset string
}

func (t *tokenFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.module, "module", "", "PKCS#11 library path")
	fs.StringVar(&t.token, "token", "", "token label")
	fs.StringVar(&t.pinFile, "pin-file", "", "file holding the user PIN")
	fs.StringVar(&t.pinEnv, "pin-env", "", "environment variable holding the user PIN")
	fs.StringVar(&t.sm2Preset, "sm2-preset", "", "vendor SM2 mechanisms: tass, sansec or luna")
}

func (t *tokenFlags) open() (*pkcs11.Admin, error) {
	if t.module == "" || t.token == "" {
		return nil, usageError{errors.New("--module and --token are required")}
	}
	if (t.pinFile == "") == (t.pinEnv == "") {
		return nil, usageError{errors.New("give exactly one of --pin-file and --pin-env")}
	}
	tc := pkcs11.TokenConfig{Module: t.module, Label: t.token, PINFile: t.pinFile, PINEnv: t.pinEnv}
	if t.sm2Preset != "" {
		tc.SM2 = &pkcs11.SM2Config{Preset: t.sm2Preset}
	}
	return pkcs11.OpenAdmin(tc)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("signsvr keys "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return nil
}

func generate(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("generate", stderr)
	var tf tokenFlags
	tf.register(fs)
	label := fs.String("label", "", "label (CKA_LABEL) of the new key")
	idHex := fs.String("id", "", "CKA_ID in hex (random when empty)")
	typ := fs.String("type", "", "rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384 or sm2")
	usages := fs.String("usage", "sign", "sign, decrypt, or sign,decrypt")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *label == "" || *typ == "" {
		return usageError{errors.New("--label and --type are required")}
	}
	u, err := keystore.ParseUsage(*usages)
	if err != nil {
		return usageError{err}
	}
	id, err := hex.DecodeString(*idHex)
	if err != nil {
		return usageError{fmt.Errorf("--id: %v", err)}
	}
	adm, err := tf.open()
	if err != nil {
		return err
	}
	defer adm.Close()
	uri, pub, err := adm.GenerateKey(context.Background(), pkcs11.KeySpec{Label: *label, ID: id, Algorithm: *typ, Usages: u})
	if err != nil {
		return err
	}
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uri: %s\nalgorithm: %s\nusage: %s\n", uri, keystore.Algorithm(pub), u)
	return pem.Encode(stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func csr(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("csr", stderr)
	var tf tokenFlags
	tf.register(fs)
	uri := fs.String("key", "", "RFC 7512 URI of the key (as `keys generate` printed)")
	subject := fs.String("subject", "", `subject, e.g. "CN=customs-sm2-sign,O=Customs,C=CN"`)
	var dns, email multiFlag
	fs.Var(&dns, "dns", "DNS subject alternative name (repeatable)")
	fs.Var(&email, "email", "e-mail subject alternative name (repeatable)")
	out := fs.String("out", "", "write the PEM request to this file instead of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *uri == "" || *subject == "" {
		return usageError{errors.New("--key and --subject are required")}
	}
	name, err := ParseSubject(*subject)
	if err != nil {
		return usageError{fmt.Errorf("--subject: %v", err)}
	}
	adm, err := tf.open()
	if err != nil {
		return err
	}
	defer adm.Close()
	der, err := adm.CreateCSR(context.Background(), *uri, &smx509.CertificateRequest{Subject: name, DNSNames: dns, EmailAddresses: email})
	if err != nil {
		return err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if *out != "" {
		return os.WriteFile(*out, b, 0o644)
	}
	_, err = stdout.Write(b)
	return err
}

func importCert(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("import-cert", stderr)
	var tf tokenFlags
	tf.register(fs)
	uri := fs.String("key", "", "RFC 7512 URI of the key")
	certFile := fs.String("cert", "", "PEM certificate chain, leaf first ('-' for stdin)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *uri == "" || *certFile == "" {
		return usageError{errors.New("--key and --cert are required")}
	}
	var b []byte
	var err error
	if *certFile == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(*certFile)
	}
	if err != nil {
		return err
	}
	chain, err := keystore.ParseCertificatesPEM(b)
	if err != nil {
		return fmt.Errorf("%s: %v", *certFile, err)
	}
	adm, err := tf.open()
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := adm.ImportCertificates(context.Background(), *uri, chain); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stored %d certificate(s) for %s; leaf %q valid until %s\n", len(chain), *uri,
		chain[0].Subject.String(), chain[0].NotAfter.Format("2006-01-02"))
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// ParseSubject reads "CN=a,O=b,OU=c,L=d,ST=e,C=f,SERIALNUMBER=g"; "\," escapes a comma.
func ParseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
		case s[i] == ',':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || v == "" {
			return n, fmt.Errorf("%q is not TYPE=value", p)
		}
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "C":
			n.Country = append(n.Country, v)
		case "SERIALNUMBER":
			n.SerialNumber = v
		default:
			return n, fmt.Errorf("unknown attribute type %q (CN, O, OU, L, ST, C, SERIALNUMBER)", k)
		}
	}
	return n, nil
}
