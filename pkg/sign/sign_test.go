package sign

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

type signCase struct {
	name string
	alg  devpki.Algorithm
	opts Options
	// want* describe the written message.
	wantDigest  string
	wantSigAlg  string
	wantOuter   string
	wantEType   string
	wantVersion int
}

func signCases() []signCase {
	var cases []signCase
	type variant struct {
		name string
		mod  func(*Options)
	}
	variants := []variant{
		{"attached", func(*Options) {}},
		{"detached", func(o *Options) { o.Detached = true }},
		{"noattr", func(o *Options) { o.NoSignedAttributes = true }},
		{"detached-noattr", func(o *Options) { o.Detached = true; o.NoSignedAttributes = true }},
		{"ski", func(o *Options) { o.SignerID = SubjectKeyID }},
		{"chain", func(o *Options) { o.Certs = IncludeChain }},
		{"nocerts", func(o *Options) { o.Certs = IncludeNone }},
		{"skip-selfcheck", func(o *Options) { o.SkipSelfCheck = true }},
	}
	for _, alg := range allAlgs {
		hashes := []crypto.Hash{0, crypto.SHA384, crypto.SHA512}
		if alg == devpki.SM2 {
			hashes = []crypto.Hash{0}
		}
		for _, h := range hashes {
			pssChoices := []bool{false}
			if alg == devpki.RSA2048 {
				pssChoices = []bool{false, true}
			}
			for _, pss := range pssChoices {
				dialects := []Dialect{DialectAuto}
				if alg == devpki.SM2 {
					dialects = []Dialect{DialectAuto, DialectPKCS7, DialectGMT0010}
				}
				for _, d := range dialects {
					for _, v := range variants {
						o := Options{Hash: h, PSS: pss, Dialect: d, Now: fixedClock}
						v.mod(&o)
						c := signCase{alg: alg, opts: o}
						c.name = fmt.Sprintf("%s/%v/pss=%v/dialect=%d/%s", alg, h, pss, d, v.name)
						c.wantDigest, c.wantSigAlg = expectedAlgs(alg, h, pss)
						c.wantOuter, c.wantEType = "1.2.840.113549.1.7.2", "1.2.840.113549.1.7.1"
						if alg == devpki.SM2 && d != DialectPKCS7 {
							c.wantOuter, c.wantEType = "1.2.156.10197.6.1.4.2.2", "1.2.156.10197.6.1.4.2.1"
							c.wantSigAlg = "1.2.156.10197.1.301.1" // GM/T 0010's sm2-1
						}
						c.wantVersion = 1
						if o.SignerID == SubjectKeyID {
							c.wantVersion = 3
						}
						cases = append(cases, c)
					}
				}
			}
		}
	}
	// SM2 with the signature OID chosen against the dialect's default.
	cases = append(cases, signCase{
		name: "sm2/sm2-1-oid-pkcs7", alg: devpki.SM2,
		opts:       Options{Now: fixedClock, Dialect: DialectPKCS7, SM2SignatureOID: cms.OIDSM2Sign},
		wantDigest: "1.2.156.10197.1.401", wantSigAlg: "1.2.156.10197.1.301.1",
		wantOuter: "1.2.840.113549.1.7.2", wantEType: "1.2.840.113549.1.7.1", wantVersion: 1,
	}, signCase{
		name: "sm2/sm2-with-sm3-oid-gmt", alg: devpki.SM2,
		opts:       Options{Now: fixedClock, SM2SignatureOID: cms.OIDSM2WithSM3},
		wantDigest: "1.2.156.10197.1.401", wantSigAlg: "1.2.156.10197.1.501",
		wantOuter: "1.2.156.10197.6.1.4.2.2", wantEType: "1.2.156.10197.6.1.4.2.1", wantVersion: 1,
	})
	return cases
}

func expectedAlgs(alg devpki.Algorithm, h crypto.Hash, pss bool) (digest, sigAlg string) {
	if alg == devpki.SM2 {
		return "1.2.156.10197.1.401", "1.2.156.10197.1.501"
	}
	d := map[crypto.Hash]string{0: "2.16.840.1.101.3.4.2.1", crypto.SHA384: "2.16.840.1.101.3.4.2.2", crypto.SHA512: "2.16.840.1.101.3.4.2.3"}[h]
	switch {
	case alg == devpki.RSA2048 && pss:
		return d, "1.2.840.113549.1.1.10"
	case alg == devpki.RSA2048:
		return d, "1.2.840.113549.1.1.1"
	}
	return d, map[crypto.Hash]string{0: "1.2.840.10045.4.3.2", crypto.SHA384: "1.2.840.10045.4.3.3", crypto.SHA512: "1.2.840.10045.4.3.4"}[h]
}

