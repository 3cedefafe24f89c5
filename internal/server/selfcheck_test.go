package server_test

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
)

// The server skips pkg/sign's self-check only for keys that say they are Go-native
// (keystore.GoNativeKey): an HSM key, or any key that does not say so, still has every
// signature verified before it leaves, so a misbehaving signer is caught.

// corruptSigner signs something other than what it was given, as a faulty HSM could:
// the signature is well-formed but does not verify.
type corruptSigner struct{ crypto.Signer }

func (s corruptSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	d := append([]byte(nil), digest...)
	d[0] ^= 0xff
	return s.Signer.Sign(r, d, opts)
}

// faultyKey is a key that is not Go-native (like a PKCS#11 key, or a wrapper that does
// not forward GoNative) whose signer misbehaves.
type faultyKey struct{ keystore.Key }

func (k *faultyKey) Signer(ctx context.Context) crypto.Signer {
	return corruptSigner{k.Key.Signer(ctx)}
}

// lyingKey says it is Go-native while its signer misbehaves: the server must then
// skip the check (the method, not the type, decides).
type lyingKey struct{ faultyKey }

func (k *lyingKey) GoNative() bool { return true }

// wrapStore hands out wrapped keys, one wrapper per name (the server caches prepared
// keys while the store returns the same Key).
type wrapStore struct {
	keystore.Store
	keys map[string]keystore.Key
}

func (w *wrapStore) Key(ctx context.Context, name string) (keystore.Key, error) {
	if k, ok := w.keys[name]; ok {
		return k, nil
	}
	return w.Store.Key(ctx, name)
}

func TestSelfCheckFollowsGoNative(t *testing.T) {
	if _, ok := any((*pkcs11.Key)(nil)).(keystore.GoNativeKey); ok {
		t.Fatal("PKCS#11 keys must not claim to be Go-native: their signatures are checked")
	}
	ts := startServer(t, func(o *server.Options) {
		ws := &wrapStore{Store: o.Store, keys: map[string]keystore.Key{}}
		for _, fam := range families {
			k, err := o.Store.Key(context.Background(), fam+"-sign")
			if err != nil {
				t.Fatal(err)
			}
			if !keystore.IsGoNative(k) {
				t.Fatalf("soft key %s is not Go-native", k.Name())
			}
			ws.keys["faulty-"+fam] = &faultyKey{k}
			ws.keys["lying-"+fam] = &lyingKey{faultyKey{k}}
		}
		o.Store = ws
	})
	data := []byte("a document")
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			ctx := ctxT(t)
			// A healthy soft key signs, without the self-check, correctly.
			good, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: fam + "-sign", Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: good.GetCms()}); err != nil || !v.GetVerified() {
				t.Fatalf("soft key signature: %v %v", err, v)
			}
			// Not Go-native and misbehaving: caught, nothing returned.
			_, err = ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "faulty-" + fam, Data: data})
			if status.Code(err) != codes.Internal {
				t.Fatalf("faulty signer: got %v, want Internal (self-check failed)", err)
			}
			if !strings.Contains(ts.logs.String(), "produced an invalid signature") {
				t.Fatal("the self-check failure is not in the log")
			}
			// The same in a batch: the whole call fails (an internal error).
			_, err = ts.sign.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: []*signsvrv1.SignRequest{
				{Key: fam + "-sign", Data: data}, {Key: "faulty-" + fam, Data: data}}})
			if status.Code(err) != codes.Internal {
				t.Fatalf("faulty signer in a batch: got %v, want Internal", err)
			}
			// SignRaw checks too: a raw signature is as exposed to a faulty HSM.
			_, err = ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "faulty-" + fam, Data: data})
			if status.Code(err) != codes.Internal {
				t.Fatalf("faulty signer, SignRaw: got %v, want Internal (self-check failed)", err)
			}
			if _, err := ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "lying-" + fam, Data: data}); err != nil {
				t.Fatalf("SignRaw with a Go-native key is not checked, so no error expected: %v", err)
			}
			// Claiming GoNative switches the check off: the bad signature goes out, and
			// only Verify finds it. (This is why only the soft store may claim it.)
			bad, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "lying-" + fam, Data: data})
			if err != nil {
				t.Fatalf("a Go-native key is not checked, so no error expected: %v", err)
			}
			v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: bad.GetCms()})
			if err != nil {
				t.Fatal(err)
			}
			if v.GetVerified() || v.GetSigners()[0].GetSignature().GetValid() {
				t.Fatal("the corrupted signature verified")
			}
		})
	}
}

// lateFaultSigner signs correctly the first good times, then corrupts every signature,
// as a device that starts to fail while serving.
type lateFaultSigner struct {
	crypto.Signer
	n    *atomic.Int64
	good int64
}

func (s lateFaultSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if s.n.Add(1) <= s.good {
		return s.Signer.Sign(r, digest, opts)
	}
	return corruptSigner{s.Signer}.Sign(r, digest, opts)
}

// sampledKey is a non-Go-native key with a backend self-check policy
// (keystore.SelfCheckedKey), as PKCS#11 keys are.
type sampledKey struct {
	keystore.Key
	check *keystore.SelfCheck
	n     atomic.Int64
	good  int64
}

func (k *sampledKey) Signer(ctx context.Context) crypto.Signer {
	return lateFaultSigner{k.Key.Signer(ctx), &k.n, k.good}
}

func (k *sampledKey) SelfCheck() *keystore.SelfCheck { return k.check }

// TestSelfCheckSampled: with self_check auto, an EC or SM2 key's signatures are
// checked for the first 32, then one in 64; the first failed check makes every later
// one checked. An RSA key's are all checked.
func TestSelfCheckSampled(t *testing.T) {
	const good = 40 // the device fails from the 41st signature on
	keys := map[string]*sampledKey{}
	ts := startServer(t, func(o *server.Options) {
		ws := &wrapStore{Store: o.Store, keys: map[string]keystore.Key{}}
		for _, fam := range families {
			k, err := o.Store.Key(context.Background(), fam+"-sign")
			if err != nil {
				t.Fatal(err)
			}
			sk := &sampledKey{Key: k, check: keystore.NewSelfCheck(keystore.SelfCheckAuto, k.Public()), good: good}
			keys[fam] = sk
			ws.keys["sampled-"+fam] = sk
		}
		o.Store = ws
	})
	data := []byte("a document")
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			ctx := ctxT(t)
			var refused []int
			for i := 1; i <= 70; i++ {
				req := &signsvrv1.SignRequest{Key: "sampled-" + fam, Data: data}
				var err error
				if i%2 == 0 {
					_, err = ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: req.Key, Data: data})
				} else {
					_, err = ts.sign.Sign(ctx, req)
				}
				switch status.Code(err) {
				case codes.OK:
				case codes.Internal:
					refused = append(refused, i)
				default:
					t.Fatalf("signature %d: %v", i, err)
				}
			}
			want := []int{64, 65, 66, 67, 68, 69, 70} // unchecked 41..63 went out
			if fam == "rsa" {
				want = nil
				for i := good + 1; i <= 70; i++ {
					want = append(want, i)
				}
			}
			if fmt.Sprint(refused) != fmt.Sprint(want) {
				t.Fatalf("refused %v, want %v", refused, want)
			}
		})
	}
	if !strings.Contains(ts.logs.String(), "every signature of this key is checked from now on") {
		t.Fatal("the failed self-check is not logged")
	}
}
