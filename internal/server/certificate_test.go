package server_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/testca"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
)

func validatorOption(v server.CertValidator) serverOption {
	return func(o *server.Options) { o.Validator = v }
}

// TestValidateCertificateVerdicts checks every verdict of ValidateCertificate against
// openssl-made PKIs for the three key families, revocation from a loopback CRL
// server (RSA, SM2) or a real `openssl ocsp` responder (ECDSA).
func TestValidateCertificateVerdicts(t *testing.T) {
	for _, algo := range testca.Algos {
		t.Run(string(algo), func(t *testing.T) {
			t.Parallel()
			mode, method := ocspNone, "crl"
			if algo == testca.ECDSA {
				mode, method = ocspReal, "ocsp"
			}
			env := newRevEnv(t, algo, "V"+string(algo), "/inter.crl", mode)
			other := testca.New(t, testca.Options{Algo: algo, Name: "Other" + string(algo)})
			v := newValidator(t, env.p.Anchors(), trust.RevocationConfig{HardFail: true, FetchTimeout: 5 * time.Second})
			ts := startServer(t, validatorOption(v))
			cs := signsvrv1.NewCertificateServiceClient(ts.conn)
			inter := [][]byte{env.p.Intermediate.Cert.Raw}
			for _, tc := range []struct {
				name    string
				cert    *testca.Cert
				inters  [][]byte
				purpose signsvrv1.CertificatePurpose
				status  signsvrv1.CertificateStatus
				reason  string
			}{
				{"good", env.p.Good, inter, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD, trust.ReasonOK},
				{"revoked", env.p.Revoked, inter, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED, trust.ReasonRevoked},
				{"expired", env.p.Expired, inter, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED, trust.ReasonExpired},
				{"untrusted", other.Good, [][]byte{other.Intermediate.Cert.Raw}, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNTRUSTED, trust.ReasonUnknownAuthority},
				{"no intermediate", env.p.Good, nil, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNTRUSTED, trust.ReasonUnknownAuthority},
				{"wrong usage", env.p.WrongUsage, inter, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_WRONG_USAGE, trust.ReasonKeyUsage},
				{"encrypt cert to sign", env.p.Encrypt, inter, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_WRONG_USAGE, trust.ReasonKeyUsage},
				{"encrypt cert to encrypt", env.p.Encrypt, inter, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_ENCRYPT, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD, trust.ReasonOK},
				{"wrong usage, any purpose", env.p.WrongUsage, inter, signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_UNSPECIFIED, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD, trust.ReasonOK},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp, err := cs.ValidateCertificate(ctxT(t), &signsvrv1.ValidateCertificateRequest{
						Certificate: tc.cert.Cert.Raw, Intermediates: tc.inters, Purpose: tc.purpose})
					if err != nil {
						t.Fatal(err)
					}
					vd := resp.GetVerdict()
					if vd.GetStatus() != tc.status || vd.GetReason() != tc.reason {
						t.Fatalf("verdict %v / %s (%s), want %v / %s", vd.GetStatus(), vd.GetReason(), vd.GetDetail(), tc.status, tc.reason)
					}
					switch tc.status {
					case signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD:
						if len(vd.GetChain()) != 3 || string(vd.GetChain()[2]) != string(env.p.Root.Cert.Raw) {
							t.Errorf("chain has %d certificates, want leaf, intermediate, root", len(vd.GetChain()))
						}
						if vd.GetRevocation() != method || len(resp.GetRevocationChecks()) != 2 ||
							resp.GetRevocationChecks()[0].GetMethod() != method || resp.GetRevocationChecks()[0].GetThisUpdate() == nil {
							t.Errorf("revocation %q, checks %v; want %s for the leaf", vd.GetRevocation(), resp.GetRevocationChecks(), method)
						}
					case signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED:
						if vd.GetRevocationReason() != "keyCompromise" || vd.GetRevokedAt() == nil {
							t.Errorf("revoked without reason or time: %v", vd)
						}
					}
				})
			}
			// A time in the past: the expired certificate was good then (its CAs
			// were not: they are a week old), a key compromise counts at any time.
			resp, err := cs.ValidateCertificate(ctxT(t), &signsvrv1.ValidateCertificateRequest{
				Certificate: env.p.Revoked.Cert.Raw, Intermediates: inter,
				Time: timestamppb.New(time.Now().Add(-30 * time.Minute))})
			if err != nil || resp.GetVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED {
				t.Errorf("key-compromised certificate half an hour ago: %v %v", resp.GetVerdict(), err)
			}
			resp, err = cs.ValidateCertificate(ctxT(t), &signsvrv1.ValidateCertificateRequest{
				Certificate: env.p.Good.Cert.Raw, Intermediates: inter, Time: timestamppb.New(time.Now().Add(-30 * 24 * time.Hour))})
			if err != nil || resp.GetVerdict().GetReason() != trust.ReasonNotYetValid {
				t.Errorf("a month ago: %v %v", resp.GetVerdict(), err)
			}
		})
	}
}

