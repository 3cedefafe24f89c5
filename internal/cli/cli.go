// Package cli is the signsvr command line: the commands that talk to a running
// server over gRPC (one for every call of the API, each request option a flag named
// as its proto field), with the flags they share (--addr, TLS, --in/--out,
// --timeout), the dispatch that finds a command by name (Main, with the table of
// commands in registry.go), and the commands that need no server: hsmkeys works on
// an HSM token directly through PKCS#11, and auditcmd verifies audit logs offline.
//
// Each command is a function of its arguments and streams that returns the process
// exit code, so that cmd/signsvr only calls Main and tests run it in-process.
// Nothing here builds a server (that is internal/app): a client needs only the API.
package cli

// Exit codes of the commands. Scripts rely on them to tell a forgery (1) from a
// mistake of their own (2) and from an outage (3).
const (
	ExitOK = 0
	// ExitFailure: a verification that ran and failed (a bad signature, an invalid
	// certificate, a refused login, a damaged audit log).
	ExitFailure = 1
	// ExitUsage: bad input or usage: an unknown command or flag, a missing argument,
	// a file that cannot be read or written, or input the server refused as invalid
	// (gRPC INVALID_ARGUMENT: malformed, undecryptable, an option it cannot honour).
	ExitUsage = 2
	// ExitServer: the server could not be reached, or answered any other error
	// (NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, UNAVAILABLE, INTERNAL, a
	// deadline).
	ExitServer = 3
)
