package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// The raw encryption commands (RawCryptService) and the secrets the envelope commands
// take. A password is never a flag value, which other users of the machine can read
// in the process list: it comes from a file or an environment variable.

var sm2EncodingWords = map[string]signsvrv1.Sm2CiphertextEncoding{
	"asn1":             signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_ASN1,
	"c1c3c2":           signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C3C2,
	"c1c2c3":           signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3,
	"c1c2c3-no-prefix": signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3_NO_PREFIX,
}

var (
	encryptRawCmd = &Command{
		Name: "encrypt-raw", Args: "(--key NAME | --cert F) [--rsa-scheme S] [--oaep-digest D] [--sm2-encoding E] [--in F] [--out F]",
		Summary: "EncryptRaw: RSA or SM2 encryption with no CMS around it", Client: true, Run: EncryptRaw,
	}
	decryptRawCmd = &Command{
		Name: "decrypt-raw", Args: "--key NAME [--rsa-scheme S] [--oaep-digest D] [--sm2-encoding E] [--in F] [--out F]",
		Summary: "DecryptRaw: decrypt what encrypt-raw or `openssl pkeyutl -encrypt` wrote", Client: true, Run: DecryptRaw,
	}
)

// rawFlags are the algorithm flags EncryptRaw and DecryptRaw share.
type rawFlags struct {
	rsa, digest, sm2 *string
}

func (r *rawFlags) register(fs *flag.FlagSet) {
	r.rsa = fs.String("rsa-scheme", "", "RSA padding: oaep (default) or pkcs1v15")
	r.digest = fs.String("oaep-digest", "", "RSA-OAEP hash and MGF1 hash: sha256 (default), sha384 or sha512")
	r.sm2 = fs.String("sm2-encoding", "", "SM2 ciphertext: asn1 (default), c1c3c2, c1c2c3 or c1c2c3-no-prefix (CFCA)")
}

func (r *rawFlags) parse() (rsa signsvrv1.RsaEncryptionScheme, d signsvrv1.DigestAlgorithm, sm2 signsvrv1.Sm2CiphertextEncoding, err error) {
	if rsa, err = enumFlag("rsa-scheme", *r.rsa, rsaEncWords); err != nil {
		return
	}
	if d, err = enumFlag("oaep-digest", *r.digest, digestWords); err != nil {
		return
	}
	sm2, err = enumFlag("sm2-encoding", *r.sm2, sm2EncodingWords)
	return
}

// EncryptRaw is `signsvr encrypt-raw`: the input encrypted to a server key's
// certificate (--key) or a certificate file (--cert), with no CMS around it.
func EncryptRaw(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var r rawFlags
	fs := flag.NewFlagSet("encrypt-raw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	r.register(fs)
	key := fs.String("key", "", "encrypt to this server key's certificate")
	certFile := fs.String("cert", "", "encrypt to this certificate file, PEM or DER")
	fs.StringVar(certFile, "certificate", "", "the same as --cert")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if (*key == "") == (*certFile == "") {
		fmt.Fprintln(stderr, "signsvr encrypt-raw: give one of --key and --cert")
		return ExitUsage
	}
	req := &signsvrv1.EncryptRawRequest{Key: *key}
	var err error
	if req.RsaScheme, req.OaepDigest, req.Sm2Encoding, err = r.parse(); err != nil {
		fmt.Fprintf(stderr, "signsvr encrypt-raw: %v\n", err)
		return ExitUsage
	}
	if *certFile != "" {
		ders, err := certsFromFile(*certFile)
		if err != nil {
			return inputError(stderr, "encrypt-raw", fmt.Errorf("--cert: %w", err))
		}
		req.Certificate = ders[0]
	}
	if req.Data, err = c.readInput(stdin); err != nil {
		return inputError(stderr, "encrypt-raw", err)
	}
	var resp *signsvrv1.EncryptRawResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewRawCryptServiceClient(cc).EncryptRaw(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "encrypt-raw", err)
	}
	if err := c.writeOutput(stdout, resp.GetCiphertext()); err != nil {
		return inputError(stderr, "encrypt-raw", err)
	}
	return ExitOK
}

// DecryptRaw is `signsvr decrypt-raw`: a raw ciphertext decrypted with a server key.
func DecryptRaw(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var r rawFlags
	fs := flag.NewFlagSet("decrypt-raw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	r.register(fs)
	key := fs.String("key", "", "decryption key name (required)")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *key == "" {
		fmt.Fprintln(stderr, "signsvr decrypt-raw: --key is required")
		return ExitUsage
	}
	req := &signsvrv1.DecryptRawRequest{Key: *key}
	var err error
	if req.RsaScheme, req.OaepDigest, req.Sm2Encoding, err = r.parse(); err != nil {
		fmt.Fprintf(stderr, "signsvr decrypt-raw: %v\n", err)
		return ExitUsage
	}
	if req.Ciphertext, err = c.readInput(stdin); err != nil {
		return inputError(stderr, "decrypt-raw", err)
	}
	var resp *signsvrv1.DecryptRawResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewRawCryptServiceClient(cc).DecryptRaw(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "decrypt-raw", err)
	}
	if err := c.writeOutput(stdout, resp.GetData()); err != nil {
		return inputError(stderr, "decrypt-raw", err)
	}
	return ExitOK
}

// passwordFlags are where a password comes from: a file (its first line) or an
// environment variable.
type passwordFlags struct {
	files stringList
	env   stringList
}

func (p *passwordFlags) register(fs *flag.FlagSet, repeatable bool) {
	what := "a password recipient's password: the first line of this file"
	if repeatable {
		what += " (repeatable)"
	}
	fs.Var(&p.files, "password-file", what)
	fs.Var(&p.env, "password-env", "the same from this environment variable")
}

// passwords reads every password given.
func (p *passwordFlags) passwords() ([][]byte, error) {
	var out [][]byte
	for _, f := range p.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			b = b[:i]
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("--password-file %s: empty password", f)
		}
		out = append(out, b)
	}
	for _, v := range p.env {
		s, ok := os.LookupEnv(v)
		if !ok || s == "" {
			return nil, errors.New("--password-env: " + v + " is not set")
		}
		out = append(out, []byte(s))
	}
	return out, nil
}
