//go:build cgo

package server_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emmansun/gmsm/smx509"
	p11 "github.com/miekg/pkcs11"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
	"signsvr.dev/signsvr/pkg/trust"
)

// BenchmarkHSMSign compares signing through the server with signing on the token
// directly, on the same SoftHSM2 token with the same number of sessions, in one run:
//
//	<alg>/sessions=N/direct      N goroutines, each with its own session, calling
//	                             C_SignInit + C_Sign on the SHA-256 digest (RSA:
//	                             DigestInfo) of a 1 KiB document, as the server must
//	<alg>/sessions=N/server-cms  Sign (CMS SignedData) over in-process gRPC (bufconn)
//	                             with a pool of N sessions and 4N+4 calls in flight
//	<alg>/sessions=N/server-raw  SignRaw (a bare signature) the same way
//	<alg>/sessions=N/server-batch SignBatch, 64 CMS signatures per call, 2 calls in
//	                             flight; ns/op is per signature
//
// The ratio of ns/op, direct over server, is the share of the token's throughput the
// server delivers (the issue's target is at least 0.90 for Sign). Client, server and
// SoftHSM2 share the machine's cores, so every microsecond the server spends is taken
// from the token: a real HSM computes elsewhere. Run it as
//
//	go test -run '^$' -bench HSMSign -benchtime 2s -count 3 ./internal/server
//
// SIGNSVR_BENCH_SELF_CHECK=always|off sets the token's self_check (default auto).
func BenchmarkHSMSign(b *testing.B) {
	hsm := newBenchHSM(b)
	data := make([]byte, 1024)
	for i := range data {
		data[i] = byte(i)
	}
	for _, alg := range []string{"RSA-2048", "ECDSA-P256"} {
		for _, n := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("%s/sessions=%d", alg, n), func(b *testing.B) {
				b.Run("direct", func(b *testing.B) { hsm.benchDirect(b, alg, n, data) })
				srv := hsm.startServer(b, n)
				b.Run("server-cms", func(b *testing.B) {
					req := &signsvrv1.SignRequest{Key: alg, Data: data}
					parallel(b, inflight(n), func(ctx context.Context) error {
						_, err := srv.Sign(ctx, req)
						return err
					})
				})
				b.Run("server-raw", func(b *testing.B) {
					req := &signsvrv1.SignRawRequest{Key: alg, Data: data}
					parallel(b, inflight(n), func(ctx context.Context) error {
						_, err := srv.SignRaw(ctx, req)
						return err
					})
				})
				b.Run("server-batch", func(b *testing.B) {
					req := &signsvrv1.SignBatchRequest{}
					for range batchItems {
						req.Items = append(req.Items, &signsvrv1.SignRequest{Key: alg, Data: data})
					}
					parallelBatch(b, 2, batchItems, func(ctx context.Context) error {
						resp, err := srv.SignBatch(ctx, req)
						for _, r := range resp.GetResults() {
							if e := r.GetError(); e != nil && err == nil {
								err = fmt.Errorf("batch item: %s", e.GetMessage())
							}
						}
						return err
					})
				})
			})
		}
	}
}

// parallel runs b.N calls of fn from workers goroutines and reports calls per second.
func parallel(b *testing.B, workers int, fn func(context.Context) error) {
	b.Helper()
	parallelBatch(b, workers, 1, fn)
}

// batchItems is the size of server-batch's SignBatch calls.
const batchItems = 64

