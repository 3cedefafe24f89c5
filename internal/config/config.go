// Package config reads the signsvr server configuration: a YAML file that puts the
// server in production mode (named keys, trust anchors, TLS with client certificates).
//
// Without a file the server runs the embedded development default instead, which
// needs no configuration at all; that path does not go through this package beyond
// Defaults. The file is decoded strictly: an unknown key is an error, so a typo never
// silently leaves a default in place (a misspelt "client_ca_files" would otherwise
// turn mutual TLS off). Relative paths in the file are relative to the file's directory.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"signsvr.dev/signsvr/pkg/keystore/generation"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
	"signsvr.dev/signsvr/pkg/keystore/secret"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
)

// Defaults.
const (
	DefaultListen          = "127.0.0.1:50051"
	DefaultMaxMessageBytes = 64 << 20
	DefaultMaxBatchItems   = 1024
	DefaultShutdownTimeout = 30 * time.Second
)

// Config is the whole configuration file.
type Config struct {
	// Listen is the host:port to serve on.
	Listen string `yaml:"listen"`
	// MaxMessageBytes bounds a request; larger ones get RESOURCE_EXHAUSTED.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxBatchItems bounds the items of SignBatch / VerifyBatch.
	MaxBatchItems int `yaml:"max_batch_items"`
	// ShutdownTimeout is how long in-flight calls may drain on SIGTERM / SIGINT.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Limits bound what clients can hold of the server (connections, streams, slow
	// requests); an absent field keeps the server's default.
	Limits Limits `yaml:"limits"`
	// Reflection serves gRPC server reflection, which grpcurl and ghz use to learn
	// the API. Off unless set: it describes the whole API to anyone who reaches the
	// port.
	Reflection bool `yaml:"reflection"`
	Log        Log  `yaml:"log"`
	TLS        TLS  `yaml:"tls"`
	// Trust is what signer certificates are validated against (pkg/trust).
	Trust trust.FileConfig `yaml:"trust"`
	// Verify holds the deployment's defaults for verifications.
	Verify   Verify   `yaml:"verify"`
	Keystore Keystore `yaml:"keystore"`
	// Authorization says which clients may call which operations with which keys.
	// It denies by default: a client that no rule names can call nothing.
	Authorization Authorization `yaml:"authorization"`
	// Login enables certificate login (AuthService); absent, it is off.
	Login *Login `yaml:"login"`
	// Encryption bounds password envelopes and raw encryption.
	Encryption Encryption `yaml:"encryption"`
	// Audit and TSA are the non-repudiation settings (nonrepudiation.go).
	Audit *Audit `yaml:"audit"`
	TSA   *TSA   `yaml:"tsa"`
	// Streams bound the streaming calls; ClientDigests lists, by key name, the
	// digest algorithms ("sha256", "sha384", "sha512", "sm3") a key accepts from
	// clients in place of the content (none unless listed). See streams.go.
	Streams       Streams             `yaml:"streams"`
	ClientDigests map[string][]string `yaml:"client_digests"`
	// Ops is the operations listener (health for probes, metrics, readiness); off
	// unless ops.listen is set. Tracing exports spans over OTLP; off unless
	// tracing.otlp_endpoint is set (ops.go).
	Ops     Ops     `yaml:"ops"`
	Tracing Tracing `yaml:"tracing"`

	// file and root locate settings in the YAML source for error messages (Where).
	file string
	root *yaml.Node
	// generations are the key generations (generations.go).
	generations []generation.Spec
}

// Limits are the server's limits on clients (internal/server Limits, which has the
// defaults). Zero means the default.
type Limits struct {
	MaxConnections          int           `yaml:"max_connections"`
	MaxStreamsPerConnection uint32        `yaml:"max_streams_per_connection"`
	MaxCallDuration         time.Duration `yaml:"max_call_duration"`
	HandshakeTimeout        time.Duration `yaml:"handshake_timeout"`
	IdleTimeout             time.Duration `yaml:"idle_timeout"`
	KeepaliveMinInterval    time.Duration `yaml:"keepalive_min_interval"`
	MaxInflightBytes        int64         `yaml:"max_inflight_bytes"`
	RequestReadTimeout      time.Duration `yaml:"request_read_timeout"`
	MaxConnectionAge        time.Duration `yaml:"max_connection_age"`
	MaxConnectionAgeGrace   time.Duration `yaml:"max_connection_age_grace"`
	MaxPipelineInFlight     int           `yaml:"max_pipeline_in_flight"`
}

