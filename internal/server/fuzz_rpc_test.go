package server_test

import (
	"context"
	"crypto/rand"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// FuzzRPC sends arbitrary bytes as the request message of every unary RPC of the API
// (the first byte picks the method) to a real server on loopback, with login and
// timestamps enabled. Whatever the bytes, the call must end with a status a client
// can act on (never INTERNAL or UNKNOWN, which mean a server bug or a panic), within
// its deadline, and the server must still be serving afterwards.
func FuzzRPC(f *testing.F) {
	methods := apiMethods(f)
	ts := startServer(f, fuzzLoginAndTimestamps(f))
	for i, m := range methods {
		// A well-formed request of each method, a truncated one and an empty one.
		seed := fuzzSeed(m.Input())
		f.Add(append([]byte{byte(i)}, seed...))
		if len(seed) > 1 {
			f.Add(append([]byte{byte(i)}, seed[:len(seed)/2]...))
		}
		f.Add([]byte{byte(i)})
	}
	allowed := map[codes.Code]bool{
		codes.OK: true, codes.InvalidArgument: true, codes.NotFound: true, codes.PermissionDenied: true,
		codes.FailedPrecondition: true, codes.ResourceExhausted: true, codes.Unimplemented: true,
		codes.Unauthenticated: true, codes.OutOfRange: true, codes.AlreadyExists: true, codes.Aborted: true,
	}
	health := healthpb.NewHealthClient(ts.conn)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		m := methods[int(data[0])%len(methods)]
		full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out rawBytes
		err := ts.conn.Invoke(ctx, full, rawBytes(data[1:]), &out, forceRaw)
		if c := status.Code(err); !allowed[c] {
			t.Fatalf("%s with %d bytes %x: %v", full, len(data)-1, data[1:min(len(data), 64)], err)
		}
		hc, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("after %s: health %v, %v", full, hc.GetStatus(), err)
		}
	})
}

// apiMethods are the unary methods of the API's services, in a fixed order (the
// first byte of an input means the same method in every run).
func apiMethods(tb testing.TB) []protoreflect.MethodDescriptor {
	var out []protoreflect.MethodDescriptor
	for _, name := range []string{
		signsvrv1.SignService_ServiceDesc.ServiceName, signsvrv1.EnvelopeService_ServiceDesc.ServiceName,
		signsvrv1.KeyService_ServiceDesc.ServiceName, signsvrv1.CertificateService_ServiceDesc.ServiceName,
		signsvrv1.AuthService_ServiceDesc.ServiceName, signsvrv1.TimestampService_ServiceDesc.ServiceName,
	} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			tb.Fatal(err)
		}
		ms := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range ms.Len() {
			if m := ms.Get(i); !m.IsStreamingClient() && !m.IsStreamingServer() {
				out = append(out, m)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}

// fuzzSeed is a request of type in whose string fields name a key of the test PKI
// and whose bytes fields hold a short document: enough for the fuzzer to start from
// requests that get past decoding.
func fuzzSeed(in protoreflect.MessageDescriptor) []byte {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(in.FullName())
	if err != nil {
		return nil
	}
	m := mt.New()
	fields := in.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsList() || fd.IsMap() || fd.ContainingOneof() != nil {
			continue
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString("ecdsa-sign"))
		case protoreflect.BytesKind:
			m.Set(fd, protoreflect.ValueOfBytes([]byte("a document")))
		}
	}
	b, _ := proto.Marshal(m.Interface())
	return b
}

// fuzzLoginAndTimestamps turns on AuthService and TimestampService, so that their
// handlers are fuzzed too.
func fuzzLoginAndTimestamps(tb testing.TB) serverOption {
	key := make([]byte, 32)
	rand.Read(key)
	tsa, err := soft.New([]soft.KeyConfig{{Name: "tsa", KeyFile: pki.TSA.KeyPath, CertFile: pki.TSA.CertPath, Usages: []string{"sign"}}})
	if err != nil {
		tb.Fatal(err)
	}
	return func(o *server.Options) {
		o.Login = &server.LoginOptions{ChallengeKeys: [][]byte{key}, Audience: "fuzz", TokenKey: "rsa-sign", Validator: o.Validator}
		o.Timestamps = &server.TimestampOptions{Key: "tsa", Store: tsa}
	}
}
