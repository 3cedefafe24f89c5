//go:build !cgo

package pkcs11

func openModule(string) (module, error) { return nil, ErrNoCgo }
