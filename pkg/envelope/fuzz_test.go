package envelope

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"signsvr.dev/signsvr/pkg/cms"
)

// FuzzOpen feeds Open and OpenAndVerify arbitrary input with real keys, seeded with
// messages addressed to those keys (so mutations reach the key unwrap and the content
// decryption) and with the OpenSSL- and gmsm-made seeds of pkg/cms; the KEK and the
// password of the OpenSSL-made kekri and pwri seeds open them too. Nothing may panic,
// and every error must be one of the documented kinds.
func FuzzOpen(f *testing.F) {
	fx := getFixture(f)
	for _, der := range seedObjects(f) {
		f.Add(der)
	}
	files, _ := filepath.Glob(filepath.Join("..", "cms", "testdata", "envelopes", "*.der"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	openers := []*party{fx.rsa, fx.ec256, fx.sm2a}
	kek := KEKRecipient{ID: []byte("kek-1"), Key: AESKey{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := Open(in, kek, nil, nil)
		checkOpenError(t, err)
		// The seeds' 2048 iterations, twice at most: each try costs milliseconds.
		_, err = Open(in, Password("seed-password"), nil, &OpenOptions{MaxPBKDF2Iterations: 4096})
		checkOpenError(t, err)
		for _, p := range openers {
			_, err := Open(in, p.opener(t), p.cert, &OpenOptions{AllowLegacy: true})
			checkOpenError(t, err)
			_, err = OpenAndVerify(in, p.opener(t), p.cert, nil, nil)
			checkOpenError(t, err)
		}
	})
}

func checkOpenError(t *testing.T, err error) {
	t.Helper()
	switch {
	case err == nil, err == ErrDecrypt, err == ErrNoRecipient, err == ErrKeyType,
		errors.Is(err, cms.ErrMalformed), errors.Is(err, cms.ErrUnsupported):
	default:
		t.Fatalf("undocumented error kind: %v", err)
	}
}
