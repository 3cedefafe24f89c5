package app

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/login"
)

// TestDevelopmentLoginSharesTheDataDir: a second development server on the same data
// directory is refused before it listens (two writers would fork the audit chain);
// one on a copy of the data directory, a second replica given the same files,
// accepts the first one's challenges (the MAC key is kept in the data directory,
// created once, readable only by its owner).
func TestDevelopmentLoginSharesTheDataDir(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "signsvr-data")
	devFile := func(parts ...string) string { return filepath.Join(append([]string{dataDir}, parts...)...) }
	first := startServer(t, Options{DataDir: dataDir})
	if s, err := New(Options{DataDir: dataDir, Listen: "127.0.0.1:0", Log: io.Discard,
		GCPercent: DefaultGCPercent, MemoryLimit: DefaultMemoryLimit}); err == nil {
		s.Close()
		t.Fatal("a second server on the same data directory was built")
	} else if !strings.Contains(err.Error(), "is in use by another process") {
		t.Fatalf("a second server on the same data directory: %v, want a refusal naming the lock", err)
	}
	copied := filepath.Join(t.TempDir(), "signsvr-data")
	if err := os.CopyFS(copied, os.DirFS(dataDir)); err != nil {
		t.Fatal(err)
	}
	second := startServer(t, Options{DataDir: copied})
	st, err := os.Stat(devFile(DevChallengeKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("challenge key file: %v %v", st, err)
	}
	b, _ := os.ReadFile(devFile(DevChallengeKeyFile))
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
	ch, err := dial(first).CreateChallenge(ctx, &signsvrv1.CreateChallengeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(devFile("keys", "ecdsa-sign.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := login.ParseSignerPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	chainPEM, err := os.ReadFile(devFile("keys", "ecdsa-sign.chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := keystore.ParseCertificatesPEM(chainPEM)
	if err != nil {
		t.Fatal(err)
	}
	certs := make([][]byte, len(chain))
	for i, c := range chain {
		certs[i] = c.Raw
	}
	sig, err := login.SignChallenge(key, []byte(ch.GetChallenge()))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dial(second).Login(ctx, &signsvrv1.LoginRequest{Challenge: ch.GetChallenge(), Signature: sig,
		Certificate: certs[0], Intermediates: certs[1:]})
	if err != nil || !resp.GetAuthenticated() {
		t.Fatalf("second instance: %v %v", resp, err)
	}
	// Both instances sign tokens with the same development key.
	k1, err1 := dial(first).GetTokenKey(ctx, &signsvrv1.GetTokenKeyRequest{})
	k2, err2 := dial(second).GetTokenKey(ctx, &signsvrv1.GetTokenKeyRequest{})
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
