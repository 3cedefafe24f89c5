package server_test

import (
	"testing"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// Benchmarks of whole calls through a real loopback gRPC connection (client and server
// in one process). They show the cost per call and allocations; the load harness of
// bench/ measures the server alone.

func BenchmarkCalls(b *testing.B) {
	ts := startServer(b)
	data := make([]byte, 1024)
	for _, fam := range families {
		b.Run("Sign/"+fam, func(b *testing.B) {
			req := &signsvrv1.SignRequest{Key: fam + "-sign", Data: data}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ts.sign.Sign(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
		s, err := ts.sign.Sign(b.Context(), &signsvrv1.SignRequest{Key: fam + "-sign", Data: data})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Verify/"+fam, func(b *testing.B) {
			req := &signsvrv1.VerifyRequest{Cms: s.GetCms(), Options: &signsvrv1.VerifyOptions{OmitContent: true}}
			b.ReportAllocs()
			for b.Loop() {
				v, err := ts.sign.Verify(b.Context(), req)
				if err != nil || !v.GetVerified() {
					b.Fatal(err, v)
				}
			}
		})
		b.Run("SignRaw/"+fam, func(b *testing.B) {
			req := &signsvrv1.SignRawRequest{Key: fam + "-sign", Data: data}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ts.sign.SignRaw(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
