package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/config"
)

// TestCLILogin logs in with the development keys through `signsvr login`.
func TestCLILogin(t *testing.T) {
	for _, fam := range []string{"rsa", "ecdsa", "sm2"} {
		t.Run(fam, func(t *testing.T) {
			code, out, errs := cli(t, shared.addr, nil, "login",
				"--cert", devFile("keys", fam+"-sign.chain.pem"), "--key", devFile("keys", fam+"-sign.key.pem"))
			if code != 0 || !strings.Contains(string(out), "logged in: CN=signsvr development "+fam+"-sign") ||
				!strings.Contains(string(out), "token: ey") {
				t.Fatalf("login: exit %d\n%s%s", code, out, errs)
			}
		})
	}
	// The encryption key's certificate does not allow logging in (keyUsage lacks
	// digitalSignature): refused, exit 1.
	code, out, _ := cli(t, shared.addr, nil, "login",
		"--cert", devFile("keys", "rsa-enc.chain.pem"), "--key", devFile("keys", "rsa-enc.key.pem"))
	if code != exitFailure || !strings.Contains(string(out), "refused: certificate_wrong_usage") {
		t.Errorf("login with an encryption certificate: exit %d %s", code, out)
	}
}

// TestDevelopmentLoginSharesTheDataDir: a second development server on the same data
// directory is refused before it listens (two writers would fork the audit chain);
// one on a copy of the data directory, a second replica given the same files,
// accepts the first one's challenges (the MAC key is kept in the data directory,
// created once, readable only by its owner).
func TestDevelopmentLoginSharesTheDataDir(t *testing.T) {
	var stderr lockedBuffer
	sctx, scancel := context.WithCancel(t.Context())
	code := runServe(sctx, []string{"--data-dir", shared.dataDir, "--listen", "127.0.0.1:0"}, &stderr, func(net.Addr) {
		t.Error("a second server on the same data directory started")
		scancel()
	})
	scancel()
	if code == 0 || !strings.Contains(stderr.String(), "is in use by another process") {
		t.Fatalf("second server on the same data directory: exit %d\n%s", code, stderr.String())
	}
	copied := filepath.Join(t.TempDir(), "signsvr-data")
	if err := os.CopyFS(copied, os.DirFS(shared.dataDir)); err != nil {
		t.Fatal(err)
	}
	second := startServe(t, "--data-dir", copied)
	st, err := os.Stat(devFile(devChallengeKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("challenge key file: %v %v", st, err)
	}
	b, _ := os.ReadFile(devFile(devChallengeKeyFile))
	if _, err := config.ParseChallengeKey(string(b)); err != nil {
		t.Fatalf("challenge key file: %v", err)
	}
	dial := func(addr string) signsvrv1.AuthServiceClient {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return signsvrv1.NewAuthServiceClient(cc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := dial(shared.addr).CreateChallenge(ctx, &signsvrv1.CreateChallengeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := loadSigner(devFile("keys", "ecdsa-sign.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := certsFromFile(devFile("keys", "ecdsa-sign.chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignChallenge(key, []byte(ch.GetChallenge()))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dial(second.addr).Login(ctx, &signsvrv1.LoginRequest{Challenge: ch.GetChallenge(), Signature: sig,
		Certificate: certs[0], Intermediates: certs[1:]})
	if err != nil || !resp.GetAuthenticated() {
		t.Fatalf("second instance: %v %v", resp, err)
	}
	// Both instances sign tokens with the same development key.
	k1, err1 := dial(shared.addr).GetTokenKey(ctx, &signsvrv1.GetTokenKeyRequest{})
	k2, err2 := dial(second.addr).GetTokenKey(ctx, &signsvrv1.GetTokenKeyRequest{})
	if err1 != nil || err2 != nil || string(k1.GetPublicKey()) != string(k2.GetPublicKey()) || k1.GetAlgorithm() != "ES256" {
		t.Errorf("token keys differ: %v %v %v %v", k1, k2, err1, err2)
	}
}

func TestEnsureChallengeKeyRace(t *testing.T) {
	path := t.TempDir() + "/k"
	keys := make(chan []byte, 8)
	for range 8 {
		go func() {
			k, err := ensureChallengeKey(path)
			if err != nil {
				t.Error(err)
			}
			keys <- k
		}()
	}
	first := <-keys
	for range 7 {
		if k := <-keys; string(k) != string(first) || len(k) != 32 {
			t.Fatalf("instances disagree on the challenge key")
		}
	}
}
