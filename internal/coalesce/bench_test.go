package coalesce

import (
	"crypto/sha256"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// writeCounter counts the writes that reach a real connection.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
}

func (c *writeCounter) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// BenchmarkWrites compares writing 2 KiB responses from several goroutines at once,
// each computing its response first (a SHA-256 of 16 KiB, about as long as an ECDSA
// signature: handlers finishing their calls), to a loopback TCP connection directly
// and through a Conn. ns/op is the time per response; syscalls/op how many write
// system calls each response cost. The peer reads everything from the start.
func BenchmarkWrites(b *testing.B) {
	for _, mode := range []string{"direct", "coalesced"} {
		b.Run(mode, func(b *testing.B) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer lis.Close()
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				peer, err := lis.Accept()
				if err != nil {
					return
				}
				defer peer.Close()
				io.Copy(io.Discard, peer)
			}()
			tcp, err := net.Dial("tcp", lis.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			raw := &writeCounter{Conn: tcp}
			var w net.Conn = raw
			if mode == "coalesced" {
				w = New(raw)
			}
			b.SetBytes(2048)
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				work := make([]byte, 16<<10)
				msg := make([]byte, 2048)
				for pb.Next() {
					sum := sha256.Sum256(work)
					copy(msg, sum[:])
					if _, err := w.Write(msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(raw.writes.Load())/float64(b.N), "syscalls/op")
			w.Close()
			<-drained
		})
	}
}
