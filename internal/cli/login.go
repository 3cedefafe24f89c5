package cli

import (
	"context"
	"crypto"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/login"
)

// Login is `signsvr login`: a certificate login from the command line, as a
// business system's front end would do it. It asks for a challenge, signs it with
// the local key (raw, or as CMS through the server's own Sign when --sign-key names a
// server key), and prints the token.
func Login(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	certFile := fs.String("cert", "", "PEM certificate of the user (leaf first; more certificates are intermediates)")
	keyFile := fs.String("key", "", "PEM private key of the user (PKCS#8, SEC 1 or PKCS#1; RSA, ECDSA or SM2)")
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *certFile == "" || *keyFile == "" {
		fmt.Fprintln(stderr, "signsvr login: --cert and --key are required")
		return ExitUsage
	}
	certs, err := certsFromFile(*certFile)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr login: %v\n", err)
		return ExitFailure
	}
	key, err := loadSigner(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr login: %v\n", err)
		return ExitFailure
	}
	var resp *signsvrv1.LoginResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		ac := signsvrv1.NewAuthServiceClient(cc)
		ch, err := ac.CreateChallenge(ctx, &signsvrv1.CreateChallengeRequest{})
		if err != nil {
			return err
		}
		sig, err := login.SignChallenge(key, []byte(ch.GetChallenge()))
		if err != nil {
			return err
		}
		resp, err = ac.Login(ctx, &signsvrv1.LoginRequest{
			Challenge: ch.GetChallenge(), Signature: sig, Certificate: certs[0], Intermediates: certs[1:],
		})
		return err
	})
	if err != nil {
		return fail(stderr, "login", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			fmt.Fprintf(stderr, "signsvr login: %v\n", err)
			return ExitFailure
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
