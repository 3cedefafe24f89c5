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
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

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
	Log             Log           `yaml:"log"`
	TLS             TLS           `yaml:"tls"`
	// Trust is what signer certificates are validated against (pkg/trust).
	Trust    trust.FileConfig `yaml:"trust"`
	Keystore Keystore         `yaml:"keystore"`
	// Authorization says which clients may use which keys. It denies by default: a
	// client that no rule names can list keys and verify, but not sign or decrypt.
	Authorization Authorization `yaml:"authorization"`
}

// Authorization is the key-use policy for clients.
type Authorization struct {
	Rules []AuthorizationRule `yaml:"rules"`
}

// AuthorizationRule allows the named clients the named operations on the named keys.
type AuthorizationRule struct {
	// Subjects are client certificate subjects, RFC 4514 style as Go writes them
	// ("CN=acme-fep,O=ACME").
	Subjects []string `yaml:"subjects"`
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
	// ClientCAFiles are PEM files of the CAs whose client certificates are accepted.
	ClientCAFiles []string `yaml:"client_ca_files"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Keystore chooses the key backend. Exactly one backend is configured.
type Keystore struct {
	// Soft holds keys in PKCS#8 PEM files.
	Soft *SoftKeystore `yaml:"soft"`
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
	c.resolve(dir)
	c.defaults()
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
	if c.Keystore.Soft != nil {
		for i := range c.Keystore.Soft.Keys {
			k := &c.Keystore.Soft.Keys[i]
			abs(&k.KeyFile)
			abs(&k.CertFile)
			abs(&k.PasswordFile)
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
	if len(c.TLS.ClientCAFiles) == 0 {
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
	switch {
	case c.Keystore.Soft == nil:
		fail("keystore: no backend configured (keystore.soft)")
	case len(c.Keystore.Soft.Keys) == 0:
		fail("keystore.soft.keys: no keys configured")
	}
	for i, r := range c.Authorization.Rules {
		if len(r.Subjects)+len(r.Fingerprints) == 0 {
			fail("authorization.rules[%d]: names no client (subjects or fingerprints)", i)
		}
		if len(r.Keys) == 0 || len(r.Operations) == 0 {
			fail("authorization.rules[%d]: names no keys or no operations", i)
		}
		for _, op := range r.Operations {
			if op != "sign" && op != "decrypt" {
				fail("authorization.rules[%d]: unknown operation %q (sign, decrypt)", i, op)
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
