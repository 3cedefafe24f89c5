package server_test

import (
	"io"
	"log/slog"
	"testing"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/audit"
)

// BenchmarkSignAudit compares Sign throughput with the audit log on (every record
// written before the answer, fsync after each checkpoint of 1000 records) and off,
// in the same run. Run it interleaved and compare medians, e.g.
//
//	go test -run '^$' -bench SignAudit -count 8 ./internal/server/
//
// (-count repeats the whole function, so off and on alternate.)
func BenchmarkSignAudit(b *testing.B) {
	data := make([]byte, 1024)
	for _, fam := range []string{"ecdsa", "sm2"} {
		req := &signsvrv1.SignRequest{Key: fam + "-sign", Data: data}
		b.Run("off/"+fam, func(b *testing.B) {
			ts := startServer(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := ts.sign.Sign(b.Context(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("on/"+fam, func(b *testing.B) {
			as := startAuditedServer(b, func(c *audit.Config) {
				c.Sync = audit.SyncCheckpoint
				c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := as.sign.Sign(b.Context(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
