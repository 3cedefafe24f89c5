// Package envelope makes and opens CMS EnvelopedData and AuthEnvelopedData
// (RFC 5652, RFC 5083/5084, GM/T 0010) for RSA, ECDH (P-256/P-384) and SM2 recipients,
// and signs-then-envelopes (nested CMS, or PKCS#7 / GM/T 0010 SignedAndEnvelopedData).
//
// It knows only certificates, the standard private-key interfaces (crypto.Decrypter,
// and KeyAgreer for ECDH), pkg/cms and pkg/sign: never the keystore, never gRPC.
//
// # Methods
//
// The recipient certificate's public key picks the key management, never the type of
// a private key: RSA gets RSAES-OAEP (SHA-256, MGF1-SHA-256, parameters written in
// full as OpenSSL writes them) or PKCS#1 v1.5; EC P-256/P-384 gets ephemeral-static
// ECDH with the X9.63 KDF (SHA-256 / SHA-384) and AES key wrap sized to the content
// key, as `openssl cms -encrypt` does; SM2 gets SM2 encryption (GM/T 0010 ASN.1
// ciphertext) labelled 1.2.156.10197.1.301.3 with NULL parameters. Content is
// AES-128/256-CBC, SM4-CBC, or AES-128/256-GCM and SM4-GCM in an AuthEnvelopedData
// (GCM inside a plain EnvelopedData is non-standard and OpenSSL rejects it; it is read,
// never written). The default is AES-256-GCM, or SM4-CBC in the GM/T 0010 dialect
// when every recipient is SM2.
//
// Besides certificates, a message may go to holders of a symmetric key-encryption key
// (KEKRecipient: a KEKRecipientInfo, AES key wrap, found by its key identifier) and to
// passwords (Password: an RFC 3211 PasswordRecipientInfo, PBKDF2-HMAC-SHA-256 and the
// RFC 3211 key wrap in the content cipher's CBC mode, or AES/SM4-CBC beside a GCM
// cipher), as 'openssl cms -secretkey' and '-pwri_password' make them. EC recipients
// get cofactor ECDH on request (Options.ECDHCofactor); both schemes are read. The
// PBKDF2 iteration count is the sender's to choose, so Open bounds what one message
// may cost (OpenOptions.MaxPBKDF2Iterations) before deriving anything. SM2 encrypted
// keys are read in the GM/T 0009 ASN.1 form and in the raw forms peers write
// (pkg/sm2cipher), CFCA's without the 04 prefix among them.
//
// # Why Open says so little
//
// Once the recipient is found, every failure (wrong key, bad RSA padding, failed key
// unwrap, bad GCM tag, bad CBC padding) is the one ErrDecrypt, and the content
// decryption runs even when the key unwrap already failed. RSA PKCS#1 v1.5 uses
// implicit rejection: the Decrypter is called with rsa.PKCS1v15DecryptOptions and a
// SessionKeyLen, so a bad padding gives a random key that fails later like any wrong
// key, with no error and no branch in between (gmsm's pkcs7 answers a bad padding and
// a bad content key with different errors: a Bleichenbacher oracle). GCM tags are checked before any plaintext leaves. What a
// message says in the clear (malformed, unsupported or legacy algorithm, no recipient
// for this certificate, a key of the wrong kind) is reported as such.
//
// Unauthenticated CBC is malleable and, like every CBC envelope, answers "did it
// decrypt" to whoever can submit modified messages; prefer the GCM ciphers.
//
// 3DES, SHA-1 OAEP and the SHA-1 X9.63 KDF (OpenSSL's default for EC recipients!) are
// read only with OpenOptions.AllowLegacy and never written.
package envelope

import (
	"crypto/ecdh"
	"io"

	"github.com/emmansun/gmsm/smx509"
)

// Cipher is a content-encryption algorithm.
type Cipher int

const (
	// CipherDefault is AES-256-GCM, or SM4-CBC when every recipient is SM2.
	CipherDefault Cipher = iota
	AES128CBC
	AES256CBC
	// AES128GCM and AES256GCM write AuthEnvelopedData (RFC 5083/5084).
	AES128GCM
	AES256GCM
	SM4CBC
	// SM4GCM writes AuthEnvelopedData with SM4-GCM.
	SM4GCM
)

// RSAScheme is the RSA key-transport padding.
type RSAScheme int

const (
	// RSAOAEP is RSAES-OAEP with SHA-256 and MGF1-SHA-256, parameters written out (default).
	RSAOAEP RSAScheme = iota
	// RSAPKCS1v15 is RSAES-PKCS1-v1_5, for old peers.
	RSAPKCS1v15
)

// Dialect chooses the OIDs written for SM2 messages.
type Dialect int

const (
	// DialectAuto writes GM/T 0010 OIDs when every recipient is SM2, PKCS#7 OIDs otherwise.
	DialectAuto Dialect = iota
	DialectPKCS7
	DialectGMT0010
)

