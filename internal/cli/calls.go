package cli

// The commands of the calls that have no older command of their own: the batches,
// the raw signatures, the combined envelope calls, timestamps and certificates.

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

var signBatchCmd = &Command{
	Name: "sign-batch", Args: "--key NAME [--detached] [--suffix .p7s] [--pem] [SignOptions flags] FILE...",
	Summary: "SignBatch: sign every FILE in one call, writing FILE.p7s beside it", Client: true, Run: SignBatch,
}

// SignBatch is `signsvr sign-batch`: every file signed in one SignBatch call, each
// signature written beside its file. Items fail on their own: the exit code is that
// of the worst item.
func SignBatch(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("sign-batch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	key := fs.String("key", "", "signing key name (required)")
	detached := fs.Bool("detached", false, "detached signatures")
	suffix := fs.String("suffix", ".p7s", "the signature of FILE is written to FILE+suffix")
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	stamp := fs.String("timestamp", "", "embed a signature timestamp: "+words(timestampWords))
	var so signOptionFlags
	so.register(fs)
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	files := fs.Args()
	if *key == "" || len(files) == 0 {
		fmt.Fprintln(stderr, "signsvr sign-batch: give --key and at least one FILE")
		return ExitUsage
	}
	opts, err := so.options()
	if err != nil {
		return inputError(stderr, "sign-batch", err)
	}
	ts, err := enumFlag("timestamp", *stamp, timestampWords)
	if err != nil {
		return inputError(stderr, "sign-batch", err)
	}
	req := &signsvrv1.SignBatchRequest{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return inputError(stderr, "sign-batch", err)
		}
		req.Items = append(req.Items, &signsvrv1.SignRequest{Key: *key, Data: data, Detached: *detached, Options: opts, Timestamp: ts})
	}
	var resp *signsvrv1.SignBatchResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).SignBatch(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "sign-batch", err)
	}
	code := ExitOK
	for i, r := range resp.GetResults() {
		if ie := r.GetError(); ie != nil {
			fmt.Fprintf(stdout, "%s: error %s (%s): %s\n", files[i], codeName(ie.GetCode()), ie.GetReason(), ie.GetMessage())
			code = worse(code, itemExitCode(ie))
			continue
		}
		out := r.GetCms()
		if *asPEM {
			out = cmsPEM(out)
		}
		if err := os.WriteFile(files[i]+*suffix, out, 0o600); err != nil {
			return inputError(stderr, "sign-batch", err)
		}
		fmt.Fprintf(stdout, "%s: signed, %s\n", files[i], files[i]+*suffix)
	}
	return code
}

var verifyBatchCmd = &Command{
	Name: "verify-batch", Args: "[--json] [VerifyOptions flags] SIG[=CONTENT]...",
	Summary: "VerifyBatch: verify every SIG in one call (CONTENT: a detached signature's content)", Client: true, Run: VerifyBatch,
}

// VerifyBatch is `signsvr verify-batch`: every signature verified in one VerifyBatch
// call, a line each. The exit code is the worst item's: 1 when one did not verify.
func VerifyBatch(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("verify-batch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	var vf verifyOptionFlags
	vf.register(fs)
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "signsvr verify-batch: give at least one SIG or SIG=CONTENT")
		return ExitUsage
	}
	opts, err := vf.options()
	if err != nil {
		return inputError(stderr, "verify-batch", err)
	}
	if !*asJSON {
		opts.OmitContent = true
	}
	req := &signsvrv1.VerifyBatchRequest{}
	for _, a := range fs.Args() {
		sigFile, contentFile, detached := strings.Cut(a, "=")
		sig, err := os.ReadFile(sigFile)
		if err != nil {
			return inputError(stderr, "verify-batch", err)
		}
		item := &signsvrv1.VerifyRequest{Cms: pemOrDER(sig), Options: opts}
		if detached {
			if item.Data, err = readContent(contentFile, nil); err != nil {
				return inputError(stderr, "verify-batch", err)
			}
		}
		req.Items = append(req.Items, item)
	}
	var resp *signsvrv1.VerifyBatchResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).VerifyBatch(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "verify-batch", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "verify-batch", err)
		}
	}
	code := ExitOK
	for i, r := range resp.GetResults() {
		if ie := r.GetError(); ie != nil {
			if !*asJSON {
				fmt.Fprintf(stdout, "== %s: error %s (%s): %s\n", fs.Arg(i), codeName(ie.GetCode()), ie.GetReason(), ie.GetMessage())
			}
			code = worse(code, itemExitCode(ie))
			continue
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "== %s\n", fs.Arg(i))
			printVerify(stdout, r.GetResult().GetVerified(), r.GetResult().GetSigners())
		}
		if !r.GetResult().GetVerified() {
			code = worse(code, ExitFailure)
		}
	}
	return code
}

