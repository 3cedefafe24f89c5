package sign

import (
	"context"
	"crypto"
	"errors"
	"testing"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

// multiSigner parses a message made by Sign and gives it n copies of its signer,
// each with the signer's certificate, so the work per signer can be counted.
func multiSigner(t *testing.T, der []byte, n int) *cms.SignedData {
	t.Helper()
	sd, err := cms.ParseSignedDataContentInfo(der)
	if err != nil {
		t.Fatal(err)
	}
	one := sd.SignerInfos[0]
	sd.SignerInfos = make([]cms.SignerInfo, n)
	for i := range sd.SignerInfos {
		sd.SignerInfos[i] = one
	}
	return sd
}

// remarshal writes sd out and reads it back, as a client's message would arrive.
func remarshal(t *testing.T, sd *cms.SignedData) *cms.SignedData {
	t.Helper()
	der, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cms.ParseSignedDataContentInfo(der)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Many SM2 signers without signed attributes over a large content: the content is
// hashed once (SM3 over Z and the content, one Z value), not once per signer.
func TestVerifyContentHashedOncePerZ(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	content := testContent(1 << 20)
	der, err := Sign(content, p.key, p.chain, &Options{NoSignedAttributes: true, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	for _, withoutZ := range []bool{false, true} {
		sd := remarshal(t, multiSigner(t, der, 40))
		var st verifyStats
		res, err := verifyParsed(sd, &VerifyOptions{AllowSM2WithoutZ: withoutZ}, &st)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Signers {
			if !r.Signature.Valid {
				t.Fatalf("signer %d: %+v", r.Index, r.Signature)
			}
		}
		if st.contentPasses != 1 || st.signatureChecks != 40 {
			t.Errorf("AllowSM2WithoutZ=%v: %d passes over the content, %d signature checks; want 1 and 40", withoutZ, st.contentPasses, st.signatureChecks)
		}
	}

	// Forged signers in the GmSSL form (AllowSM2WithoutZ): each needs the checks
	// without Z too, but the digests they need are still computed once each: SM3(Z||M),
	// SM3(M) and SM3 of the EncapsulatedContentInfo.
	sd := multiSigner(t, der, 40)
	bad := append([]byte(nil), sd.SignerInfos[0].Signature...)
	bad[len(bad)-3] ^= 1
	for i := range sd.SignerInfos {
		sd.SignerInfos[i].Signature = bad
	}
	sd = remarshal(t, sd)
	var st verifyStats
	res, err := verifyParsed(sd, &VerifyOptions{AllowSM2WithoutZ: true}, &st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Signers[39].Signature.Reason != ReasonSignatureInvalid {
		t.Fatalf("forged signer: %+v", res.Signers[39].Signature)
	}
	if st.contentPasses != 3 {
		t.Errorf("%d passes over the content for 40 forged SM2 signers, want 3", st.contentPasses)
	}
}

// ECDSA signers cycling through SHA-256, SHA-384 and SHA-512 hash the content once
// per algorithm.
func TestVerifyContentHashedOncePerDigest(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	content := testContent(1 << 20)
	var infos []cms.SignerInfo
	var first *cms.SignedData
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		der, err := Sign(content, p.key, p.chain, &Options{Hash: h, NoSignedAttributes: true, Now: fixedClock})
		if err != nil {
			t.Fatal(err)
		}
		sd, err := cms.ParseSignedDataContentInfo(der)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = sd
		}
		infos = append(infos, sd.SignerInfos[0])
	}
	sd := first
	sd.SignerInfos = nil
	for i := 0; i < 60; i++ {
		sd.SignerInfos = append(sd.SignerInfos, infos[i%3])
	}
	var st verifyStats
	res, err := verifyParsed(remarshal(t, sd), nil, &st)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Signers {
		if !r.Signature.Valid {
			t.Fatalf("signer %d: %+v", r.Index, r.Signature)
		}
	}
	if st.contentPasses != 3 || st.signatureChecks != 60 {
		t.Errorf("%d passes over the content, %d signature checks; want 3 and 60", st.contentPasses, st.signatureChecks)
	}
}

// More signers or certificates than the limits is ErrLimit, before any work.
func TestVerifyLimits(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	der, err := Sign(testContent(100), p.key, p.chain, &Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, sd *cms.SignedData, o *VerifyOptions, wantLimit bool) {
		t.Helper()
		var st verifyStats
		_, err := verifyParsed(sd, o, &st)
		if wantLimit {
			if !errors.Is(err, ErrLimit) || st.signatureChecks != 0 || st.contentPasses != 0 {
				t.Errorf("%s: err %v after %d signature checks, want ErrLimit before any", name, err, st.signatureChecks)
			}
		} else if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	check("default signers", multiSigner(t, der, DefaultMaxSigners), nil, false)
	check("default signers + 1", multiSigner(t, der, DefaultMaxSigners+1), nil, true)
	check("MaxSigners 2", multiSigner(t, der, 3), &VerifyOptions{MaxSigners: 2}, true)
	check("no signer limit", multiSigner(t, der, DefaultMaxSigners+1), &VerifyOptions{MaxSigners: -1}, false)

	sd := multiSigner(t, der, 1)
	cert := sd.Certificates[0]
	sd.Certificates = make([][]byte, DefaultMaxCertificates+1)
	for i := range sd.Certificates {
		sd.Certificates[i] = cert
	}
	check("default certificates + 1", sd, nil, true)
	check("MaxCertificates 300", sd, &VerifyOptions{MaxCertificates: 300}, false)
	sd.Certificates = sd.Certificates[:DefaultMaxCertificates]
	res, err := verifyParsed(sd, nil, nil)
	if err != nil || !res.Signers[0].Signature.Valid {
		t.Fatalf("256 copies of the certificate: %v", err)
	}
	if len(res.Certificates) != 1 {
		t.Errorf("%d certificates in the result for copies of one, want 1", len(res.Certificates))
	}
}

// cancelAfter is a context that reports Canceled once cond is true: the test ends
// the request at a chosen point of the verification, without timing.
type cancelAfter struct {
	context.Context
	cond func() bool
}

func (c cancelAfter) Err() error {
	if c.cond() {
		return context.Canceled
	}
	return nil
}

// A request that ends stops the verification: between signers, and inside the
// hashing of a large content.
func TestVerifyStopsWhenContextEnds(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	content := testContent(8 << 20)
	der, err := Sign(content, p.key, p.chain, &Options{NoSignedAttributes: true, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	sd := multiSigner(t, der, 50)

	var st verifyStats
	ctx := cancelAfter{context.Background(), func() bool { return st.signatureChecks >= 3 }}
	if _, err := verifyParsed(sd, &VerifyOptions{Context: ctx}, &st); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if st.signatureChecks != 3 {
		t.Errorf("%d signature checks, want 3: the verification goes on after the request ended", st.signatureChecks)
	}

	// Ended during the first pass over the content: no signature is checked, and
	// the hashing stops after a few chunks.
	st = verifyStats{}
	calls := 0
	ctx = cancelAfter{context.Background(), func() bool { calls++; return calls > 6 }}
	if _, err := verifyParsed(sd, &VerifyOptions{Context: ctx}, &st); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if st.signatureChecks != 0 || st.contentPasses != 1 {
		t.Errorf("%d signature checks, %d content passes; want 0 and 1", st.signatureChecks, st.contentPasses)
	}

	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(der, &VerifyOptions{Context: cctx}); !errors.Is(err, context.Canceled) {
		t.Errorf("already cancelled: err %v", err)
	}
}

// RFC 5652 §5.3: a signer without signed attributes is valid only over id-data; the
// same signature relabelled as another content type (a timestamp token) is refused.
func TestVerifyNoSignedAttrsNeedsData(t *testing.T) {
	for _, alg := range []devpki.Algorithm{devpki.ECDSAP256, devpki.SM2} {
		p := pkiFor(t, alg)
		der, err := Sign(testContent(100), p.key, p.chain, &Options{NoSignedAttributes: true, Now: fixedClock})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Verify(der, nil)
		if err != nil || !res.Signers[0].Signature.Valid {
			t.Fatalf("%s: id-data without signed attributes: %v %+v", alg, err, res)
		}
		sd, err := cms.ParseSignedDataContentInfo(der)
		if err != nil {
			t.Fatal(err)
		}
		sd.EContentType = cms.OIDTSTInfo
		res, err = VerifyParsed(remarshal(t, sd), nil)
		if err != nil {
			t.Fatal(err)
		}
		if v := res.Signers[0].Signature; v.Valid || v.Reason != ReasonMissingAttribute {
			t.Errorf("%s: relabelled as TSTInfo: %+v, want %s", alg, v, ReasonMissingAttribute)
		}
	}
}
