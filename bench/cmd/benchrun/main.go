// Command benchrun runs signsvr's benchmark suite (bench/harness) and writes the
// results under bench/results.
//
//	go run ./bench/cmd/benchrun --full     # make bench: the whole suite, ~15-20 minutes
//	go run ./bench/cmd/benchrun --smoke    # a few seconds; results to a temporary directory
//	go run ./bench/cmd/benchrun --suite bench/scenarios/full.json --no-soak --out /tmp/r
//	go run ./bench/cmd/benchrun --render bench/results/latest.json   # markdown again from JSON
//
// It needs Linux, 2+ CPUs, taskset (util-linux) and, for the ghz runs, ghz v0.120.0
// (installed with go install when missing). Run it from the module root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"signsvr.dev/signsvr/bench/harness"
)

func main() {
	os.Exit(run())
}

func run() int {
	full := flag.Bool("full", false, "the full suite (bench/scenarios/full.json), results in bench/results with latest.md")
	smoke := flag.Bool("smoke", false, "the smoke suite (bench/scenarios/smoke.json), results in a temporary directory")
	suite := flag.String("suite", "", "a scenario file (instead of --full or --smoke)")
	out := flag.String("out", "", "results directory (default bench/results for --full and --suite, a temporary directory for --smoke)")
	noSoak := flag.Bool("no-soak", false, "skip the suite's soak")
	soak := flag.Duration("soak", 0, "the soak's length instead of the suite's (e.g. 30m)")
	serverCPUs := flag.String("server-cpus", "0", "taskset CPU list of the server in the one-core phase")
	clientCPUs := flag.String("client-cpus", "1", "taskset CPU list of the load generator and ghz in the one-core phase")
	bothCPUs := flag.String("both-cpus", "0,1", "taskset CPU list of the two-core phase")
	work := flag.String("work", "", "keep binaries, the development PKI and server logs here (default: a temporary directory, removed)")
	render := flag.String("render", "", "only rewrite the markdown of a JSON report (e.g. bench/results/latest.json) beside it")
	flag.Parse()
	if *render != "" {
		if err := harness.Render(*render); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			return 1
		}
		return 0
	}

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	repo, err := harness.FindRepo(wd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	o := harness.Options{Repo: repo, ServerCPUs: *serverCPUs, ClientCPUs: *clientCPUs, BothCPUs: *bothCPUs,
		NoSoak: *noSoak, SoakDuration: *soak, WorkDir: *work, OutDir: *out}
	switch {
	case *suite != "":
		o.SuitePath, o.Name = *suite, trimExt(filepath.Base(*suite))
		if o.OutDir == "" {
			o.OutDir = filepath.Join(repo, "bench", "results")
		}
	case *full:
		o.SuitePath, o.Name, o.Latest = filepath.Join(repo, "bench", "scenarios", "full.json"), "full", true
		if o.OutDir == "" {
			o.OutDir = filepath.Join(repo, "bench", "results")
		}
	case *smoke:
		o.SuitePath, o.Name = filepath.Join(repo, "bench", "scenarios", "smoke.json"), "smoke"
		if o.OutDir == "" {
			if o.OutDir, err = os.MkdirTemp("", "signsvr-bench-smoke-"); err != nil {
				fmt.Fprintln(os.Stderr, "benchrun:", err)
				return 1
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "benchrun: give --full, --smoke or --suite FILE")
		flag.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := harness.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	fmt.Printf("benchrun: results in %s (%d scenarios, %d failed)\n", o.OutDir, len(rep.Scenarios), rep.Failed())
	if rep.Failed() > 0 {
		return 3
	}
	return 0
}

func trimExt(s string) string { return s[:len(s)-len(filepath.Ext(s))] }
