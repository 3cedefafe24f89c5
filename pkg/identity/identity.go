// Package identity describes who holds a certificate: the few strings by which the
// server's authorization policy, the login tokens and the audit log name a caller.
//
// It exists so that those three say the same thing about the same certificate. An
// auditor matches the serial in an audit record against the one in a login token or a
// server log line; that only works if every place writes it the same way. The serial
// is therefore written once, here, as the audit log has always written it: lower-case
// hexadecimal without leading zeros, with a leading "-" for the negative serials some
// old CAs issued (big.Int.Text(16)). Hex, not decimal, because that is how openssl and
// most certificate viewers print a serial, and because audit records already written
// carry it and must keep verifying and comparing equal to new ones.
//
// The package knows only certificates; it has no idea of TLS, tokens or logs, so every
// package may import it.
package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"

	"github.com/emmansun/gmsm/smx509"
)

// Holder names the holder of one certificate.
type Holder struct {
	// Subject and Issuer are the certificate's distinguished names as pkix.Name.String
	// writes them (RFC 2253 / 4514 style).
	Subject, Issuer string
	// Serial is the certificate serial number, as SerialHex writes it.
	Serial string
	// FingerprintSHA256 is the lower-case hex SHA-256 of the certificate's DER.
	FingerprintSHA256 string
}

// Of describes the holder of c.
func Of(c *smx509.Certificate) Holder {
	return of(c.Raw, &c.Subject, &c.Issuer, c.SerialNumber)
}

// OfX509 is Of for a certificate parsed by crypto/x509, as crypto/tls hands out the
// verified chains of a connection.
func OfX509(c *x509.Certificate) Holder {
	return of(c.Raw, &c.Subject, &c.Issuer, c.SerialNumber)
}

func of(raw []byte, subject, issuer *pkix.Name, serial *big.Int) Holder {
	sum := sha256.Sum256(raw)
	return Holder{
		Subject:           subject.String(),
		Issuer:            issuer.String(),
		Serial:            SerialHex(serial),
		FingerprintSHA256: hex.EncodeToString(sum[:]),
	}
}

// SerialHex writes a certificate serial number: lower-case hex without leading zeros,
// "-" before a negative one, "" for none.
func SerialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.Text(16)
}
