package tsa

import (
	"bytes"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/keystore"
)

func sha256Imprint(data []byte) MessageImprint {
	s := sha256.Sum256(data)
	return MessageImprint{HashAlgorithm: oidSHA256, HashedMessage: s[:]}
}

func TestRequestRoundTrip(t *testing.T) {
	cases := []Request{
		{MessageImprint: sha256Imprint([]byte("a"))},
		{MessageImprint: sha256Imprint([]byte("b")), Policy: asn1.ObjectIdentifier{1, 2, 3}, Nonce: big.NewInt(0x1234567890), CertReq: true},
		{MessageImprint: sha256Imprint([]byte("c")), Nonce: new(big.Int).Lsh(big.NewInt(1), 159)},
	}
	for i, r := range cases {
		der, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(der)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		again, _ := got.Marshal()
		if !bytes.Equal(der, again) {
			t.Fatalf("case %d: re-marshal differs", i)
		}
		if got.CertReq != r.CertReq || !got.Policy.Equal(r.Policy) || (r.Nonce != nil && got.Nonce.Cmp(r.Nonce) != 0) {
			t.Fatalf("case %d: got %+v", i, got)
		}
	}
}

func TestTSTInfoRoundTrip(t *testing.T) {
	for _, gt := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC),
		time.Date(2049, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		info := &TSTInfo{
			Policy: DefaultPolicy, MessageImprint: sha256Imprint([]byte("x")), SerialNumber: big.NewInt(42),
			GenTime: gt, Accuracy: Accuracy{Seconds: 1, Millis: 500, Micros: 7}, Ordering: true, Nonce: big.NewInt(-5),
		}
		der, err := info.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTSTInfo(der)
		if err != nil {
			t.Fatal(err)
		}
		if !got.GenTime.Equal(gt) || got.Accuracy != info.Accuracy || !got.Ordering || got.Nonce.Int64() != -5 || got.SerialNumber.Int64() != 42 {
			t.Fatalf("got %+v", got)
		}
		if strings.Contains(string(der), "0Z") && gt.Nanosecond() != 0 {
			t.Fatalf("fraction with trailing zero in %q", der)
		}
	}
}

