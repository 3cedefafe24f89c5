// Package cli is the client side of the signsvr command: the commands that talk to
// a running server over gRPC (sign, verify, envelope, decrypt, keys list, login),
// with the flags they share (--addr, TLS, --in/--out, --timeout), and the `keys`
// command that also reaches the HSM subcommands. Its subpackages are the commands
// that need no server: hsmkeys works on an HSM token directly through PKCS#11, and
// auditcmd verifies audit logs offline.
//
// Each command is a function of its arguments and streams that returns the process
// exit code, so that cmd/signsvr only dispatches to it and tests run it in-process.
// Nothing here builds a server (that is internal/app): a client needs only the API.
package cli

// Exit codes of the commands.
const (
	ExitOK      = 0
	ExitFailure = 1 // an error, or a verification or login that did not pass
	ExitUsage   = 2
)
