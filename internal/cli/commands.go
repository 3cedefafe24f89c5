package cli

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/cli/hsmkeys"
)

var signCmd = &Command{
	Name: "sign", Args: "--key NAME [--detached] [--in F] [--out F] [--pem] [SignOptions flags] [--timestamp server|external]",
	Summary: "Sign: a CMS SignedData over the input", Client: true, Run: Sign,
}

// Sign is `signsvr sign`: the input signed by a server key, as CMS SignedData.
func Sign(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	key := fs.String("key", "", "signing key name (required)")
	detached := fs.Bool("detached", false, "detached signature: leave the content out")
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	stamp := fs.String("timestamp", "", "embed a signature timestamp: "+words(timestampWords)+" (default none)")
	var so signOptionFlags
	so.register(fs)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *key == "" {
		fmt.Fprintln(stderr, "signsvr sign: --key is required")
		return ExitUsage
	}
	opts, err := so.options()
	if err != nil {
		return inputError(stderr, "sign", err)
	}
	ts, err := enumFlag("timestamp", *stamp, timestampWords)
	if err != nil {
		return inputError(stderr, "sign", err)
	}
	data, err := c.readInput(stdin)
	if err != nil {
		return inputError(stderr, "sign", err)
	}
	var resp *signsvrv1.SignResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).Sign(ctx, &signsvrv1.SignRequest{
			Key: *key, Data: data, Detached: *detached, Options: opts, Timestamp: ts,
		})
		return err
	})
	if err != nil {
		return fail(stderr, "sign", err)
	}
	out := resp.GetCms()
	if *asPEM {
		out = cmsPEM(out)
	}
	if err := c.writeOutput(stdout, out); err != nil {
		return inputError(stderr, "sign", err)
	}
	return ExitOK
}

var verifyCmd = &Command{
	Name: "verify", Args: "[--in SIG] [--content F] [--out F] [--json] [VerifyOptions flags]",
	Summary: "Verify: every signer of a SignedData; exit 1 unless all verify", Client: true, Run: Verify,
}

// Verify is `signsvr verify`: the server verifies a SignedData; the exit code is
// ExitOK only when every signer has a valid signature and a good certificate.
func Verify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	fs.StringVar(&c.in, "in", "", "the signature, DER or PEM (default stdin)")
	contentOut := fs.String("out", "", "write the signed content to this file")
	content := fs.String("content", "", "the content of a detached signature (an empty file is empty content)")
	asJSON := fs.Bool("json", false, "print the full result as JSON")
	var vf verifyOptionFlags
	vf.register(fs)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	opts, err := vf.options()
	if err != nil {
		return inputError(stderr, "verify", err)
	}
	sig, err := c.readInput(stdin)
	if err != nil {
		return inputError(stderr, "verify", err)
	}
	req := &signsvrv1.VerifyRequest{Cms: pemOrDER(sig), Options: opts}
	if *content != "" {
		if req.Data, err = readContent(*content, stdin); err != nil {
			return inputError(stderr, "verify", err)
		}
	}
	if *contentOut == "" && !*asJSON {
		req.Options.OmitContent = true
	}
	var resp *signsvrv1.VerifyResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).Verify(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "verify", err)
	}
	return reportVerify(stdout, stderr, "verify", &c, *contentOut, *asJSON, resp, resp.GetVerified(), resp.GetSigners(), resp.GetContent())
}

// readContent reads detached content: never nil, so that an empty file is empty
// content (VerifyRequest.data has explicit presence) and not "no content".
func readContent(path string, stdin io.Reader) ([]byte, error) {
	b, err := readFileOr(path, stdin)
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

// reportVerify writes the content (to contentOut, when given) and the summary or
// the JSON result, and returns ExitOK only when verified.
func reportVerify(stdout, stderr io.Writer, cmd string, c *clientFlags, contentOut string, asJSON bool,
	resp proto.Message, verified bool, signers []*signsvrv1.SignerResult, content []byte) int {
	if contentOut != "" {
		c.out = contentOut
		if err := c.writeOutput(stdout, content); err != nil {
			return inputError(stderr, cmd, err)
		}
	}
	if asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, cmd, err)
		}
	} else {
		printVerify(stdout, verified, signers)
	}
	if !verified {
		return ExitFailure
	}
	return ExitOK
}