// Verify holds the defaults of the options of verifying requests (VerifyOptions),
// for the requests that leave them unset.
type Verify struct {
	// AllowSM2WithoutZ also accepts SM2 signatures made without the Z value, as
	// GmSSL 3.x writes SignedData, unless a request says otherwise. Off by default:
	// such a signature binds no user ID, so only a deployment whose peers use GmSSL
	// turns it on.
	AllowSM2WithoutZ bool `yaml:"allow_sm2_without_z"`
}

// Operations are the operation names an authorization rule may list (the server's
// Operations; a server test keeps the two lists equal). KeyOperations are checked
// against the rule's keys; the others only against its clients.
var (
	Operations = []string{"sign", "sign_raw", "decrypt", "verify", "envelope", "list_keys", "validate", "login", "timestamp",
		"encrypt_raw", "decrypt_raw", "wrap", "password"}
	KeyOperations = []string{"sign", "sign_raw", "decrypt", "decrypt_raw", "wrap"}
)

// Login configures certificate login. Secrets never sit in this file: the challenge
// MAC keys come from files or an environment variable, the token key is a keystore
// key named here.
type Login struct {
	// Audience names the business system; it is bound into challenges and is the
	// tokens' "aud". Required.
	Audience string `yaml:"audience"`
	// Issuer is the tokens' "iss" (default "signsvr").
	Issuer string `yaml:"issuer"`
	// ChallengeKeyFiles hold HMAC keys as base64 text (at least 32 bytes decoded,
	// e.g. `openssl rand -base64 32`). The first MACs new challenges; the others
	// are still accepted (rotation). Every replica needs the same keys.
	ChallengeKeyFiles []string `yaml:"challenge_key_files"`
	// ChallengeKeyEnv names an environment variable holding base64 keys separated
	// by commas (used after the files).
	ChallengeKeyEnv string `yaml:"challenge_key_env"`
	// TokenKey is the keystore key (usage sign) that signs login tokens;
	// TokenKeyID their "kid" header (default the key name).
	TokenKey   string `yaml:"token_key"`
	TokenKeyID string `yaml:"token_key_id"`
	// ChallengeTTL (default 60s), TokenTTL (default 5m) and ClockSkew allowed
	// between replicas (default 30s).
	ChallengeTTL time.Duration `yaml:"challenge_ttl"`
	TokenTTL     time.Duration `yaml:"token_ttl"`
	ClockSkew    time.Duration `yaml:"clock_skew"`
	// Purpose the login certificate must allow: "client_auth" (default) or "sign".
	Purpose string `yaml:"purpose"`
}

// MinChallengeKeyBytes is the shortest challenge MAC key accepted.
const MinChallengeKeyBytes = 32

