package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// Checkpoint signature algorithms, the "sig_alg" field. The algorithm follows from
// the audit key's type; the verifier derives it from the certificate and refuses a
// checkpoint that names another.
const (
	SigRSAPKCS1SHA256 = "rsa-pkcs1v15-sha256"
	SigECDSASHA256    = "ecdsa-sha256"
	SigECDSASHA384    = "ecdsa-sha384"
	SigSM2SM3         = "sm2-sm3"
)

// sigAlgFor picks the checkpoint signature algorithm for a public key.
func sigAlgFor(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return SigRSAPKCS1SHA256, nil
	case *ecdsa.PublicKey:
		switch {
		case sm2.IsSM2PublicKey(p):
			return SigSM2SM3, nil
		case p.Curve == elliptic.P256():
			return SigECDSASHA256, nil
		case p.Curve == elliptic.P384():
			return SigECDSASHA384, nil
		}
	}
	return "", fmt.Errorf("audit: unsupported audit key type %T", pub)
}

// checkpointMessage is the exact byte string a checkpoint signature covers: the
// replica, the number of the last record covered and that record's hash (the chain
// head). Because every record's hash covers its predecessor's, signing the head signs
// every record up to it.
func checkpointMessage(replica string, count uint64, head string) []byte {
	b := make([]byte, 0, 64+len(replica)+len(head))
	b = append(b, "signsvr-audit-checkpoint/1\nreplica="...)
	b = append(b, replica...)
	b = append(b, "\ncount="...)
	b = strconv.AppendUint(b, count, 10)
	b = append(b, "\nhead="...)
	b = append(b, head...)
	return append(b, '\n')
}

func signCheckpoint(signer crypto.Signer, alg string, msg []byte) ([]byte, error) {
	switch alg {
	case SigRSAPKCS1SHA256, SigECDSASHA256:
		d := sha256.Sum256(msg)
		return signer.Sign(rand.Reader, d[:], crypto.SHA256)
	case SigECDSASHA384:
		d := sha512.Sum384(msg)
		return signer.Sign(rand.Reader, d[:], crypto.SHA384)
	case SigSM2SM3:
		// gmsm convention: with forceGMSign the whole message goes in and the signer
		// computes Z (default user ID) and SM3 itself; HSM signers follow it too.
		return signer.Sign(rand.Reader, msg, sm2.NewSM2SignerOption(true, nil))
	}
	return nil, fmt.Errorf("audit: unknown checkpoint signature algorithm %q", alg)
}

var errBadSignature = errors.New("signature does not verify")

func verifyCheckpoint(pub crypto.PublicKey, alg string, msg, sig []byte) error {
	want, err := sigAlgFor(pub)
	if err != nil {
		return err
	}
	if alg != want {
		return fmt.Errorf("signature algorithm %q does not fit the audit key (%s)", alg, want)
	}
	ok := false
	switch alg {
	case SigRSAPKCS1SHA256:
		d := sha256.Sum256(msg)
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
	case SigECDSASHA256:
		d := sha256.Sum256(msg)
		ok = ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig)
	case SigECDSASHA384:
		d := sha512.Sum384(msg)
		ok = ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig)
	case SigSM2SM3:
		ok = sm2.VerifyASN1WithSM2(pub.(*ecdsa.PublicKey), nil, msg, sig)
	}
	if !ok {
		return errBadSignature
	}
	return nil
}

// CertFingerprint is the SHA-256 of the certificate DER in lower-case hex, as
// checkpoints name the audit certificate.
func CertFingerprint(c *smx509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}
