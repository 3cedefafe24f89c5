// Command baseline measures the bare primitive behind signsvr operations in-process
// (no CMS, no gRPC) and prints the results as JSON. The harness runs it pinned with
// taskset to the server's core, right before the load of the same scenario:
//
//	taskset -c 0 go run ./bench/cmd/baseline -data-dir signsvr-data -op sign -alg sm2 -size 1024
//
// -op, -alg and -size take comma-separated lists; every combination is measured.
//
// With -hsm-key LABEL it measures instead direct C_Sign calls on a PKCS#11 token (one
// session): the baseline of the harness's HSM scenarios (op sign, alg rsa or ecdsa).
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
	var hsm baseline.HSMKey
	flag.StringVar(&hsm.Label, "hsm-key", "", "measure direct C_Sign with this token key (CKA_LABEL) instead of the soft keys")
	flag.StringVar(&hsm.Module, "hsm-module", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module, with -hsm-key")
	flag.StringVar(&hsm.Token, "hsm-token", "", "token label, with -hsm-key")
	flag.StringVar(&hsm.PINFile, "hsm-pin-file", "", "file holding the user PIN, with -hsm-key")
	flag.Parse()
	// One core's worth of Go, like the server pinned to one core.
	runtime.GOMAXPROCS(1)

	var keys *baseline.Keys
	if hsm.Label == "" {
		var err error
		if keys, err = baseline.LoadKeys(*dataDir); err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			return 1
		}
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
				var r *baseline.Result
				if hsm.Label != "" {
					if spec.Op != baseline.OpSign {
						fmt.Fprintf(os.Stderr, "baseline: -hsm-key measures sign only, not %s\n", spec.Op)
						return 2
					}
					r, err = baseline.RunHSMSign(hsm, spec.Alg, n, *d, *rounds)
				} else {
					r, err = keys.Run(spec, *d, *rounds)
				}
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
