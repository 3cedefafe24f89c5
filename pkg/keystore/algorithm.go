package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"strconv"

	"github.com/emmansun/gmsm/sm2"
)

// Algorithm names the family and size of a public key the way ListKeys shows it:
// "RSA-2048", "ECDSA-P256", "ECDSA-P384", "SM2", or "" for anything else. It looks at
// the public key only, so it works the same for every backend.
func Algorithm(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return "RSA-" + strconv.Itoa(p.N.BitLen())
	case *ecdsa.PublicKey:
		switch {
		case sm2.IsSM2PublicKey(p):
			return "SM2"
		case p.Curve == elliptic.P256():
			return "ECDSA-P256"
		case p.Curve == elliptic.P384():
			return "ECDSA-P384"
		}
	}
	return ""
}
