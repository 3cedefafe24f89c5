package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/trust"
)

func TestHealthAndReflection(t *testing.T) {
	ts := startServer(t)
	ts.assertServing(t)
	for _, svc := range []string{"signsvr.v1.SignService", "signsvr.v1.EnvelopeService", "signsvr.v1.KeyService"} {
		resp, err := ts.health.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %s = %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}

	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	sort.Strings(names)
	got := strings.Join(names, " ")
	for _, want := range []string{"grpc.health.v1.Health", "signsvr.v1.EnvelopeService", "signsvr.v1.KeyService", "signsvr.v1.SignService"} {
		if !strings.Contains(got, want) {
			t.Errorf("reflection lists %q, missing %s", got, want)
		}
	}
}

func TestListKeys(t *testing.T) {
	ts := startServer(t)
	resp, err := ts.keys.ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		alg   signsvrv1.KeyAlgorithm
		bits  uint32
		usage signsvrv1.KeyUsage
	}
	wants := map[string]want{
		"ecdsa-enc":  {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_EC, 256, signsvrv1.KeyUsage_KEY_USAGE_DECRYPT},
		"ecdsa-sign": {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_EC, 256, signsvrv1.KeyUsage_KEY_USAGE_SIGN},
		"rsa-enc":    {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_RSA, 2048, signsvrv1.KeyUsage_KEY_USAGE_DECRYPT},
		"rsa-sign":   {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_RSA, 2048, signsvrv1.KeyUsage_KEY_USAGE_SIGN},
		"sm2-enc":    {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2, 256, signsvrv1.KeyUsage_KEY_USAGE_DECRYPT},
		"sm2-sign":   {signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2, 256, signsvrv1.KeyUsage_KEY_USAGE_SIGN},
	}
	if len(resp.GetKeys()) != len(wants) {
		t.Fatalf("ListKeys gave %d keys, want %d", len(resp.GetKeys()), len(wants))
	}
	var prev string
	for _, k := range resp.GetKeys() {
		if k.GetName() <= prev {
			t.Errorf("keys not sorted: %q after %q", k.GetName(), prev)
		}
		prev = k.GetName()
		w, ok := wants[k.GetName()]
		if !ok {
			t.Errorf("unexpected key %q", k.GetName())
			continue
		}
		if k.GetAlgorithm() != w.alg || k.GetKeyBits() != w.bits {
			t.Errorf("%s: algorithm %v/%d, want %v/%d", k.GetName(), k.GetAlgorithm(), k.GetKeyBits(), w.alg, w.bits)
		}
		if len(k.GetUsages()) != 1 || k.GetUsages()[0] != w.usage {
			t.Errorf("%s: usages %v, want [%v]", k.GetName(), k.GetUsages(), w.usage)
		}
		if len(k.GetCertificateChain()) != 2 {
			t.Errorf("%s: chain of %d certificates, want leaf + root", k.GetName(), len(k.GetCertificateChain()))
		}
		if na := k.GetNotAfter().AsTime(); na.Before(time.Now().AddDate(1, 0, 0)) {
			t.Errorf("%s: not_after %v is too soon for a fresh development certificate", k.GetName(), na)
		}
		if !strings.Contains(k.GetSubject(), k.GetName()) || k.GetBackend() != "soft" {
			t.Errorf("%s: subject %q backend %q", k.GetName(), k.GetSubject(), k.GetBackend())
		}
	}
	only, err := ts.keys.ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{Usage: signsvrv1.KeyUsage_KEY_USAGE_DECRYPT})
	if err != nil {
		t.Fatal(err)
	}
	if len(only.GetKeys()) != 3 {
		t.Errorf("ListKeys(decrypt) gave %d keys, want 3", len(only.GetKeys()))
	}
}