// worse is the exit code that says more of two: an outage over bad input over a
// failed verification over success.
func worse(a, b int) int { return max(a, b) }

// itemExitCode is the exit code a batch item's error would have had as a call.
func itemExitCode(ie *signsvrv1.ItemError) int {
	if ie.GetCode() == 3 { // INVALID_ARGUMENT
		return ExitUsage
	}
	return ExitServer
}

func codeName(code uint32) string {
	names := map[uint32]string{3: "InvalidArgument", 5: "NotFound", 7: "PermissionDenied", 8: "ResourceExhausted",
		9: "FailedPrecondition", 13: "Internal", 14: "Unavailable", 4: "DeadlineExceeded", 1: "Canceled"}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("code %d", code)
}

var signRawCmd = &Command{
	Name: "sign-raw", Args: "--key NAME [--digest D] [--rsa-scheme S] [--sm2-user-id ID] [--in F] [--out F] [--json]",
	Summary: "SignRaw: a plain signature (no CMS) over the input", Client: true, Run: SignRaw,
}

// SignRaw is `signsvr sign-raw`: the raw signature bytes to --out, or the whole
// response (algorithm, certificate) with --json.
func SignRaw(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("sign-raw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	key := fs.String("key", "", "signing key name (required)")
	digest := fs.String("digest", "", "digest: "+words(digestWords)+" (default: the key's)")
	rsaScheme := fs.String("rsa-scheme", "", "RSA padding: "+words(rsaSigWords))
	uid := fs.String("sm2-user-id", "", "SM2 user ID (default 1234567812345678)")
	asJSON := fs.Bool("json", false, "print the full response as JSON instead of the signature")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *key == "" {
		fmt.Fprintln(stderr, "signsvr sign-raw: --key is required")
		return ExitUsage
	}
	req := &signsvrv1.SignRawRequest{Key: *key, Sm2UserId: []byte(*uid)}
	var err error
	if req.Digest, err = enumFlag("digest", *digest, digestWords); err != nil {
		return inputError(stderr, "sign-raw", err)
	}
	if req.RsaScheme, err = enumFlag("rsa-scheme", *rsaScheme, rsaSigWords); err != nil {
		return inputError(stderr, "sign-raw", err)
	}
	if req.Data, err = c.readInput(stdin); err != nil {
		return inputError(stderr, "sign-raw", err)
	}
	var resp *signsvrv1.SignRawResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).SignRaw(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "sign-raw", err)
	}
	if *asJSON {
		err = printJSON(stdout, resp)
	} else {
		err = c.writeOutput(stdout, resp.GetSignature())
	}
	if err != nil {
		return inputError(stderr, "sign-raw", err)
	}
	return ExitOK
}

var verifyRawCmd = &Command{
	Name: "verify-raw", Args: "--signature F (--key NAME | --certificate F) [--digest D] [--rsa-scheme S] [--sm2-user-id ID] [--in F] [--json]",
	Summary: "VerifyRaw: check a plain signature over the input; exit 1 unless it verifies", Client: true, Run: VerifyRaw,
}

