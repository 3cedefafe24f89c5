package login

import (
	"crypto"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// The client half of a certificate login: what a user's side (the signsvr login
// command, a business system's front end) does with a challenge before it sends the
// Response.

// SignChallenge signs a login challenge as a raw signature Login accepts, with the
// algorithm table's default for a login answer of the key's family: RSA PKCS#1 v1.5
// with SHA-256, ECDSA with SHA-256 (P-256) or SHA-384 (P-384), SM2 with SM3 and the
// default user ID; ECDSA and SM2 signatures are DER. key may be any crypto.Signer, an
// HSM key included.
func SignChallenge(key crypto.Signer, challenge []byte) ([]byte, error) {
	f, err := algorithm.Check(key.Public(), algorithm.LoginAnswer)
	if err != nil {
		return nil, fmt.Errorf("login signature: %w", err)
	}
	u, _ := algorithm.Default(f, algorithm.LoginAnswer)
	if u.Scheme == algorithm.SM2WithSM3 {
		return key.Sign(rand.Reader, challenge, sm2.DefaultSM2SignerOpts)
	}
	h := u.Digest.Hash()
	d := h.New()
	d.Write(challenge)
	return key.Sign(rand.Reader, d.Sum(nil), h)
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