func TestGeneralizedTimeRejects(t *testing.T) {
	for _, s := range []string{"20260102030405", "20261302030405Z", "2026010203040Z", "20260102030405.Z", "20260102030405,5Z", "20260230030405Z", "2026010203040a Z"} {
		if _, err := parseGeneralizedTime([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	r := &Response{Status: StatusRejection, StatusStrings: []string{"no"}, FailInfo: FailBadAlg | FailUnacceptedPolicy | FailSystemFailure}
	der, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseResponse(der)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != r.Status || got.FailInfo != r.FailInfo || got.StatusStrings[0] != "no" || got.Token != nil {
		t.Fatalf("got %+v", got)
	}
	// badAlg alone: one byte, 7 unused bits (DER named bit string).
	if b := failInfoBits(FailBadAlg); !bytes.Equal(b, []byte{7, 0x80}) {
		t.Fatalf("badAlg bits %x", b)
	}
	if _, err := ParseResponse([]byte{0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00}); err == nil {
		t.Fatal("granted without a token accepted")
	}
}

func TestIssueAndVerify(t *testing.T) {
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.SM2} {
		t.Run(string(alg), func(t *testing.T) {
			p := pkiFor(t, alg)
			a := newAuthority(t, p)
			data := []byte("the signature value")
			req := &Request{MessageImprint: sha256Imprint(data), Nonce: big.NewInt(77), CertReq: true}
			if alg == devpki.SM2 {
				s := sm3.Sum(data)
				req.MessageImprint = MessageImprint{HashAlgorithm: oidSM3, HashedMessage: s[:]}
			}
			is, err := a.Issue(req, p.key)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := VerifyToken(is.Token, &VerifyOptions{Data: data, Nonce: big.NewInt(77)})
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Info.GenTime.Equal(testNow.Truncate(time.Millisecond)) || !tok.Certificate.Equal(p.cert) {
				t.Fatalf("genTime %v, cert %s", tok.Info.GenTime, tok.Certificate.Subject)
			}
			sd, _ := cms.ParseSignedDataContentInfo(is.Token)
			if !sd.ContentType.Equal(cms.OIDSignedData) || len(sd.Certificates) != 1 {
				t.Fatalf("content type %s, %d certificates", sd.ContentType, len(sd.Certificates))
			}
			if _, found, _ := cms.FindAttribute(sd.SignerInfos[0].SignedAttrs, cms.OIDAttrSigningCertificateV2); !found {
				t.Fatal("no signingCertificateV2 attribute")
			}

			// Failures, each with its reason.
			check := func(name string, der []byte, o *VerifyOptions, reason string) {
				t.Helper()
				_, err := VerifyToken(der, o)
				var ve *VerifyError
				if !errors.As(err, &ve) || ve.Reason != reason {
					t.Errorf("%s: err = %v, want reason %s", name, err, reason)
				}
			}
			check("other data", is.Token, &VerifyOptions{Data: []byte("other")}, ReasonImprintMismatch)
			check("other nonce", is.Token, &VerifyOptions{Data: data, Nonce: big.NewInt(78)}, ReasonNonceMismatch)
			check("garbage", []byte{0x30, 0x03, 1, 2, 3}, &VerifyOptions{Data: data}, ReasonMalformed)
			tampered := bytes.Clone(is.Token)
			i := bytes.Index(tampered, sd.EContent)
			tampered[i+len(sd.EContent)-1] ^= 1 // the nonce value, the last byte of the TSTInfo
			check("tampered TSTInfo", tampered, &VerifyOptions{Data: data}, ReasonSignatureInvalid)

			// Without certReq the certificate is left out and must be supplied.
			req.CertReq = false
			is2, err := a.Issue(req, p.key)
			if err != nil {
				t.Fatal(err)
			}
			check("no certificate", is2.Token, &VerifyOptions{Data: data}, ReasonTSACertNotFound)
			if _, err := VerifyToken(is2.Token, &VerifyOptions{Data: data, Certs: p.chain}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIssueRejects(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	a := newAuthority(t, p)
	good := sha256Imprint([]byte("x"))
	cases := []struct {
		name string
		req  Request
		fail FailureInfo
	}{
		{"sha1", Request{MessageImprint: MessageImprint{HashAlgorithm: oidSHA1, HashedMessage: make([]byte, 20)}}, FailBadAlg},
		{"unknown hash", Request{MessageImprint: MessageImprint{HashAlgorithm: asn1.ObjectIdentifier{1, 2, 3}, HashedMessage: make([]byte, 32)}}, FailBadAlg},
		{"short digest", Request{MessageImprint: MessageImprint{HashAlgorithm: oidSHA256, HashedMessage: make([]byte, 31)}}, FailBadDataFormat},
		{"other policy", Request{MessageImprint: good, Policy: asn1.ObjectIdentifier{1, 2, 3}}, FailUnacceptedPolicy},
		{"extension", Request{MessageImprint: good, Extensions: []byte{0xa0, 0x00}}, FailUnacceptedExtension},
	}
	for _, c := range cases {
		_, err := a.Issue(&c.req, p.key)
		var rej *RejectError
		if !errors.As(err, &rej) || rej.FailInfo != c.fail {
			t.Errorf("%s: err = %v, want failInfo %b", c.name, err, c.fail)
		}
		der, _ := c.req.Marshal()
		respDER, _, err := a.Respond(der, p.key)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ParseResponse(respDER)
		if err != nil || resp.Status != StatusRejection || resp.FailInfo != c.fail {
			t.Errorf("%s: response %+v, %v", c.name, resp, err)
		}
	}
	resp, _, _ := a.Respond([]byte{1, 2, 3}, p.key)
	if r, err := ParseResponse(resp); err != nil || r.FailInfo != FailBadDataFormat {
		t.Fatalf("malformed request: %+v %v", r, err)
	}
}

func TestNewAuthorityChecksCertificate(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	// A signing certificate with a non-critical timeStamping EKU, and one without.
	_, nonCrit, err := p.root.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: "x", Usage: keystore.UsageSign, Now: testNow,
		ExtKeyUsage: []smx509.ExtKeyUsage{smx509.ExtKeyUsageTimeStamping}})
	if err != nil {
		t.Fatal(err)
	}
	_, plain, err := p.root.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: "y", Usage: keystore.UsageSign, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]*smx509.Certificate{{nonCrit}, {plain}} {
		if _, err := NewAuthority(AuthorityConfig{Chain: c, Now: fixedClock}); err == nil {
			t.Errorf("%s accepted as a TSA certificate", c[0].Subject)
		}
	}
}

// TestOpenSSLVerifiesOurTokens: `openssl ts -verify` accepts our RSA and ECDSA
// tokens, against the data and against the query (which checks the nonce too).
func TestOpenSSLVerifiesOurTokens(t *testing.T) {
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			p := pkiFor(t, alg)
			a := newAuthority(t, p)
			dir := t.TempDir()
			writeOpenSSLTSA(t, dir, p, "sha256")
			writeFile(t, filepath.Join(dir, "file"), []byte("document to stamp\n"))
			runOpenSSL(t, dir, "ts", "-query", "-data", "file", "-sha256", "-cert", "-out", "req.tsq")
			resp, is, err := a.Respond(readFile(t, filepath.Join(dir, "req.tsq")), p.key)
			if err != nil || is == nil {
				t.Fatalf("respond: %v", err)
			}
			writeFile(t, filepath.Join(dir, "resp.tsr"), resp)
			out := runOpenSSL(t, dir, "ts", "-verify", "-in", "resp.tsr", "-data", "file", "-CAfile", "root.pem", "-untrusted", "tsa.pem")
			if !strings.Contains(string(out), "OK") {
				t.Fatalf("openssl ts -verify: %s", out)
			}
			runOpenSSL(t, dir, "ts", "-verify", "-in", "resp.tsr", "-queryfile", "req.tsq", "-CAfile", "root.pem", "-untrusted", "tsa.pem")
			text := runOpenSSL(t, dir, "ts", "-reply", "-in", "resp.tsr", "-text")
			if !strings.Contains(string(text), "Status: Granted") || !strings.Contains(string(text), "Accuracy: 0x01 seconds") {
				t.Fatalf("openssl ts -reply -text:\n%s", text)
			}
			// The token alone, too (-token_in).
			tok := &Response{}
			tok, _ = ParseResponse(resp)
			writeFile(t, filepath.Join(dir, "token.der"), tok.Token)
			runOpenSSL(t, dir, "ts", "-verify", "-in", "token.der", "-token_in", "-data", "file", "-CAfile", "root.pem", "-untrusted", "tsa.pem")
		})
	}
}

// TestOpenSSLTokensVerifyHere: tokens made by `openssl ts -reply` (v1 and v2 ESS
// certificate identifiers, accuracy, fractional genTime, TSA name) verify here.
func TestOpenSSLTokensVerifyHere(t *testing.T) {
	for _, c := range []struct {
		alg devpki.Algorithm
		ess string
	}{{devpki.RSA2048, "sha1"}, {devpki.ECDSAP256, "sha256"}} {
		t.Run(string(c.alg)+"-"+c.ess, func(t *testing.T) {
			p := pkiFor(t, c.alg)
			dir := t.TempDir()
			writeOpenSSLTSA(t, dir, p, c.ess)
			data := []byte("stamped by openssl")
			req := &Request{MessageImprint: sha256Imprint(data), Nonce: big.NewInt(99), CertReq: true}
			der, _ := req.Marshal()
			writeFile(t, filepath.Join(dir, "req.tsq"), der)
			runOpenSSL(t, dir, "ts", "-reply", "-config", "tsa.cnf", "-queryfile", "req.tsq", "-out", "resp.tsr")
			resp, err := ParseResponse(readFile(t, filepath.Join(dir, "resp.tsr")))
			if err != nil || !resp.Granted() {
				t.Fatalf("response %+v, %v", resp, err)
			}
			tok, err := VerifyToken(resp.Token, &VerifyOptions{Data: data, Nonce: big.NewInt(99)})
			if err != nil {
				t.Fatal(err)
			}
			info := tok.Info
			if info.Accuracy != (Accuracy{1, 500, 100}) || !info.Ordering || info.TSAName == nil || !info.Policy.Equal(asn1.ObjectIdentifier{1, 2, 3, 4, 1}) {
				t.Fatalf("TSTInfo %+v", info)
			}
			if d := time.Since(info.GenTime); d < -time.Minute || d > time.Minute {
				t.Fatalf("genTime %v is not now", info.GenTime)
			}
			if _, err := VerifyToken(resp.Token, &VerifyOptions{Data: []byte("other")}); err == nil {
				t.Fatal("openssl token verified against other data")
			}
		})
	}
}
