package keystore_test

import (
	"context"
	"crypto"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
)

type certKey struct{ chain []*smx509.Certificate }

func (k certKey) Name() string                                 { return "k" }
func (k certKey) Public() crypto.PublicKey                     { return nil }
func (k certKey) Chain() []*smx509.Certificate                 { return k.chain }
func (k certKey) Usages() keystore.Usage                       { return keystore.UsageSign }
func (k certKey) Signer(context.Context) crypto.Signer         { return nil }
func (k certKey) Decrypter(context.Context) crypto.Decrypter   { return nil }
func (k certKey) KeyAgreer(context.Context) keystore.KeyAgreer { return nil }

func TestExpiresSoon(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	withNotAfter := func(na time.Time) keystore.Key {
		return certKey{[]*smx509.Certificate{{NotAfter: na}}}
	}
	tests := []struct {
		name      string
		key       keystore.Key
		threshold time.Duration
		want      bool
	}{
		{"far", withNotAfter(now.Add(365 * day)), 0, false},
		{"31 days, default 30", withNotAfter(now.Add(31 * day)), 0, false},
		{"29 days, default 30", withNotAfter(now.Add(29 * day)), 0, true},
		{"exactly at threshold", withNotAfter(now.Add(30 * day)), 0, true},
		{"expired", withNotAfter(now.Add(-day)), 0, true},
		{"10 days, threshold 7", withNotAfter(now.Add(10 * day)), 7 * day, false},
		{"5 days, threshold 7", withNotAfter(now.Add(5 * day)), 7 * day, true},
		{"no certificate", certKey{}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := keystore.ExpiresSoon(tc.key, now, tc.threshold); got != tc.want {
				t.Errorf("ExpiresSoon = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAlgorithm(t *testing.T) {
	if got := keystore.Algorithm("not a key"); got != "" {
		t.Errorf("Algorithm(string) = %q", got)
	}
}
