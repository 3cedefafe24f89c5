// Command signsvr is the signsvr server and its command-line client.
//
//	signsvr serve     [--config F | --data-dir D] [--listen A] [--ops-listen A|off]
//	signsvr sign      --key NAME [--detached] [--in F] [--out F] [--pem]
//	signsvr verify    [--content F] [--in F] [--out F] [--json]
//	signsvr envelope  (--cert F | --to NAME)... [--in F] [--out F] [--pem]
//	signsvr decrypt   --key NAME [--in F] [--out F]
//	signsvr encrypt-raw (--key NAME | --cert F) [--in F] [--out F]
//	signsvr decrypt-raw --key NAME [--in F] [--out F]
//	signsvr keys list [--json]
//	signsvr keys generate|csr|import-cert --module LIB --token LABEL (--pin-file F | --pin-env VAR) ...
//	signsvr login     --cert F --key F [--json]
//	signsvr audit verify [--cert audit.pem] FILE|DIR...
//
// `signsvr serve` with no flags is the embedded development default: it creates a
// development PKI in ./signsvr-data on first start and serves on 127.0.0.1:50051.
// `keys generate|csr|import-cert` work on an HSM token directly and `audit verify` on
// log files; every other command talks to a running server (--addr, default
// 127.0.0.1:50051 or $SIGNSVR_ADDR), reads stdin unless --in is given and writes
// stdout unless --out is. Errors go to stderr with a non-zero exit code; `verify`
// exits 0 only when every signature verifies with a trusted certificate.
//
// This package is the flags of serve and the dispatch to the commands: internal/app
// builds and runs the server, internal/cli holds the client commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	clicmd "signsvr.dev/signsvr/internal/cli"
	"signsvr.dev/signsvr/internal/cli/auditcmd"
)

// Exit codes.
const (
	exitOK      = clicmd.ExitOK
	exitFailure = clicmd.ExitFailure // an error, or a verification that did not pass
	exitUsage   = clicmd.ExitUsage
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `signsvr: a gRPC server that signs, verifies, envelopes and decrypts CMS (PKCS#7 / GM/T 0010).

Usage:
  signsvr serve     [--config FILE | --data-dir DIR] [--listen ADDR] [--ops-listen ADDR|off]
  signsvr sign      --key NAME [--detached] [--in F] [--out F] [--pem] [options]
  signsvr verify    [--content F] [--in F] [--out F] [--json]
  signsvr envelope  (--cert F | --to NAME)... [--in F] [--out F] [--pem] [options]
  signsvr decrypt   (--key NAME | --password-file F) [--in F] [--out F]
  signsvr encrypt-raw (--key NAME | --cert F) [--in F] [--out F] [options]
                                                      (RSA / SM2 encryption, no CMS)
  signsvr decrypt-raw --key NAME [--in F] [--out F] [options]
  signsvr keys list [--json]
  signsvr keys generate|csr|import-cert --module LIB --token LABEL --pin-file F [flags]
                                                      (HSM keys over PKCS#11, no server)
  signsvr login     --cert F --key F [--json]           (certificate login, prints the token)
  signsvr audit verify [--cert audit.pem] FILE|DIR...   (offline, no server)

Client commands take --addr (default $SIGNSVR_ADDR or 127.0.0.1:50051) and, for a
TLS server, --tls-ca, --tls-cert and --tls-key. Run "signsvr COMMAND -h" (or
"signsvr keys generate -h" and so on) for flags.
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stderr, nil)
	case "sign":
		return clicmd.Sign(ctx, rest, stdin, stdout, stderr)
	case "verify":
		return clicmd.Verify(ctx, rest, stdin, stdout, stderr)
	case "envelope":
		return clicmd.Envelope(ctx, rest, stdin, stdout, stderr)
	case "decrypt":
		return clicmd.Decrypt(ctx, rest, stdin, stdout, stderr)
	case "encrypt-raw":
		return clicmd.EncryptRaw(ctx, rest, stdin, stdout, stderr)
	case "decrypt-raw":
		return clicmd.DecryptRaw(ctx, rest, stdin, stdout, stderr)
	case "keys":
		return clicmd.Keys(ctx, rest, stdin, stdout, stderr)
	case "login":
		return clicmd.Login(ctx, rest, stdout, stderr)
	case "audit":
		// Offline: reads audit log files, needs no server.
		return auditcmd.Run(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "signsvr: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}
