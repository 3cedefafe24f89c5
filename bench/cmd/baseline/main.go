// Command baseline measures the bare primitive behind signsvr operations in-process
// (no CMS, no gRPC) and prints the results as JSON. The harness runs it pinned with
// taskset to the server's core, right before the load of the same scenario:
//
//	taskset -c 0 go run ./bench/cmd/baseline -data-dir signsvr-data -op sign -alg sm2 -size 1024
//
// -op, -alg and -size take comma-separated lists; every combination is measured.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"signsvr.dev/signsvr/bench/baseline"
)

func main() {
	os.Exit(run())
}

func run() int {
	dataDir := flag.String("data-dir", "signsvr-data", "the development PKI (as signsvr serve --data-dir); created if missing")
	ops := flag.String("op", "sign,verify,encrypt,decrypt", "operations: sign, verify, encrypt, decrypt")
	algs := flag.String("alg", "rsa,ecdsa,sm2", "key families: rsa, ecdsa, sm2")
	sizes := flag.String("size", "1024,65536", "content sizes in bytes")
	d := flag.Duration("duration", time.Second, "time spent on each full primitive (a quarter more each on its parts)")
	rounds := flag.Int("rounds", 5, "rounds; the median is reported")
	flag.Parse()
	// One core's worth of Go, like the server pinned to one core.
	runtime.GOMAXPROCS(1)

	keys, err := baseline.LoadKeys(*dataDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		return 1
	}
	var out []*baseline.Result
	for _, op := range strings.Split(*ops, ",") {
		for _, alg := range strings.Split(*algs, ",") {
			for _, sz := range strings.Split(*sizes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(sz))
				if err != nil {
					fmt.Fprintf(os.Stderr, "baseline: size %q: %v\n", sz, err)
					return 2
				}
				spec := baseline.Spec{Op: baseline.Op(strings.TrimSpace(op)), Alg: baseline.Alg(strings.TrimSpace(alg)), Size: n}
				r, err := keys.Run(spec, *d, *rounds)
				if err != nil {
					fmt.Fprintln(os.Stderr, "baseline:", err)
					return 1
				}
				out = append(out, r)
			}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		return 1
	}
	return 0
}