func TestUnknownKeyIsNotFound(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "no-such-key", Data: []byte("x")})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	_, err = ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "no-such-key", Data: []byte("x")})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	_, err = ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "no-such-key", Cms: []byte{0x30, 0}})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	_, err = ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: []byte("x"), RecipientKeys: []string{"no-such-key"}})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	_, err = ts.sign.Sign(ctx, &signsvrv1.SignRequest{Data: []byte("x")})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	ts.assertServing(t)
}

func TestKeyUsageIsEnforced(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-enc", Data: []byte("x")})
	wantStatus(t, err, codes.FailedPrecondition, "KEY_USAGE_NOT_ALLOWED")
	_, err = ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "sm2-sign", Cms: []byte{0x30, 0}})
	wantStatus(t, err, codes.FailedPrecondition, "KEY_USAGE_NOT_ALLOWED")
	_, err = ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: []byte("x"), RecipientKeys: []string{"ecdsa-sign"}})
	wantStatus(t, err, codes.FailedPrecondition, "KEY_USAGE_NOT_ALLOWED")
}

func TestBadOptions(t *testing.T) {
	ts := startServer(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name   string
		req    *signsvrv1.SignRequest
		reason string
	}{
		{"pss with ecdsa", &signsvrv1.SignRequest{Key: "ecdsa-sign", Options: &signsvrv1.SignOptions{RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS}}, "UNSUPPORTED"},
		{"sha256 with sm2", &signsvrv1.SignRequest{Key: "sm2-sign", Options: &signsvrv1.SignOptions{Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256}}, "UNSUPPORTED"},
		{"sm3 with rsa", &signsvrv1.SignRequest{Key: "rsa-sign", Options: &signsvrv1.SignOptions{Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3}}, "UNSUPPORTED"},
		{"gmt0010 with rsa", &signsvrv1.SignRequest{Key: "rsa-sign", Options: &signsvrv1.SignOptions{Sm2Dialect: signsvrv1.Sm2Dialect_SM2_DIALECT_GMT0010}}, "UNSUPPORTED"},
		{"unknown digest", &signsvrv1.SignRequest{Key: "rsa-sign", Options: &signsvrv1.SignOptions{Digest: 99}}, "INVALID_REQUEST"},
		{"huge uid", &signsvrv1.SignRequest{Key: "sm2-sign", Options: &signsvrv1.SignOptions{Sm2UserId: make([]byte, 9000)}}, "INVALID_REQUEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Data = []byte("data")
			_, err := ts.sign.Sign(ctx, tc.req)
			wantStatus(t, err, codes.InvalidArgument, tc.reason)
		})
	}
	_, err := ts.sign.VerifyRaw(ctx, &signsvrv1.VerifyRawRequest{Key: "rsa-sign", Certificate: []byte{1}, Signature: []byte{1}})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	_, err = ts.sign.VerifyRaw(ctx, &signsvrv1.VerifyRawRequest{Certificate: []byte("not a certificate"), Signature: []byte{1}})
	wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
	_, err = ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: []byte("x")})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	_, err = ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: []byte("x"), RecipientCerts: [][]byte{{0x30, 0x03, 1, 2, 3}}})
	wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
	ts.assertServing(t)
}

func TestOversizedMessageIsResourceExhausted(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.MaxMessageBytes = 1 << 20 })
	_, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: make([]byte, 2<<20)})
	wantTooLarge(t, err)
	// grpc-go answers the client before the handler's log line is written: poll it.
	eventually(t, "the refusal is not logged with its reason", func() bool {
		return strings.Contains(ts.logs.String(), "reason=TOO_LARGE")
	})
	ts.assertServing(t)
}

// wantTooLarge checks the refusal of an oversized request. grpc-go refuses it while
// reading, before the server's handler runs, and writes its own status: the code is
// RESOURCE_EXHAUSTED, without ErrorInfo (documented on ErrorReason TOO_LARGE).
func wantTooLarge(t *testing.T, err error) {
	t.Helper()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("err = %v, want ResourceExhausted", err)
	}
}

