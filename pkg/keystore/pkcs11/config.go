package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"signsvr.dev/signsvr/pkg/keystore"
)

// Config is the HSM part of the server configuration.
type Config struct {
	Tokens []TokenConfig `yaml:"tokens" json:"tokens"`
	Keys   []KeyConfig   `yaml:"keys" json:"keys"`
	// SecretKeys are AES key-encryption keys for KEK recipients (secret.go).
	SecretKeys []SecretKeyConfig `yaml:"secret_keys,omitempty" json:"secret_keys,omitempty"`
}

// TokenConfig says how to reach one token and how many sessions to keep on it.
type TokenConfig struct {
	// Module is the path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so.
	Module string `yaml:"module" json:"module"`
	// Label is the token label keys' URIs name with token=...
	Label string `yaml:"label" json:"label"`
	// Serial optionally pins the token's serial number too.
	Serial string `yaml:"serial,omitempty" json:"serial,omitempty"`
	// PINFile is a file holding the user PIN (trailing newline removed).
	PINFile string `yaml:"pin_file,omitempty" json:"pin_file,omitempty"`
	// PINEnv is an environment variable holding the user PIN.
	PINEnv string `yaml:"pin_env,omitempty" json:"pin_env,omitempty"`
	// PoolSize is the number of sessions, i.e. of operations in flight on this token.
	// Zero means min(token's maximum sessions, 2 x GOMAXPROCS), at least 2.
	PoolSize int `yaml:"pool_size,omitempty" json:"pool_size,omitempty"`
	// WaitTimeout bounds the wait for a free session (besides the request's own
	// deadline); past it the operation fails with keystore.ErrBusy. Default 2s.
	WaitTimeout time.Duration `yaml:"wait_timeout,omitempty" json:"wait_timeout,omitempty"`
	// RetryInterval is how long the circuit breaker fails fast after the token went
	// down before it lets one request probe it again; it doubles (up to 16x) while
	// the token stays down. Default 1s.
	RetryInterval time.Duration `yaml:"retry_interval,omitempty" json:"retry_interval,omitempty"`
	// SM2 gives the vendor's SM2 mechanisms. Nil means the token has no SM2 keys.
	SM2 *SM2Config `yaml:"sm2,omitempty" json:"sm2,omitempty"`
	// SelfCheck says which of the token's signatures the server verifies before
	// handing them out: "auto" (default: every RSA signature; the first 32 ECDSA and
	// SM2 signatures of each key, then one in 64, and all of them once one failed),
	// "always", or "off" (only for a device that checks its own). See
	// keystore.SelfCheckMode for why.
	SelfCheck string `yaml:"self_check,omitempty" json:"self_check,omitempty"`
}

// KeyConfig names one key in a token.
type KeyConfig struct {
	// Name is the logical key name requests use.
	Name string `yaml:"name" json:"name"`
	// URI is an RFC 7512 URI naming the token (token=, optionally serial=) and the
	// private key (object= label and/or id=). type=private is implied.
	URI string `yaml:"uri" json:"uri"`
	// CertFile is a PEM certificate chain, leaf first. Empty means: read the
	// certificate from the token (an X.509 certificate object with the key's id or
	// label, as `signsvr keys import-cert` stores it) and its issuers by subject.
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	// Usages lists "sign" and/or "decrypt".
	Usages []string `yaml:"usages" json:"usages"`
	// Generation and State place the key among the generations of its name: several
	// entries may share a name when each has its own generation id ("2025"); state
	// is active (default; exactly one per name), decrypt-only or retired. An entry
	// without a generation is the one key of its name.
	Generation string `yaml:"generation,omitempty" json:"generation,omitempty"`
	State      string `yaml:"state,omitempty" json:"state,omitempty"`
}

