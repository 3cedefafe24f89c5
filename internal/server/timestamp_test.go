package server_test

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
	"signsvr.dev/signsvr/pkg/tsa"
)

var tsaAccuracy = tsa.Accuracy{Seconds: 1}

// TestTimestampServiceOpenSSLVerifies: our tokens pass `openssl ts -verify`, for a
// data request and for a TimeStampReq made by `openssl ts -query` (nonce checked).
func TestTimestampServiceOpenSSLVerifies(t *testing.T) {
	as := startAuditedServer(t, nil)
	ctx := ctxT(t)
	dir := t.TempDir()
	data := []byte("bill of lading 7\n")
	file := filepath.Join(dir, "file")
	os.WriteFile(file, data, 0o600)
	tsaChain, err := devpki.ReadCertsPEM(pki.TSA.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	devpki.WriteCertsPEM(filepath.Join(dir, "tsa.pem"), tsaChain[0])
	devpki.WriteCertsPEM(filepath.Join(dir, "root.pem"), tsaChain[1])

	r, err := as.ts.Timestamp(ctx, &signsvrv1.TimestampRequest{Data: data, Nonce: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(r.GetTime().AsTime()); d < 0 || d > time.Minute || r.GetPolicy() != tsa.DefaultPolicy.String() {
		t.Fatalf("time %v policy %s", r.GetTime().AsTime(), r.GetPolicy())
	}
	os.WriteFile(filepath.Join(dir, "resp.tsr"), r.GetResponse(), 0o600)
	out := openssl(t, nil, "ts", "-verify", "-in", filepath.Join(dir, "resp.tsr"), "-data", file,
		"-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", filepath.Join(dir, "tsa.pem"))
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("openssl ts -verify: %s", out)
	}

	openssl(t, nil, "ts", "-query", "-data", file, "-sha384", "-cert", "-out", filepath.Join(dir, "req.tsq"))
	q, _ := os.ReadFile(filepath.Join(dir, "req.tsq"))
	r2, err := as.ts.Timestamp(ctx, &signsvrv1.TimestampRequest{Request: q})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "resp2.tsr"), r2.GetResponse(), 0o600)
	openssl(t, nil, "ts", "-verify", "-in", filepath.Join(dir, "resp2.tsr"), "-queryfile", filepath.Join(dir, "req.tsq"),
		"-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", filepath.Join(dir, "tsa.pem"))
}

// TestSignEmbedsServerTimestamp: Sign embeds our token (every key family); Verify
// reports it and validates the certificate at its time.
func TestSignEmbedsServerTimestamp(t *testing.T) {
	as := startAuditedServer(t, nil)
	ctx := ctxT(t)
	for _, fam := range families {
		s, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: fam + "-sign", Data: []byte("doc"),
			Timestamp: signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_SERVER})
		if err != nil {
			t.Fatal(err)
		}
		sd, err := cms.ParseSignedDataContentInfo(s.GetCms())
		if err != nil {
			t.Fatal(err)
		}
		if _, found, single := cms.FindAttribute(sd.SignerInfos[0].UnsignedAttrs, cms.OIDAttrSignatureTimeStamp); !found || !single {
			t.Fatalf("%s: no signature timestamp attribute", fam)
		}
		v, err := as.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms()})
		if err != nil {
			t.Fatal(err)
		}
		if !v.GetVerified() || len(v.GetTimestamps()) != 1 {
			t.Fatalf("%s: verified %v, timestamps %v", fam, v.GetVerified(), v.GetTimestamps())
		}
		st := v.GetTimestamps()[0]
		if !st.GetValid() || !st.GetUsedForValidation() || !strings.Contains(st.GetTsa(), "development tsa") {
			t.Fatalf("%s: timestamp %v", fam, st)
		}
		if got := v.GetSigners()[0].GetCertificateVerdict().GetValidatedAt().AsTime(); !got.Equal(st.GetTime().AsTime()) {
			t.Fatalf("%s: certificate validated at %v, want the timestamp time %v", fam, got, st.GetTime().AsTime())
		}
	}
	_, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-sign", Data: []byte("doc"),
		Timestamp: signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_EXTERNAL})
	wantStatus(t, err, 9 /* FailedPrecondition */, "UNSUPPORTED")
}

