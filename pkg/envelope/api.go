// Package envelope makes and opens CMS EnvelopedData and AuthEnvelopedData
// (RFC 5652, RFC 5083/5084, GM/T 0010) for RSA, ECDH (P-256/P-384) and SM2 recipients.
//
// It knows only certificates, the standard private-key interfaces (crypto.Decrypter,
// and KeyAgreer for ECDH) and pkg/cms: never the keystore, never gRPC.
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
}

// KeyAgreer is the recipient side of ECDH; *ecdh.PrivateKey satisfies it.
type KeyAgreer interface {
	ECDH(remote *ecdh.PublicKey) ([]byte, error)
}

// Envelope encrypts content to every recipient certificate and returns a DER
// ContentInfo (EnvelopedData, or AuthEnvelopedData for GCM ciphers).
func Envelope(content []byte, recipients []*smx509.Certificate, opts *Options) ([]byte, error) {
	return nil, errNotImplemented
}

// OpenOptions tune Open.
type OpenOptions struct {
	// AllowLegacy permits 3DES and SHA-1 based algorithms, to read old data.
	AllowLegacy bool
	Rand        io.Reader
}

// Open finds the RecipientInfo for cert (by issuer and serial or by key identifier)
// and decrypts the content with key, which must be a crypto.Decrypter (RSA, SM2) or a
// KeyAgreer (EC). Every failure after the recipient is found returns the same
// ErrDecrypt, so no caller can learn which step failed.
func Open(der []byte, key any, cert *smx509.Certificate, opts *OpenOptions) ([]byte, error) {
	return nil, errNotImplemented
}
