package sign

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

// mutate parses der, lets f change the structure, and marshals it again.
func mutate(t *testing.T, der []byte, f func(sd *cms.SignedData)) []byte {
	t.Helper()
	sd, err := cms.ParseSignedDataContentInfo(der)
	if err != nil {
		t.Fatal(err)
	}
	f(sd)
	out, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipIn flips one bit of the first occurrence of needle inside a fresh copy of the
// attribute bytes, returning the new raw attributes.
func flipIn(t *testing.T, raw, needle []byte) []byte {
	t.Helper()
	i := bytes.Index(raw, needle)
	if i < 0 {
		t.Fatal("needle not found")
	}
	out := bytes.Clone(raw)
	out[i+len(needle)/2] ^= 0x04
	return out
}

// resign replaces signer 0's signed attributes by attrs and signs them properly with
// key, so that only the attribute check can fail.
func resign(t *testing.T, sd *cms.SignedData, key crypto.Signer, attrs []cms.Attribute) {
	t.Helper()
	body, err := cms.MarshalAttributeSet(attrs)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte{0x31}, derLen(len(body))...)
	raw = append(raw, body...)
	p, err := makePlan(key.Public(), &Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signTBS(key, rand.Reader, &p, raw, nil, false, defaultSM2UID)
	if err != nil {
		t.Fatal(err)
	}
	sd.SignerInfos[0].SignedAttrs = attrs
	sd.SignerInfos[0].RawSignedAttrs = raw
	sd.SignerInfos[0].Signature = sig
}

func derLen(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	default:
		return []byte{0x82, byte(n >> 8), byte(n)}
	}
}

func attrsWithout(attrs []cms.Attribute, typ asn1.ObjectIdentifier) []cms.Attribute {
	var out []cms.Attribute
	for _, a := range attrs {
		if !a.Type.Equal(typ) {
			out = append(out, a)
		}
	}
	return out
}