func TestDefaultMaxMessageIsWellAbove4MiB(t *testing.T) {
	ts := startServer(t)
	// 16 MiB is refused by a stock grpc-go server (4 MiB) and must pass here: the
	// request reaches the handler, which answers for the unknown key.
	_, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "no-such-key", Data: make([]byte, 16<<20)})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	// Past 64 MiB it is refused.
	_, err = ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "no-such-key", Data: make([]byte, 65<<20)})
	wantTooLarge(t, err)
	ts.assertServing(t)
}

func TestBatchLimit(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.MaxBatchItems = 2 })
	items := []*signsvrv1.SignRequest{{Key: "a"}, {Key: "b"}, {Key: "c"}}
	_, err := ts.sign.SignBatch(ctxT(t), &signsvrv1.SignBatchRequest{Items: items})
	wantStatus(t, err, codes.ResourceExhausted, "TOO_LARGE")
	resp, err := ts.sign.SignBatch(ctxT(t), &signsvrv1.SignBatchRequest{})
	if err != nil || len(resp.GetResults()) != 0 {
		t.Fatalf("empty batch: %v, %v", resp, err)
	}
}

// authorizerFunc adapts a function to server.Authorizer.
type authorizerFunc func(ctx context.Context, id *server.Identity, op server.Operation, key string) error

func (f authorizerFunc) Authorize(ctx context.Context, id *server.Identity, op server.Operation, key string) error {
	return f(ctx, id, op, key)
}

func TestPanicBecomesInternalWithoutDetail(t *testing.T) {
	ts := startServer(t, func(o *server.Options) {
		o.Authorizer = authorizerFunc(func(context.Context, *server.Identity, server.Operation, string) error {
			panic("secret panic detail")
		})
	})
	_, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "rsa-sign", Data: []byte("x")})
	st := wantStatus(t, err, codes.Internal, "INTERNAL")
	if strings.Contains(st.Message(), "secret") || strings.Contains(st.Message(), "goroutine") {
		t.Errorf("client sees panic detail: %q", st.Message())
	}
	if !strings.Contains(ts.logs.String(), "secret panic detail") {
		t.Errorf("the panic is not in the server log")
	}
	ts.assertServing(t)
}

func TestAuthorizerSeesDevelopmentIdentityAndCanRefuse(t *testing.T) {
	ts := startServer(t, func(o *server.Options) {
		o.Authorizer = authorizerFunc(func(_ context.Context, id *server.Identity, op server.Operation, key string) error {
			if id == nil || !id.Development {
				return &server.Error{Code: codes.Unauthenticated, Reason: signsvrv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, Msg: "no identity"}
			}
			if key == "rsa-sign" && op == server.OpSign {
				return &server.Error{Code: codes.PermissionDenied, Reason: signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED, Msg: "not your key"}
			}
			return nil
		})
	})
	_, err := ts.sign.SignRaw(ctxT(t), &signsvrv1.SignRawRequest{Key: "rsa-sign", Data: []byte("x")})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	if _, err := ts.sign.SignRaw(ctxT(t), &signsvrv1.SignRawRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Fatalf("allowed key refused: %v", err)
	}
}

func TestDeadlineIsRespected(t *testing.T) {
	ts := startServer(t, func(o *server.Options) {
		o.Authorizer = authorizerFunc(func(ctx context.Context, _ *server.Identity, _ server.Operation, _ string) error {
			<-ctx.Done() // a backend that waits for the request's end, as an HSM pool does
			return ctx.Err()
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-sign", Data: []byte("x")})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// The authorizer waits for the request's end and nothing else: a call that
	// returns at all was ended by its deadline; the bound only fails a hang.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the call took %v past a 200ms deadline", d)
	}
	ts.assertServing(t)
}

func TestClientRequestIDIsUsed(t *testing.T) {
	ts := startServer(t)
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "trace-42")
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "no-such-key"})
	st := wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	if id := errorInfo(st).GetMetadata()["request_id"]; id != "trace-42" {
		t.Errorf("request_id = %q, want trace-42", id)
	}
	if !strings.Contains(ts.logs.String(), "request_id=trace-42") {
		t.Errorf("the log does not carry the request id:\n%s", ts.logs.String())
	}
}

