package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	// DevChallengeKeyFile is the file in the data directory that holds the MAC key.
	DevChallengeKeyFile = "login-challenge.key"
	devTokenKey         = "login"
	devAudience         = "signsvr-development"
)

// developmentLogin returns the login options of the embedded default.
func developmentLogin(dataDir string) (*server.LoginOptions, error) {
	key, err := ensureChallengeKey(filepath.Join(dataDir, DevChallengeKeyFile))
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
