//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
)

// BenchmarkSign compares, on the same SoftHSM2 token and the same number of concurrent
// workers, signing through Key.Signer (pool, handle cache, DigestInfo / DER encoding)
// with direct C_Sign calls on one dedicated session per worker. The ratio of the two
// is the pool's overhead; the sessions= series shows how the pool scales.
//
//	go test -run '^$' -bench BenchmarkSign ./pkg/keystore/pkcs11/
func BenchmarkSign(b *testing.B) {
	hsm := newSoftHSM(b)
	hsm.initToken("bench")
	tc := hsm.tokenConfig("bench")
	ca := keystoretest.NewCA(b, "ECDSA-P256")
	keys := hsm.provision(b.Context(), tc, ca, []keyPlan{
		{"rsa", "RSA-2048", keystore.UsageSign, true},
		{"p256", "ECDSA-P256", keystore.UsageSign, true},
	})
	digest := sha256.Sum256([]byte("benchmark"))
	for _, name := range []string{"rsa", "p256"} {
		for _, n := range []int{1, 2, 4, 8} {
			tcN := tc
			tcN.PoolSize = n
			s, err := New(Config{Tokens: []TokenConfig{tcN}, Keys: keys}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			k, _ := s.Key(b.Context(), name)
			key := k.(*Key)
			b.Run(fmt.Sprintf("%s/pool/sessions=%d", name, n), func(b *testing.B) {
				parallel(b, n, func() error {
					_, err := key.Signer(b.Context()).Sign(rand.Reader, digest[:], crypto.SHA256)
					return err
				})
			})
			// Direct: the same token, one dedicated, logged-in session per worker,
			// C_SignInit + C_Sign with input prepared once.
			mech, data := mechanism{Type: ckmRSAPKCS}, append(append([]byte(nil), digestInfoPrefix[crypto.SHA256]...), digest[:]...)
			if name == "p256" {
				mech, data = mechanism{Type: ckmECDSA}, digest[:]
			}
			t := key.tok
			sessions := make([]sessionHandle, n)
			handles := make([]objectHandle, n)
			for i := range sessions {
				h, err := t.mod.OpenSession(t.slot)
				if err != nil {
					b.Fatal(err)
				}
				if err := t.ensureLogin(h); err != nil {
					b.Fatal(err)
				}
				if handles[i], err = findPrivateKey(t.mod, h, key.uri); err != nil {
					b.Fatal(err)
				}
				sessions[i] = h
			}
			var next sync.Mutex
			idx := 0
			b.Run(fmt.Sprintf("%s/direct/sessions=%d", name, n), func(b *testing.B) {
				idx = 0
				parallelWorker(b, n, func() func() error {
					next.Lock()
					i := idx % n
					idx++
					next.Unlock()
					return func() error {
						_, err := t.mod.Sign(sessions[i], mech, handles[i], data)
						return err
					}
				})
			})
			for _, h := range sessions {
				t.mod.CloseSession(h)
			}
			s.Close()
		}
	}
}

// parallel runs b.N calls of op spread over n goroutines.
func parallel(b *testing.B, n int, op func() error) {
	parallelWorker(b, n, func() func() error { return op })
}

func parallelWorker(b *testing.B, n int, worker func() func() error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	remaining := b.N
	b.ResetTimer()
	for g := 0; g < n; g++ {
		op := worker()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if remaining == 0 {
					mu.Unlock()
					return
				}
				remaining--
				mu.Unlock()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
