// Command signsvr is the signsvr server and its command-line client.
//
//	signsvr serve [--config F | --data-dir D] [--listen A] [--ops-listen A|off]
//	signsvr COMMAND [flags]        (signsvr help lists every command)
//
// `signsvr serve` with no flags is the embedded development default: it creates a
// development PKI in ./signsvr-data on first start and serves on 127.0.0.1:50051.
// Every call of the API has a client command (internal/cli, whose Commands table
// lists them), each request option a flag named as its proto field; `keys
// generate|csr|import-cert` work on an HSM token directly and `audit verify` on log
// files. Exit codes: 0 success, 1 a verification that failed, 2 bad input or usage,
// 3 the server could not be reached or answered an error.
//
// This package is the flags of serve and the call to internal/cli's Main: internal/app
// builds and runs the server, internal/cli holds the client commands and the dispatch.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"signsvr.dev/signsvr/internal/app"
	clicmd "signsvr.dev/signsvr/internal/cli"
)

// Exit codes.
const (
	exitOK      = clicmd.ExitOK
	exitFailure = clicmd.ExitFailure // a verification that did not pass
	exitUsage   = clicmd.ExitUsage
	exitServer  = clicmd.ExitServer // the server could not be reached or answered an error
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// configCheckCmd is `signsvr config check FILE`: offline, with the code serve and a
// reload use (internal/app).
var configCheckCmd = &clicmd.Command{
	Name: "config check", Args: "FILE",
	Summary: "validate a production configuration as serve and a reload would (no server)",
	Run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return app.RunConfig(append([]string{"check"}, args...), stdout, stderr)
	},
}

// serveCmd is `signsvr serve`, the one command that builds a server.
var serveCmd = &clicmd.Command{
	Name: "serve", Args: "[--config FILE | --data-dir DIR] [--listen ADDR] [--ops-listen ADDR|off] [--log-level L]",
	Summary: "run the server (no flags: the development default in ./signsvr-data)",
	Run: func(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
		return runServe(ctx, args, stderr, nil)
	},
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return clicmd.Main(ctx, args, stdin, stdout, stderr, serveCmd, configCheckCmd)
}
