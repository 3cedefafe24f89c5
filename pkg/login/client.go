package login

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// The client half of a certificate login: what a user's side (the signsvr login
// command, a business system's front end) does with a challenge before it sends the
// Response.

// SignChallenge signs a login challenge as a raw signature Login accepts: RSA
// PKCS#1 v1.5 with SHA-256, ECDSA with SHA-256 / SHA-384 / SHA-512 by curve (P-256,
// P-384, P-521), SM2 with SM3 and the default user ID; ECDSA and SM2 signatures are
// DER. key may be any crypto.Signer, an HSM key included.
func SignChallenge(key crypto.Signer, challenge []byte) ([]byte, error) {
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		d := sha256.Sum256(challenge)
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	case *ecdsa.PublicKey:
		if sm2.IsSM2PublicKey(pub) {
			return key.Sign(rand.Reader, challenge, sm2.DefaultSM2SignerOpts)
		}
		switch pub.Curve {
		case elliptic.P256():
			d := sha256.Sum256(challenge)
			return key.Sign(rand.Reader, d[:], crypto.SHA256)
		case elliptic.P384():
			d := sha512.Sum384(challenge)
			return key.Sign(rand.Reader, d[:], crypto.SHA384)
		case elliptic.P521():
			d := sha512.Sum512(challenge)
			return key.Sign(rand.Reader, d[:], crypto.SHA512)
		}
	}
	return nil, errors.New("unsupported key for a login signature")
}

// ParseSignerPEM reads the first PEM block of b as a private key to answer
// challenges with: PKCS#8 ("PRIVATE KEY"; RSA, ECDSA or SM2), SEC 1 ("EC PRIVATE
// KEY"; ECDSA or SM2) or PKCS#1 ("RSA PRIVATE KEY"). Encrypted keys are not read.
func ParseSignerPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = smx509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = smx509.ParseTypedECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = smx509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (encrypted keys are not read here)", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return s, nil
}