func printVerify(w io.Writer, verified bool, signers []*signsvrv1.SignerResult) {
	if verified {
		fmt.Fprintln(w, "verified: yes")
	} else {
		fmt.Fprintln(w, "verified: NO")
	}
	if len(signers) == 0 {
		fmt.Fprintln(w, "no signers")
	}
	for _, s := range signers {
		sig := "valid"
		if !s.GetSignature().GetValid() {
			sig = "INVALID (" + s.GetSignature().GetReason() + ")"
		}
		cv := s.GetCertificateVerdict()
		cert := strings.TrimPrefix(cv.GetStatus().String(), "CERTIFICATE_STATUS_")
		if cv.GetReason() != "" {
			cert += " (" + cv.GetReason() + ")"
		}
		who := s.GetSubject()
		if who == "" {
			who = "issuer " + s.GetIssuer() + " serial " + s.GetSerial()
		}
		if s.GetSm2WithoutZ() {
			sig += " (SM2 without Z, GmSSL form)"
		}
		fmt.Fprintf(w, "signer %d: signature %s; certificate %s; %s", s.GetIndex(), sig, cert, who)
		if t := s.GetSigningTime(); t != nil {
			fmt.Fprintf(w, "; signed at %s", t.AsTime().UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

var envelopeCmd = &Command{
	Name: "envelope", Args: "(--recipient-certs F | --recipient-keys NAME)... [--in F] [--out F] [--pem] [EnvelopeOptions flags]",
	Summary: "Envelope: encrypt the input to certificates and/or server keys", Client: true, Run: Envelope,
}

// Envelope is `signsvr envelope`: the input enveloped to certificates and/or server keys.
func Envelope(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("envelope", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	var rf recipientFlags
	rf.register(fs)
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	var ef envelopeOptionFlags
	ef.register(fs, "")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	opts, err := ef.options()
	if err != nil {
		return inputError(stderr, "envelope", err)
	}
	req := &signsvrv1.EnvelopeRequest{Options: opts}
	var r recipients
	if r, err = rf.recipients(); err != nil {
		return inputError(stderr, "envelope", err)
	}
	req.RecipientCerts, req.RecipientKeys, req.RecipientKekKeys, req.RecipientPasswords = r.certs, r.keys, r.keks, r.passwords
	if req.Data, err = c.readInput(stdin); err != nil {
		return inputError(stderr, "envelope", err)
	}
	var resp *signsvrv1.EnvelopeResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewEnvelopeServiceClient(cc).Envelope(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "envelope", err)
	}
	out := resp.GetCms()
	if *asPEM {
		out = cmsPEM(out)
	}
	if err := c.writeOutput(stdout, out); err != nil {
		return inputError(stderr, "envelope", err)
	}
	return ExitOK
}

var decryptCmd = &Command{
	Name: "decrypt", Args: "--key NAME [--in F] [--out F] [--allow-legacy]",
	Summary: "Decrypt: open an envelope with a server key", Client: true, Run: Decrypt,
}

// Decrypt is `signsvr decrypt`: an envelope opened with a server key.
func Decrypt(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	key := fs.String("key", "", "decryption key name (a private or a key-encryption key); or give a password")
	var df decryptOptionFlags
	df.register(fs)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	opts, err := df.options()
	if err != nil {
		return inputError(stderr, "decrypt", err)
	}
	if (*key == "") == (opts.Password == nil) {
		fmt.Fprintln(stderr, "signsvr decrypt: give --key or a password (--password-file, --password-env)")
		return ExitUsage
	}
	in, err := c.readInput(stdin)
	if err != nil {
		return inputError(stderr, "decrypt", err)
	}
	var resp *signsvrv1.DecryptResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewEnvelopeServiceClient(cc).Decrypt(ctx, &signsvrv1.DecryptRequest{
			Key: *key, Cms: pemOrDER(in), Options: opts,
		})
		return err
	})
	if err != nil {
		return fail(stderr, "decrypt", err)
	}
	if err := c.writeOutput(stdout, resp.GetData()); err != nil {
		return inputError(stderr, "decrypt", err)
	}
	return ExitOK
}

var keysListCmd = &Command{
	Name: "keys list", Args: "[--usage sign|decrypt] [--json]",
	Summary: "ListKeys: the server's keys with their certificates", Client: true, Run: KeysList,
}

// The HSM key commands work on a token directly (internal/cli/hsmkeys).
var (
	keysGenerateCmd = &Command{
		Name: "keys generate", Args: "--module LIB --token LABEL (--pin-file F | --pin-env VAR) ...",
		Summary: "generate a key in an HSM token over PKCS#11 (no server)", Run: hsmkeysRun("generate"),
	}
	keysCSRCmd = &Command{
		Name: "keys csr", Args: "--module LIB --token LABEL (--pin-file F | --pin-env VAR) ...",
		Summary: "a certificate request for an HSM key (no server)", Run: hsmkeysRun("csr"),
	}
	keysImportCertCmd = &Command{
		Name: "keys import-cert", Args: "--module LIB --token LABEL (--pin-file F | --pin-env VAR) ...",
		Summary: "store an HSM key's certificate in the token (no server)", Run: hsmkeysRun("import-cert"),
	}
	keysImportSecretCmd = &Command{
		Name: "keys import-secret", Args: "--module LIB --token LABEL (--pin-file F | --pin-env VAR) ...",
		Summary: "store a symmetric key-encryption key in the token (no server)", Run: hsmkeysRun("import-secret"),
	}
)

func hsmkeysRun(sub string) RunFunc {
	return func(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
		return hsmkeys.Run(append([]string{sub}, args...), stdin, stdout, stderr)
	}
}

// KeysList is `signsvr keys list`.
func KeysList(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("keys list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	usage := fs.String("usage", "", "only keys for this usage: "+words(usageWords))
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	u, err := enumFlag("usage", *usage, usageWords)
	if err != nil {
		return inputError(stderr, "keys list", err)
	}
	var resp *signsvrv1.ListKeysResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewKeyServiceClient(cc).ListKeys(ctx, &signsvrv1.ListKeysRequest{Usage: u})
		return err
	})
	if err != nil {
		return fail(stderr, "keys list", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "keys list", err)
		}
		return ExitOK
	}
	for _, k := range resp.GetKeys() {
		usages := make([]string, 0, len(k.GetUsages()))
		for _, u := range k.GetUsages() {
			usages = append(usages, strings.ToLower(strings.TrimPrefix(u.String(), "KEY_USAGE_")))
		}
		alg := strings.TrimPrefix(k.GetAlgorithm().String(), "KEY_ALGORITHM_")
		if k.GetCurve() != "" && k.GetAlgorithm() != signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2 {
			alg += "-" + k.GetCurve()
		} else if k.GetAlgorithm() == signsvrv1.KeyAlgorithm_KEY_ALGORITHM_RSA {
			alg += fmt.Sprintf("-%d", k.GetKeyBits())
		}
		notAfter := ""
		if t := k.GetNotAfter(); t != nil {
			notAfter = t.AsTime().UTC().Format(time.RFC3339)
		}
		if k.GetExpiresSoon() {
			notAfter += " (EXPIRES SOON)"
		}
		fmt.Fprintf(stdout, "# %s\t%s\t%s\tnot after %s\t%s\n", k.GetName(), alg, strings.Join(usages, ","), notAfter, k.GetSubject())
		for _, der := range k.GetCertificateChain() {
			pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
	}
	return ExitOK
}