// SM2Config describes how a vendor exposes SM2 through vendor-defined PKCS#11 numbers.
// Preset fills in the numbers of a known vendor (see SM2Preset); any non-zero field
// overrides it.
type SM2Config struct {
	// Preset is "tass", "sansec" or "luna" (see SM2Preset), or empty.
	Preset string `yaml:"preset,omitempty" json:"preset,omitempty"`
	// KeyType is the CKA_KEY_TYPE of SM2 keys. Keys of type CKK_EC on the SM2 curve
	// are recognised as SM2 as well.
	KeyType uint `yaml:"key_type,omitempty" json:"key_type,omitempty"`
	// KeyGen is the key-pair generation mechanism.
	KeyGen uint `yaml:"keygen_mechanism,omitempty" json:"keygen_mechanism,omitempty"`
	// Sign signs a 32-byte e = SM3(Z || M) that signsvr computes.
	Sign uint `yaml:"sign_mechanism,omitempty" json:"sign_mechanism,omitempty"`
	// SignWithZ signs a whole message, the HSM computing Z (with the default user ID
	// 1234567812345678) and SM3. Used for the default user ID when HSMComputesZ.
	SignWithZ uint `yaml:"sign_with_z_mechanism,omitempty" json:"sign_with_z_mechanism,omitempty"`
	// HSMComputesZ selects SignWithZ for signatures with the default user ID.
	HSMComputesZ bool `yaml:"hsm_computes_z,omitempty" json:"hsm_computes_z,omitempty"`
	// SignatureFormat is what the sign mechanisms return: "raw" (r||s, 64 bytes) or
	// "der" (SEQUENCE of two INTEGERs).
	SignatureFormat string `yaml:"signature_format,omitempty" json:"signature_format,omitempty"`
	// Decrypt is the SM2 decryption mechanism; 0 means the token cannot decrypt SM2.
	Decrypt uint `yaml:"decrypt_mechanism,omitempty" json:"decrypt_mechanism,omitempty"`
	// CiphertextFormat is what Decrypt takes: "asn1" (GM/T 0009 SEQUENCE), "c1c3c2" or
	// "c1c2c3" (04||x||y then the parts).
	CiphertextFormat string `yaml:"ciphertext_format,omitempty" json:"ciphertext_format,omitempty"`
}

// SM2Preset returns a vendor numbering known to this package ("tass", "sansec",
// "luna"), from the vendors' public
// PKCS#11 headers (as collected in xipki's vendor.conf). Output and input formats are
// the vendors' documented defaults; check them against your HSM firmware with
// `signsvr keys generate` and a test signature before production use: a wrong
// number or format is reported at startup, when each key signs and verifies once.
func SM2Preset(name string) (SM2Config, bool) {
	switch strings.ToLower(name) {
	// TASS (江南天安): CKK 0x80000004; CKM_SM2_KEY_PAIR_GEN 0x80008001;
	// CKM_VENDOR_SM2 0x80008000 (sign e); CKM_SM3_SM2 0x80008100 (Z + SM3 in the HSM);
	// CKM_SM2_RAW 0x80008200 (decrypt). Signatures in X9.62 (DER).
	case "tass":
		return SM2Config{Preset: "tass", KeyType: 0x80000004, KeyGen: 0x80008001, Sign: 0x80008000, SignWithZ: 0x80008100,
			SignatureFormat: "der", Decrypt: 0x80008200, CiphertextFormat: "c1c3c2"}, true
	// Sansec (三未信安): CKK 0x80000004; CKM_SM2_KEY_PAIR_GEN 0x80008001;
	// CKM_SM2_SIGN_NO_DER 0x80008105 (sign e, raw r||s); CKM_SM3_SM2_Z 0x80008102 (Z + SM3,
	// raw); CKM_SM2_RAW 0x80008200 (decrypt).
	case "sansec":
		return SM2Config{Preset: "sansec", KeyType: 0x80000004, KeyGen: 0x80008001, Sign: 0x80008105, SignWithZ: 0x80008102,
			SignatureFormat: "raw", Decrypt: 0x80008200, CiphertextFormat: "c1c3c2"}, true
	// Thales Luna (firmware 7.x with SM support): CKK_SM2 0x80000016; CKM_SM2_KEY_PAIR_GEN
	// 0x80000B20; CKM_SM2DSA 0x80000B21 (sign e); CKM_SM3_SM2DSA 0x80000B22. No SM2
	// decryption mechanism is published; set decrypt_mechanism if your firmware has one.
	case "luna":
		return SM2Config{Preset: "luna", KeyType: 0x80000016, KeyGen: 0x80000B20, Sign: 0x80000B21, SignWithZ: 0x80000B22,
			SignatureFormat: "raw"}, true
	}
	return SM2Config{}, false
}