// VerifyRaw is `signsvr verify-raw`.
func VerifyRaw(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("verify-raw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	fs.StringVar(&c.in, "in", "", "the data that was signed (default stdin)")
	sigFile := fs.String("signature", "", "file holding the signature, as sign-raw writes it (required)")
	key := fs.String("key", "", "check against this server key's certificate")
	certFile := fs.String("certificate", "", "check against this certificate, PEM or DER")
	digest := fs.String("digest", "", "digest: "+words(digestWords)+" (default: the key's)")
	rsaScheme := fs.String("rsa-scheme", "", "RSA padding: "+words(rsaSigWords))
	uid := fs.String("sm2-user-id", "", "SM2 user ID (default 1234567812345678)")
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *sigFile == "" || (*key == "") == (*certFile == "") {
		fmt.Fprintln(stderr, "signsvr verify-raw: give --signature and one of --key and --certificate")
		return ExitUsage
	}
	req := &signsvrv1.VerifyRawRequest{Key: *key, Sm2UserId: []byte(*uid)}
	var err error
	if req.Digest, err = enumFlag("digest", *digest, digestWords); err != nil {
		return inputError(stderr, "verify-raw", err)
	}
	if req.RsaScheme, err = enumFlag("rsa-scheme", *rsaScheme, rsaSigWords); err != nil {
		return inputError(stderr, "verify-raw", err)
	}
	if req.Signature, err = os.ReadFile(*sigFile); err != nil {
		return inputError(stderr, "verify-raw", err)
	}
	if *certFile != "" {
		ders, err := certsFromFile(*certFile)
		if err != nil {
			return inputError(stderr, "verify-raw", err)
		}
		req.Certificate = ders[0]
	}
	if req.Data, err = c.readInput(stdin); err != nil {
		return inputError(stderr, "verify-raw", err)
	}
	var resp *signsvrv1.VerifyRawResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).VerifyRaw(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "verify-raw", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "verify-raw", err)
		}
	} else {
		if resp.GetVerified() {
			fmt.Fprintln(stdout, "verified: yes")
		} else {
			fmt.Fprintln(stdout, "verified: NO")
		}
		sig := "valid"
		if !resp.GetSignature().GetValid() {
			sig = "INVALID (" + resp.GetSignature().GetReason() + ")"
		}
		fmt.Fprintf(stdout, "signature %s; certificate %s\n", sig, verdictString(resp.GetCertificateVerdict()))
	}
	if !resp.GetVerified() {
		return ExitFailure
	}
	return ExitOK
}

func verdictString(cv *signsvrv1.CertificateVerdict) string {
	s := strings.TrimPrefix(cv.GetStatus().String(), "CERTIFICATE_STATUS_")
	if cv.GetReason() != "" {
		s += " (" + cv.GetReason() + ")"
	}
	return s
}

var signAndEnvelopeCmd = &Command{
	Name: "sign-and-envelope", Args: "--key NAME (--recipient-certs F | --recipient-keys NAME)... [--format F] [SignOptions and EnvelopeOptions flags]",
	Summary: "SignAndEnvelope: sign the input, then envelope it", Client: true, Run: SignAndEnvelope,
}

// SignAndEnvelope is `signsvr sign-and-envelope`. The EnvelopeOptions flags whose
// names SignOptions also has are prefixed: --envelope-rsa-scheme, --envelope-sm2-dialect.
func SignAndEnvelope(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("sign-and-envelope", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	key := fs.String("key", "", "signing key name (required)")
	format := fs.String("format", "", "how to combine: "+words(formatWords)+" (default nested)")
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	var rf recipientFlags
	rf.register(fs)
	var so signOptionFlags
	so.register(fs)
	var ef envelopeOptionFlags
	ef.register(fs, "envelope-")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *key == "" {
		fmt.Fprintln(stderr, "signsvr sign-and-envelope: --key is required")
		return ExitUsage
	}
	req := &signsvrv1.SignAndEnvelopeRequest{Key: *key}
	var err error
	if req.SignOptions, err = so.options(); err != nil {
		return inputError(stderr, "sign-and-envelope", err)
	}
	if req.EnvelopeOptions, err = ef.options(); err != nil {
		return inputError(stderr, "sign-and-envelope", err)
	}
	if req.Format, err = enumFlag("format", *format, formatWords); err != nil {
		return inputError(stderr, "sign-and-envelope", err)
	}
	r, err := rf.recipients()
	if err != nil {
		return inputError(stderr, "sign-and-envelope", err)
	}
	req.RecipientCerts, req.RecipientKeys, req.RecipientKekKeys, req.RecipientPasswords = r.certs, r.keys, r.keks, r.passwords
	if req.Data, err = c.readInput(stdin); err != nil {
		return inputError(stderr, "sign-and-envelope", err)
	}
	var resp *signsvrv1.SignAndEnvelopeResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewEnvelopeServiceClient(cc).SignAndEnvelope(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "sign-and-envelope", err)
	}
	out := resp.GetCms()
	if *asPEM {
		out = cmsPEM(out)
	}
	if err := c.writeOutput(stdout, out); err != nil {
		return inputError(stderr, "sign-and-envelope", err)
	}
	return ExitOK
}

var decryptAndVerifyCmd = &Command{
	Name: "decrypt-and-verify", Args: "--key NAME [--in F] [--out F] [--json] [--allow-legacy] [VerifyOptions flags]",
	Summary: "DecryptAndVerify: open an envelope and verify the SignedData inside; exit 1 unless it verifies", Client: true,
	Run: DecryptAndVerify,
}

