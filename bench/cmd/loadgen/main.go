// Command loadgen drives one signsvr scenario against a server on loopback and prints
// the result as JSON. The harness (bench/cmd/benchrun) runs it pinned to its own core
// with taskset; it can also be run by hand:
//
//	go run ./bench/cmd/loadgen -addr 127.0.0.1:50051 -op Sign -alg sm2 -size 1024 \
//	    -conns 2 -streams 16 -duration 10s -server-pid $(pgrep -n signsvr)
//
// With -ghz-data FILE it only prepares the scenario (calling the server for Verify and
// Decrypt inputs) and writes the request as ghz call data.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"

	"signsvr.dev/signsvr/bench/loadgen"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		s   loadgen.Scenario
		cfg loadgen.Config
	)
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:50051", "server address (loopback only)")
	flag.StringVar(&s.Op, "op", "Sign", "operation: Sign, Verify, SignRaw, VerifyRaw, Envelope, Decrypt")
	flag.StringVar(&s.Alg, "alg", "sm2", "key family: rsa, ecdsa, sm2")
	flag.IntVar(&s.Size, "size", 1024, "content size in bytes")
	flag.IntVar(&s.Batch, "batch", 0, "items per SignBatch/VerifyBatch call (0: unary)")
	flag.IntVar(&s.Pipeline, "pipeline", 0, "items in flight per PipelineService stream (0: unary calls); -streams is then streams per connection")
	flag.StringVar(&s.SignKey, "sign-key", "", "signing key name (default <alg>-sign)")
	flag.StringVar(&s.EncKey, "enc-key", "", "decryption key name (default <alg>-enc)")
	flag.IntVar(&cfg.Conns, "conns", 2, "connections")
	flag.IntVar(&cfg.Streams, "streams", 8, "calls in flight per connection")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "warm-up before the measured window")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "longest measured window")
	flag.Int64Var(&cfg.MaxCalls, "max-calls", 0, "end the window after this many calls (0: no limit)")
	flag.Float64Var(&cfg.Rate, "rate", 0, "calls per second, open loop (0: closed loop, as fast as possible)")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "server process id, to read its CPU time and memory from /proc")
	flag.DurationVar(&cfg.MemInterval, "mem-interval", 250*time.Millisecond, "server memory sampling interval")
	flag.BoolVar(&cfg.KeepMemSamples, "mem-samples", false, "include every memory sample in the output")
	tlsCA := flag.String("tls-ca", "", "mutual TLS: the CA of the server's certificate (PEM); with -tls-cert and -tls-key")
	tlsCert := flag.String("tls-cert", "", "mutual TLS: the client's certificate chain (PEM)")
	tlsKey := flag.String("tls-key", "", "mutual TLS: the client's key (PEM)")
	ghzData := flag.String("ghz-data", "", "only prepare, and write the request as ghz call data (JSON) to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: unexpected argument %q\n", flag.Arg(0))
		return 2
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A hard bound on the whole process, whatever happens to the server.
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+5*time.Minute)
	defer cancel()

	var creds credentials.TransportCredentials
	if *tlsCA != "" || *tlsCert != "" || *tlsKey != "" {
		var err error
		if creds, err = loadgen.ClientTLS(*tlsCA, *tlsCert, *tlsKey); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: TLS:", err)
			return 2
		}
	}
	conns, err := loadgen.Dial(ctx, cfg.Addr, cfg.Conns, creds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	p, err := loadgen.Prepare(ctx, conns[0], s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %s: %v\n", s.Name(), err)
		return 3
	}
	if *ghzData != "" {
		b, err := p.GhzData()
		if err == nil {
			err = os.WriteFile(*ghzData, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		fmt.Println(p.GhzCall())
		return 0
	}
	res, err := loadgen.Run(ctx, conns, p, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %s: %v\n", s.Name(), err)
		return 1
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	return 0
}
