package main

import (
	"io"

	"signsvr.dev/signsvr/internal/cli/hsmkeys"
)

// runHSMKeys is `signsvr keys generate|csr|import-cert`: key management on the HSM,
// which works on the token directly through PKCS#11 rather than through a running
// server (internal/cli/hsmkeys). `signsvr keys list` asks the server instead.
func runHSMKeys(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return hsmkeys.Run(args, stdin, stdout, stderr)
}
