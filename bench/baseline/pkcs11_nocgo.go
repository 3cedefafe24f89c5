//go:build !cgo

package baseline

import (
	"errors"
	"time"
)

// HSMKey names a private key in a PKCS#11 token (see the cgo build).
type HSMKey struct {
	Module, Token, PINFile, Label string
}

// RunHSMSign needs cgo, as the server's PKCS#11 backend does.
func RunHSMSign(HSMKey, Alg, int, time.Duration, int) (*Result, error) {
	return nil, errors.New("hsm baseline: built without cgo: PKCS#11 needs cgo (CGO_ENABLED=1)")
}