func TestGracefulStopDrainsInFlightCalls(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := startServer(t, func(o *server.Options) {
		o.Authorizer = authorizerFunc(func(ctx context.Context, _ *server.Identity, _ server.Operation, key string) error {
			if key == "ecdsa-sign" {
				entered <- struct{}{}
				<-release
			}
			return nil
		})
	})
	result := make(chan error, 1)
	go func() {
		_, err := ts.sign.SignRaw(context.Background(), &signsvrv1.SignRawRequest{Key: "ecdsa-sign", Data: []byte("x")})
		result <- err
	}()
	<-entered
	ts.stop()
	// Health turns NOT_SERVING first; the in-flight call still completes.
	eventually(t, "health never left SERVING during shutdown", func() bool {
		resp, err := ts.health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
		return err != nil || resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	select {
	case err := <-ts.done:
		t.Fatalf("Run returned (%v) before the in-flight call finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-result; err != nil {
		t.Fatalf("in-flight call failed during graceful stop: %v", err)
	}
	ts.done <- <-ts.done // hand the result back to the cleanup
}

func TestStopForcesAfterTimeout(t *testing.T) {
	entered := make(chan struct{}, 1)
	ts := startServer(t, func(o *server.Options) {
		o.Authorizer = authorizerFunc(func(ctx context.Context, _ *server.Identity, _ server.Operation, _ string) error {
			entered <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		})
	})
	go ts.sign.SignRaw(context.Background(), &signsvrv1.SignRawRequest{Key: "ecdsa-sign", Data: []byte("x")})
	<-entered
	start := time.Now()
	ts.stop()
	err := <-ts.done
	ts.done <- err
	if d := time.Since(start); d < 1500*time.Millisecond || d > 10*time.Second {
		t.Errorf("stop took %v, want about the 2s drain timeout", d)
	}
	if !strings.Contains(ts.logs.String(), "drain timeout passed") {
		t.Errorf("no log line about the forced stop")
	}
}

func TestReasonStringsMatchTheProto(t *testing.T) {
	for num, name := range signsvrv1.ErrorReason_name {
		got := server.ReasonString(signsvrv1.ErrorReason(num))
		if num == 0 {
			continue
		}
		if "ERROR_REASON_"+got != name {
			t.Errorf("ReasonString(%d) = %q, want %q without prefix", num, got, name)
		}
	}
	if !bytes.Equal([]byte(server.ReasonString(9999)), []byte("UNSPECIFIED")) {
		t.Errorf("unknown reason gives %q", server.ReasonString(9999))
	}
}

type recordingAuditor struct {
	mu  sync.Mutex
	evs []server.AuditEvent
}

func (a *recordingAuditor) Audit(_ context.Context, ev *server.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, *ev)
}

func TestAuditorSeesEveryCall(t *testing.T) {
	aud := &recordingAuditor{}
	ts := startServer(t, func(o *server.Options) { o.Auditor = aud })
	ctx := ctxT(t)
	if _, err := ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "no-such-key", Data: []byte("x")})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	aud.mu.Lock()
	defer aud.mu.Unlock()
	if len(aud.evs) != 2 {
		t.Fatalf("%d audit events, want 2", len(aud.evs))
	}
	ok, refused := aud.evs[0], aud.evs[1]
	if ok.Method != "/signsvr.v1.SignService/SignRaw" || ok.Key != "ecdsa-sign" || ok.Code != codes.OK ||
		ok.Identity == nil || !ok.Identity.Development || ok.RequestID == "" || ok.Response == nil {
		t.Errorf("success event: %+v", ok)
	}
	if req, _ := ok.Request.(*signsvrv1.SignRawRequest); req.GetKey() != "ecdsa-sign" {
		t.Errorf("success event request: %v", ok.Request)
	}
	if refused.Key != "no-such-key" || refused.Code != codes.NotFound || refused.Reason != "KEY_NOT_FOUND" || refused.Response != nil {
		t.Errorf("refusal event: %+v", refused)
	}
}

