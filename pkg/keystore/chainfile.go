package keystore

import (
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// MinRSABits is the smallest RSA modulus a key of any backend may have, the minimum
// the algorithm table sets for signing on signsvr's behalf. It is one policy for every
// backend, so a key does not become acceptable by moving it from a file into an HSM.
const MinRSABits = algorithm.MinRSABits

// CheckRSABits returns an error when an RSA modulus of bits is smaller than MinRSABits.
func CheckRSABits(bits int) error {
	if bits < MinRSABits {
		return fmt.Errorf("RSA key of %d bits is too small (at least %d)", bits, MinRSABits)
	}
	return nil
}

// ParseCertificatesPEM reads every CERTIFICATE block, in order, and ignores others. It
// reads the certificate chain files of every backend's configuration (leaf first, then
// its issuers).
func ParseCertificatesPEM(data []byte) ([]*smx509.Certificate, error) {
	var out []*smx509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := smx509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return out, nil
}
