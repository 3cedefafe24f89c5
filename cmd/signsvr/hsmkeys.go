package main

import (
	"fmt"
	"io"
)

// runHSMKeys is `signsvr keys generate|csr|import-cert`: key management on the HSM,
// which works on the token directly rather than through a running server. It is
// wired to internal/cli/hsmkeys once that package lands.
func runHSMKeys(args []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintf(stderr, "signsvr keys %s: HSM key management is not in this build yet\n", args[0])
	return exitFailure
}