// TestSignVerifyRoundTrip signs with every algorithm × option combination and checks
// what Verify reports, field by field.
func TestSignVerifyRoundTrip(t *testing.T) {
	content := testContent(1500)
	for _, c := range signCases() {
		t.Run(c.name, func(t *testing.T) {
			p := pkiFor(t, c.alg)
			opts := c.opts
			der, err := Sign(content, p.key, p.chain, &opts)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			sd, err := cms.ParseSignedDataContentInfo(der)
			if err != nil {
				t.Fatalf("parse own output: %v", err)
			}
			if sd.ContentType.String() != c.wantOuter || sd.EContentType.String() != c.wantEType {
				t.Errorf("content types %s / %s, want %s / %s", sd.ContentType, sd.EContentType, c.wantOuter, c.wantEType)
			}
			if sd.Version != c.wantVersion || sd.SignerInfos[0].Version != c.wantVersion {
				t.Errorf("versions %d/%d, want %d", sd.Version, sd.SignerInfos[0].Version, c.wantVersion)
			}
			wantCerts := map[CertInclusion]int{IncludeLeaf: 1, IncludeChain: 2, IncludeNone: 0}[opts.Certs]
			if len(sd.Certificates) != wantCerts {
				t.Errorf("%d certificates, want %d", len(sd.Certificates), wantCerts)
			}
			if (sd.EContent == nil) != opts.Detached {
				t.Errorf("eContent present = %v with Detached = %v", sd.EContent != nil, opts.Detached)
			}

			vo := &VerifyOptions{}
			if opts.Detached {
				vo.Content = content
			}
			if opts.Certs == IncludeNone {
				vo.Certs = []*smx509.Certificate{p.otherLeaf, p.leaf}
			}
			res, err := Verify(der, vo)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if len(res.Signers) != 1 {
				t.Fatalf("%d signers", len(res.Signers))
			}
			s := res.Signers[0]
			if !s.Signature.Valid {
				t.Fatalf("signature not valid: %s: %v", s.Signature.Reason, s.Signature.Err)
			}
			if s.Certificate == nil || !bytes.Equal(s.Certificate.Raw, p.leaf.Raw) {
				t.Errorf("signer certificate not the leaf")
			}
			if s.DigestAlgorithm != c.wantDigest || s.SignatureAlgorithm != c.wantSigAlg {
				t.Errorf("algorithms %s / %s, want %s / %s", s.DigestAlgorithm, s.SignatureAlgorithm, c.wantDigest, c.wantSigAlg)
			}
			if opts.NoSignedAttributes {
				if !s.SigningTime.IsZero() {
					t.Errorf("signing time %v without signed attributes", s.SigningTime)
				}
			} else if !s.SigningTime.Equal(testNow) {
				t.Errorf("signing time %v, want %v", s.SigningTime, testNow)
			}
			if opts.SignerID == SubjectKeyID {
				if !bytes.Equal(s.SubjectKeyID, p.leaf.SubjectKeyId) || s.Issuer != nil {
					t.Errorf("signer id: ski %x issuer %x", s.SubjectKeyID, s.Issuer)
				}
			} else if !bytes.Equal(s.Issuer, p.leaf.RawIssuer) || s.Serial != p.leaf.SerialNumber.String() {
				t.Errorf("signer id: issuer/serial %x %s", s.Issuer, s.Serial)
			}
			if s.CertVerdict.Status != CertNotChecked || s.Verified() || res.Verified() {
				t.Errorf("Verify must leave the certificate unchecked and the result unverified")
			}
			if !bytes.Equal(res.Content, content) || res.Detached != opts.Detached || res.ContentType != c.wantEType {
				t.Errorf("result content/detached/type wrong: %v %s", res.Detached, res.ContentType)
			}
			if s.SM2WithoutZ {
				t.Errorf("SM2WithoutZ set for our own signature")
			}
		})
	}
}