// TestVerifyMustFail: each tampering gives its own reason, on every algorithm.
func TestVerifyMustFail(t *testing.T) {
	content := testContent(1024)
	for _, alg := range allAlgs {
		p := pkiFor(t, alg)
		good, err := Sign(content, p.key, p.chain, &Options{Now: fixedClock})
		if err != nil {
			t.Fatal(err)
		}
		detached, err := Sign(content, p.key, p.chain, &Options{Now: fixedClock, Detached: true})
		if err != nil {
			t.Fatal(err)
		}
		noattr, err := Sign(content, p.key, p.chain, &Options{Now: fixedClock, NoSignedAttributes: true})
		if err != nil {
			t.Fatal(err)
		}
		nocerts, err := Sign(content, p.key, p.chain, &Options{Now: fixedClock, Certs: IncludeNone})
		if err != nil {
			t.Fatal(err)
		}
		md := func() []byte {
			sd, _ := cms.ParseSignedDataContentInfo(good)
			a, _, _ := cms.FindAttribute(sd.SignerInfos[0].SignedAttrs, cms.OIDAttrMessageDigest)
			return a.Values[0][2:]
		}()
		otherContent := append(bytes.Clone(content[:100]), 'x')

		tests := []struct {
			name string
			der  []byte
			opts *VerifyOptions
			want string
		}{
			{"signature bit", mutate(t, good, func(sd *cms.SignedData) {
				s := bytes.Clone(sd.SignerInfos[0].Signature)
				s[len(s)/2] ^= 0x10
				sd.SignerInfos[0].Signature = s
			}), nil, ReasonSignatureInvalid},
			{"signature truncated", mutate(t, good, func(sd *cms.SignedData) {
				sd.SignerInfos[0].Signature = sd.SignerInfos[0].Signature[:20]
			}), nil, ReasonSignatureInvalid},
			{"content bit", mutate(t, good, func(sd *cms.SignedData) {
				c := bytes.Clone(sd.EContent)
				c[10] ^= 1
				sd.EContent = c
			}), nil, ReasonMessageDigestMismatch},
			{"content bit without attributes", mutate(t, noattr, func(sd *cms.SignedData) {
				c := bytes.Clone(sd.EContent)
				c[10] ^= 1
				sd.EContent = c
			}), nil, ReasonSignatureInvalid},
			{"messageDigest attribute bit", mutate(t, good, func(sd *cms.SignedData) {
				sd.SignerInfos[0].RawSignedAttrs = flipIn(t, sd.SignerInfos[0].RawSignedAttrs, md)
			}), nil, ReasonMessageDigestMismatch},
			{"signed attribute bit (signing time)", mutate(t, good, func(sd *cms.SignedData) {
				sd.SignerInfos[0].RawSignedAttrs = flipIn(t, sd.SignerInfos[0].RawSignedAttrs, []byte("100000Z"))
			}), nil, ReasonSignatureInvalid},
			{"eContentType differs from contentType attribute", mutate(t, good, func(sd *cms.SignedData) {
				sd.EContentType = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
			}), nil, ReasonContentTypeMismatch},
			{"contentType attribute differs (re-signed)", mutate(t, good, func(sd *cms.SignedData) {
				attrs := attrsWithout(sd.SignerInfos[0].SignedAttrs, cms.OIDAttrContentType)
				oid, _ := asn1.Marshal(cms.OIDTSTInfo)
				attrs = append(attrs, cms.Attribute{Type: cms.OIDAttrContentType, Values: [][]byte{oid}})
				resign(t, sd, p.key, attrs)
			}), nil, ReasonContentTypeMismatch},
			{"messageDigest missing (re-signed)", mutate(t, good, func(sd *cms.SignedData) {
				resign(t, sd, p.key, attrsWithout(sd.SignerInfos[0].SignedAttrs, cms.OIDAttrMessageDigest))
			}), nil, ReasonMissingAttribute},
			{"contentType missing (re-signed)", mutate(t, good, func(sd *cms.SignedData) {
				resign(t, sd, p.key, attrsWithout(sd.SignerInfos[0].SignedAttrs, cms.OIDAttrContentType))
			}), nil, ReasonMissingAttribute},
			{"messageDigest twice (re-signed)", mutate(t, good, func(sd *cms.SignedData) {
				attrs := sd.SignerInfos[0].SignedAttrs
				a, _, _ := cms.FindAttribute(attrs, cms.OIDAttrMessageDigest)
				resign(t, sd, p.key, append(attrs[:len(attrs):len(attrs)], cms.Attribute{Type: a.Type, Values: [][]byte{{0x04, 0x01, 0x00}}}))
			}), nil, ReasonMissingAttribute},
			{"messageDigest not an OCTET STRING (re-signed)", mutate(t, good, func(sd *cms.SignedData) {
				attrs := attrsWithout(sd.SignerInfos[0].SignedAttrs, cms.OIDAttrMessageDigest)
				attrs = append(attrs, cms.Attribute{Type: cms.OIDAttrMessageDigest, Values: [][]byte{{0x02, 0x01, 0x05}}})
				resign(t, sd, p.key, attrs)
			}), nil, ReasonMalformedAttribute},
			{"detached over other content", detached, &VerifyOptions{Content: otherContent}, ReasonMessageDigestMismatch},
			{"wrong certificate supplied", nocerts, &VerifyOptions{Certs: []*smx509.Certificate{p.otherLeaf}}, ReasonSignerCertNotFound},
			{"no certificate at all", nocerts, nil, ReasonSignerCertNotFound},
			{"certificate swapped in the message", mutate(t, good, func(sd *cms.SignedData) {
				sd.Certificates = [][]byte{p.otherLeaf.Raw}
				sd.SignerInfos[0].SID.IssuerAndSerial = cms.IssuerAndSerial{Issuer: p.otherLeaf.RawIssuer, Serial: p.otherLeaf.SerialNumber}
			}), nil, ReasonSignatureInvalid},
			{"unknown signature algorithm", mutate(t, good, func(sd *cms.SignedData) {
				sd.SignerInfos[0].SignatureAlgorithm = cms.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 3, 4}}
			}), nil, ReasonUnsupportedAlgorithm},
			{"unknown digest algorithm (MD5)", mutate(t, good, func(sd *cms.SignedData) {
				sd.SignerInfos[0].DigestAlgorithm = cms.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}}
			}), nil, ReasonUnsupportedAlgorithm},
			{"signature algorithm of another key type", mutate(t, good, func(sd *cms.SignedData) {
				if alg == devpki.RSA2048 {
					sd.SignerInfos[0].SignatureAlgorithm = cms.AlgorithmIdentifier{Algorithm: cms.OIDECDSAWithSHA256}
				} else {
					sd.SignerInfos[0].SignatureAlgorithm = cms.AlgorithmIdentifier{Algorithm: cms.OIDRSAEncryption, Parameters: cms.NullParameters}
				}
			}), nil, ReasonUnsupportedAlgorithm},
		}
		for _, tc := range tests {
			t.Run(string(alg)+"/"+tc.name, func(t *testing.T) {
				res, err := Verify(tc.der, tc.opts)
				if err != nil {
					t.Fatalf("Verify returned an error for a well-formed message: %v", err)
				}
				s := res.Signers[0]
				if s.Signature.Valid || s.Signature.Reason != tc.want {
					t.Fatalf("verdict %+v, want reason %s", s.Signature, tc.want)
				}
				if s.Signature.Err == nil {
					t.Fatalf("no internal cause for %s", tc.want)
				}
				if res.Verified() || s.Verified() {
					t.Fatal("reported verified")
				}
			})
		}
		t.Run(string(alg)+"/truncated", func(t *testing.T) {
			for n := 0; n < len(good); n++ {
				if n > 200 && n < len(good)-200 && n%17 != 0 {
					continue // every byte near the ends, a sample in the middle
				}
				_, err := Verify(good[:n], nil)
				if !errors.Is(err, cms.ErrMalformed) {
					t.Fatalf("truncated to %d: err = %v, want ErrMalformed", n, err)
				}
			}
		})
	}
}

