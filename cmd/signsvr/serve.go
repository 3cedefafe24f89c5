package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"signsvr.dev/signsvr/internal/app"
)

// runServe is `signsvr serve`: its flags, then internal/app builds and runs the
// server. onListen, when set (tests), learns the bound address.
func runServe(ctx context.Context, args []string, stderr io.Writer, onListen func(net.Addr)) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "production configuration file (YAML); without it, the development default runs")
	dataDir := fs.String("data-dir", "signsvr-data", "development default: where the development PKI is kept")
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:50051, or the config's listen)")
	opsListen := fs.String("ops-listen", "", "address of the plaintext operations listener: health, /metrics, /readyz "+
		"(default the config's ops.listen, off when unset; development: 127.0.0.1:9090 when free); off for none")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides the config)")
	cpuProfile := fs.String("cpu-profile", "", "write a pprof CPU profile of the whole run to this file (performance work)")
	gcPercent := fs.Int("gc-percent", app.DefaultGCPercent, "garbage collector target percentage (GOGC; the GOGC variable wins when set)")
	memoryLimit := fs.String("memory-limit", app.DefaultMemoryLimit, "soft memory limit, e.g. 100MiB, 1GiB, 0 for none (GOMEMLIMIT; the variable wins when set)")
	memProfile := fs.String("mem-profile", "", "write a pprof allocation profile to this file at shutdown (performance work)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "signsvr serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if _, err := app.ParseBytes(*memoryLimit); err != nil || (*gcPercent <= 0 && *gcPercent != -1) {
		fmt.Fprintf(stderr, "signsvr serve: --gc-percent must be positive (or -1) and --memory-limit a size such as 100MiB\n")
		return exitUsage
	}
	dataDirSet := false
	fs.Visit(func(f *flag.Flag) { dataDirSet = dataDirSet || f.Name == "data-dir" })
	if *cfgPath != "" && dataDirSet {
		fmt.Fprintln(stderr, "signsvr serve: --data-dir is for the development default; give --config or --data-dir, not both")
		return exitUsage
	}

	srv, err := app.New(app.Options{
		ConfigPath: *cfgPath, DataDir: *dataDir, Listen: *listen, OpsListen: *opsListen, LogLevel: *logLevel,
		GCPercent: *gcPercent, MemoryLimit: *memoryLimit, CPUProfile: *cpuProfile, MemProfile: *memProfile,
		Log: stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "signsvr serve: %v\n", err)
		return exitFailure
	}
	defer srv.Close()
	if err := srv.Run(ctx, onListen); err != nil {
		return exitFailure // Run has logged why
	}
	return exitOK
}
