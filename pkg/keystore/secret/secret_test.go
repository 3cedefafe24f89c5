package secret

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"signsvr.dev/signsvr/pkg/keystore"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("k16", "000102030405060708090a0b0c0d0e0f\n")
	s, err := New([]KeyConfig{{Name: "kek", KeyFile: good, KeyID: "6b656b2d31"}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.SecretKey(context.Background(), "kek")
	if err != nil || k.KeySize() != 16 || !bytes.Equal(k.KeyID(), []byte("kek-1")) {
		t.Fatalf("SecretKey: %v", err)
	}
	cek := bytes.Repeat([]byte{7}, 32)
	w, err := k.WrapKey(context.Background(), cek)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := k.UnwrapKey(context.Background(), w); err != nil || !bytes.Equal(back, cek) {
		t.Fatalf("UnwrapKey: %v", err)
	}
	if _, err := s.SecretKey(context.Background(), "other"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	for _, c := range []struct {
		name string
		keys []KeyConfig
		want string
	}{
		{"missing file", []KeyConfig{{Name: "a", KeyFile: filepath.Join(dir, "none"), KeyID: "01"}}, "no such file"},
		{"not hex", []KeyConfig{{Name: "a", KeyFile: write("nothex", "zz"), KeyID: "01"}}, "not hexadecimal"},
		{"short key", []KeyConfig{{Name: "a", KeyFile: write("short", "0102"), KeyID: "01"}}, "16, 24 or 32 bytes"},
		{"no id", []KeyConfig{{Name: "a", KeyFile: good}}, "no key_id"},
		{"same name", []KeyConfig{{Name: "a", KeyFile: good, KeyID: "01"}, {Name: "a", KeyFile: good, KeyID: "02"}}, "configured twice"},
		{"same id", []KeyConfig{{Name: "a", KeyFile: good, KeyID: "01"}, {Name: "b", KeyFile: good, KeyID: "01"}}, "same key id"},
	} {
		if _, err := New(c.keys); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
