package multi_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
	"signsvr.dev/signsvr/pkg/keystore/multi"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// softStore makes a soft store with one key per name, each of the given kind.
func softStore(t *testing.T, ca *keystoretest.CA, kind string, u keystore.Usage, names ...string) *soft.Store {
	t.Helper()
	var entries []soft.Entry
	for _, n := range names {
		k := keystoretest.GenerateKey(t, kind)
		cert := ca.Issue(t, n, k.Public(), u.Has(keystore.UsageSign), u.Has(keystore.UsageDecrypt), 0)
		entries = append(entries, soft.Entry{Name: n, Key: k, Chain: []*smx509.Certificate{cert, ca.Cert}, Usages: u})
	}
	s, err := soft.NewFromKeys(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flaky is a store that can be switched down, as an HSM token can be.
type flaky struct {
	keystore.Store
	down   atomic.Bool
	closed atomic.Int32
}

func (f *flaky) Health(context.Context) error {
	if f.down.Load() {
		return errors.New("token unplugged") // deliberately not wrapping ErrUnavailable
	}
	return nil
}

func (f *flaky) Close() error {
	f.closed.Add(1)
	return f.Store.Close()
}

func TestCombinedStore(t *testing.T) {
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	both := keystore.UsageSign | keystore.UsageDecrypt
	a := softStore(t, ca, "ECDSA-P256", both, "b-p256", "d-p256")
	hsm := &flaky{Store: softStore(t, ca, "RSA-2048", both, "a-rsa", "c-rsa")}
	sm2 := softStore(t, ca, "SM2", both, "e-sm2")
	s, err := multi.New(t.Context(), multi.Part{Backend: "soft", Store: a}, multi.Part{Backend: "pkcs11", Store: hsm},
		multi.Part{Backend: "soft", Store: sm2})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Name())
	}
	if got := strings.Join(names, ","); got != "a-rsa,b-p256,c-rsa,d-p256,e-sm2" {
		t.Fatalf("Keys = %s, want every part's keys sorted by name", got)
	}
	for _, tc := range []struct{ name, backend string }{
		{"a-rsa", "pkcs11"}, {"b-p256", "soft"}, {"c-rsa", "pkcs11"}, {"e-sm2", "soft"}, {"nothing", ""},
	} {
		if got := s.Backend(tc.name); got != tc.backend {
			t.Errorf("Backend(%s) = %q, want %q", tc.name, got, tc.backend)
		}
	}
	// The key is the part's own value, not a wrapper.
	k, err := s.Key(t.Context(), "c-rsa")
	if err != nil {
		t.Fatal(err)
	}
	if own, _ := hsm.Key(t.Context(), "c-rsa"); own != k {
		t.Error("Key returned something other than the part's key")
	}
	if _, err := s.Key(t.Context(), "nothing"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("unknown key: %v, want ErrNotFound", err)
	}

	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health with every part up: %v", err)
	}
	hsm.down.Store(true)
	err = s.Health(t.Context())
	if !errors.Is(err, keystore.ErrUnavailable) || !strings.Contains(err.Error(), "pkcs11 store") || !strings.Contains(err.Error(), "token unplugged") {
		t.Fatalf("Health with the HSM down = %v, want ErrUnavailable naming the pkcs11 store and its cause", err)
	}
	hsm.down.Store(false)
	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health after the HSM came back: %v", err)
	}

	keystoretest.Run(t, s, keystoretest.Options{Require: []keystoretest.Want{
		{Algorithm: "RSA-2048", Usage: both}, {Algorithm: "ECDSA-P256", Usage: both}, {Algorithm: "SM2", Usage: both},
	}})

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if hsm.closed.Load() != 1 {
		t.Errorf("Close closed the HSM part %d times, want once", hsm.closed.Load())
	}
}

func TestNewRefusesDuplicateNames(t *testing.T) {
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	a := softStore(t, ca, "ECDSA-P256", keystore.UsageSign, "shared", "only-a")
	b := softStore(t, ca, "ECDSA-P256", keystore.UsageSign, "only-b", "shared")
	_, err := multi.New(t.Context(), multi.Part{Backend: "soft", Store: a}, multi.Part{Backend: "pkcs11", Store: b})
	if err == nil || !strings.Contains(err.Error(), `"shared"`) || !strings.Contains(err.Error(), "soft") || !strings.Contains(err.Error(), "pkcs11") {
		t.Fatalf("New with a duplicate name: %v, want an error naming the key and both stores", err)
	}
	if _, err := multi.New(t.Context(), multi.Part{Backend: "soft"}); err == nil {
		t.Fatal("New accepted a part without a store")
	}
}

func TestEmptyCombination(t *testing.T) {
	s, err := multi.New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys(t.Context())
	if err != nil || len(keys) != 0 {
		t.Fatalf("Keys of nothing = %v, %v", keys, err)
	}
	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health of nothing: %v", err)
	}
}