// DecryptAndVerify is `signsvr decrypt-and-verify`: the summary on stdout as verify
// prints it, the content to --out.
func DecryptAndVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("decrypt-and-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	fs.StringVar(&c.in, "in", "", "the envelope, DER or PEM (default stdin)")
	contentOut := fs.String("out", "", "write the signed content to this file")
	key := fs.String("key", "", "decryption key name (required)")
	asJSON := fs.Bool("json", false, "print the full result as JSON")
	var df decryptOptionFlags
	df.register(fs)
	var vf verifyOptionFlags
	vf.register(fs)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	vo, err := vf.options()
	if err != nil {
		return inputError(stderr, "decrypt-and-verify", err)
	}
	do, err := df.options()
	if err != nil {
		return inputError(stderr, "decrypt-and-verify", err)
	}
	if (*key == "") == (do.Password == nil) {
		fmt.Fprintln(stderr, "signsvr decrypt-and-verify: give --key or a password (--password-file, --password-env)")
		return ExitUsage
	}
	if *contentOut == "" && !*asJSON {
		vo.OmitContent = true
	}
	in, err := c.readInput(stdin)
	if err != nil {
		return inputError(stderr, "decrypt-and-verify", err)
	}
	var resp *signsvrv1.DecryptAndVerifyResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewEnvelopeServiceClient(cc).DecryptAndVerify(ctx, &signsvrv1.DecryptAndVerifyRequest{
			Key: *key, Cms: pemOrDER(in), DecryptOptions: do, VerifyOptions: vo,
		})
		return err
	})
	if err != nil {
		return fail(stderr, "decrypt-and-verify", err)
	}
	return reportVerify(stdout, stderr, "decrypt-and-verify", &c, *contentOut, *asJSON, resp, resp.GetVerified(), resp.GetSigners(), resp.GetContent())
}

var timestampCmd = &Command{
	Name: "timestamp", Args: "[--request F | --digest HEX | --in F] [--digest-algorithm D] [--nonce HEX] [--omit-certificate] [--token] [--out F] [--json]",
	Summary: "Timestamp: an RFC 3161 timestamp over data, a digest or a TimeStampReq", Client: true, Run: Timestamp,
}

// Timestamp is `signsvr timestamp`: the DER TimeStampResp to --out (what `openssl ts
// -verify -in` reads), or the token alone with --token.
func Timestamp(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("timestamp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	reqFile := fs.String("request", "", "a DER TimeStampReq file (openssl ts -query)")
	digest := fs.String("digest", "", "the digest to stamp, hex")
	alg := fs.String("digest-algorithm", "", "digest algorithm of --digest or the data: "+words(digestWords)+" (default sha256)")
	nonce := fs.String("nonce", "", "a nonce for the token, hex")
	omitCert := fs.Bool("omit-certificate", false, "leave the TSA certificate out of the token")
	token := fs.Bool("token", false, "write the TimeStampToken instead of the TimeStampResp")
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *reqFile != "" && *digest != "" {
		fmt.Fprintln(stderr, "signsvr timestamp: give one of --request, --digest and the data")
		return ExitUsage
	}
	req := &signsvrv1.TimestampRequest{OmitCertificate: *omitCert}
	var err error
	if req.DigestAlgorithm, err = enumFlag("digest-algorithm", *alg, digestWords); err != nil {
		return inputError(stderr, "timestamp", err)
	}
	if *nonce != "" {
		if req.Nonce, err = hex.DecodeString(*nonce); err != nil {
			return inputError(stderr, "timestamp", fmt.Errorf("--nonce: %w", err))
		}
	}
	switch {
	case *reqFile != "":
		req.Request, err = os.ReadFile(*reqFile)
	case *digest != "":
		req.Digest, err = hex.DecodeString(*digest)
	default:
		req.Data, err = c.readInput(stdin)
	}
	if err != nil {
		return inputError(stderr, "timestamp", err)
	}
	var resp *signsvrv1.TimestampResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewTimestampServiceClient(cc).Timestamp(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "timestamp", err)
	}
	switch {
	case *asJSON:
		err = printJSON(stdout, resp)
	case *token:
		err = c.writeOutput(stdout, resp.GetToken())
	default:
		err = c.writeOutput(stdout, resp.GetResponse())
	}
	if err != nil {
		return inputError(stderr, "timestamp", err)
	}
	return ExitOK
}

var certValidateCmd = &Command{
	Name: "cert validate", Args: "[--in CERT] [--intermediates F]... [--time RFC3339] [--purpose P] [--json]",
	Summary: "ValidateCertificate: the verdict on a certificate; exit 1 unless GOOD", Client: true, Run: CertValidate,
}