// ChallengeKeys reads the challenge MAC keys: the files, then the environment
// variable (through getenv).
func (l *Login) ChallengeKeys(getenv func(string) string) ([][]byte, error) {
	var keys [][]byte
	for _, f := range l.ChallengeKeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("login.challenge_key_files: %w", err)
		}
		k, err := ParseChallengeKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("login.challenge_key_files: %s: %w", f, err)
		}
		keys = append(keys, k)
	}
	if l.ChallengeKeyEnv != "" {
		v := getenv(l.ChallengeKeyEnv)
		if strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("login.challenge_key_env: $%s is empty", l.ChallengeKeyEnv)
		}
		for i, part := range strings.Split(v, ",") {
			k, err := ParseChallengeKey(part)
			if err != nil {
				return nil, fmt.Errorf("login.challenge_key_env: key %d of $%s: %w", i+1, l.ChallengeKeyEnv, err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("login: no challenge key (challenge_key_files or challenge_key_env)")
	}
	return keys, nil
}

// ParseChallengeKey decodes a base64 (standard or URL alphabet, padded or not)
// challenge key of at least MinChallengeKeyBytes bytes. The error never quotes the
// text.
func ParseChallengeKey(text string) ([]byte, error) {
	t := strings.TrimRight(strings.TrimSpace(text), "=")
	t = strings.NewReplacer("-", "+", "_", "/").Replace(t)
	k, err := base64.RawStdEncoding.DecodeString(t)
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(k) < MinChallengeKeyBytes {
		return nil, fmt.Errorf("key shorter than %d bytes", MinChallengeKeyBytes)
	}
	return k, nil
}

// ClientTrust is the trust configuration for TLS client certificates: the
// tls.client_trust section when given (its anchors joined by client_ca_files),
// otherwise client_ca_files as anchors with the revocation policy of trust.
func (c *Config) ClientTrust() trust.FileConfig {
	var ft trust.FileConfig
	if c.TLS.ClientTrust != nil {
		ft = *c.TLS.ClientTrust
	} else {
		ft.Revocation = c.Trust.Revocation
	}
	ft.Anchors = append(append([]string(nil), c.TLS.ClientCAFiles...), ft.Anchors...)
	return ft
}

// Authorization is the key-use policy for clients.
type Authorization struct {
	Rules []AuthorizationRule `yaml:"rules"`
}

// AuthorizationRule allows the named clients the named operations on the named keys.
type AuthorizationRule struct {
	// Subjects are client certificate subjects, RFC 4514 style as Go writes them
	// ("CN=acme-fep,O=ACME"), or "*" for every client that passed mutual TLS.
	Subjects []string `yaml:"subjects"`
	// Issuer is the issuer DN of the certificates Subjects name, written the same way
	// ("CN=ACME Client CA,O=ACME"; the server logs it as issuer= for every client).
	// Required with subjects other than "*": any client CA can issue a certificate
	// with any subject, so a subject names a client only together with its issuer.
	// With "*" it narrows the rule to the clients of that issuer.
	Issuer string `yaml:"issuer"`
	// Fingerprints are hex SHA-256 fingerprints of client certificates.
	Fingerprints []string `yaml:"fingerprints"`
	// Keys are key names; "*" is every key.
	Keys []string `yaml:"keys"`
	// Operations are "sign" and/or "decrypt".
	Operations []string `yaml:"operations"`
}

// Log configures the structured log on stderr.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// TLS configures the server's TLS. Production mode requires it, with client
// certificates.
type TLS struct {
	// CertFile is the server certificate chain (PEM, leaf first); KeyFile its key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFiles are PEM files of the CAs whose client certificates are accepted
	// (trust anchors for client certificates). Client certificates are validated by
	// the trust package: chain, validity, clientAuth usage and revocation.
	ClientCAFiles []string `yaml:"client_ca_files"`
	// ClientTrust, when given, is the whole trust configuration for client
	// certificates (anchors added to ClientCAFiles, intermediates, revocation).
	// Without it client certificates are checked for revocation as trust.revocation
	// says.
	ClientTrust *trust.FileConfig `yaml:"client_trust"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Keystore chooses the key backends: soft, pkcs11 or both (key names are unique
// across them).
type Keystore struct {
	// Soft holds keys in PKCS#8 PEM files.
	Soft *SoftKeystore `yaml:"soft"`
	// PKCS11 holds keys in HSM tokens.
	PKCS11 *PKCS11Keystore `yaml:"pkcs11"`
	// ExpiryWarning is how close to its notAfter a key's certificate may come before
	// ListKeys flags it (expires_soon) and the server warns at startup. Default 720h
	// (30 days).
	ExpiryWarning time.Duration `yaml:"expiry_warning"`
	// SecretKeys are symmetric key-encryption keys (AES, in hexadecimal files) for
	// KEK recipients, named like the other keys (names unique across all of them).
	SecretKeys []secret.KeyConfig `yaml:"secret_keys"`
}

// Encryption bounds password envelopes and raw encryption (internal/server
// EncryptionLimits, which has the defaults). Zero means the default.
type Encryption struct {
	// MaxPBKDF2Iterations bounds the PBKDF2 iterations one password envelope may
	// cost to open (over all its password recipients), and what a request may ask
	// for when making one. Default 600000.
	MaxPBKDF2Iterations int `yaml:"max_pbkdf2_iterations"`
	// MaxRawBytes bounds EncryptRaw's data and DecryptRaw's ciphertext. Default 4096.
	MaxRawBytes int `yaml:"max_raw_bytes"`
}

// PKCS11Keystore lists the HSM tokens and the keys in them (see pkcs11.Config).
type PKCS11Keystore struct {
	pkcs11.Config `yaml:",inline"`
}

// SoftKeystore lists the keys of the soft backend.
type SoftKeystore struct {
	Keys []soft.KeyConfig `yaml:"keys"`
}

// Load reads, completes and checks the configuration file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.file = path
	return c, nil
}

// Parse decodes a configuration, resolves relative paths against dir, fills
// defaults and validates it.
func Parse(b []byte, dir string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, err
	}
	// A second decode, into nodes, only to know where each setting is (Where).
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err == nil {
		c.root = &root
	}
	c.resolve(dir)
	c.nonRepudiationResolve(dir)
	c.streamsResolve(dir)
	c.defaults()
	c.nonRepudiationDefaults()
	var genErrs []string
	c.splitGenerations(func(format string, a ...any) { genErrs = append(genErrs, fmt.Sprintf(format, a...)) })
	if len(genErrs) > 0 {
		return nil, errors.New(strings.Join(genErrs, "; "))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxBatchItems == 0 {
		c.MaxBatchItems = DefaultMaxBatchItems
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.TLS.MinVersion == "" {
		c.TLS.MinVersion = "1.2"
	}
	if c.Keystore.ExpiryWarning == 0 {
		c.Keystore.ExpiryWarning = 30 * 24 * time.Hour
	}
}

func (c *Config) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	absAll := func(ps []string) {
		for i := range ps {
			abs(&ps[i])
		}
	}
	abs(&c.TLS.CertFile)
	abs(&c.TLS.KeyFile)
	absAll(c.TLS.ClientCAFiles)
	absAll(c.Trust.Anchors)
	absAll(c.Trust.Intermediates)
	absAll(c.Trust.Revocation.CRLFiles)
	absAll(c.Trust.Revocation.OCSPResponderCerts)
	if ct := c.TLS.ClientTrust; ct != nil {
		absAll(ct.Anchors)
		absAll(ct.Intermediates)
		absAll(ct.Revocation.CRLFiles)
		absAll(ct.Revocation.OCSPResponderCerts)
	}
	if c.Login != nil {
		absAll(c.Login.ChallengeKeyFiles)
	}
	if c.Keystore.Soft != nil {
		for i := range c.Keystore.Soft.Keys {
			k := &c.Keystore.Soft.Keys[i]
			abs(&k.KeyFile)
			abs(&k.CertFile)
			abs(&k.PasswordFile)
		}
	}
	for i := range c.Keystore.SecretKeys {
		abs(&c.Keystore.SecretKeys[i].KeyFile)
	}
	if p := c.Keystore.PKCS11; p != nil {
		for i := range p.Tokens {
			tc := &p.Tokens[i]
			// A bare library name ("libsofthsm2.so") is left to the dynamic loader's
			// search path; a path with a directory is relative to the file.
			if strings.ContainsRune(tc.Module, filepath.Separator) {
				abs(&tc.Module)
			}
			abs(&tc.PINFile)
		}
		for i := range p.Keys {
			abs(&p.Keys[i].CertFile)
		}
	}
}

// Validate checks what can be checked without opening files. Production mode has no
// insecure options: TLS and client certificates are required.
func (c *Config) Validate() error {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		fail("listen: %v", err)
	}
	if c.MaxMessageBytes < 1024 {
		fail("max_message_bytes: %d is too small (at least 1024)", c.MaxMessageBytes)
	}
	if c.MaxBatchItems < 1 {
		fail("max_batch_items: must be positive")
	}
	if c.ShutdownTimeout < 0 {
		fail("shutdown_timeout: must not be negative")
	}
	l := c.Limits
	if l.MaxConnections < 0 || l.MaxCallDuration < 0 || l.HandshakeTimeout < 0 || l.IdleTimeout < 0 || l.KeepaliveMinInterval < 0 ||
		l.MaxInflightBytes < 0 || l.RequestReadTimeout < 0 ||
		l.MaxConnectionAge < 0 || l.MaxConnectionAgeGrace < 0 || l.MaxPipelineInFlight < 0 {
		fail("limits: must not be negative")
	}
	if e := c.Encryption; e.MaxPBKDF2Iterations < 0 || e.MaxRawBytes < 0 {
		fail("encryption: must not be negative")
	}
	for i, k := range c.Keystore.SecretKeys {
		if k.Name == "" || k.KeyFile == "" || k.KeyID == "" {
			fail("keystore.secret_keys[%d]: name, key_file and key_id are required", i)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		fail("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		fail("log.format: %q is not json or text", c.Log.Format)
	}
	if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
		fail("tls: cert_file and key_file are required (production mode serves TLS only)")
	}
	if len(c.TLS.ClientCAFiles) == 0 && (c.TLS.ClientTrust == nil || len(c.TLS.ClientTrust.Anchors) == 0) {
		fail("tls: client_ca_files is required (production mode requires client certificates)")
	}
	switch c.TLS.MinVersion {
	case "1.2", "1.3":
	default:
		fail("tls.min_version: %q is not 1.2 or 1.3", c.TLS.MinVersion)
	}
	if len(c.Trust.Anchors) == 0 {
		fail("trust.anchors: at least one trust anchor file is required")
	}
	switch ks := c.Keystore; {
	case ks.Soft == nil && ks.PKCS11 == nil:
		fail("keystore: no backend configured (keystore.soft and/or keystore.pkcs11)")
	case ks.Soft != nil && len(ks.Soft.Keys) == 0:
		fail("keystore.soft.keys: no keys configured")
	case ks.PKCS11 != nil && len(ks.PKCS11.Keys) == 0:
		fail("keystore.pkcs11.keys: no keys configured")
	case ks.PKCS11 != nil && len(ks.PKCS11.Tokens) == 0:
		fail("keystore.pkcs11.tokens: no tokens configured")
	}
	if c.Keystore.ExpiryWarning < 0 {
		fail("keystore.expiry_warning: must not be negative")
	}
	for i, r := range c.Authorization.Rules {
		if len(r.Subjects)+len(r.Fingerprints) == 0 {
			fail("authorization.rules[%d]: names no client (subjects or fingerprints)", i)
		}
		if r.Issuer == "" && slices.ContainsFunc(r.Subjects, func(s string) bool { return s != "*" }) {
			fail("authorization.rules[%d]: subjects need the issuer of their certificates (issuer: the issuer DN, "+
				"as the server logs it for the client), or name the clients by fingerprints: "+
				"any client CA could issue a certificate with the same subject", i)
		}
		if r.Issuer != "" && len(r.Subjects) == 0 {
			fail("authorization.rules[%d]: issuer without subjects (subjects: [\"*\"] for every client of the issuer)", i)
		}
		if len(r.Operations) == 0 {
			fail("authorization.rules[%d]: names no operations", i)
		}
		keyOps := false
		for _, op := range r.Operations {
			if !slices.Contains(Operations, op) {
				fail("authorization.rules[%d]: unknown operation %q (%s)", i, op, strings.Join(Operations, ", "))
			}
			keyOps = keyOps || slices.Contains(KeyOperations, op)
		}
		if keyOps && len(r.Keys) == 0 {
			fail("authorization.rules[%d]: names key operations (%s) but no keys", i, strings.Join(KeyOperations, ", "))
		}
	}
	if l := c.Login; l != nil {
		if l.Audience == "" {
			fail("login.audience: required")
		}
		if len(l.ChallengeKeyFiles) == 0 && l.ChallengeKeyEnv == "" {
			fail("login: challenge_key_files or challenge_key_env is required (keys never sit in this file)")
		}
		if l.TokenKey == "" {
			fail("login.token_key: required (a keystore key name)")
		}
		switch l.Purpose {
		case "", "client_auth", "sign":
		default:
			fail("login.purpose: %q is not client_auth or sign", l.Purpose)
		}
		if l.ChallengeTTL < 0 || l.TokenTTL < 0 || l.ClockSkew < 0 {
			fail("login: durations must not be negative")
		}
	}
	c.nonRepudiationValidate(fail)
	c.streamsValidate(fail)
	c.opsValidate(fail)
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Where gives the place of a setting in the file as "FILE:LINE", for error messages
// that send the operator to the right line. The path walks mapping keys (strings) and
// sequence indexes (ints) from the top, e.g. Where("keystore", "pkcs11", "tokens", 0,
// "pin_file"). When the full path is not in the file (a setting left to its default)
// it gives the line of the deepest part that is; a configuration that did not come
// from a file gives "".
func (c *Config) Where(path ...any) string {
	if c.root == nil || len(c.root.Content) == 0 {
		return c.file
	}
	n := c.root.Content[0]
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						// The key's line: a nested mapping's value starts below it.
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p >= 0 && p < len(n.Content) {
				next = n.Content[p]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	if c.file == "" {
		return fmt.Sprintf("line %d", line)
	}
	return fmt.Sprintf("%s:%d", c.file, line)
}