func TestCertificateServiceMalformedInput(t *testing.T) {
	ts := startServer(t)
	cs := signsvrv1.NewCertificateServiceClient(ts.conn)
	good := pki.Roots[0].Raw
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"validate garbage", func() error {
			_, err := cs.ValidateCertificate(ctxT(t), &signsvrv1.ValidateCertificateRequest{Certificate: []byte{0x30, 0x82, 0x01}})
			return err
		}},
		{"validate bad intermediate", func() error {
			_, err := cs.ValidateCertificate(ctxT(t), &signsvrv1.ValidateCertificateRequest{Certificate: good, Intermediates: [][]byte{[]byte("x")}})
			return err
		}},
		{"parse truncated", func() error {
			_, err := cs.ParseCertificate(ctxT(t), &signsvrv1.ParseCertificateRequest{Certificate: good[:len(good)-1]})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, tc.call(), codes.InvalidArgument, "MALFORMED_INPUT") })
	}
	_, err := cs.ValidateCertificate(ctxT(t), &signsvrv1.ValidateCertificateRequest{})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	_, err = cs.ValidateCertificate(ctxT(t), &signsvrv1.ValidateCertificateRequest{Certificate: good, Purpose: 99})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	ts.assertServing(t)
}

// TestParseCertificate compares what ParseCertificate says with what openssl says
// about the same certificates.
func TestParseCertificate(t *testing.T) {
	ts := startServer(t)
	cs := signsvrv1.NewCertificateServiceClient(ts.conn)
	for _, algo := range testca.Algos {
		t.Run(string(algo), func(t *testing.T) {
			p := testca.New(t, testca.Options{Algo: algo, Name: "P", CRLURL: "http://127.0.0.1:1/p.crl", OCSPURL: "http://127.0.0.1:1/ocsp"})
			resp, err := cs.ParseCertificate(ctxT(t), &signsvrv1.ParseCertificateRequest{Certificate: p.Good.Cert.Raw})
			if err != nil {
				t.Fatal(err)
			}
			info := resp.GetInfo()
			serial := strings.TrimSpace(strings.TrimPrefix(string(openssl(t, nil, "x509", "-in", p.Good.CertFile, "-noout", "-serial")), "serial="))
			fp := string(openssl(t, nil, "x509", "-in", p.Good.CertFile, "-noout", "-fingerprint", "-sha256"))
			fp = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fp[strings.Index(fp, "=")+1:]), ":", ""))
			if !strings.EqualFold(strings.TrimLeft(serial, "0"), info.GetSerialHex()) || info.GetFingerprintSha256() != fp {
				t.Errorf("serial %s / fingerprint %s, openssl says %s / %s", info.GetSerialHex(), info.GetFingerprintSha256(), serial, fp)
			}
			want := map[testca.Algo]struct {
				alg   signsvrv1.KeyAlgorithm
				bits  uint32
				curve string
				sig   string
			}{
				testca.RSA:   {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_RSA, 2048, "", "SHA256-RSA"},
				testca.ECDSA: {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_EC, 256, "P-256", "ECDSA-SHA256"},
				testca.SM2:   {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2, 256, "SM2", "SM2-SM3"},
			}[algo]
			if info.GetKeyAlgorithm() != want.alg || info.GetKeyBits() != want.bits || info.GetCurve() != want.curve || info.GetSignatureAlgorithm() != want.sig {
				t.Errorf("key %v %d %q sig %q, want %+v", info.GetKeyAlgorithm(), info.GetKeyBits(), info.GetCurve(), info.GetSignatureAlgorithm(), want)
			}
			if info.GetSubject() != "CN=P good,O=P Org" || info.GetIssuer() != "CN=P Intermediate CA,O=P Org" || info.GetVersion() != 3 {
				t.Errorf("names %q / %q v%d", info.GetSubject(), info.GetIssuer(), info.GetVersion())
			}
			if strings.Join(info.GetKeyUsages(), ",") != "digitalSignature,nonRepudiation" ||
				strings.Join(info.GetExtKeyUsages(), ",") != "clientAuth,emailProtection" {
				t.Errorf("usages %v / %v", info.GetKeyUsages(), info.GetExtKeyUsages())
			}
			if len(info.GetSubjectKeyId()) == 0 || string(info.GetAuthorityKeyId()) != string(p.Intermediate.Cert.SubjectKeyId) {
				t.Errorf("SKI %x AKI %x (issuer SKI %x)", info.GetSubjectKeyId(), info.GetAuthorityKeyId(), p.Intermediate.Cert.SubjectKeyId)
			}
			if strings.Join(info.GetCrlDistributionPoints(), ",") != "http://127.0.0.1:1/p.crl" || strings.Join(info.GetOcspServers(), ",") != "http://127.0.0.1:1/ocsp" {
				t.Errorf("CRL DP %v, OCSP %v", info.GetCrlDistributionPoints(), info.GetOcspServers())
			}
			if info.GetIsCa() || info.GetMaxPathLen() != -1 || info.GetNotAfter().AsTime().Unix() != p.Good.Cert.NotAfter.Unix() {
				t.Errorf("CA %v pathlen %d notAfter %v", info.GetIsCa(), info.GetMaxPathLen(), info.GetNotAfter().AsTime())
			}
			ca, err := cs.ParseCertificate(ctxT(t), &signsvrv1.ParseCertificateRequest{Certificate: p.Intermediate.Cert.Raw})
			if err != nil || !ca.GetInfo().GetIsCa() || ca.GetInfo().GetMaxPathLen() != 0 ||
				strings.Join(ca.GetInfo().GetKeyUsages(), ",") != "keyCertSign,cRLSign" {
				t.Errorf("intermediate: %v %v", ca.GetInfo(), err)
			}
		})
	}
}

