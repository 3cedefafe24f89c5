package keystore

import (
	"crypto"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// Algorithm names the family and size of a public key the way ListKeys shows it:
// "RSA-2048", "ECDSA-P256", "ECDSA-P384", "SM2", or "" for anything else. It looks at
// the public key only, so it works the same for every backend; the names come from
// the algorithm table (algorithm.KeyName).
func Algorithm(pub crypto.PublicKey) string { return algorithm.KeyName(pub) }
