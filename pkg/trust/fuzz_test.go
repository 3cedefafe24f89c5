package trust

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenOCSP parses responses written by openssl ocsp.
func TestGoldenOCSP(t *testing.T) {
	for _, tc := range []struct {
		file   string
		status ocspStatus
		reason CRLReason
	}{
		{"ocsp-rsa-revoked.der", ocspRevoked, ReasonCodeKeyCompromise},
		{"ocsp-sm2-good.der", ocspGood, 0},
	} {
		r, err := parseOCSPResponse(readGolden(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if r.status != 0 || len(r.responses) != 1 || len(r.certs) != 1 || r.byName == nil {
			t.Fatalf("%s: status %d, %d responses, %d certs", tc.file, r.status, len(r.responses), len(r.certs))
		}
		sr := r.responses[0]
		if sr.status != tc.status || sr.reason != tc.reason || sr.nextUpdate.Sub(sr.thisUpdate) != 10*time.Minute {
			t.Fatalf("%s: %+v", tc.file, sr)
		}
		if r.nonce == nil {
			t.Fatalf("%s: openssl's nonce not found", tc.file)
		}
		// The embedded delegated responder certificate signed it.
		if !r.responderIs(r.certs[0]) {
			t.Fatalf("%s: responder ID does not match the responder certificate", tc.file)
		}
		if err := r.checkSignedBy(r.certs[0]); err != nil {
			t.Fatalf("%s: signature: %v", tc.file, err)
		}
		// A flipped bit in the signed part breaks the signature.
		bad := *r
		bad.tbs = append([]byte(nil), r.tbs...)
		bad.tbs[len(bad.tbs)-3] ^= 1
		if bad.checkSignedBy(r.certs[0]) == nil {
			t.Fatalf("%s: tampered response verified", tc.file)
		}
	}
	for _, b := range [][]byte{{0x30, 0x03, 0x0a, 0x01, 0x06}, {0x30, 0x03, 0x0a, 0x01, 0x03}} {
		r, err := parseOCSPResponse(b)
		if err != nil || r.status == 0 {
			t.Fatalf("error status response: %v %+v", err, r)
		}
	}
	for _, b := range [][]byte{nil, {0x30}, {0x30, 0x03, 0x0a, 0x01, 0x00}, {0x30, 0x00}} {
		if _, err := parseOCSPResponse(b); err == nil {
			t.Fatalf("parsed % x", b)
		}
	}
}

func FuzzParseOCSPResponse(f *testing.F) {
	f.Add(readGolden(f, "ocsp-rsa-revoked.der"))
	f.Add(readGolden(f, "ocsp-sm2-good.der"))
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x06})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseOCSPResponse(b)
		if err != nil {
			return
		}
		for _, c := range r.certs {
			r.responderIs(c)
			r.checkSignedBy(c)
		}
		for _, sr := range r.responses {
			_ = sr.id.key()
		}
	})
}

func FuzzParseCRL(f *testing.F) {
	f.Add(readGolden(f, "crl-rsa.der"))
	f.Add(readGolden(f, "crl-sm2.der"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseCRL(b, "fuzz", now, time.Hour)
		if err != nil {
			return
		}
		e.fresh(now, time.Minute)
		e.nearExpiry(now, time.Minute)
	})
}