// parallelBatch runs calls of fn, each making per signatures, from workers goroutines
// until b.N signatures are made; ns/op and sign/s are per signature.
func parallelBatch(b *testing.B, workers, per int, fn func(context.Context) error) {
	b.Helper()
	ctx := b.Context()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		fail atomic.Value
	)
	b.ResetTimer()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(int64(per))-int64(per) < int64(b.N) {
				if err := fn(ctx); err != nil {
					fail.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := fail.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sign/s")
}

type benchHSM struct {
	dir, conf, label, pin string
	ca                    *keystoretest.CA
	keys                  []pkcs11.KeyConfig
}

func newBenchHSM(b *testing.B) *benchHSM {
	b.Helper()
	const module = "/usr/lib/softhsm/libsofthsm2.so"
	if _, err := os.Stat(module); err != nil {
		b.Fatalf("SoftHSM2 is not installed (%s missing): `make test` installs it (apt-get install softhsm2)", module)
	}
	dir := b.TempDir()
	h := &benchHSM{dir: dir, conf: filepath.Join(dir, "softhsm2.conf"), label: "bench", pin: "1234"}
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(h.conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pin"), []byte(h.pin), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("SOFTHSM2_CONF", h.conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", h.label, "--so-pin", "87654321", "--pin", h.pin).CombinedOutput(); err != nil {
		b.Fatalf("softhsm2-util (apt-get install softhsm2): %v\n%s", err, out)
	}
	adm, err := pkcs11.OpenAdmin(h.token(0))
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	h.ca = keystoretest.NewCA(b, "ECDSA-P256")
	for _, alg := range []string{"RSA-2048", "ECDSA-P256"} {
		uri, pub, err := adm.GenerateKey(b.Context(), pkcs11.KeySpec{Label: alg, Algorithm: alg, Usages: keystore.UsageSign})
		if err != nil {
			b.Fatal(err)
		}
		cert := h.ca.Issue(b, alg, pub, true, false, 0)
		if err := adm.ImportCertificates(b.Context(), uri, []*smx509.Certificate{cert, h.ca.Cert}); err != nil {
			b.Fatal(err)
		}
		h.keys = append(h.keys, pkcs11.KeyConfig{Name: alg, URI: uri, Usages: []string{"sign"}})
	}
	return h
}

func (h *benchHSM) token(pool int) pkcs11.TokenConfig {
	return pkcs11.TokenConfig{Module: "/usr/lib/softhsm/libsofthsm2.so", Label: h.label,
		PINFile: filepath.Join(h.dir, "pin"), PoolSize: pool, SelfCheck: os.Getenv("SIGNSVR_BENCH_SELF_CHECK")}
}

// startServer serves the token's keys with a pool of n sessions over bufconn.
func (h *benchHSM) startServer(b *testing.B, n int) signsvrv1.SignServiceClient {
	b.Helper()
	store, err := pkcs11.New(pkcs11.Config{Tokens: []pkcs11.TokenConfig{h.token(n)}, Keys: h.keys}, pkcs11.Options{})
	if err != nil {
		b.Fatal(err)
	}
	v, err := trust.New(trust.Config{Anchors: []*smx509.Certificate{h.ca.Cert}, Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Options{Store: store, Backend: "pkcs11", Validator: v, Development: true, Authorizer: server.AllowAll,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, lis, 0) }()
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		v.Close()
		store.Close()
	})
	return signsvrv1.NewSignServiceClient(conn)
}

// benchDirect signs with n sessions of the token's library, no pool and no server.
func (h *benchHSM) benchDirect(b *testing.B, alg string, n int, data []byte) {
	ctx := p11.New("/usr/lib/softhsm/libsofthsm2.so")
	if ctx == nil {
		b.Fatal("cannot load SoftHSM2")
	}
	defer ctx.Destroy() // no C_Finalize: the library may be shared with a store
	if err := ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		b.Fatal(err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		b.Fatal(err)
	}
	slot := ^uint(0)
	for _, s := range slots {
		if ti, err := ctx.GetTokenInfo(s); err == nil && strings.TrimRight(ti.Label, " ") == h.label {
			slot = s
		}
	}
	if slot == ^uint(0) {
		b.Fatal("token not found")
	}
	type sess struct {
		h   p11.SessionHandle
		key p11.ObjectHandle
	}
	sessions := make([]sess, n)
	for i := range sessions {
		sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
		if err != nil {
			b.Fatal(err)
		}
		defer ctx.CloseSession(sh)
		if err := ctx.Login(sh, p11.CKU_USER, h.pin); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
			b.Fatal(err)
		}
		if err := ctx.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_LABEL, alg)}); err != nil {
			b.Fatal(err)
		}
		objs, _, err := ctx.FindObjects(sh, 2)
		ctx.FindObjectsFinal(sh)
		if err != nil || len(objs) != 1 {
			b.Fatalf("find %s: %v (%d objects)", alg, err, len(objs))
		}
		sessions[i] = sess{sh, objs[0]}
	}
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}
	rsa := strings.HasPrefix(alg, "RSA")
	if rsa {
		mech = []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS, nil)}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var fail atomic.Value
	b.ResetTimer()
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				d := sha256.Sum256(data)
				in := d[:]
				if rsa {
					in, _ = pkcs11.DigestInfo(crypto.SHA256, in) // SHA-256 and its size: cannot fail
				}
				if err := ctx.SignInit(s.h, mech, s.key); err != nil {
					fail.Store(err)
					return
				}
				if _, err := ctx.Sign(s.h, in); err != nil {
					fail.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := fail.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sign/s")
}

// inflight is the number of calls the server gets at once with a pool of n sessions:
// enough that a session freed finds the next request decoded and waiting (while one
// call is in C_Sign, others are in gRPC and CMS code), as on a loaded server.
func inflight(n int) int { return 4*n + 4 }
