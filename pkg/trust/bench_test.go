package trust

import (
	"context"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/testca"
)

// BenchmarkValidate compares a cached Validate with an uncached one (path building,
// usage, revocation from an in-memory CRL) and with one certificate signature
// check, a lower bound for the cost of a CMS Verify.
//
//	go test -run '^$' -bench Validate -benchmem ./pkg/trust
func BenchmarkValidate(b *testing.B) {
	for _, algo := range testca.Algos {
		p := testca.New(b, testca.Options{Algo: algo})
		rev := RevocationConfig{HardFail: true, PreferCRL: true, SkipIntermediates: true, CRLs: [][]byte{p.CRL}, RefreshInterval: -1}
		now := time.Now()
		inter := p.Chain(p.Good)[1:]
		for _, bc := range []struct {
			name  string
			cache int
		}{{"cached", 0}, {"uncached", -1}} {
			v, err := New(Config{Anchors: p.Anchors(), Revocation: rev, CacheSize: bc.cache})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(string(algo)+"/"+bc.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if vd := v.Validate(ctx, p.Good.Cert, inter, now, PurposeSign); vd.Status != StatusGood {
						b.Fatal(vd)
					}
				}
			})
			v.Close()
		}
		b.Run(string(algo)+"/one-signature-check", func(b *testing.B) {
			for b.Loop() {
				if err := p.Good.Cert.CheckSignatureFrom(p.Intermediate.Cert); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
