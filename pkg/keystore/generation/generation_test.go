package generation_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/generation"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

func innerStore(t *testing.T, names ...string) keystore.Store {
	t.Helper()
	ca, err := devpki.NewCA(devpki.ECDSAP256, "generation test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var entries []soft.Entry
	for _, n := range names {
		key, cert, err := ca.Issue(devpki.ECDSAP256, devpki.LeafOptions{CommonName: n, Usage: keystore.UsageDecrypt, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, soft.Entry{Name: n, Key: key, Chain: append([]*smx509.Certificate{cert}, ca.Chain...), Usages: keystore.UsageDecrypt})
	}
	s, err := soft.NewFromKeys(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenerations(t *testing.T) {
	ctx := context.Background()
	inner := innerStore(t, "enc@2025", "enc@2026", "plain")
	s, err := generation.New(ctx, inner, []generation.Spec{
		{Name: "enc", ID: "2025", State: keystore.DecryptOnly, Inner: "enc@2025"},
		{Name: "enc", ID: "2026", State: keystore.Active, Inner: "enc@2026"},
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Key(ctx, "enc")
	if err != nil {
		t.Fatal(err)
	}
	active, _ := inner.Key(ctx, "enc@2026")
	if k.Name() != "enc" || !k.Chain()[0].Equal(active.Chain()[0]) || !keystore.IsGoNative(k) {
		t.Errorf("enc is not its active generation under its own name: %s", k.Name())
	}
	gens := k.(keystore.GenerationalKey).Generations()
	if len(gens) != 2 || gens[0].ID != "2026" || gens[0].State != keystore.Active || gens[1].ID != "2025" || gens[1].State != keystore.DecryptOnly {
		t.Errorf("generations: %+v", gens)
	}
	if _, err := s.Key(ctx, "enc@2025"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("a generation's inner name: %v, want not found", err)
	}
	if p, err := s.Key(ctx, "plain"); err != nil || p.Name() != "plain" {
		t.Errorf("a key without generations: %v", err)
	}
	keys, _ := s.Keys(ctx)
	var names []string
	for _, k := range keys {
		names = append(names, k.Name())
	}
	if strings.Join(names, ",") != "enc,plain" {
		t.Errorf("Keys: %v", names)
	}
}

func TestGenerationsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []generation.Spec
		want  string
	}{
		{"two active", []generation.Spec{{Name: "enc", ID: "1", Inner: "a"}, {Name: "enc", ID: "2", Inner: "b"}}, "two active"},
		{"none active", []generation.Spec{{Name: "enc", ID: "1", State: keystore.DecryptOnly, Inner: "a"}}, "no active"},
		{"id twice", []generation.Spec{{Name: "enc", ID: "1", Inner: "a"}, {Name: "enc", ID: "1", State: keystore.Retired, Inner: "b"}}, "twice"},
		{"missing key", []generation.Spec{{Name: "enc", ID: "1", Inner: "nope"}}, "not found"},
		{"name also plain", []generation.Spec{{Name: "plain", ID: "1", Inner: "a"}}, "with and without"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := generation.New(context.Background(), innerStore(t, "a", "b", "plain"), tc.specs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
