package envelope

import (
	"crypto"
	"crypto/ecdh"
	"errors"
	"io"
	"testing"
)

// errTokenDown stands for an HSM backend's "unavailable" sentinel.
var errTokenDown = errors.New("token is down")

type downDecrypter struct{ crypto.Signer }

func (d downDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errTokenDown
}

type downAgreer struct{}

func (downAgreer) ECDH(*ecdh.PublicKey) ([]byte, error) { return nil, errTokenDown }

// A key whose backend is down is not "cannot decrypt": with BackendError the caller
// gets the backend's error to retry on; without it, the one ErrDecrypt as before.
func TestOpenPassesBackendErrors(t *testing.T) {
	f := getFixture(t)
	content := []byte("a declaration")
	isDown := func(err error) bool { return errors.Is(err, errTokenDown) }
	for _, tc := range []struct {
		name string
		p    *party
		key  any
	}{
		{"rsa key transport", f.rsa, downDecrypter{f.rsa.key}},
		{"sm2 key transport", f.sm2a, downDecrypter{f.sm2a.key}},
		{"ecdh key agreement", f.ec256, downAgreer{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := Envelope(content, certs(tc.p), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(der, tc.key, tc.p.cert, &OpenOptions{BackendError: isDown})
			if !errors.Is(err, errTokenDown) || errors.Is(err, ErrDecrypt) {
				t.Fatalf("with BackendError: %v, want the backend's error", err)
			}
			if _, err := Open(der, tc.key, tc.p.cert, nil); !errors.Is(err, ErrDecrypt) || errors.Is(err, errTokenDown) {
				t.Fatalf("without BackendError: %v, want ErrDecrypt only", err)
			}
			// A predicate that does not match leaves a failing key a decryption failure.
			never := func(error) bool { return false }
			if _, err := Open(der, tc.key, tc.p.cert, &OpenOptions{BackendError: never}); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("non-matching BackendError: %v, want ErrDecrypt", err)
			}
			// And the real key still opens it with the predicate set.
			got, err := Open(der, tc.p.opener(t), tc.p.cert, &OpenOptions{BackendError: isDown})
			if err != nil || string(got) != string(content) {
				t.Fatalf("real key: %q, %v", got, err)
			}
		})
	}
}
