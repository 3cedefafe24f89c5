package soft

import (
	"crypto"
	"crypto/rand"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"

	"signsvr.dev/signsvr/pkg/keystore"
)

// The cached-Z path must give signatures that gmsm verifies exactly as it verifies
// its own, for every way of calling the signer; other user IDs must not get the
// default Z.
func TestSM2SignerConventions(t *testing.T) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSM2Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("the whole message, Z is prepended by the signer")
	otherUID := []byte("alice@example.com")
	e := func(uid []byte) []byte {
		h, err := sm2.CalculateSM2Hash(&priv.PublicKey, msg, uid)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		name string
		sign func() ([]byte, error)
		uid  []byte // nil: default
	}{
		{"Sign/DefaultSM2SignerOpts", func() ([]byte, error) { return s.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts) }, nil},
		{"Sign/NewSM2SignerOption(true,nil)", func() ([]byte, error) { return s.Sign(rand.Reader, msg, sm2.NewSM2SignerOption(true, nil)) }, nil},
		{"Sign/other uid", func() ([]byte, error) { return s.Sign(rand.Reader, msg, sm2.NewSM2SignerOption(true, otherUID)) }, otherUID},
		{"Sign/deterministic", func() ([]byte, error) { return s.Sign(nil, msg, sm2.DefaultSM2SignerOpts) }, nil},
		{"Sign/precomputed e", func() ([]byte, error) { return s.Sign(rand.Reader, e(nil), sm2.NewSM2SignerOption(false, nil)) }, nil},
		{"SignMessage/default", func() ([]byte, error) { return s.SignMessage(rand.Reader, msg, sm2.DefaultSM2SignerOpts) }, nil},
		{"SignMessage/nil opts", func() ([]byte, error) { return s.SignMessage(rand.Reader, msg, nil) }, nil},
		{"SignMessage/hash opts", func() ([]byte, error) { return s.SignMessage(rand.Reader, msg, crypto.Hash(0)) }, nil},
		{"SignMessage/other uid", func() ([]byte, error) {
			return s.SignMessage(rand.Reader, msg, sm2.NewSM2SignerOption(true, otherUID))
		}, otherUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := tt.sign()
			if err != nil {
				t.Fatal(err)
			}
			if !sm2.VerifyASN1WithSM2(&priv.PublicKey, tt.uid, msg, sig) {
				t.Fatal("signature does not verify with the expected user ID")
			}
			wrong := []byte("1234567812345678")
			if tt.uid == nil {
				wrong = otherUID
			}
			if sm2.VerifyASN1WithSM2(&priv.PublicKey, wrong, msg, sig) {
				t.Fatal("signature verifies with another user ID")
			}
		})
	}
	// The cached Z is the default user ID's.
	z, err := sm2.CalculateZA(&priv.PublicKey, []byte("1234567812345678"))
	if err != nil {
		t.Fatal(err)
	}
	if string(z) != string(s.z) || len(s.z) != sm3.Size {
		t.Fatal("cached Z is not the default user ID's")
	}
}

func TestKeysAreGoNative(t *testing.T) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &Key{name: "k", signer: priv}
	if !keystore.IsGoNative(k) {
		t.Fatal("a soft key must say it is Go-native")
	}
	var wrapped keystore.Key = struct{ keystore.Key }{k} // a wrapper that does not forward the method
	if keystore.IsGoNative(wrapped) {
		t.Fatal("a wrapper without GoNative must count as not Go-native")
	}
}

func BenchmarkSM2Sign(b *testing.B) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s, err := newSM2Signer(priv)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 1024)
	for _, bc := range []struct {
		name   string
		signer crypto.Signer
	}{{"gmsm", priv}, {"cachedZ", s}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.signer.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
