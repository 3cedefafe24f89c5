package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
)

// Benchmarks at 1 KiB for RSA-2048, P-256 and SM2, each beside the bare primitive,
// so one run gives the ratio of engine to primitive:
//
//	go test -run '^$' -bench . -benchmem ./pkg/sign
//
// Bare sign is hash + crypto.Signer.Sign (for SM2: Sign with Z + SM3 over the data);
// bare verify is hash + verify. Sign includes the self-check unless its name says
// SkipSelfCheck; Verify finds the signer certificate parsed in VerifyOptions.Certs
// (a server's cache), VerifyParseCert parses it from the message on every call.

var benchAlgs = []struct {
	name string
	alg  devpki.Algorithm
}{{"rsa2048", devpki.RSA2048}, {"p256", devpki.ECDSAP256}, {"sm2", devpki.SM2}}

const benchSize = 1024

func bareSign(b *testing.B, key crypto.Signer, alg devpki.Algorithm, data []byte) []byte {
	var sig []byte
	var err error
	if alg == devpki.SM2 {
		sig, err = key.Sign(rand.Reader, data, sm2.NewSM2SignerOption(true, nil))
	} else {
		h := sha256.Sum256(data)
		sig, err = key.Sign(rand.Reader, h[:], crypto.SHA256)
	}
	if err != nil {
		b.Fatal(err)
	}
	return sig
}

func BenchmarkBareSign(b *testing.B) {
	data := testContent(benchSize)
	for _, a := range benchAlgs {
		p := pkiFor(b, a.alg)
		b.Run(a.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bareSign(b, p.key, a.alg, data)
			}
		})
	}
}

func benchSign(b *testing.B, skip bool) {
	data := testContent(benchSize)
	for _, a := range benchAlgs {
		p := pkiFor(b, a.alg)
		opts := &Options{Now: fixedClock, SkipSelfCheck: skip}
		b.Run(a.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Sign(data, p.key, p.chain, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B)              { benchSign(b, false) }
func BenchmarkSignSkipSelfCheck(b *testing.B) { benchSign(b, true) }

func BenchmarkBareVerify(b *testing.B) {
	data := testContent(benchSize)
	for _, a := range benchAlgs {
		p := pkiFor(b, a.alg)
		sig := bareSign(b, p.key, a.alg, data)
		b.Run(a.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ok := false
				switch pub := p.leaf.PublicKey.(type) {
				case *rsa.PublicKey:
					h := sha256.Sum256(data)
					ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
				case *ecdsa.PublicKey:
					if a.alg == devpki.SM2 {
						ok = sm2.VerifyASN1WithSM2(pub, nil, data, sig)
					} else {
						h := sha256.Sum256(data)
						ok = ecdsa.VerifyASN1(pub, h[:], sig)
					}
				}
				if !ok {
					b.Fatal("bare verify failed")
				}
			}
		})
	}
}

func benchVerify(b *testing.B, cached bool) {
	data := testContent(benchSize)
	for _, a := range benchAlgs {
		p := pkiFor(b, a.alg)
		der, err := Sign(data, p.key, p.chain, &Options{Now: fixedClock})
		if err != nil {
			b.Fatal(err)
		}
		opts := &VerifyOptions{}
		if cached {
			opts.Certs = []*smx509.Certificate{p.leaf}
		}
		b.Run(a.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := Verify(der, opts)
				if err != nil || !res.Signers[0].Signature.Valid {
					b.Fatal("verify failed")
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B)          { benchVerify(b, true) }
func BenchmarkVerifyParseCert(b *testing.B) { benchVerify(b, false) }

// The machine these run on is shared, and its load swings by an order of magnitude
// within a run, so separate benchmarks cannot be compared reliably. The Overhead
// benchmarks interleave the bare primitive and the CMS call in each iteration and
// report the median duration of each (a load spike hits one sample, not a whole
// benchmark) and the overhead of the CMS layer in percent of the bare primitive.

func medianNs(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds())
}

func reportOverhead(b *testing.B, bare, cms []time.Duration) {
	mb, mc := medianNs(bare), medianNs(cms)
	b.ReportMetric(mb, "bare-median-ns")
	b.ReportMetric(mc, "cms-median-ns")
	b.ReportMetric(100*(mc-mb)/mb, "overhead-%")
}

func benchSignOverhead(b *testing.B, skip bool) {
	data := testContent(benchSize)
	for _, a := range benchAlgs {
		p := pkiFor(b, a.alg)
		opts := &Options{Now: fixedClock, SkipSelfCheck: skip}
		b.Run(a.name, func(b *testing.B) {
			var bare, cms []time.Duration
			for b.Loop() {
				t0 := time.Now()
				bareSign(b, p.key, a.alg, data)
				t1 := time.Now()
				if _, err := Sign(data, p.key, p.chain, opts); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				bare, cms = append(bare, t1.Sub(t0)), append(cms, t2.Sub(t1))
			}
			reportOverhead(b, bare, cms)
		})
	}
}

func BenchmarkSignOverhead(b *testing.B)              { benchSignOverhead(b, false) }
func BenchmarkSignOverheadSkipSelfCheck(b *testing.B) { benchSignOverhead(b, true) }

func BenchmarkVerifyOverhead(b *testing.B) {
	data := testContent(benchSize)
	for _, a := range benchAlgs {
		p := pkiFor(b, a.alg)
		der, err := Sign(data, p.key, p.chain, &Options{Now: fixedClock})
		if err != nil {
			b.Fatal(err)
		}
		sig := bareSign(b, p.key, a.alg, data)
		opts := &VerifyOptions{Certs: []*smx509.Certificate{p.leaf}}
		b.Run(a.name, func(b *testing.B) {
			var bare, cms []time.Duration
			for b.Loop() {
				t0 := time.Now()
				var ok bool
				switch pub := p.leaf.PublicKey.(type) {
				case *rsa.PublicKey:
					h := sha256.Sum256(data)
					ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
				case *ecdsa.PublicKey:
					if a.alg == devpki.SM2 {
						ok = sm2.VerifyASN1WithSM2(pub, nil, data, sig)
					} else {
						h := sha256.Sum256(data)
						ok = ecdsa.VerifyASN1(pub, h[:], sig)
					}
				}
				t1 := time.Now()
				res, err := Verify(der, opts)
				t2 := time.Now()
				if !ok || err != nil || !res.Signers[0].Signature.Valid {
					b.Fatal("verify failed")
				}
				bare, cms = append(bare, t1.Sub(t0)), append(cms, t2.Sub(t1))
			}
			reportOverhead(b, bare, cms)
		})
	}
}