// CertValidate is `signsvr cert validate`. A PEM input with several certificates is
// the leaf followed by intermediates.
func CertValidate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("cert validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	fs.StringVar(&c.in, "in", "", "the certificate, PEM or DER (default stdin); more PEM certificates are intermediates")
	var inter stringList
	fs.Var(&inter, "intermediates", "PEM or DER file of intermediate CA certificates (repeatable)")
	at := fs.String("time", "", "validate at this time, RFC 3339 (default now)")
	purpose := fs.String("purpose", "", "what the certificate is for: "+words(purposeWords)+" (default any)")
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	req := &signsvrv1.ValidateCertificateRequest{}
	var err error
	if req.Purpose, err = enumFlag("purpose", *purpose, purposeWords); err != nil {
		return inputError(stderr, "cert validate", err)
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return inputError(stderr, "cert validate", fmt.Errorf("--time: %w", err))
		}
		req.Time = timestamppb.New(t)
	}
	ders, err := c.readCerts(stdin)
	if err != nil {
		return inputError(stderr, "cert validate", err)
	}
	req.Certificate, req.Intermediates = ders[0], ders[1:]
	for _, f := range inter {
		more, err := certsFromFile(f)
		if err != nil {
			return inputError(stderr, "cert validate", fmt.Errorf("--intermediates: %w", err))
		}
		req.Intermediates = append(req.Intermediates, more...)
	}
	var resp *signsvrv1.ValidateCertificateResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewCertificateServiceClient(cc).ValidateCertificate(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "cert validate", err)
	}
	v := resp.GetVerdict()
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "cert validate", err)
		}
	} else {
		fmt.Fprintf(stdout, "certificate %s", verdictString(v))
		if v.GetDetail() != "" {
			fmt.Fprintf(stdout, ": %s", v.GetDetail())
		}
		fmt.Fprintln(stdout)
	}
	if v.GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD {
		return ExitFailure
	}
	return ExitOK
}

var certParseCmd = &Command{
	Name: "cert parse", Args: "[--in CERT] [--json]",
	Summary: "ParseCertificate: what a certificate says, decoded", Client: true, Run: CertParse,
}

// CertParse is `signsvr cert parse`: the decoded certificate as JSON (the fields of
// CertificateInfo); the summary without --json.
func CertParse(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("cert parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	fs.StringVar(&c.in, "in", "", "the certificate, PEM or DER (default stdin)")
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	ders, err := c.readCerts(stdin)
	if err != nil {
		return inputError(stderr, "cert parse", err)
	}
	var resp *signsvrv1.ParseCertificateResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewCertificateServiceClient(cc).ParseCertificate(ctx, &signsvrv1.ParseCertificateRequest{Certificate: ders[0]})
		return err
	})
	if err != nil {
		return fail(stderr, "cert parse", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "cert parse", err)
		}
		return ExitOK
	}
	i := resp.GetInfo()
	alg := strings.TrimPrefix(i.GetKeyAlgorithm().String(), "KEY_ALGORITHM_")
	fmt.Fprintf(stdout, "subject: %s\nissuer: %s\nserial: %s\nnot before: %s\nnot after: %s\nkey: %s %d %s\nsignature: %s\nsha256: %s\n",
		i.GetSubject(), i.GetIssuer(), i.GetSerialHex(),
		i.GetNotBefore().AsTime().UTC().Format(time.RFC3339), i.GetNotAfter().AsTime().UTC().Format(time.RFC3339),
		alg, i.GetKeyBits(), i.GetCurve(), i.GetSignatureAlgorithm(), i.GetFingerprintSha256())
	if len(i.GetKeyUsages()) > 0 {
		fmt.Fprintf(stdout, "key usage: %s\n", strings.Join(i.GetKeyUsages(), ", "))
	}
	if len(i.GetExtKeyUsages()) > 0 {
		fmt.Fprintf(stdout, "extended key usage: %s\n", strings.Join(i.GetExtKeyUsages(), ", "))
	}
	if i.GetIsCa() {
		fmt.Fprintln(stdout, "CA: yes")
	}
	return ExitOK
}

// readCerts reads --in (or stdin): every certificate of a PEM text, or one DER
// certificate.
func (c *clientFlags) readCerts(stdin io.Reader) ([][]byte, error) {
	b, err := c.readInput(stdin)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			out = append(out, block.Bytes)
		}
	}
	if len(out) == 0 {
		if len(b) == 0 || b[0] != 0x30 {
			return nil, fmt.Errorf("the input is neither a PEM certificate nor DER")
		}
		out = [][]byte{b}
	}
	return out, nil
}
