package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
)

// Rotating a key of the soft store
//
// `keys next-generation` makes the next generation of a key held in files: a new key
// of the same algorithm as the current certificate (--like), and a certificate
// request with the same subject for the CA. It changes no configuration; it prints the
// entry to add once the certificate is back. Promotion is a configuration edit: the
// new entry gets state active (or none), the old one state decrypt-only; `signsvr
// config check` and SIGHUP apply it. HSM keys rotate the same way with `keys
// generate` and `keys csr` (a new object with its own id or label) and an entry per
// generation under keystore.pkcs11.keys.

const nextGenerationUsage = `Usage: signsvr keys next-generation --name NAME --generation ID --like CERT [--dir DIR]

Makes the next generation of a soft-store key: DIR/NAME-ID.key.pem (a new key of the
algorithm of CERT, mode 0600) and DIR/NAME-ID.csr.pem (a certificate request with
CERT's subject), and prints the configuration entries of the rotation.
`

var keysNextGenerationCmd = &Command{
	Name: "keys next-generation", Args: "--name NAME --generation ID --like CERT [--dir DIR]",
	Summary: "the next generation of a soft-store key: a new key and its certificate request (no server)",
	Run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return runKeysNextGeneration(args, stdout, stderr)
	},
}

func runKeysNextGeneration(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys next-generation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, nextGenerationUsage); fs.PrintDefaults() }
	name := fs.String("name", "", "the key name (as in the configuration)")
	gen := fs.String("generation", "", "the new generation's id, e.g. 2026")
	like := fs.String("like", "", "the current generation's certificate (PEM): its algorithm and subject are reused")
	dir := fs.String("dir", ".", "where to write the key and the certificate request")
	usage := fs.String("usages", "decrypt", "the key's usages in the printed entries: sign, decrypt or sign,decrypt")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *name == "" || *gen == "" || *like == "" {
		fmt.Fprint(stderr, nextGenerationUsage)
		return ExitUsage
	}
	if _, err := keystore.ParseUsage(*usage); err != nil {
		return fail(stderr, "keys next-generation", err)
	}
	keyFile, csrFile, err := nextGeneration(*name, *gen, *like, *dir)
	if err != nil {
		return fail(stderr, "keys next-generation", err)
	}
	fmt.Fprintf(stdout, `# wrote %s and %s; have the CA sign the request, save the certificate
# chain (leaf first) as %s, then change the key's entries under keystore.soft.keys:
      - name: %s
        generation: %q
        key_file: %s
        cert_file: %s
        usages: [%s]
      # the current entry of %s: give it a generation id if it has none, and
      #   state: decrypt-only
# then: signsvr config check FILE && kill -HUP <server pid>
`, keyFile, csrFile, filepath.Join(*dir, *name+"-"+*gen+".chain.pem"), *name, *gen, keyFile,
		filepath.Join(*dir, *name+"-"+*gen+".chain.pem"), *usage, *name)
	return ExitOK
}

// nextGeneration writes the new key and its certificate request.
func nextGeneration(name, gen, likeFile, dir string) (keyFile, csrFile string, err error) {
	b, err := os.ReadFile(likeFile)
	if err != nil {
		return "", "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", "", fmt.Errorf("%s: no PEM certificate", likeFile)
	}
	like, err := smx509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", likeFile, err)
	}
	alg, err := devAlgorithm(like)
	if err != nil {
		return "", "", err
	}
	key, err := devpki.GenerateKey(alg)
	if err != nil {
		return "", "", err
	}
	csr, err := smx509.CreateCertificateRequest(rand.Reader, &smx509.CertificateRequest{Subject: like.Subject}, key)
	if err != nil {
		return "", "", err
	}
	keyFile = filepath.Join(dir, name+"-"+gen+".key.pem")
	csrFile = filepath.Join(dir, name+"-"+gen+".csr.pem")
	if _, err := os.Stat(keyFile); err == nil {
		return "", "", fmt.Errorf("%s exists: this generation was made already", keyFile)
	}
	if err := devpki.WriteKeyPEM(keyFile, key); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644); err != nil {
		return "", "", err
	}
	return keyFile, csrFile, nil
}

// devAlgorithm is the key type of c's public key among those the CLI generates.
func devAlgorithm(c *smx509.Certificate) (devpki.Algorithm, error) {
	switch algorithm.Of(c.PublicKey) {
	case algorithm.RSA:
		switch c.PublicKey.(*rsa.PublicKey).N.BitLen() {
		case 2048:
			return devpki.RSA2048, nil
		case 3072:
			return devpki.RSA3072, nil
		}
	case algorithm.ECDSAP256:
		return devpki.ECDSAP256, nil
	case algorithm.ECDSAP384:
		return devpki.ECDSAP384, nil
	case algorithm.SM2:
		return devpki.SM2, nil
	}
	return "", errors.New("the certificate's key is not RSA-2048/3072, ECDSA P-256/P-384 or SM2: make the key with openssl")
}
