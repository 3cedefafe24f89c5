package app

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/multi"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
	"signsvr.dev/signsvr/pkg/keystore/secret"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// openKeystore builds the production key store: the soft keys, the PKCS#11 keys, or
// both combined, with key names unique across them. It warns about certificates that
// expire within the configured threshold, and returns the backend name for ListKeys
// ("soft", "pkcs11", or "soft+pkcs11"; the combined store names each key's own), and
// the PKCS#11 store within it, if any, for its pool statistics.
func openKeystore(ctx context.Context, cfg *config.Config, log *slog.Logger, now time.Time) (*multi.Store, string, *pkcs11.Store, error) {
	var (
		parts []multi.Part
		names []string
		hsm   *pkcs11.Store
	)
	closeAll := func() {
		for _, p := range parts {
			p.Store.Close()
		}
	}
	if cfg.Keystore.Soft != nil {
		s, err := soft.New(cfg.Keystore.Soft.Keys)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: keystore.soft: %w", cfg.Where("keystore", "soft"), err)
		}
		parts = append(parts, multi.Part{Backend: "soft", Store: s})
		names = append(names, "soft")
	}
	if cfg.Keystore.PKCS11 != nil {
		s, err := openPKCS11(ctx, cfg)
		if err != nil {
			closeAll()
			return nil, "", nil, err
		}
		hsm = s
		parts = append(parts, multi.Part{Backend: "pkcs11", Store: s})
		names = append(names, "pkcs11")
		for _, st := range s.Stats() {
			log.Info("HSM token ready", slog.String("token", st.Token), slog.Int("pool_size", st.PoolSize))
		}
	}
	store, err := multi.New(ctx, parts...)
	if err != nil {
		closeAll()
		return nil, "", nil, fmt.Errorf("%s: %w", cfg.Where("keystore"), err)
	}
	keys, err := store.Keys(ctx)
	if err != nil {
		store.Close()
		return nil, "", nil, err
	}
	for _, k := range keys {
		if keystore.ExpiresSoon(k, now, cfg.Keystore.ExpiryWarning) {
			log.Warn("key certificate expires soon: have it re-issued", slog.String("key", k.Name()),
				slog.Time("not_after", keystore.NotAfter(k)), slog.Duration("threshold", cfg.Keystore.ExpiryWarning))
		}
	}
	return store, strings.Join(names, "+"), hsm, nil
}

