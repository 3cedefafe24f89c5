package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// Checkpoint signature algorithms, the "sig_alg" field. The algorithm follows from
// the audit key's family (the algorithm table's AuditCheckpoint use); the verifier
// derives it from the certificate and refuses a checkpoint that names another.
const (
	SigRSAPKCS1SHA256 = "rsa-pkcs1v15-sha256"
	SigECDSASHA256    = "ecdsa-sha256"
	SigECDSASHA384    = "ecdsa-sha384"
	SigSM2SM3         = "sm2-sm3"
)

// sigAlgs names the table's checkpoint uses as the log records them.
var sigAlgs = []struct {
	name string
	use  algorithm.Use
}{
	{SigRSAPKCS1SHA256, algorithm.Use{Scheme: algorithm.PKCS1v15, Digest: algorithm.SHA256}},
	{SigECDSASHA256, algorithm.Use{Scheme: algorithm.ECDSA, Digest: algorithm.SHA256}},
	{SigECDSASHA384, algorithm.Use{Scheme: algorithm.ECDSA, Digest: algorithm.SHA384}},
	{SigSM2SM3, algorithm.Use{Scheme: algorithm.SM2WithSM3, Digest: algorithm.SM3}},
}

func useOf(alg string) (algorithm.Use, bool) {
	for _, a := range sigAlgs {
		if a.name == alg {
			return a.use, true
		}
	}
	return algorithm.Use{}, false
}

// sigAlgFor picks the checkpoint signature algorithm for a public key.
func sigAlgFor(pub crypto.PublicKey) (string, error) {
	f, err := algorithm.Check(pub, algorithm.AuditCheckpoint)
	if err != nil {
		return "", fmt.Errorf("audit: unsupported audit key: %w", err)
	}
	u, _ := algorithm.Default(f, algorithm.AuditCheckpoint)
	for _, a := range sigAlgs {
		if a.use == u {
			return a.name, nil
		}
	}
	return "", fmt.Errorf("audit: no checkpoint algorithm name for %v", u)
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
	u, ok := useOf(alg)
	if !ok {
		return nil, fmt.Errorf("audit: unknown checkpoint signature algorithm %q", alg)
	}
	if u.Scheme == algorithm.SM2WithSM3 {
		// gmsm convention: with forceGMSign the whole message goes in and the signer
		// computes Z (default user ID) and SM3 itself; HSM signers follow it too.
		return signer.Sign(rand.Reader, msg, sm2.NewSM2SignerOption(true, nil))
	}
	h := u.Digest.Hash()
	return signer.Sign(rand.Reader, digest(h, msg), h)
}

func digest(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
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
	u, _ := useOf(alg)
	ok := false
	switch u.Scheme {
	case algorithm.PKCS1v15:
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), u.Digest.Hash(), digest(u.Digest.Hash(), msg), sig) == nil
	case algorithm.ECDSA:
		ok = ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest(u.Digest.Hash(), msg), sig)
	case algorithm.SM2WithSM3:
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
