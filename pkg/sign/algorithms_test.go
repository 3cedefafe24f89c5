package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"

	mozpkcs7 "go.mozilla.org/pkcs7"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
)

// TestPlanFollowsTable: Sign accepts exactly the scheme and digest combinations the
// algorithm table allows for SignCMS, defaults to the table's first, and writes the
// table's signatureAlgorithm OID.
func TestPlanFollowsTable(t *testing.T) {
	for _, alg := range allAlgs {
		pub := pkiFor(t, alg).key.Public()
		fam := algorithm.Of(pub)
		for _, h := range []crypto.Hash{0, crypto.SHA1, crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			for _, pss := range []bool{false, true} {
				p, err := makePlan(pub, &Options{Hash: h, PSS: pss, Dialect: DialectPKCS7})
				var want algorithm.Use
				switch {
				case fam == algorithm.SM2:
					want = algorithm.Use{Scheme: algorithm.SM2WithSM3, Digest: algorithm.SM3}
					if h != 0 {
						want = algorithm.Use{Scheme: algorithm.SM2WithSM3, Digest: algorithm.DigestOf(h)}
					}
				case fam == algorithm.RSA && pss:
					want = algorithm.Use{Scheme: algorithm.PSS, Digest: algorithm.DigestOf(h)}
				case fam == algorithm.RSA:
					want = algorithm.Use{Scheme: algorithm.PKCS1v15, Digest: algorithm.DigestOf(h)}
				default:
					want = algorithm.Use{Scheme: algorithm.ECDSA, Digest: algorithm.DigestOf(h)}
				}
				if h == 0 && fam != algorithm.SM2 {
					def, _ := algorithm.Default(fam, algorithm.SignCMS)
					want.Digest = def.Digest
				}
				allowed := algorithm.Allows(fam, algorithm.SignCMS, want) && (!pss || fam == algorithm.RSA)
				if (err == nil) != allowed {
					t.Errorf("%s hash %v pss %v: makePlan error %v, table allows %v", alg, h, pss, err, allowed)
					continue
				}
				if err != nil {
					if !errors.Is(err, ErrInvalidOptions) {
						t.Errorf("%s hash %v pss %v: %v, want ErrInvalidOptions", alg, h, pss, err)
					}
					continue
				}
				got := algorithm.Use{Scheme: p.scheme.algorithm(), Digest: p.digest.algorithm()}
				if got != want || !p.sigAlg.Algorithm.Equal(want.SignatureOID()) {
					t.Errorf("%s hash %v pss %v: plan %v %s, want %v %s", alg, h, pss, got, p.sigAlg.Algorithm, want, want.SignatureOID())
				}
			}
		}
	}
}

// TestVerifyReadsTableOIDs: every signatureAlgorithm the table names for VerifyCMS is
// read by Verify as the same scheme and digest.
func TestVerifyReadsTableOIDs(t *testing.T) {
	for _, f := range []algorithm.Family{algorithm.RSA, algorithm.ECDSAP256, algorithm.ECDSAP384, algorithm.SM2} {
		for _, u := range algorithm.Uses(f, algorithm.VerifyCMS) {
			a := newAlgorithmIdentifier(u)
			p, ok := parseSignatureAlgorithm(a)
			if !ok || p.scheme.algorithm() != u.Scheme {
				t.Errorf("%s %v: parsed as %+v, %v", f, u, p, ok)
				continue
			}
			if p.digest != digestUnknown && p.digest.algorithm() != u.Digest {
				t.Errorf("%s %v: parsed digest %v", f, u, p.digest)
			}
			if d := digestFromOID(u.Digest.OID()); d.algorithm() != u.Digest {
				t.Errorf("%s %v: digest OID read as %v", f, u, d)
			}
		}
	}
}

func newAlgorithmIdentifier(u algorithm.Use) (a cms.AlgorithmIdentifier) {
	a.Algorithm = u.SignatureOID()
	if u.Scheme == algorithm.PSS {
		a.Parameters = pssParamsFor(digestFromHash(u.Digest.Hash()))
	}
	return a
}

// ECDSA P-521 is outside the algorithm table: Sign refuses the key, and Verify reports
// a P-521 signer (here made by go.mozilla.org/pkcs7) as an unsupported algorithm.
func TestP521Refused(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := makePlan(key.Public(), &Options{}); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("makePlan with P-521: %v, want ErrUnsupportedKey", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(521), Subject: pkix.Name{CommonName: "p521"},
		NotBefore: testNow.AddDate(0, -1, 0), NotAfter: testNow.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := mozpkcs7.NewSignedData(testContent(64))
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(mozpkcs7.OIDDigestAlgorithmSHA512)
	if err := sd.AddSigner(cert, key, mozpkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	msg, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Signers[0].Signature; v.Valid || v.Reason != ReasonUnsupportedAlgorithm {
		t.Fatalf("P-521 signer: %+v, want %s", v, ReasonUnsupportedAlgorithm)
	}
}
