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
