package devpki

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

var (
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamp = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

// IssueTSA makes a time-stamping authority key and certificate signed by ca: keyUsage
// digitalSignature and nonRepudiation, and the extendedKeyUsage id-kp-timeStamping
// alone, marked critical as RFC 3161 §2.3 requires (Go's certificate writer marks
// extendedKeyUsage non-critical, so it is written as an extra extension). opts.Now is
// required; opts.Key, NotBefore and NotAfter are used as in Issue.
func (ca *CA) IssueTSA(alg Algorithm, opts LeafOptions) (crypto.Signer, *smx509.Certificate, error) {
	key := opts.Key
	if key == nil {
		var err error
		if key, err = GenerateKey(alg); err != nil {
			return nil, nil, err
		}
	}
	if opts.Now.IsZero() {
		return nil, nil, errors.New("devpki: LeafOptions.Now is required")
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamp})
	if err != nil {
		return nil, nil, err
	}
	cn := opts.CommonName
	if cn == "" {
		cn = "signsvr development TSA"
	}
	tmpl := &smx509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"signsvr development"}},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(key.Public()),
		ExtraExtensions:       []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}},
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = opts.Now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = opts.Now.AddDate(2, 0, 0)
	}
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}
