package audit

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"signsvr.dev/signsvr/internal/devpki"
)

func benchLog(b *testing.B, hash HashAlg, sync SyncPolicy) *Log {
	b.Helper()
	k := newAuditKey(b, devpki.ECDSAP256)
	cfg := testLogConfig(b)
	cfg.Hash, cfg.Sync = hash, sync
	l, err := New(cfg, k.signer, k.cert, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func benchRecord() Record {
	r := sampleRecord(1)
	r.Input = make([]byte, 1024)
	r.Output = make([]byte, 256)
	return r
}

// BenchmarkAppend is the hot path: digest a 1 KiB input and a 256-byte output, encode,
// chain and write one record; checkpoints (ECDSA P-256) every 1000 records in the
// background; fsync per checkpoint (the default) or per record.
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		name string
		hash HashAlg
		sync SyncPolicy
	}{
		{"sha256/sync-checkpoint", SHA256, SyncCheckpoint},
		{"sm3/sync-checkpoint", SM3, SyncCheckpoint},
		{"sha256/sync-record", SHA256, SyncRecord},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := benchLog(b, tc.hash, tc.sync)
			r := benchRecord()
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Append(b.Context(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
		if tc.sync == SyncRecord {
			continue
		}
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			l := benchLog(b, tc.hash, tc.sync)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := benchRecord()
				for pb.Next() {
					if err := l.Append(b.Context(), r); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkSignWithAudit compares a bare signature (the core of a Sign request, with
// no gRPC or CMS around it, so the ratio is a worst case for the audit's share) with
// the same signature plus its audit record, on every core.
func BenchmarkSignWithAudit(b *testing.B) {
	for _, alg := range []devpki.Algorithm{devpki.ECDSAP256, devpki.SM2} {
		key, err := devpki.GenerateKey(alg)
		if err != nil {
			b.Fatal(err)
		}
		sign := func(doc []byte) ([]byte, error) {
			if alg == devpki.SM2 {
				return key.Sign(rand.Reader, doc, sm2.NewSM2SignerOption(true, nil))
			}
			d := sha256.Sum256(doc)
			return key.Sign(rand.Reader, d[:], crypto.SHA256)
		}
		for _, audit := range []bool{false, true} {
			name := string(alg) + "/audit-off"
			if audit {
				name = string(alg) + "/audit-on"
			}
			b.Run(name, func(b *testing.B) {
				var l *Log
				if audit {
					l = benchLog(b, SHA256, SyncCheckpoint)
				}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					doc := make([]byte, 1024)
					r := benchRecord()
					for pb.Next() {
						sig, err := sign(doc)
						if err != nil {
							b.Fatal(err)
						}
						if l != nil {
							r.Input, r.Output = doc, sig
							if err := l.Append(b.Context(), r); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			})
		}
	}
}