// TestMalformedProtobufIsInvalidArgument: a request that is not a protobuf message of
// the method's type gets INVALID_ARGUMENT with reason MALFORMED_INPUT and the request
// id, as the log says, for every method of the API; the health service, not one of
// the API's, keeps grpc-go's own answer; the server keeps serving.
func TestMalformedProtobufIsInvalidArgument(t *testing.T) {
	ts := startServer(t)
	inputs := []struct {
		name string
		b    []byte
	}{
		{"tag without a value", []byte{0x0a}},
		{"length past the end", []byte{0x12, 0x05, 'a'}},
		{"varint of eleven bytes", []byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"field number 0", []byte{0x00}},
		{"wire type 7", []byte{0x0f}},
		{"group start", []byte{0x0b}},
	}
	methods := []string{
		"/signsvr.v1.SignService/Sign", "/signsvr.v1.SignService/VerifyBatch",
		"/signsvr.v1.EnvelopeService/Decrypt", "/signsvr.v1.KeyService/ListKeys",
		"/signsvr.v1.CertificateService/ParseCertificate", "/signsvr.v1.AuthService/Login",
		"/signsvr.v1.TimestampService/Timestamp",
	}
	for _, m := range methods {
		for _, in := range inputs {
			err := ts.conn.Invoke(ctxT(t), m, rawBytes(in.b), new(rawBytes), forceRaw)
			if err == nil {
				t.Fatalf("%s, %s: decoded", m, in.name)
			}
			st := wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
			if strings.Contains(st.Message(), "grpc") || strings.Contains(st.Message(), "proto:") {
				t.Errorf("%s, %s: the message shows the decoder's text: %q", m, in.name, st.Message())
			}
		}
	}
	// Well-formed wire data that its type refuses: SignRequest's key is a string.
	err := ts.conn.Invoke(ctxT(t), "/signsvr.v1.SignService/Sign", rawBytes{0x0a, 0x03, 0xff, 0xfe, 0xfd}, new(rawBytes), forceRaw)
	wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
	err = ts.conn.Invoke(ctxT(t), "/grpc.health.v1.Health/Check", rawBytes{0x0a}, new(rawBytes), forceRaw)
	if status.Code(err) != codes.Internal {
		t.Errorf("health with a malformed request: %v, want grpc-go's INTERNAL", err)
	}
	if _, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Fatalf("a well-formed call after the malformed ones: %v", err)
	}
	ts.assertServing(t)
}

// slowHealthStore is a key store whose health check lasts until it is cancelled and
// says when it has returned.
type slowHealthStore struct {
	keystore.Store
	entered  chan struct{}
	once     sync.Once
	returned atomic.Bool
}

func (s *slowHealthStore) Health(ctx context.Context) error {
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	for range 1000 { // a part that takes a moment to let go, as an HSM's library may
		runtime.Gosched()
	}
	s.returned.Store(true)
	return ctx.Err()
}

// TestRunWaitsForHealthPoll: when Run returns, its health poll has returned too, so
// the caller may close the key store and the audit log at once.
func TestRunWaitsForHealthPoll(t *testing.T) {
	server.ShortHealthInterval(t, time.Millisecond)
	store := &slowHealthStore{Store: devStore(t), entered: make(chan struct{})}
	srv, err := server.New(server.Options{Store: store, Validator: newValidator(t, pki.Roots, trust.RevocationConfig{Disabled: true}),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, lis, time.Second) }()
	select {
	case <-store.entered:
	case <-time.After(time.Minute):
		t.Fatal("the health poll never asked the store")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !store.returned.Load() {
		t.Error("Run returned while its health poll was still asking the store")
	}
}