func TestSignedAttributesSortedAndDER(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	for _, when := range []time.Time{
		time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
	} {
		der, err := Sign([]byte("x"), p.key, p.chain, &Options{Now: func() time.Time { return when }})
		if err != nil {
			t.Fatal(err)
		}
		sd, err := cms.ParseSignedDataContentInfo(der)
		if err != nil {
			t.Fatal(err)
		}
		si := sd.SignerInfos[0]
		// Re-encoding the parsed attributes with the generic sorted encoder must give
		// exactly the bytes that were signed.
		body, err := cms.MarshalAttributeSet(si.SignedAttrs)
		if err != nil {
			t.Fatal(err)
		}
		signed := signedAttrsSET(&si)
		if !bytes.Equal(signed[len(signed)-len(body):], body) {
			t.Fatalf("signed attributes are not in DER order")
		}
		st, _, _ := cms.FindAttribute(si.SignedAttrs, cms.OIDAttrSigningTime)
		wantTag := byte(0x17)
		if when.UTC().Year() >= 2050 {
			wantTag = 0x18
		}
		if st.Values[0][0] != wantTag {
			t.Errorf("%v: time tag %#x, want %#x", when, st.Values[0][0], wantTag)
		}
		res, err := Verify(der, nil)
		if err != nil || !res.Signers[0].Signature.Valid || !res.Signers[0].SigningTime.Equal(when.Truncate(time.Second)) {
			t.Fatalf("%v: verify %v %+v", when, err, res.Signers[0].Signature)
		}
	}
}

func TestSignRejects(t *testing.T) {
	rsaPKI := pkiFor(t, devpki.RSA2048)
	ecPKI := pkiFor(t, devpki.ECDSAP256)
	smPKI := pkiFor(t, devpki.SM2)
	noSKIKey, noSKI, err := ecPKI.ca.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: "no ski", Now: testNow, NoSubjectKeyID: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		signer crypto.Signer
		chain  []*smx509.Certificate
		opts   Options
		want   error
	}{
		{"no chain", ecPKI.key, nil, Options{}, ErrCertificate},
		{"wrong certificate", ecPKI.key, []*smx509.Certificate{ecPKI.otherLeaf}, Options{}, ErrCertificate},
		{"ski missing", noSKIKey, []*smx509.Certificate{noSKI}, Options{SignerID: SubjectKeyID}, ErrCertificate},
		{"sm2 with sha256", smPKI.key, smPKI.chain, Options{Hash: crypto.SHA256}, ErrInvalidOptions},
		{"ecdsa pss", ecPKI.key, ecPKI.chain, Options{PSS: true}, ErrInvalidOptions},
		{"rsa gmt dialect", rsaPKI.key, rsaPKI.chain, Options{Dialect: DialectGMT0010}, ErrInvalidOptions},
		{"sha1", rsaPKI.key, rsaPKI.chain, Options{Hash: crypto.SHA1}, ErrInvalidOptions},
		{"md5", ecPKI.key, ecPKI.chain, Options{Hash: crypto.MD5}, ErrInvalidOptions},
		{"sm2 oid on ecdsa", ecPKI.key, ecPKI.chain, Options{SM2SignatureOID: cms.OIDSM2Sign}, ErrInvalidOptions},
		{"bad sm2 oid", smPKI.key, smPKI.chain, Options{SM2SignatureOID: cms.OIDSHA256}, ErrInvalidOptions},
		{"bad cert option", ecPKI.key, ecPKI.chain, Options{Certs: 9}, ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sign([]byte("x"), tc.signer, tc.chain, &tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// badSigner returns a signature from another key: the self-check must catch it.
type badSigner struct {
	crypto.Signer
	wrong crypto.Signer
}

func (b badSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return b.wrong.Sign(r, d, o)
}

// failingSigner fails like an HSM that is down.
type failingSigner struct{ crypto.Signer }

var errHSMDown = errors.New("hsm down")

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errHSMDown
}

func TestSignSelfCheck(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(string(alg), func(t *testing.T) {
			p := pkiFor(t, alg)
			bad := badSigner{Signer: p.key, wrong: p.otherKey}
			if _, err := Sign([]byte("x"), bad, p.chain, nil); !errors.Is(err, ErrSelfCheck) {
				t.Fatalf("misbehaving signer: err = %v, want ErrSelfCheck", err)
			}
			// With the check skipped the bad signature goes out, and Verify catches it.
			der, err := Sign([]byte("x"), bad, p.chain, &Options{SkipSelfCheck: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Verify(der, nil)
			if err != nil || res.Signers[0].Signature.Reason != ReasonSignatureInvalid {
				t.Fatalf("verify of a bad signature: %v %+v", err, res.Signers[0].Signature)
			}
			if _, err := Sign([]byte("x"), failingSigner{p.key}, p.chain, nil); !errors.Is(err, errHSMDown) {
				t.Fatalf("signer error not wrapped: %v", err)
			}
		})
	}
}

func TestSignEmptyContent(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	for _, content := range [][]byte{nil, {}} {
		der, err := Sign(content, p.key, p.chain, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Verify(der, nil)
		if err != nil || !res.Signers[0].Signature.Valid || len(res.Content) != 0 || res.Detached {
			t.Fatalf("empty content: %v %+v detached=%v", err, res.Signers[0].Signature, res.Detached)
		}
	}
}
