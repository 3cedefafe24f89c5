package serverbench_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"signsvr.dev/signsvr/bench/loadgen"
	"signsvr.dev/signsvr/bench/serverbench"
)

// env is one server and one echo server shared by every benchmark of the run.
var env struct {
	dev  *serverbench.Running
	conn *grpc.ClientConn
}

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		// No benchmark asked for (go test ./..., go test -list): no server needed.
		os.Exit(m.Run())
	}
	dir := os.Getenv("SIGNSVR_BENCH_DATA")
	tmp := ""
	if dir == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "serverbench-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		dir = filepath.Join(tmp, "pki")
	}
	dev, err := serverbench.StartDev(dir, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serverbench:", err)
		os.Exit(1)
	}
	env.dev = dev
	conns, err := loadgen.Dial(context.Background(), dev.Addr, 1, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serverbench:", err)
		os.Exit(1)
	}
	env.conn = conns[0]
	code := m.Run()
	env.conn.Close()
	dev.Stop()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// scenarios is every scenario of the full suite.
func scenarios() []loadgen.Scenario {
	var out []loadgen.Scenario
	for _, op := range loadgen.Ops {
		for _, alg := range []string{"rsa", "ecdsa", "sm2"} {
			for _, size := range []int{1024, 65536} {
				for _, batch := range []int{0, 64} {
					s := loadgen.Scenario{Op: op, Alg: alg, Size: size, Batch: batch}
					if s.Validate() == nil {
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}

// BenchmarkServer runs each scenario against the real server: ns/op and allocs/op are
// per call (a batch call holds 64 items), client and server together.
func BenchmarkServer(b *testing.B) {
	for _, s := range scenarios() {
		b.Run(s.Name(), func(b *testing.B) {
			p, err := loadgen.Prepare(b.Context(), env.conn, s)
			if err != nil {
				b.Fatal(err)
			}
			benchCalls(b, env.conn, p, true)
		})
	}
}

// BenchmarkEcho runs the same calls against a server that answers each with the real
// server's response, computed once: the gRPC floor for these messages.
func BenchmarkEcho(b *testing.B) {
	for _, s := range scenarios() {
		b.Run(s.Name(), func(b *testing.B) {
			p, err := loadgen.Prepare(b.Context(), env.conn, s)
			if err != nil {
				b.Fatal(err)
			}
			resp, err := p.Call(b.Context(), env.conn, 0)
			if err != nil {
				b.Fatal(err)
			}
			echo, err := serverbench.StartEcho(map[string]proto.Message{p.Method: resp})
			if err != nil {
				b.Fatal(err)
			}
			defer echo.Stop()
			conns, err := loadgen.Dial(b.Context(), echo.Addr, 1, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conns[0].Close()
			benchCalls(b, conns[0], p, false)
		})
	}
}

// benchCalls calls in a loop, rotating through the request pool when rotate is set
// (the echo server has only the answer to request 0).
func benchCalls(b *testing.B, cc *grpc.ClientConn, p *loadgen.Prepared, rotate bool) {
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := p.Call(ctx, cc, i); err != nil {
			b.Fatal(err)
		}
		if rotate {
			i++
		}
	}
	b.ReportMetric(float64(p.Scenario.Items()), "items/op")
}