// RecipientIDType chooses how a RecipientInfo names its certificate.
type RecipientIDType int

const (
	RecipientIssuerAndSerial RecipientIDType = iota
	RecipientSubjectKeyID
)

// Options tune Envelope. The zero value is the safe default.
type Options struct {
	Cipher      Cipher
	RSA         RSAScheme
	RecipientID RecipientIDType
	Dialect     Dialect
	// Rand is the randomness source; nil means crypto/rand.Reader.
	Rand io.Reader
	// IgnoreKeyUsage skips the check that a recipient certificate with a key usage
	// extension allows keyEncipherment (RSA, SM2) or keyAgreement (EC).
	IgnoreKeyUsage bool
	// ECDHCofactor writes EC recipients with cofactor ECDH
	// (dhSinglePass-cofactorDH-*kdf-scheme), as 'openssl cms -keyopt
	// ecdh_cofactor_mode:1' does. The secret is the same (the curves' cofactor is 1).
	ECDHCofactor bool
	// KEKRecipients are recipients holding a symmetric key-encryption key
	// (KEKRecipientInfo, AES key wrap), besides the certificates.
	KEKRecipients []KEKRecipient
	// Passwords are password recipients (PasswordRecipientInfo, RFC 3211), one each.
	Passwords []Password
	// PBKDF2Iterations is the iteration count of password recipients; 0 means
	// DefaultPBKDF2Iterations, and fewer than 1000 are refused.
	PBKDF2Iterations int
}

// KeyAgreer is the recipient side of ECDH; *ecdh.PrivateKey satisfies it.
type KeyAgreer interface {
	ECDH(remote *ecdh.PublicKey) ([]byte, error)
}

// Envelope encrypts content to every recipient certificate, KEK recipient and
// password of opts, and returns a DER ContentInfo (EnvelopedData, or
// AuthEnvelopedData for GCM ciphers). A password or KEK recipient leaves the dialect
// PKCS#7 (GM/T 0010 has neither).
func Envelope(content []byte, recipients []*smx509.Certificate, opts *Options) ([]byte, error) {
	return envelope(content, recipients, opts)
}

// OpenOptions tune Open.
type OpenOptions struct {
	// AllowLegacy permits 3DES content encryption, to read old data. (SHA-1 inside
	// OAEP and the X9.63 KDF, OpenSSL's defaults, are read without it: neither use
	// relies on collision resistance. None of these is ever written.)
	AllowLegacy bool
	// Rand is the randomness source for the random keys of failed unwraps; nil means
	// crypto/rand.Reader.
	Rand io.Reader
	// BackendError reports whether an error returned by the key (its Decrypt or
	// ECDH) is about the key's backend — an HSM that is down or busy, the request's
	// end — rather than about the data. Such an error ends Open at once and is
	// returned wrapped, so a caller can answer "try again" instead of "cannot
	// decrypt"; every other error from the key is the one ErrDecrypt. It must match
	// only errors that cannot depend on the ciphertext, or it would open a padding
	// oracle. nil treats every error from the key as a decryption failure.
	BackendError func(error) bool
	// MaxPBKDF2Iterations bounds the PBKDF2 iterations one password envelope may
	// cost, over all its password recipients; 0 means DefaultMaxPBKDF2Iterations. A
	// message over it is refused (ErrTooCostly) before any is derived.
	MaxPBKDF2Iterations int
}

// Open finds the RecipientInfo for cert (by issuer and serial or by key identifier)
// and decrypts the content with key, which must be a crypto.Decrypter (RSA, SM2) or a
// KeyAgreer (EC; an *ecdsa.PrivateKey is also accepted). With a nil cert, key may
// instead be a KEKRecipient (the KEKRecipientInfo with its ID is opened) or a
// Password (the PasswordRecipientInfos are tried). Every failure after the
// recipient is found returns the same ErrDecrypt, so no caller can learn which step
// failed. Before that: errors wrapping cms.ErrMalformed (input), cms.ErrUnsupported
// (an algorithm or form not handled; with ErrLegacy for 3DES/SHA-1 without
// AllowLegacy), ErrNoRecipient, ErrKeyType.
//
// Input may be BER or DER; EnvelopedData and AuthEnvelopedData in either dialect. The
// content of a nested sign-then-envelope message is returned as is (a SignedData
// ContentInfo); a SignedAndEnvelopedData is refused, since its signature would go
// unchecked: use OpenAndVerify for both.
func Open(der []byte, key any, cert *smx509.Certificate, opts *OpenOptions) ([]byte, error) {
	m, err := parseMessage(der)
	if err != nil {
		return nil, err
	}
	if m.sed != nil {
		return nil, unsupported("a SignedAndEnvelopedData is opened with OpenAndVerify, which checks its signature")
	}
	content, _, err := m.open(key, cert, opts)
	return content, err
}
