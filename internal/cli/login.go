package cli

import (
	"context"
	"crypto"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/login"
)

var (
	loginCmd = &Command{
		Name: "login", Args: "--cert F --key F | --challenge C (--signature F --cert F | --cms F) [--rsa-scheme S] [--json]",
		Summary: "CreateChallenge + Login: a certificate login; prints the token; exit 1 if refused", Client: true,
		Run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
			return Login(ctx, args, stdout, stderr)
		},
	}
	authChallengeCmd = &Command{
		Name: "auth challenge", Args: "[--json]",
		Summary: "CreateChallenge: a login challenge to sign", Client: true, Run: AuthChallenge,
	}
	authTokenKeyCmd = &Command{
		Name: "auth token-key", Args: "[--json]",
		Summary: "GetTokenKey: the public key login tokens are signed with", Client: true, Run: AuthTokenKey,
	}
)

// Login is `signsvr login`: a certificate login from the command line, as a
// business system's front end would do it. It asks for a challenge and signs it
// with the local key (--key), or submits an answer made elsewhere: --challenge with
// a raw --signature and the --cert, or a CMS SignedData (--cms) over the challenge.
// It prints the token.
func Login(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	certFile := fs.String("cert", "", "PEM certificate of the user (leaf first; more certificates are intermediates)")
	keyFile := fs.String("key", "", "PEM private key of the user (PKCS#8, SEC 1 or PKCS#1; RSA, ECDSA or SM2)")
	challenge := fs.String("challenge", "", "a challenge from `signsvr auth challenge`, answered by --signature or --cms")
	sigFile := fs.String("signature", "", "file holding a raw signature over the challenge")
	cmsFile := fs.String("cms", "", "file holding a CMS SignedData over the challenge, DER or PEM")
	rsaScheme := fs.String("rsa-scheme", "", "for raw RSA signatures: "+words(rsaSigWords)+" (default either)")
	var inter stringList
	fs.Var(&inter, "intermediates", "PEM file of intermediate CA certificates (repeatable)")
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	made := *sigFile != "" || *cmsFile != ""
	switch {
	case !made && (*certFile == "" || *keyFile == ""):
		fmt.Fprintln(stderr, "signsvr login: give --cert and --key, or --challenge with --signature and --cert, or with --cms")
		return ExitUsage
	case made && (*challenge == "" || *keyFile != "" || (*sigFile != "") == (*cmsFile != "") || (*sigFile != "" && *certFile == "")):
		fmt.Fprintln(stderr, "signsvr login: an answer made elsewhere is --challenge with either --signature and --cert, or --cms")
		return ExitUsage
	}
	req := &signsvrv1.LoginRequest{Challenge: *challenge}
	var err error
	if req.RsaScheme, err = enumFlag("rsa-scheme", *rsaScheme, rsaSigWords); err != nil {
		return inputError(stderr, "login", err)
	}
	if *certFile != "" {
		certs, err := certsFromFile(*certFile)
		if err != nil {
			return inputError(stderr, "login", err)
		}
		req.Certificate, req.Intermediates = certs[0], certs[1:]
	}
	for _, f := range inter {
		more, err := certsFromFile(f)
		if err != nil {
			return inputError(stderr, "login", err)
		}
		req.Intermediates = append(req.Intermediates, more...)
	}
	var key crypto.Signer
	switch {
	case *sigFile != "":
		req.Signature, err = os.ReadFile(*sigFile)
	case *cmsFile != "":
		var b []byte
		if b, err = os.ReadFile(*cmsFile); err == nil {
			req.Cms = pemOrDER(b)
		}
	default:
		key, err = loadSigner(*keyFile)
	}
	if err != nil {
		return inputError(stderr, "login", err)
	}
	var resp *signsvrv1.LoginResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		ac := signsvrv1.NewAuthServiceClient(cc)
		if key != nil {
			ch, err := ac.CreateChallenge(ctx, &signsvrv1.CreateChallengeRequest{})
			if err != nil {
				return err
			}
			req.Challenge = ch.GetChallenge()
			if req.Signature, err = login.SignChallenge(key, []byte(ch.GetChallenge())); err != nil {
				return err
			}
		}
		var err error
		resp, err = ac.Login(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "login", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "login", err)
		}
	} else if resp.GetAuthenticated() {
		fmt.Fprintf(stdout, "logged in: %s\nexpires: %s\ntoken: %s\n", resp.GetIdentity().GetSubject(),
			resp.GetExpiresAt().AsTime().UTC().Format(time.RFC3339), resp.GetToken())
	} else {
		fmt.Fprintf(stdout, "refused: %s (%s)\n", resp.GetRefusalReason(), resp.GetRefusalMessage())
	}
	if !resp.GetAuthenticated() {
		return ExitFailure
	}
	return ExitOK
}

// AuthChallenge is `signsvr auth challenge`: prints the challenge (the bytes to
// sign) on one line.
func AuthChallenge(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("auth challenge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	var resp *signsvrv1.CreateChallengeResponse
	err := c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewAuthServiceClient(cc).CreateChallenge(ctx, &signsvrv1.CreateChallengeRequest{})
		return err
	})
	if err != nil {
		return fail(stderr, "auth challenge", err)
	}
	if *asJSON {
		err = printJSON(stdout, resp)
	} else {
		_, err = fmt.Fprintln(stdout, resp.GetChallenge())
	}
	if err != nil {
		return inputError(stderr, "auth challenge", err)
	}
	return ExitOK
}

// AuthTokenKey is `signsvr auth token-key`: the token key as a PEM public key
// followed by its certificates, or the whole response with --json.
func AuthTokenKey(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("auth token-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	var resp *signsvrv1.GetTokenKeyResponse
	err := c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewAuthServiceClient(cc).GetTokenKey(ctx, &signsvrv1.GetTokenKeyRequest{})
		return err
	})
	if err != nil {
		return fail(stderr, "auth token-key", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "auth token-key", err)
		}
		return ExitOK
	}
	fmt.Fprintf(stdout, "# alg %s kid %s iss %s aud %s\n", resp.GetAlgorithm(), resp.GetKeyId(), resp.GetIssuer(), resp.GetAudience())
	pem.Encode(stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: resp.GetPublicKey()})
	for _, der := range resp.GetCertificateChain() {
		pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return ExitOK
}

// loadSigner reads a PEM private key file (see login.ParseSignerPEM).
func loadSigner(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := login.ParseSignerPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