// TestVerifyReportsRevokedSigner: a signature that is mathematically right, made with
// a certificate its CA revoked (keyCompromise) and published in a CRL, is reported by
// Verify as revoked, and the message as not verified.
func TestVerifyReportsRevokedSigner(t *testing.T) {
	for _, algo := range testca.Algos {
		t.Run(string(algo), func(t *testing.T) {
			t.Parallel()
			env := newRevEnv(t, algo, "S"+string(algo), "/inter.crl", ocspNone)
			v := newValidator(t, env.p.Anchors(), trust.RevocationConfig{})
			ts := startServer(t, validatorOption(v))
			for _, tc := range []struct {
				signer *testca.Cert
				status signsvrv1.CertificateStatus
			}{
				{env.p.Good, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD},
				{env.p.Revoked, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED},
			} {
				der, err := sign.Sign([]byte("declaration"), tc.signer.Key, env.p.Chain(tc.signer), &sign.Options{Certs: sign.IncludeChain})
				if err != nil {
					t.Fatal(err)
				}
				resp, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: der})
				if err != nil {
					t.Fatal(err)
				}
				sr := resp.GetSigners()[0]
				if !sr.GetSignature().GetValid() || sr.GetCertificateVerdict().GetStatus() != tc.status {
					t.Fatalf("%s: signature %v, certificate %v", tc.signer.Cert.Subject, sr.GetSignature(), sr.GetCertificateVerdict())
				}
				if resp.GetVerified() != (tc.status == signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD) {
					t.Errorf("%s: verified = %v", tc.signer.Cert.Subject, resp.GetVerified())
				}
				if tc.status == signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED &&
					(sr.GetCertificateVerdict().GetRevocationReason() != "keyCompromise" || sr.GetCertificateVerdict().GetRevocation() != "crl") {
					t.Errorf("revoked signer: %v", sr.GetCertificateVerdict())
				}
			}
		})
	}
}

