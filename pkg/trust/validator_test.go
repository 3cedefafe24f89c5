package trust

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/testca"
)

func newValidator(t testing.TB, cfg Config) *Validator {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// TestChain covers every chain-only verdict for RSA, ECDSA and SM2 PKIs made by openssl.
func TestChain(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	for _, algo := range testca.Algos {
		t.Run(string(algo), func(t *testing.T) {
			t.Parallel()
			p := testca.New(t, testca.Options{Algo: algo})
			otherAlgo := algo
			if algo == testca.RSA {
				otherAlgo = testca.ECDSA // RSA key generation is the slow part of these tests
			}
			other := testca.New(t, testca.Options{Algo: otherAlgo, Name: "Other"})
			v := newValidator(t, Config{Anchors: p.Anchors(), Revocation: RevocationConfig{Disabled: true}})
			vInter := newValidator(t, Config{Anchors: p.Anchors(), Intermediates: []*smx509.Certificate{p.Intermediate.Cert}, Revocation: RevocationConfig{Disabled: true}})
			inter := []*smx509.Certificate{p.Intermediate.Cert}
			tests := []struct {
				name    string
				v       *Validator
				leaf    *smx509.Certificate
				inter   []*smx509.Certificate
				at      time.Time
				purpose Purpose
				status  Status
				reason  string
			}{
				{"good sign", v, p.Good.Cert, inter, now, PurposeSign, StatusGood, ReasonOK},
				{"good client auth", v, p.Good.Cert, inter, now, PurposeClientAuth, StatusGood, ReasonOK},
				{"good any", v, p.Good.Cert, inter, now, PurposeAny, StatusGood, ReasonOK},
				{"intermediate from config", vInter, p.Good.Cert, nil, now, PurposeSign, StatusGood, ReasonOK},
				{"sign cert cannot encrypt", v, p.Good.Cert, inter, now, PurposeEncrypt, StatusWrongUsage, ReasonKeyUsage},
				{"encrypt cert encrypts", v, p.Encrypt.Cert, inter, now, PurposeEncrypt, StatusGood, ReasonOK},
				{"encrypt cert cannot sign", v, p.Encrypt.Cert, inter, now, PurposeSign, StatusWrongUsage, ReasonKeyUsage},
				{"wrong usage sign", v, p.WrongUsage.Cert, inter, now, PurposeSign, StatusWrongUsage, ReasonKeyUsage},
				{"wrong usage any", v, p.WrongUsage.Cert, inter, now, PurposeAny, StatusGood, ReasonOK},
				{"ocsp signer cannot client auth", v, p.OCSPSigner.Cert, inter, now, PurposeClientAuth, StatusWrongUsage, ReasonExtKeyUsage},
				{"expired", v, p.Expired.Cert, inter, now, PurposeSign, StatusExpired, ReasonExpired},
				{"expired cert at a time it was valid", v, p.Expired.Cert, inter, time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC), PurposeSign, StatusExpired, ReasonNotYetValid}, // the CA was not yet valid then
				{"not yet valid", v, p.Good.Cert, inter, now.Add(-48 * time.Hour), PurposeSign, StatusExpired, ReasonNotYetValid},
				{"whole chain expired later", v, p.Good.Cert, inter, now.Add(20 * 365 * 24 * time.Hour), PurposeSign, StatusExpired, ReasonExpired},
				{"missing intermediate", v, p.Good.Cert, nil, now, PurposeSign, StatusUntrusted, ReasonUnknownAuthority},
				{"other PKI", v, other.Good.Cert, other.Chain(other.Good)[1:], now, PurposeSign, StatusUntrusted, ReasonUnknownAuthority},
				{"other PKI intermediate mixed in", v, other.Good.Cert, inter, now, PurposeSign, StatusUntrusted, ReasonUnknownAuthority},
				{"anchor itself", v, p.Root.Cert, nil, now, PurposeAny, StatusGood, ReasonOK},
				{"nil leaf", v, nil, nil, now, PurposeSign, StatusUntrusted, ReasonNoCertificate},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					for round := 0; round < 2; round++ { // second round may come from the cache
						vd := tc.v.Validate(ctx, tc.leaf, tc.inter, tc.at, tc.purpose)
						if vd.Status != tc.status || vd.Reason != tc.reason {
							t.Fatalf("round %d: got %v, want %v (%s)", round, vd, tc.status, tc.reason)
						}
						if !vd.At.Equal(tc.at) || vd.Purpose != tc.purpose {
							t.Fatalf("verdict At/Purpose %v/%v", vd.At, vd.Purpose)
						}
						if tc.status == StatusGood {
							if vd.Leaf() != tc.leaf && !vd.Leaf().Equal(tc.leaf) {
								t.Fatal("chain does not start with the leaf")
							}
							if last := vd.Chain[len(vd.Chain)-1]; !last.Equal(p.Root.Cert) {
								t.Fatalf("chain ends with %s", last.Subject)
							}
							if vd.Revocation != RevocationNotChecked {
								t.Fatalf("revocation %v with checking disabled", vd.Revocation)
							}
						}
					}
				})
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New with no anchors succeeded")
	}
	if _, err := New(Config{Anchors: []*smx509.Certificate{{}}}); err == nil {
		t.Fatal("New with an unparsed anchor succeeded")
	}
}

func TestFileConfig(t *testing.T) {
	p := testca.New(t, testca.Options{Algo: testca.ECDSA})
	dir := t.TempDir()
	bundle := filepath.Join(dir, "cas.pem")
	a, _ := os.ReadFile(p.Intermediate.CertFile)
	b, _ := os.ReadFile(p.Root.CertFile)
	if err := os.WriteFile(bundle, append(a, b...), 0o600); err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "inter.crl")
	if err := os.WriteFile(crlFile, p.CRL, 0o600); err != nil {
		t.Fatal(err)
	}
	var fc FileConfig
	fc.Anchors = []string{p.Root.CertFile}
	fc.Intermediates = []string{bundle}
	fc.Revocation.CRLFiles = []string{crlFile}
	cfg, err := fc.Config()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Anchors) != 1 || len(cfg.Intermediates) != 2 || len(cfg.Revocation.CRLs) != 1 {
		t.Fatalf("loaded %d anchors, %d intermediates, %d CRLs", len(cfg.Anchors), len(cfg.Intermediates), len(cfg.Revocation.CRLs))
	}
	fc.Anchors = []string{crlFile}
	if _, err := fc.Config(); err == nil {
		t.Fatal("a CRL loaded as an anchor")
	}
	fc.Anchors = []string{filepath.Join(dir, "missing.pem")}
	if _, err := fc.Config(); err == nil {
		t.Fatal("a missing file loaded")
	}
}