func TestVerifyArgumentErrors(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	content := []byte("content")
	detached, _ := Sign(content, p.key, p.chain, &Options{Detached: true})
	attached, _ := Sign(content, p.key, p.chain, nil)
	if _, err := Verify(detached, nil); !errors.Is(err, ErrNoContent) {
		t.Errorf("detached without content: %v", err)
	}
	if _, err := Verify(attached, &VerifyOptions{Content: []byte("other")}); !errors.Is(err, ErrContentConflict) {
		t.Errorf("attached with other content: %v", err)
	}
	if res, err := Verify(attached, &VerifyOptions{Content: content}); err != nil || !res.Signers[0].Signature.Valid {
		t.Errorf("attached with the same content: %v", err)
	}
	data, _ := (&cms.ContentInfo{ContentType: cms.OIDData, Content: []byte{0x04, 0x01, 0x61}}).Marshal()
	for name, in := range map[string][]byte{
		"empty": nil, "garbage": []byte("hello world"), "data content": data,
		"two bytes": {0x30, 0x81}, "trailing": append(bytes.Clone(attached), 0),
	} {
		if _, err := Verify(in, nil); !errors.Is(err, cms.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestVerifySeveralSigners: RSA, ECDSA and SM2 signers over the same content in one
// message; each gets its own result, and breaking one leaves the others valid.
func TestVerifySeveralSigners(t *testing.T) {
	content := testContent(700)
	var merged *cms.SignedData
	var pkis []*testPKI
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.SM2} {
		p := pkiFor(t, alg)
		pkis = append(pkis, p)
		der, err := Sign(content, p.key, p.chain, &Options{Now: fixedClock, Dialect: DialectPKCS7})
		if err != nil {
			t.Fatal(err)
		}
		sd, err := cms.ParseSignedDataContentInfo(der)
		if err != nil {
			t.Fatal(err)
		}
		if merged == nil {
			merged = sd
			continue
		}
		merged.DigestAlgorithms = append(merged.DigestAlgorithms, sd.DigestAlgorithms...)
		merged.Certificates = append(merged.Certificates, sd.Certificates...)
		merged.SignerInfos = append(merged.SignerInfos, sd.SignerInfos...)
	}
	der, err := merged.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(der, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signers) != 3 || len(res.Certificates) != 3 {
		t.Fatalf("%d signers, %d certificates", len(res.Signers), len(res.Certificates))
	}
	for i, s := range res.Signers {
		if !s.Signature.Valid || s.Index != i || !bytes.Equal(s.Certificate.Raw, pkis[i].leaf.Raw) {
			t.Fatalf("signer %d: %+v", i, s.Signature)
		}
	}
	broken := mutate(t, der, func(sd *cms.SignedData) {
		s := bytes.Clone(sd.SignerInfos[1].Signature)
		s[8] ^= 1
		sd.SignerInfos[1].Signature = s
	})
	res, err = Verify(broken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Signers[0].Signature.Valid || res.Signers[1].Signature.Valid || !res.Signers[2].Signature.Valid {
		t.Fatalf("only signer 1 should fail: %v %v %v", res.Signers[0].Signature, res.Signers[1].Signature, res.Signers[2].Signature)
	}
	if res.Signers[1].Signature.Reason != ReasonSignatureInvalid {
		t.Fatalf("reason %s", res.Signers[1].Signature.Reason)
	}
}

// TestVerifyCertificateSources: certificates come from the message or the caller, a
// caller's parsed certificate is reused for an identical embedded one, and a
// ParseCertificate hook (a server's cache) is used for the others.
func TestVerifyCertificateSources(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	der, _ := Sign([]byte("x"), p.key, p.chain, &Options{Certs: IncludeChain})
	res, err := Verify(der, &VerifyOptions{Certs: []*smx509.Certificate{p.leaf}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signers[0].Certificate != p.leaf {
		t.Error("the caller's parsed certificate was not reused")
	}
	calls := 0
	res, err = Verify(der, &VerifyOptions{ParseCertificate: func(b []byte) (*smx509.Certificate, error) {
		calls++
		return smx509.ParseCertificate(b)
	}})
	if err != nil || calls != 2 || !res.Signers[0].Signature.Valid || len(res.Certificates) != 2 {
		t.Fatalf("hook: err %v, %d calls", err, calls)
	}
	// SKI-named signer found among caller certificates.
	der, _ = Sign([]byte("x"), p.key, p.chain, &Options{Certs: IncludeNone, SignerID: SubjectKeyID})
	res, err = Verify(der, &VerifyOptions{Certs: []*smx509.Certificate{p.otherLeaf, p.leaf}})
	if err != nil || !res.Signers[0].Signature.Valid || res.Signers[0].Certificate != p.leaf {
		t.Fatalf("ski from caller certs: %v %+v", err, res.Signers[0].Signature)
	}
	// An embedded certificate that does not parse leaves the signer not found, with
	// the cause kept for the logs.
	bad := mutate(t, der, func(sd *cms.SignedData) { sd.Certificates = [][]byte{{0x30, 0x03, 0x02, 0x01, 0x01}} })
	res, err = Verify(bad, nil)
	if err != nil || res.Signers[0].Signature.Reason != ReasonSignerCertNotFound || res.Signers[0].Signature.Err == nil {
		t.Fatalf("unparseable certificate: %v %+v", err, res.Signers[0].Signature)
	}
}

// TestVerifySHA1 signs with SHA-1 (only possible here through the internals: Sign
// refuses it) and checks that it needs AllowSHA1.
func TestVerifySHA1(t *testing.T) {
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256} {
		p := pkiFor(t, alg)
		content := []byte("legacy")
		der := mutate(t, mustSign(t, content, p, &Options{NoSignedAttributes: true}), func(sd *cms.SignedData) {
			sum := sha1Sum(content)
			sig, err := p.key.Sign(rand.Reader, sum, crypto.SHA1)
			if err != nil {
				t.Fatal(err)
			}
			sd.DigestAlgorithms = []cms.AlgorithmIdentifier{{Algorithm: cms.OIDSHA1}}
			sd.SignerInfos[0].DigestAlgorithm = cms.AlgorithmIdentifier{Algorithm: cms.OIDSHA1, Parameters: cms.NullParameters}
			if alg == devpki.ECDSAP256 {
				sd.SignerInfos[0].SignatureAlgorithm = cms.AlgorithmIdentifier{Algorithm: cms.OIDECDSAWithSHA1}
			}
			sd.SignerInfos[0].Signature = sig
		})
		res, err := Verify(der, nil)
		if err != nil || res.Signers[0].Signature.Reason != ReasonWeakAlgorithm {
			t.Fatalf("%s: SHA-1 without AllowSHA1: %v %+v", alg, err, res.Signers[0].Signature)
		}
		res, err = Verify(der, &VerifyOptions{AllowSHA1: true})
		if err != nil || !res.Signers[0].Signature.Valid {
			t.Fatalf("%s: SHA-1 with AllowSHA1: %v %+v", alg, err, res.Signers[0].Signature)
		}
	}
}

func mustSign(t *testing.T, content []byte, p *testPKI, o *Options) []byte {
	t.Helper()
	der, err := Sign(content, p.key, p.chain, o)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func sha1Sum(b []byte) []byte {
	var buf [maxDigestSize]byte
	return bytes.Clone(digestSHA1.sum(&buf, b))
}

// TestVerifySM2WithoutZ: SignedData in the form GmSSL 3.x writes (cms.c
// cms_signed_data_sign_to_der: no signed attributes, SM2 over SM3 of the DER
// EncapsulatedContentInfo, no Z). Built here from that description, since GmSSL is
// not installed; it is refused by default and accepted, flagged, on request.
func TestVerifySM2WithoutZ(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	priv := p.key.(*sm2.PrivateKey)
	content := []byte("GmSSL style content")
	der := mutate(t, mustSign(t, content, p, &Options{NoSignedAttributes: true}), func(sd *cms.SignedData) {
		e := sm3.Sum(sd.RawEncapContentInfo)
		sig, err := priv.Sign(rand.Reader, e[:], nil) // nil opts: the digest is signed as is, no Z
		if err != nil {
			t.Fatal(err)
		}
		sd.SignerInfos[0].Signature = sig
	})
	res, err := Verify(der, nil)
	if err != nil || res.Signers[0].Signature.Reason != ReasonSignatureInvalid {
		t.Fatalf("without AllowSM2WithoutZ: %v %+v", err, res.Signers[0].Signature)
	}
	res, err = Verify(der, &VerifyOptions{AllowSM2WithoutZ: true})
	if err != nil || !res.Signers[0].Signature.Valid || !res.Signers[0].SM2WithoutZ {
		t.Fatalf("with AllowSM2WithoutZ: %v %+v flag=%v", err, res.Signers[0].Signature, res.Signers[0].SM2WithoutZ)
	}
	// The same with signed attributes signed without Z.
	der = mutate(t, mustSign(t, content, p, nil), func(sd *cms.SignedData) {
		tbs := signedAttrsSET(&sd.SignerInfos[0])
		e := sm3.Sum(tbs)
		sig, _ := priv.Sign(rand.Reader, e[:], nil)
		sd.SignerInfos[0].Signature = sig
	})
	if res, err := Verify(der, &VerifyOptions{AllowSM2WithoutZ: true}); err != nil || !res.Signers[0].SM2WithoutZ {
		t.Fatalf("attributes without Z: %v %+v", err, res.Signers[0].Signature)
	}
	// A standard signature never sets the flag, and a wrong one still fails.
	good := mustSign(t, content, p, nil)
	if res, _ := Verify(good, &VerifyOptions{AllowSM2WithoutZ: true}); !res.Signers[0].Signature.Valid || res.Signers[0].SM2WithoutZ {
		t.Fatal("standard SM2 signature flagged")
	}
	bad := mutate(t, good, func(sd *cms.SignedData) {
		s := bytes.Clone(sd.SignerInfos[0].Signature)
		s[10] ^= 1
		sd.SignerInfos[0].Signature = s
	})
	if res, _ := Verify(bad, &VerifyOptions{AllowSM2WithoutZ: true}); res.Signers[0].Signature.Valid {
		t.Fatal("bad signature accepted with AllowSM2WithoutZ")
	}
}

// TestVerifySM2UID: a signature made with a non-default user ID verifies only with it.
func TestVerifySM2UID(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	uid := []byte("alice@example.cn")
	der := mustSign(t, []byte("x"), p, &Options{SM2UID: uid})
	if res, _ := Verify(der, nil); res.Signers[0].Signature.Reason != ReasonSignatureInvalid {
		t.Fatal("verified with the default user ID")
	}
	if res, _ := Verify(der, &VerifyOptions{SM2UID: uid}); !res.Signers[0].Signature.Valid {
		t.Fatal("did not verify with its user ID")
	}
}

// TestAddUnsignedAttribute: the path that embeds a signature timestamp token.
func TestAddUnsignedAttribute(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	der := mustSign(t, []byte("x"), p, nil)
	token := []byte{0x30, 0x03, 0x02, 0x01, 0x07} // stands in for a TimeStampToken
	again := mutate(t, der, func(sd *cms.SignedData) {
		sd.SignerInfos[0].AddUnsignedAttribute(cms.Attribute{Type: cms.OIDAttrSignatureTimeStamp, Values: [][]byte{token}})
	})
	res, err := Verify(again, nil)
	if err != nil || !res.Signers[0].Signature.Valid {
		t.Fatalf("%v %+v", err, res.Signers[0].Signature)
	}
	a, found, single := cms.FindAttribute(res.Signers[0].Info.UnsignedAttrs, cms.OIDAttrSignatureTimeStamp)
	if !found || !single || !bytes.Equal(a.Values[0], token) {
		t.Fatal("unsigned attribute lost")
	}
}