// TestValidationWithResponderDown: the OCSP responder never answers and the CRL
// server fails. Soft-fail answers good and says so, hard-fail answers unknown, and a
// request's deadline ends the wait for a responder configured with a long timeout.
func TestValidationWithResponderDown(t *testing.T) {
	env := newRevEnv(t, testca.RSA, "Down", "/down", ocspHang)
	req := &signsvrv1.ValidateCertificateRequest{Certificate: env.p.Good.Cert.Raw,
		Intermediates: [][]byte{env.p.Intermediate.Cert.Raw}, Purpose: signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN}
	for _, tc := range []struct {
		name   string
		hard   bool
		status signsvrv1.CertificateStatus
		reason string
	}{
		{"soft-fail", false, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD, trust.ReasonRevocationSoftFailed},
		{"hard-fail", true, signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNKNOWN, trust.ReasonRevocationUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newValidator(t, env.p.Anchors(), trust.RevocationConfig{HardFail: tc.hard, FetchTimeout: 300 * time.Millisecond})
			ts := startServer(t, validatorOption(v))
			resp, err := signsvrv1.NewCertificateServiceClient(ts.conn).ValidateCertificate(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			if vd := resp.GetVerdict(); vd.GetStatus() != tc.status || vd.GetReason() != tc.reason {
				t.Fatalf("verdict %v / %s (%s), want %v / %s", vd.GetStatus(), vd.GetReason(), vd.GetDetail(), tc.status, tc.reason)
			}
			wantMethod := "soft_failed"
			if tc.hard {
				wantMethod = "failed"
			}
			if c := resp.GetRevocationChecks(); len(c) == 0 || c[0].GetMethod() != wantMethod || c[0].GetError() == "" {
				t.Errorf("checks %v, want %s with an error", c, wantMethod)
			}
			// The signer of a message is judged the same way by Verify.
			der, err := sign.Sign([]byte("x"), env.p.Good.Key, env.p.Chain(env.p.Good), &sign.Options{Certs: sign.IncludeChain})
			if err != nil {
				t.Fatal(err)
			}
			vr, err := ts.sign.Verify(ctxT(t), &signsvrv1.VerifyRequest{Cms: der})
			if err != nil || vr.GetSigners()[0].GetCertificateVerdict().GetStatus() != tc.status || vr.GetVerified() == tc.hard {
				t.Errorf("Verify: %v %v", vr, err)
			}
		})
	}
	t.Run("deadline", func(t *testing.T) {
		v := newValidator(t, env.p.Anchors(), trust.RevocationConfig{HardFail: true, FetchTimeout: time.Minute})
		ts := startServer(t, validatorOption(v))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := signsvrv1.NewCertificateServiceClient(ts.conn).ValidateCertificate(ctx, req)
		// The revocation fetch would wait a minute: returning well before that means
		// the request's deadline ended it, however slow the machine.
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("the call took %v past its 500ms deadline", took)
		}
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("err = %v, want DeadlineExceeded", err)
		}
		ts.assertServing(t)
	})
}

// FuzzParseCertificate: whatever bytes come in, parsing and describing never panics.
func FuzzParseCertificate(f *testing.F) {
	for _, c := range pki.Roots {
		f.Add(c.Raw)
	}
	for _, k := range pki.Keys {
		if b, err := os.ReadFile(k.CertPath); err == nil {
			if certs, err := trust.ParseCertificates(b); err == nil {
				f.Add(certs[0].Raw)
			}
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := smx509.ParseCertificate(der)
		if err != nil {
			return
		}
		info := server.DescribeCertificate(c)
		if info.GetFingerprintSha256() == "" {
			t.Fatal("no fingerprint")
		}
	})
}

// offValidator is certificate validation switched off: every certificate is good,
// at no cost. Only the benchmark uses it, as the baseline.
type offValidator struct{ vd *trust.Verdict }

func (o offValidator) Validate(context.Context, *smx509.Certificate, []*smx509.Certificate, time.Time, trust.Purpose) *trust.Verdict {
	return o.vd
}

// BenchmarkVerifyCertValidation: a repeated Verify of the same signer through the real
// server on loopback, with the certificate validated (chain, usage and CRL
// revocation, answered from the verdict cache after the first call) and with
// validation switched off, in the same run. The target: cached is at most 10%
// slower.
func BenchmarkVerifyCertValidation(b *testing.B) {
	for _, algo := range []testca.Algo{testca.ECDSA, testca.RSA} {
		env := newRevEnv(b, algo, "B"+string(algo), "/inter.crl", ocspNone)
		der, err := sign.Sign(make([]byte, 1024), env.p.Good.Key, env.p.Chain(env.p.Good), &sign.Options{Certs: sign.IncludeChain})
		if err != nil {
			b.Fatal(err)
		}
		cached := newValidator(b, env.p.Anchors(), trust.RevocationConfig{HardFail: true})
		off := offValidator{vd: &trust.Verdict{Status: trust.StatusGood, Reason: trust.ReasonOK}}
		for _, bc := range []struct {
			name string
			v    server.CertValidator
		}{{"off", off}, {"cached", cached}} {
			ts := startServer(b, validatorOption(bc.v))
			req := &signsvrv1.VerifyRequest{Cms: der, Options: &signsvrv1.VerifyOptions{OmitContent: true}}
			check := func() {
				v, err := ts.sign.Verify(b.Context(), req)
				if err != nil || !v.GetVerified() {
					b.Fatal(err, v)
				}
			}
			check() // warms the verdict cache (and fetches the CRL once)
			b.Run(string(algo)+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					check()
				}
			})
		}
	}
}
