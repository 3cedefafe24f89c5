// Package devpki makes certificate authorities and certificates for the development
// setup and for tests: RSA, ECDSA and SM2, with the key usages each operation needs.
//
// The embedded default (`signsvr serve` with no config) calls Lock, so that a second
// server on the same data directory fails at start instead of sharing its files,
// then Ensure, which creates a development PKI on first start and reloads it
// afterwards. Tests use NewCA and Issue
// to build chains in memory. Nothing here is meant for production keys: keys are
// generated in software and written unencrypted, and the server says so loudly.
package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509/pkix"
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signsvr.dev/signsvr/pkg/keystore"
)

// Algorithm names a key type.
type Algorithm string

const (
	RSA2048   Algorithm = "rsa-2048"
	RSA3072   Algorithm = "rsa-3072"
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	SM2       Algorithm = "sm2"
)

// GenerateKey makes a new private key of the given type: *rsa.PrivateKey,
// *ecdsa.PrivateKey or *sm2.PrivateKey.
func GenerateKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case SM2:
		return sm2.GenerateKey(rand.Reader)
	}
	return nil, fmt.Errorf("devpki: unknown algorithm %q", alg)
}

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert *smx509.Certificate
	Key  crypto.Signer
	// Chain is the CA's own chain up to the root, starting with Cert.
	Chain []*smx509.Certificate
}

// NewCA makes a self-signed root CA valid from an hour before now for ten years.
func NewCA(alg Algorithm, cn string, now time.Time) (*CA, error) {
	key, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	tmpl := caTemplate(cn, now, key.Public())
	cert, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Chain: []*smx509.Certificate{cert}}, nil
}

// NewIntermediate makes a CA certificate signed by ca.
func (ca *CA) NewIntermediate(alg Algorithm, cn string, now time.Time) (*CA, error) {
	key, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	tmpl := caTemplate(cn, now, key.Public())
	tmpl.MaxPathLen = 0
	tmpl.MaxPathLenZero = true
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Chain: append([]*smx509.Certificate{cert}, ca.Chain...)}, nil
}

func caTemplate(cn string, now time.Time, pub crypto.PublicKey) *smx509.Certificate {
	return &smx509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"signsvr development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(pub),
	}
}

// LeafOptions describe an end-entity certificate.
type LeafOptions struct {
	CommonName string
	// Usage picks the key usage bits: sign gives digitalSignature|nonRepudiation;
	// decrypt gives keyEncipherment (RSA, SM2; plus dataEncipherment for SM2) or
	// keyAgreement (EC). KeyUsage, when non-zero, overrides this.
	Usage    keystore.Usage
	KeyUsage smx509.KeyUsage
	// ExtKeyUsage is written when non-empty.
	ExtKeyUsage []smx509.ExtKeyUsage
	// NotBefore and NotAfter default to an hour before Now and two years after it.
	NotBefore, NotAfter time.Time
	Now                 time.Time
	DNSNames            []string
	IPAddresses         []net.IP
	// CRLDistributionPoints and OCSPServer are written when non-empty.
	CRLDistributionPoints []string
	OCSPServer            []string
	// NoSubjectKeyID leaves the SubjectKeyIdentifier extension out.
	NoSubjectKeyID bool
	// Key, when set, is certified instead of a new key of alg.
	Key crypto.Signer
}

// Issue makes a new key of alg (or uses opts.Key) and a certificate for it signed by ca.
func (ca *CA) Issue(alg Algorithm, opts LeafOptions) (crypto.Signer, *smx509.Certificate, error) {
	key := opts.Key
	if key == nil {
		var err error
		if key, err = GenerateKey(alg); err != nil {
			return nil, nil, err
		}
	}
	cert, err := ca.Certify(key.Public(), opts)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// Certify makes a certificate signed by ca for a public key whose private key is
// elsewhere (an HSM's, from a certificate request); opts.Key is not used.
func (ca *CA) Certify(pub crypto.PublicKey, opts LeafOptions) (*smx509.Certificate, error) {
	now := opts.Now
	if now.IsZero() {
		return nil, errors.New("devpki: LeafOptions.Now is required")
	}
	tmpl := &smx509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{"signsvr development"}},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              opts.KeyUsage,
		ExtKeyUsage:           opts.ExtKeyUsage,
		BasicConstraintsValid: true,
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPAddresses,
		CRLDistributionPoints: opts.CRLDistributionPoints,
		OCSPServer:            opts.OCSPServer,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.AddDate(2, 0, 0)
	}
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = keyUsageFor(pub, opts.Usage)
	}
	if !opts.NoSubjectKeyID {
		tmpl.SubjectKeyId = keyID(pub)
	}
	return create(tmpl, ca.Cert, pub, ca.Key)
}

// keyUsageFor gives the key usage bits a certificate for usage u needs.
func keyUsageFor(pub crypto.PublicKey, u keystore.Usage) smx509.KeyUsage {
	var ku smx509.KeyUsage
	if u.Has(keystore.UsageSign) {
		ku |= smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment
	}
	if u.Has(keystore.UsageDecrypt) {
		switch k := pub.(type) {
		case *rsa.PublicKey:
			ku |= smx509.KeyUsageKeyEncipherment
		case *ecdsa.PublicKey:
			if sm2.IsSM2PublicKey(k) {
				ku |= smx509.KeyUsageKeyEncipherment | smx509.KeyUsageDataEncipherment
			} else {
				ku |= smx509.KeyUsageKeyAgreement
			}
		}
	}
	if ku == 0 {
		ku = smx509.KeyUsageDigitalSignature
	}
	return ku
}

func create(tmpl, parent *smx509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*smx509.Certificate, error) {
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("devpki: create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return smx509.ParseCertificate(der)
}

func randomSerial() *big.Int {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		panic("devpki: crypto/rand failed: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}

// keyID is the RFC 5280 §4.2.1.2 method 1 key identifier: the SHA-1 of the
// subjectPublicKey BIT STRING's bits.
func keyID(pub crypto.PublicKey) []byte {
	spki, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	s := cryptobyte.String(spki)
	var seq cryptobyte.String
	var bits encasn1.BitString
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.SEQUENCE) || !seq.ReadASN1BitString(&bits) {
		return nil
	}
	sum := sha1.Sum(bits.Bytes)
	return sum[:]
}
