package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
	"signsvr.dev/signsvr/pkg/keystore/multi"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// TestListKeysFlagsExpiringCertificates: ListKeys flags a key whose certificate ends
// within the configured threshold (30 days by default), by the server's clock, and
// names each key's backend when the store combines several.
func TestListKeysFlagsExpiringCertificates(t *testing.T) {
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	var entries []soft.Entry
	for _, k := range []struct {
		name string
		life time.Duration
	}{{"short-lived", 20 * 24 * time.Hour}, {"long-lived", 400 * 24 * time.Hour}, {"expired", time.Hour}} {
		key := keystoretest.GenerateKey(t, "ECDSA-P256")
		cert := ca.Issue(t, k.name, key.Public(), true, false, k.life)
		entries = append(entries, soft.Entry{Name: k.name, Key: key, Chain: []*smx509.Certificate{cert}, Usages: keystore.UsageSign})
	}
	other, err := soft.NewFromKeys(entries...)
	if err != nil {
		t.Fatal(err)
	}
	now := ca.Now.Add(2 * time.Hour) // "expired" ended an hour ago
	for _, tc := range []struct {
		name      string
		threshold time.Duration
		soon      string // names flagged, sorted
	}{
		{"default 30 days", 0, "expired,short-lived"},
		{"10 days", 10 * 24 * time.Hour, "expired"},
		{"a year and a half", 550 * 24 * time.Hour, "expired,long-lived,short-lived"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(o *server.Options) {
				combined, err := multi.New(t.Context(), multi.Part{Backend: "soft", Store: o.Store}, multi.Part{Backend: "pkcs11", Store: other})
				if err != nil {
					t.Fatal(err)
				}
				o.Store, o.Backend, o.ExpiryWarning = combined, "", tc.threshold
				o.Now = func() time.Time { return now }
			})
			resp, err := ts.keys.ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var soon []string
			for _, k := range resp.GetKeys() {
				if k.GetExpiresSoon() {
					soon = append(soon, k.GetName())
				}
				want := "soft"
				if strings.Contains(k.GetName(), "lived") || k.GetName() == "expired" {
					want = "pkcs11"
				}
				if k.GetBackend() != want {
					t.Errorf("%s: backend %q, want %q", k.GetName(), k.GetBackend(), want)
				}
			}
			if got := strings.Join(soon, ","); got != tc.soon {
				t.Errorf("expires_soon on %q, want %q", got, tc.soon)
			}
			// The flag is computed per call: the cached key info stays unflagged.
			again, err := ts.keys.ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{Usage: signsvrv1.KeyUsage_KEY_USAGE_SIGN})
			if err != nil {
				t.Fatal(err)
			}
			var soon2 []string
			for _, k := range again.GetKeys() {
				if k.GetExpiresSoon() {
					soon2 = append(soon2, k.GetName())
				}
			}
			if strings.Join(soon2, ",") != tc.soon {
				t.Errorf("second call flags %v", soon2)
			}
		})
	}
}
