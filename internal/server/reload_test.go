package server_test

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/generation"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
)

// TestReloadDrainsTheOldState: a call in flight when the state is replaced finishes
// on the old state (its keys), new calls get the new one, and the old state is
// released only after that call ended; a reload that would turn TLS on is refused.
func TestReloadDrainsTheOldState(t *testing.T) {
	entered, unblock := make(chan struct{}), make(chan struct{})
	var oldReleased, newReleased atomic.Bool
	var armed atomic.Bool // the next ListKeys blocks
	blocker := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasSuffix(info.FullMethod, "/ListKeys") && armed.CompareAndSwap(true, false) {
			close(entered)
			<-unblock
		}
		return h(ctx, req)
	}
	ts := startServer(t, func(o *server.Options) {
		o.Interceptors = []grpc.UnaryServerInterceptor{blocker}
		o.Release = func() { oldReleased.Store(true) }
	})
	before := len(ts.listKeys(t))
	armed.Store(true)

	type result struct {
		n   int
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		r, err := ts.keys.ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{})
		inflight <- result{len(r.GetKeys()), err}
	}()
	<-entered
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release) // a failing test must not leave the call blocked

	k := keyFile(t, "rsa-sign")
	store, err := soft.New([]soft.KeyConfig{{Name: "only", KeyFile: k.KeyPath, CertFile: k.CertPath, Usages: []string{"sign"}}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Config{Anchors: pki.Roots, Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	next := server.Options{Store: store, Backend: "soft", Validator: v, Development: true, Authorizer: server.AllowAll,
		Release: func() { newReleased.Store(true) }}
	if err := ts.srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := ts.listKeys(t); len(got) != 1 || got[0].GetName() != "only" {
		t.Fatalf("after the reload ListKeys gives %d keys, want the new state's one", len(got))
	}
	if oldReleased.Load() {
		t.Fatal("the old state was released while a call still used it")
	}
	release()
	r := <-inflight
	if r.err != nil || r.n != before {
		t.Fatalf("the call in flight across the reload: %d keys, %v; want the old state's %d", r.n, r.err, before)
	}
	eventually(t, "the old state is released", oldReleased.Load)

	withTLS := next
	withTLS.TLS = &tls.Config{}
	if err := ts.srv.Reload(withTLS); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("a reload that turns TLS on: %v", err)
	}
	if got := ts.listKeys(t); len(got) != 1 || newReleased.Load() {
		t.Fatal("a refused reload changed the state")
	}
}

func (ts *testServer) listKeys(t *testing.T) []*signsvrv1.KeyInfo {
	t.Helper()
	r, err := ts.keys.ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetKeys()
}

// TestGenerationIsNamedInAnswerAndAudit: a Sign with a key that has generations
// answers, and audits, the generation and certificate serial it used.
func TestGenerationIsNamedInAnswerAndAudit(t *testing.T) {
	k := keyFile(t, "ecdsa-sign")
	inner, err := soft.New([]soft.KeyConfig{{Name: "sig@2026", KeyFile: k.KeyPath, CertFile: k.CertPath, Usages: []string{"sign"}}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := generation.New(context.Background(), inner, []generation.Spec{{Name: "sig", ID: "2026", Inner: "sig@2026"}})
	if err != nil {
		t.Fatal(err)
	}
	as := startAuditedServer(t, nil, func(o *server.Options) { o.Store = store })
	r, err := as.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "sig", Data: []byte("generation")})
	if err != nil {
		t.Fatal(err)
	}
	_, chain := loadKeyFile(t, k)
	serial := chain[0].SerialNumber.Text(16)
	if u := r.GetKeyUsed(); u.GetKey() != "sig" || u.GetGeneration() != "2026" || u.GetCertificateSerial() != serial {
		t.Errorf("Sign answers key_used %v, want sig 2026 %s", u, serial)
	}
	recs := as.stopAndRead(t)
	if len(recs) != 1 || recs[0]["key"] != "sig" || recs[0]["key_generation"] != "2026" || recs[0]["key_serial"] != serial {
		t.Errorf("audit records: %v", recs)
	}
}

// TestDecryptPicksTheGenerationTheEnvelopeNames: an envelope made to an older
// generation's certificate, naming it by issuer and serial or by subject key
// identifier, opens under the key name; the answer names that generation. A
// retired generation opens nothing.
func TestDecryptPicksTheGenerationTheEnvelopeNames(t *testing.T) {
	oldK, newK := keyFile(t, "rsa-enc"), keyFile(t, "ecdsa-enc")
	for _, state := range []keystore.GenerationState{keystore.DecryptOnly, keystore.Retired} {
		inner, err := soft.New([]soft.KeyConfig{
			{Name: "enc@1", KeyFile: oldK.KeyPath, CertFile: oldK.CertPath, Usages: []string{"decrypt"}},
			{Name: "enc@2", KeyFile: newK.KeyPath, CertFile: newK.CertPath, Usages: []string{"decrypt"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		store, err := generation.New(context.Background(), inner, []generation.Spec{
			{Name: "enc", ID: "2", Inner: "enc@2"}, {Name: "enc", ID: "1", State: state, Inner: "enc@1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		ts := startServer(t, func(o *server.Options) { o.Store = store })
		_, chain := loadKeyFile(t, oldK)
		for _, rid := range []signsvrv1.RecipientIdType{signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_ISSUER_AND_SERIAL, signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_SUBJECT_KEY_ID} {
			env, err := ts.env.Envelope(ctxT(t), &signsvrv1.EnvelopeRequest{RecipientCerts: [][]byte{chain[0].Raw}, Data: []byte("old"),
				Options: &signsvrv1.EnvelopeOptions{RecipientId: rid}})
			if err != nil {
				t.Fatal(err)
			}
			r, err := ts.env.Decrypt(ctxT(t), &signsvrv1.DecryptRequest{Key: "enc", Cms: env.GetCms()})
			switch {
			case state == keystore.Retired && err == nil:
				t.Errorf("%s: a retired generation opened an envelope", rid)
			case state == keystore.DecryptOnly && (err != nil || string(r.GetData()) != "old" || r.GetKeyUsed().GetGeneration() != "1" ||
				r.GetKeyUsed().GetCertificateSerial() != chain[0].SerialNumber.Text(16)):
				t.Errorf("%s: %v %v", rid, r, err)
			}
		}
	}
}