// resolved returns c with its preset applied and checked.
func (c *SM2Config) resolved() (*SM2Config, error) {
	if c == nil {
		return nil, nil
	}
	var out SM2Config
	if c.Preset != "" {
		p, ok := SM2Preset(c.Preset)
		if !ok {
			return nil, fmt.Errorf("sm2: unknown preset %q (known: tass, sansec, luna)", c.Preset)
		}
		out = p
	}
	if c.KeyType != 0 {
		out.KeyType = c.KeyType
	}
	if c.KeyGen != 0 {
		out.KeyGen = c.KeyGen
	}
	if c.Sign != 0 {
		out.Sign = c.Sign
	}
	if c.SignWithZ != 0 {
		out.SignWithZ = c.SignWithZ
	}
	if c.HSMComputesZ {
		out.HSMComputesZ = true
	}
	if c.SignatureFormat != "" {
		out.SignatureFormat = c.SignatureFormat
	}
	if c.Decrypt != 0 {
		out.Decrypt = c.Decrypt
	}
	if c.CiphertextFormat != "" {
		out.CiphertextFormat = c.CiphertextFormat
	}
	switch out.SignatureFormat {
	case "raw", "der":
	case "":
		out.SignatureFormat = "der"
	default:
		return nil, fmt.Errorf("sm2: signature_format %q is not raw or der", out.SignatureFormat)
	}
	switch out.CiphertextFormat {
	case "asn1", "c1c3c2", "c1c2c3":
	case "":
		out.CiphertextFormat = "asn1"
	default:
		return nil, fmt.Errorf("sm2: ciphertext_format %q is not asn1, c1c3c2 or c1c2c3", out.CiphertextFormat)
	}
	if out.Sign == 0 && out.SignWithZ == 0 && out.Decrypt == 0 {
		return nil, errors.New("sm2: no sign_mechanism, sign_with_z_mechanism or decrypt_mechanism given")
	}
	if out.HSMComputesZ && out.SignWithZ == 0 {
		return nil, errors.New("sm2: hsm_computes_z needs sign_with_z_mechanism")
	}
	return &out, nil
}

// readPIN reads the token's PIN from its file or environment variable.
func (tc *TokenConfig) readPIN() (string, error) {
	switch {
	case tc.PINFile != "" && tc.PINEnv != "":
		return "", errors.New("give pin_file or pin_env, not both")
	case tc.PINFile != "":
		b, err := os.ReadFile(tc.PINFile)
		if err != nil {
			return "", fmt.Errorf("pin_file: %v", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case tc.PINEnv != "":
		v, ok := os.LookupEnv(tc.PINEnv)
		if !ok {
			return "", fmt.Errorf("pin_env: environment variable %s is not set", tc.PINEnv)
		}
		return v, nil
	}
	return "", errors.New("no pin_file or pin_env given")
}

// keyURI parses and checks a key's URI: it must name a token and an object.
func keyURI(s string) (*URI, error) {
	u, err := ParseURI(s)
	if err != nil {
		return nil, err
	}
	if u.Has("pin-value") {
		return nil, errors.New("pkcs11 URI: pin-value is not allowed: give the PIN with the token's pin_file or pin_env")
	}
	if !u.Has("token") {
		return nil, errors.New("pkcs11 URI: no token= attribute")
	}
	if !u.Has("object") && !u.Has("id") {
		return nil, errors.New("pkcs11 URI: no object= or id= attribute naming the key")
	}
	if u.Has("type") && u.Type != "private" {
		return nil, fmt.Errorf("pkcs11 URI: type=%s, but a key is type=private", u.Type)
	}
	return u, nil
}

func parseUsages(list []string) (keystore.Usage, error) {
	return keystore.ParseUsage(strings.Join(list, ","))
}