// openPKCS11 opens the HSM keys so that a configuration mistake is reported with the
// line of the YAML file that holds it. pkcs11.New checks everything, but its error
// names a token or a key, not a line; so the settings are checked first one at a time,
// in the order an operator fixes them: each token's library file and PIN source,
// then the token itself (opened and logged in to once: a wrong PIN is tried only
// once, never once per key, so it cannot lock the PIN), then each key's object and
// its certificate file. The store proper is built last; should it still fail
// (a certificate read from the token, a key's self-test), each key is loaded alone to
// find the one at fault.
func openPKCS11(ctx context.Context, cfg *config.Config) (*pkcs11.Store, error) {
	pc := cfg.Keystore.PKCS11.Config
	at := func(path ...any) string { return cfg.Where(append([]any{"keystore", "pkcs11"}, path...)...) }
	fail := func(where, setting string, err error) error {
		return fmt.Errorf("%s: keystore.pkcs11.%s: %w", where, setting, err)
	}

	admins := make([]*pkcs11.Admin, len(pc.Tokens))
	defer func() {
		for _, a := range admins {
			if a != nil {
				a.Close()
			}
		}
	}()
	for i, tc := range pc.Tokens {
		tok := fmt.Sprintf("tokens[%d]", i)
		if tc.Module == "" {
			return nil, fail(at("tokens", i), tok+".module", errors.New("no PKCS#11 library given"))
		}
		if strings.ContainsRune(tc.Module, os.PathSeparator) {
			if _, err := os.Stat(tc.Module); err != nil {
				return nil, fail(at("tokens", i, "module"), tok+".module", fmt.Errorf("PKCS#11 library: %w", err))
			}
		}
		if _, err := keystore.ParseSelfCheckMode(tc.SelfCheck); err != nil {
			return nil, fail(at("tokens", i, "self_check"), tok+".self_check", err)
		}
		var pinAt, pinSetting string // where the PIN is configured, for errors
		switch {
		case tc.PINFile != "" && tc.PINEnv != "":
			return nil, fail(at("tokens", i, "pin_env"), tok, errors.New("give pin_file or pin_env, not both"))
		case tc.PINFile != "":
			pinAt, pinSetting = at("tokens", i, "pin_file"), tok+".pin_file"
			if _, err := os.ReadFile(tc.PINFile); err != nil {
				return nil, fail(pinAt, pinSetting, err)
			}
		case tc.PINEnv != "":
			pinAt, pinSetting = at("tokens", i, "pin_env"), tok+".pin_env"
			if _, ok := os.LookupEnv(tc.PINEnv); !ok {
				return nil, fail(pinAt, pinSetting, fmt.Errorf("environment variable %s is not set", tc.PINEnv))
			}
		default:
			return nil, fail(at("tokens", i), tok, errors.New("no pin_file or pin_env given"))
		}
		a, err := pkcs11.OpenAdmin(tc)
		switch {
		case errors.Is(err, pkcs11.ErrNoCgo):
			return nil, fmt.Errorf("%s: keystore.pkcs11: %w", at(), err)
		case errors.Is(err, keystore.ErrUnavailable):
			// The library loaded and the token was found, but no logged-in session
			// could be had: most often the PIN is wrong.
			return nil, fail(pinAt, pinSetting, fmt.Errorf("the token refused the login (is the PIN right?): %w", err))
		case err != nil:
			// The library would not load as PKCS#11, or no token has the label.
			return nil, fail(at("tokens", i), tok, err)
		}
		admins[i] = a
	}

	for j, kc := range pc.Keys {
		key := fmt.Sprintf("keys[%d]", j)
		u, err := pkcs11.ParseURI(kc.URI)
		if err != nil {
			return nil, fail(at("keys", j, "uri"), key+".uri", err)
		}
		ti := -1
		for i, tc := range pc.Tokens {
			if tc.Label == u.Token && (!u.Has("serial") || u.Serial == tc.Serial) {
				ti = i
				break
			}
		}
		if ti < 0 {
			return nil, fail(at("keys", j, "uri"), key+".uri", fmt.Errorf("no token labelled %q is configured in keystore.pkcs11.tokens", u.Token))
		}
		signer, err := admins[ti].Signer(ctx, kc.URI)
		if err != nil {
			return nil, fail(at("keys", j, "uri"), key+".uri", fmt.Errorf("key %q: %w", kc.Name, err))
		}
		if kc.CertFile == "" {
			continue // the certificate is read from the token; New checks it
		}
		b, err := os.ReadFile(kc.CertFile)
		if err != nil {
			return nil, fail(at("keys", j, "cert_file"), key+".cert_file", err)
		}
		chain, err := keystore.ParseCertificatesPEM(b)
		if err != nil {
			return nil, fail(at("keys", j, "cert_file"), key+".cert_file", fmt.Errorf("%s: %w", kc.CertFile, err))
		}
		if !samePublicKey(chain[0].PublicKey, signer.Public()) {
			return nil, fail(at("keys", j, "cert_file"), key+".cert_file",
				fmt.Errorf("the certificate %q in %s is not for the key %q in the token", chain[0].Subject.String(), kc.CertFile, kc.Name))
		}
	}

	s, err := pkcs11.New(pc, pkcs11.Options{})
	if err == nil {
		return s, nil
	}
	for j, kc := range pc.Keys {
		u, _ := pkcs11.ParseURI(kc.URI)
		var tcs []pkcs11.TokenConfig
		for _, tc := range pc.Tokens {
			if tc.Label == u.Token {
				tcs = append(tcs, tc)
			}
		}
		one, kerr := pkcs11.New(pkcs11.Config{Tokens: tcs, Keys: []pkcs11.KeyConfig{kc}}, pkcs11.Options{})
		if kerr != nil {
			return nil, fail(at("keys", j), fmt.Sprintf("keys[%d]", j), kerr)
		}
		one.Close()
	}
	return nil, fmt.Errorf("%s: keystore.pkcs11: %w", at(), err)
}

// samePublicKey compares public keys of any kind the standard library and gmsm use.
func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// openSecretKeys gathers the symmetric key-encryption keys: those in files
// (keystore.secret_keys) and those in HSM tokens (keystore.pkcs11.secret_keys). Their
// names must differ from every other key's, since a request names either kind the
// same way. nil when none are configured.
func openSecretKeys(ctx context.Context, cfg *config.Config, store *multi.Store) (keystore.SecretStore, error) {
	stores := store.SecretStores()
	var hsm []pkcs11.SecretKeyConfig
	if p := cfg.Keystore.PKCS11; p != nil {
		hsm = p.SecretKeys
	}
	if len(cfg.Keystore.SecretKeys) == 0 && len(hsm) == 0 {
		return nil, nil
	}
	if len(cfg.Keystore.SecretKeys) > 0 {
		s, err := secret.New(cfg.Keystore.SecretKeys)
		if err != nil {
			return nil, fmt.Errorf("%s: keystore.secret_keys: %w", cfg.Where("keystore", "secret_keys"), err)
		}
		for i, kc := range cfg.Keystore.SecretKeys {
			_, kerr := store.Key(ctx, kc.Name)
			_, serr := stores.SecretKey(ctx, kc.Name)
			if kerr == nil || serr == nil {
				return nil, fmt.Errorf("%s: keystore.secret_keys[%d]: the name %q is also another key's; key names must be unique",
					cfg.Where("keystore", "secret_keys", i), i, kc.Name)
			}
		}
		stores = append(stores, s)
	}
	for i, kc := range hsm {
		if _, err := store.Key(ctx, kc.Name); err == nil {
			return nil, fmt.Errorf("%s: keystore.pkcs11.secret_keys[%d]: the name %q is also another key's; key names must be unique",
				cfg.Where("keystore", "pkcs11", "secret_keys", i), i, kc.Name)
		}
	}
	return stores, nil
}
