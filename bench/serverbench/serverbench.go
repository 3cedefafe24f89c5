// Package serverbench holds Go benchmarks of whole signsvr calls, client and server in
// one process over loopback TCP, for what a load test from outside cannot see:
// allocations per operation and pprof CPU and allocation profiles. (The real server
// binary has no pprof endpoint, and the harness does not change it.)
//
// The server is built as `signsvr serve` builds its development default: the
// development PKI, the soft key store, the development roots as the only trust
// anchors, no revocation checks, no TLS. An Echo server answers the same RPCs with
// canned responses of the same size, so that "allocations of signsvr" can be told
// apart from "allocations of a gRPC round trip with these messages" (the benchmarks
// count client and server together; the harness reports both and their difference).
//
//	go test -run '^$' -bench 'BenchmarkServer/Sign/sm2/1KiB/unary$' -benchmem \
//	    -cpuprofile cpu.pprof -memprofile mem.pprof ./bench/serverbench
//
// SIGNSVR_BENCH_DATA names a development PKI directory to reuse (made if missing);
// without it a temporary one is made.
package serverbench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
)

// Running is a server serving on a loopback port.
type Running struct {
	Addr string
	stop func()
}

// Stop stops the server and waits for it.
func (r *Running) Stop() { r.stop() }

// StartDev starts signsvr's development default on 127.0.0.1 with the PKI in dataDir,
// logging to log (nil: discarded).
func StartDev(dataDir string, log io.Writer) (*Running, error) {
	pki, err := devpki.Ensure(dataDir, time.Now)
	if err != nil {
		return nil, err
	}
	keys := make([]soft.KeyConfig, 0, len(pki.Keys))
	for _, k := range pki.Keys {
		keys = append(keys, soft.KeyConfig{Name: k.Name, KeyFile: k.KeyPath, CertFile: k.CertPath,
			Usages: strings.Split(k.Usage.String(), ",")})
	}
	store, err := soft.New(keys)
	if err != nil {
		return nil, err
	}
	v, err := trust.New(trust.Config{Anchors: pki.Roots, Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		store.Close()
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	srv, err := server.New(server.Options{
		Store: store, Backend: "soft", Validator: v, Development: true, Authorizer: server.AllowAll,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		v.Close()
		store.Close()
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		v.Close()
		store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.Run(ctx, lis, 2*time.Second)
		close(done)
	}()
	return &Running{Addr: lis.Addr().String(), stop: func() {
		cancel()
		<-done
		v.Close()
		store.Close()
	}}, nil
}

// Echo answers every SignService and EnvelopeService RPC with the canned response set
// for its method: the floor of a gRPC round trip carrying signsvr's messages.
type Echo struct {
	signsvrv1.UnimplementedSignServiceServer
	signsvrv1.UnimplementedEnvelopeServiceServer
	responses map[string]proto.Message
}

// StartEcho serves responses (full method name -> response) on 127.0.0.1.
func StartEcho(responses map[string]proto.Message) (*Running, error) {
	e := &Echo{responses: responses}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(256<<20), grpc.MaxSendMsgSize(256<<20))
	signsvrv1.RegisterSignServiceServer(g, e)
	signsvrv1.RegisterEnvelopeServiceServer(g, e)
	done := make(chan struct{})
	go func() {
		g.Serve(lis)
		close(done)
	}()
	return &Running{Addr: lis.Addr().String(), stop: func() { g.Stop(); <-done }}, nil
}

func echo[T proto.Message](e *Echo, method string) (T, error) {
	r, _ := e.responses[method].(T)
	return r, nil
}

func (e *Echo) Sign(context.Context, *signsvrv1.SignRequest) (*signsvrv1.SignResponse, error) {
	return echo[*signsvrv1.SignResponse](e, signsvrv1.SignService_Sign_FullMethodName)
}

func (e *Echo) Verify(context.Context, *signsvrv1.VerifyRequest) (*signsvrv1.VerifyResponse, error) {
	return echo[*signsvrv1.VerifyResponse](e, signsvrv1.SignService_Verify_FullMethodName)
}

func (e *Echo) SignBatch(context.Context, *signsvrv1.SignBatchRequest) (*signsvrv1.SignBatchResponse, error) {
	return echo[*signsvrv1.SignBatchResponse](e, signsvrv1.SignService_SignBatch_FullMethodName)
}

func (e *Echo) VerifyBatch(context.Context, *signsvrv1.VerifyBatchRequest) (*signsvrv1.VerifyBatchResponse, error) {
	return echo[*signsvrv1.VerifyBatchResponse](e, signsvrv1.SignService_VerifyBatch_FullMethodName)
}

func (e *Echo) SignRaw(context.Context, *signsvrv1.SignRawRequest) (*signsvrv1.SignRawResponse, error) {
	return echo[*signsvrv1.SignRawResponse](e, signsvrv1.SignService_SignRaw_FullMethodName)
}

func (e *Echo) VerifyRaw(context.Context, *signsvrv1.VerifyRawRequest) (*signsvrv1.VerifyRawResponse, error) {
	return echo[*signsvrv1.VerifyRawResponse](e, signsvrv1.SignService_VerifyRaw_FullMethodName)
}

func (e *Echo) Envelope(context.Context, *signsvrv1.EnvelopeRequest) (*signsvrv1.EnvelopeResponse, error) {
	return echo[*signsvrv1.EnvelopeResponse](e, signsvrv1.EnvelopeService_Envelope_FullMethodName)
}

func (e *Echo) Decrypt(context.Context, *signsvrv1.DecryptRequest) (*signsvrv1.DecryptResponse, error) {
	return echo[*signsvrv1.DecryptResponse](e, signsvrv1.EnvelopeService_Decrypt_FullMethodName)
}
