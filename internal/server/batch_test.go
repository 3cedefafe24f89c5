package server_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"runtime"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore"
)

// panicKey's signer panics, as a buggy backend could.
type panicKey struct{ keystore.Key }

type panicSigner struct{ crypto.Signer }

func (panicSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { panic("backend bug") }

func (k *panicKey) Signer(ctx context.Context) crypto.Signer { return panicSigner{k.Key.Signer(ctx)} }

// Batches run their items on several cores; results must keep the input order, bad
// items must fail alone, and a panic in a worker must become Internal, not a crash.
func TestBatchParallelKeepsOrder(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		old := runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(old) })
	}
	ts := startServer(t, func(o *server.Options) {
		k, err := o.Store.Key(context.Background(), "ecdsa-sign")
		if err != nil {
			t.Fatal(err)
		}
		o.Store = &wrapStore{Store: o.Store, keys: map[string]keystore.Key{"panicky": &panicKey{k}}}
	})
	ctx := ctxT(t)
	const n = 96
	items := make([]*signsvrv1.SignRequest, n)
	for i := range items {
		key := families[i%len(families)] + "-sign"
		if families[i%len(families)] == "rsa" && i%2 == 0 {
			key = "ecdsa-sign" // fewer slow RSA signatures
		}
		if i%7 == 3 {
			key = "no-such-key"
		}
		items[i] = &signsvrv1.SignRequest{Key: key, Data: []byte(fmt.Sprintf("item %d", i))}
	}
	resp, err := ts.sign.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != n {
		t.Fatalf("%d results for %d items", len(resp.GetResults()), n)
	}
	var verify []*signsvrv1.VerifyRequest
	for i, r := range resp.GetResults() {
		if i%7 == 3 {
			if r.GetError().GetCode() != uint32(codes.NotFound) {
				t.Fatalf("item %d: got %v, want its own NotFound", i, r)
			}
			continue
		}
		if r.GetError() != nil {
			t.Fatalf("item %d failed: %v", i, r.GetError())
		}
		verify = append(verify, &signsvrv1.VerifyRequest{Cms: r.GetCms()})
	}
	vr, err := ts.sign.VerifyBatch(ctx, &signsvrv1.VerifyBatchRequest{Items: verify})
	if err != nil {
		t.Fatal(err)
	}
	j := 0
	for i := range items {
		if i%7 == 3 {
			continue
		}
		res := vr.GetResults()[j].GetResult()
		if !res.GetVerified() || !bytes.Equal(res.GetContent(), items[i].GetData()) {
			t.Fatalf("result %d (item %d) is not item %d's signature: %q", j, i, i, res.GetContent())
		}
		j++
	}

	// A panicking signer in the middle of a batch: Internal, and the server goes on.
	items[n/2] = &signsvrv1.SignRequest{Key: "panicky", Data: []byte("boom")}
	_, err = ts.sign.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: items})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panicking item: got %v, want Internal", err)
	}
	if _, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("still up")}); err != nil {
		t.Fatalf("server after a batch worker panicked: %v", err)
	}
}
