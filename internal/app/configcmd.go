package app

import (
	"fmt"
	"io"
)

// ConfigUsage is the help of `signsvr config`.
const ConfigUsage = `Usage: signsvr config check FILE

Validates a production configuration offline, with the code serve --config and a
reload use: the file, its secret files' permissions, the key stores (files or HSM
tokens), trust anchors, CRL files, the TLS certificate, the authorization rules and
the login settings. Prints "FILE: ok" and exits 0, or prints what is wrong, with the
file and line, and exits 1.
`

// RunConfig is `signsvr config`: it returns the exit code (0 ok, 1 a configuration
// that does not load, 2 usage).
func RunConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, ConfigUsage)
		return 0
	}
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(stderr, ConfigUsage)
		return 2
	}
	if err := CheckConfig(args[1]); err != nil {
		fmt.Fprintf(stderr, "signsvr config check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[1])
	return 0
}