// openSSLTSA serves RFC 3161 on loopback with `openssl ts -reply`: OpenSSL as a real
// external TSA, with a root of its own.
func openSSLTSA(t *testing.T) (url string, root *smx509.Certificate) {
	t.Helper()
	now := time.Now()
	ca, err := devpki.NewCA(devpki.RSA2048, "external TSA root", now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := ca.IssueTSA(devpki.RSA2048, devpki.LeafOptions{CommonName: "openssl external TSA", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	devpki.WriteCertsPEM(filepath.Join(dir, "tsa.pem"), cert)
	devpki.WriteKeyPEM(filepath.Join(dir, "tsa.key"), key)
	os.WriteFile(filepath.Join(dir, "serial"), []byte("1000\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "tsa.cnf"), []byte(`[ tsa ]
default_tsa = tsa1
[ tsa1 ]
serial = ./serial
crypto_device = builtin
signer_cert = ./tsa.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_chain = no
`), 0o600)
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required for this test (apt-get install openssl): %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		f, err := os.CreateTemp(dir, "q-*.tsq")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		f.Write(q)
		f.Close()
		defer os.Remove(f.Name())
		cmd := exec.CommandContext(r.Context(), bin, "ts", "-reply", "-config", "tsa.cnf", "-queryfile", filepath.Base(f.Name()))
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			http.Error(w, "openssl failed", 500)
			return
		}
		w.Header().Set("Content-Type", tsa.ContentTypeReply)
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ca.Cert
}

// TestSignEmbedsExternalOpenSSLTimestamp: a token made by `openssl ts -reply` is
// embedded by Sign and verifies here, against the external TSA's own root.
func TestSignEmbedsExternalOpenSSLTimestamp(t *testing.T) {
	url, extRoot := openSSLTSA(t)
	tsaValidator, err := trust.New(trust.Config{Anchors: append([]*smx509.Certificate{extRoot}, pki.Roots...), Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tsaValidator.Close() })
	ts := startServer(t, func(o *server.Options) {
		o.Timestamps = &server.TimestampOptions{ExternalURL: url, Validator: tsaValidator}
	})
	ctx := ctxT(t)
	for _, fam := range families {
		s, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: fam + "-sign", Data: []byte("doc"),
			Timestamp: signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_EXTERNAL})
		if err != nil {
			t.Fatal(err)
		}
		v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms()})
		if err != nil {
			t.Fatal(err)
		}
		st := v.GetTimestamps()
		if !v.GetVerified() || len(st) != 1 || !st[0].GetValid() || st[0].GetPolicy() != "1.2.3.4.1" || st[0].GetTsa() != "CN=openssl external TSA,O=signsvr development" {
			t.Fatalf("%s: verified %v, timestamps %v", fam, v.GetVerified(), st)
		}
	}
	// The main validator does not trust the external root: the token is reported as
	// untrusted and the certificate is validated now.
	ts2 := startServer(t, func(o *server.Options) { o.Timestamps = &server.TimestampOptions{ExternalURL: url} })
	s, err := ts2.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("doc"),
		Timestamp: signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_EXTERNAL})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ts2.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms()})
	if err != nil {
		t.Fatal(err)
	}
	if st := v.GetTimestamps()[0]; st.GetValid() || st.GetReason() != "tsa-certificate-unknown_authority" || st.GetUsedForValidation() {
		t.Fatalf("untrusted TSA: %v", st)
	}
	// An external TSA that is down: UNAVAILABLE.
	ts3 := startServer(t, func(o *server.Options) {
		o.Timestamps = &server.TimestampOptions{ExternalURL: "http://127.0.0.1:1/", ExternalTimeout: time.Second}
	})
	_, err = ts3.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("doc"),
		Timestamp: signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_EXTERNAL})
	wantStatus(t, err, 14 /* Unavailable */, "UNAVAILABLE")
}

// TestVerifyAtTimestampTime: a signer certificate that has expired since is good at
// the time a valid timestamp proves; without the token (or with a token over
// something else) it is expired.
func TestVerifyAtTimestampTime(t *testing.T) {
	start := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

	ca, err := devpki.NewCA(devpki.ECDSAP256, "short-lived signer root", start)
	if err != nil {
		t.Fatal(err)
	}
	key, leaf, err := ca.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: "short-lived signer", Usage: keystore.UsageSign,
		Now: start, NotBefore: start.Add(-time.Hour), NotAfter: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Config{Anchors: append([]*smx509.Certificate{ca.Cert}, pki.Roots...), Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	as := startAuditedServer(t, nil, func(o *server.Options) { o.Now = clock; o.Validator = v })
	ctx := ctxT(t)

	signed := func(token []byte) []byte {
		der, err := sign.Sign([]byte("contract"), key, []*smx509.Certificate{leaf}, &sign.Options{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		if token == nil {
			return der
		}
		sd, _ := cms.ParseSignedDataContentInfo(der)
		sd.SignerInfos[0].AddUnsignedAttribute(cms.Attribute{Type: cms.OIDAttrSignatureTimeStamp, Values: [][]byte{token}})
		out, err := sd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Stamp the signature value now, while the certificate is valid.
	der := signed(nil)
	sd, _ := cms.ParseSignedDataContentInfo(der)
	digest := sha256.Sum256(sd.SignerInfos[0].Signature)
	tr, err := as.ts.Timestamp(ctx, &signsvrv1.TimestampRequest{Digest: digest[:]})
	if err != nil {
		t.Fatal(err)
	}
	sd.SignerInfos[0].AddUnsignedAttribute(cms.Attribute{Type: cms.OIDAttrSignatureTimeStamp, Values: [][]byte{tr.GetToken()}})
	stamped, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	wrongStamp := signed(tr.GetToken()) // a new signature: the token stamps the other one

	offset.Store(int64(3 * time.Hour)) // the certificate expired an hour ago

	res, err := as.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: stamped})
	if err != nil {
		t.Fatal(err)
	}
	sr, st := res.GetSigners()[0], res.GetTimestamps()
	if !res.GetVerified() || sr.GetCertificateVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD ||
		len(st) != 1 || !st[0].GetValid() || !st[0].GetUsedForValidation() ||
		st[0].GetSignerCertificateVerdictNow().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED {
		t.Fatalf("with the timestamp: verified %v, verdict %v, timestamps %v", res.GetVerified(), sr.GetCertificateVerdict(), st)
	}
	if !sr.GetCertificateVerdict().GetValidatedAt().AsTime().Equal(tr.GetTime().AsTime()) {
		t.Fatalf("validated at %v, want %v", sr.GetCertificateVerdict().GetValidatedAt().AsTime(), tr.GetTime().AsTime())
	}

	for name, msg := range map[string][]byte{"no timestamp": der, "timestamp over another signature": wrongStamp} {
		res, err := as.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: msg})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetVerified() || res.GetSigners()[0].GetCertificateVerdict().GetStatus() != signsvrv1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED {
			t.Fatalf("%s: verified %v, verdict %v", name, res.GetVerified(), res.GetSigners()[0].GetCertificateVerdict())
		}
		if name != "no timestamp" {
			if st := res.GetTimestamps(); len(st) != 1 || st[0].GetValid() || st[0].GetReason() != tsa.ReasonImprintMismatch {
				t.Fatalf("%s: timestamps %v", name, st)
			}
		}
	}
}
