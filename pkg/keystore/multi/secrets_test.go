package multi

import (
	"context"
	"errors"
	"testing"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/secret"
)

func TestSecrets(t *testing.T) {
	mk := func(name string, id byte) keystore.SecretStore {
		k, err := secret.NewKey(name, []byte{id}, make([]byte, 16))
		if err != nil {
			t.Fatal(err)
		}
		s, err := secret.NewFromKeys(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ss := Secrets{mk("a", 1), mk("b", 2)}
	for _, n := range []string{"a", "b"} {
		if k, err := ss.SecretKey(context.Background(), n); err != nil || k.Name() != n {
			t.Errorf("SecretKey(%q): %v", n, err)
		}
	}
	if _, err := ss.SecretKey(context.Background(), "c"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := (Secrets{}).SecretKey(context.Background(), "a"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("empty: %v", err)
	}
}
