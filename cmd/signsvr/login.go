package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/trust"
)

// Development login: the challenge MAC key is random per data directory and kept in
// it, so that restarts and a second instance on the same data directory accept each
// other's challenges; tokens are signed by the development login key, an ECDSA P-256
// key of the server's own (ES256, which every JWT library verifies) that no client
// request can name.
const (
	devChallengeKeyFile = "login-challenge.key"
	devTokenKey         = "login"
	devAudience         = "signsvr-development"
)

// developmentLogin returns the login options of the embedded default.
func developmentLogin(dataDir string) (*server.LoginOptions, error) {
	key, err := ensureChallengeKey(filepath.Join(dataDir, devChallengeKeyFile))
	if err != nil {
		return nil, fmt.Errorf("development login key: %w", err)
	}
	return &server.LoginOptions{ChallengeKeys: [][]byte{key}, Audience: devAudience, TokenKey: devTokenKey}, nil
}

// ensureChallengeKey reads the key file, or creates it with a fresh random key. Two
// instances starting at once agree: the key is written to a temporary file and linked
// into place, which fails if the other instance was first, and then its key is read.
func ensureChallengeKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		return config.ParseChallengeKey(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".login-challenge-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return config.ParseChallengeKey(string(b))
	}
	return k, nil
}

// productionLogin turns the login section into server options (nil: login off).
func productionLogin(l *config.Login, getenv func(string) string) (*server.LoginOptions, error) {
	if l == nil {
		return nil, nil
	}
	keys, err := l.ChallengeKeys(getenv)
	if err != nil {
		return nil, err
	}
	o := &server.LoginOptions{
		ChallengeKeys: keys, Audience: l.Audience, Issuer: l.Issuer,
		ChallengeTTL: l.ChallengeTTL, TokenTTL: l.TokenTTL, ClockSkew: l.ClockSkew,
		TokenKey: l.TokenKey, TokenKeyID: l.TokenKeyID, Purpose: trust.PurposeClientAuth,
	}
	if l.Purpose == "sign" {
		o.Purpose = trust.PurposeSign
	}
	return o, nil
}

// runLogin is `signsvr login`: a certificate login from the command line, as a
// business system's front end would do it. It asks for a challenge, signs it with
// the local key (raw, or as CMS through the server's own Sign when --sign-key names a
// server key), and prints the token.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	certFile := fs.String("cert", "", "PEM certificate of the user (leaf first; more certificates are intermediates)")
	keyFile := fs.String("key", "", "PEM private key of the user (PKCS#8, SEC 1 or PKCS#1; RSA, ECDSA or SM2)")
	asJSON := fs.Bool("json", false, "print the full response as JSON")
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	if *certFile == "" || *keyFile == "" {
		fmt.Fprintln(stderr, "signsvr login: --cert and --key are required")
		return exitUsage
	}
	certs, err := certsFromFile(*certFile)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr login: %v\n", err)
		return exitFailure
	}
	key, err := loadSigner(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr login: %v\n", err)
		return exitFailure
	}
	var resp *signsvrv1.LoginResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		ac := signsvrv1.NewAuthServiceClient(cc)
		ch, err := ac.CreateChallenge(ctx, &signsvrv1.CreateChallengeRequest{})
		if err != nil {
			return err
		}
		sig, err := SignChallenge(key, []byte(ch.GetChallenge()))
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
			return exitFailure
		}
	} else if resp.GetAuthenticated() {
		fmt.Fprintf(stdout, "logged in: %s\nexpires: %s\ntoken: %s\n", resp.GetIdentity().GetSubject(),
			resp.GetExpiresAt().AsTime().UTC().Format(time.RFC3339), resp.GetToken())
	} else {
		fmt.Fprintf(stdout, "refused: %s (%s)\n", resp.GetRefusalReason(), resp.GetRefusalMessage())
	}
	if !resp.GetAuthenticated() {
		return exitFailure
	}
	return exitOK
}

// SignChallenge signs a login challenge as AuthService expects a raw signature: RSA
// PKCS#1 v1.5 with SHA-256, ECDSA with SHA-256 / SHA-384 / SHA-512 by curve, SM2 with
// SM3 and the default user ID (DER signatures).
func SignChallenge(key crypto.Signer, msg []byte) ([]byte, error) {
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	case *ecdsa.PublicKey:
		if sm2.IsSM2PublicKey(pub) {
			return key.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
		}
		switch pub.Curve {
		case elliptic.P256():
			d := sha256.Sum256(msg)
			return key.Sign(rand.Reader, d[:], crypto.SHA256)
		case elliptic.P384():
			d := sha512.Sum384(msg)
			return key.Sign(rand.Reader, d[:], crypto.SHA384)
		case elliptic.P521():
			d := sha512.Sum512(msg)
			return key.Sign(rand.Reader, d[:], crypto.SHA512)
		}
	}
	return nil, errors.New("unsupported key for a login signature")
}

// loadSigner reads a PEM private key: PKCS#8, SEC 1 EC or PKCS#1 RSA (SM2 in PKCS#8
// or SEC 1).
func loadSigner(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = smx509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = smx509.ParseTypedECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = smx509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: unsupported PEM block %q (encrypted keys are not read here)", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}
