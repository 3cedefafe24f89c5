package server_test

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
)

// TestReflectionIsAnOption: without Options.Reflection the reflection service is not
// served (production servers leave it off unless configured).
func TestReflectionIsAnOption(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.Reflection = false })
	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctxT(t))
	if err == nil {
		// Send may see the stream already ended (io.EOF); the status comes with Recv.
		stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("reflection without the option: %v, want UNIMPLEMENTED", err)
	}
	ts.assertServing(t)
}

// rawH2 is a client that speaks HTTP/2 frames itself, to send what a well-behaved gRPC
// client never would: headers and half a message, then nothing.
type rawH2 struct {
	conn net.Conn
	fr   *http2.Framer
}

func dialRawH2(t *testing.T, addr string) *rawH2 {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(2 * time.Minute)) // fails a hang instead of waiting forever
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil) // header blocks arrive decoded
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &rawH2{conn: c, fr: fr}
}

// startCall sends the headers of a unary call on stream id and the first part bytes
// of a gRPC message that claims to be total bytes long.
func (r *rawH2) startCall(t *testing.T, id uint32, method string, total, part int) {
	t.Helper()
	var hb []byte
	enc := hpack.NewEncoder(bytesWriter{&hb})
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", method},
		{":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if part == 0 {
		return
	}
	msg := make([]byte, 5+part)
	binary.BigEndian.PutUint32(msg[1:5], uint32(total))
	for len(msg) > 0 {
		n := min(len(msg), 16384) // HTTP/2's default maximum frame size
		if err := r.fr.WriteData(id, false, msg[:n]); err != nil {
			t.Fatal(err)
		}
		msg = msg[n:]
	}
}

// waitEnd reads frames until every stream of ids has ended, and says how each did:
// "reset" for RST_STREAM, else the grpc-status of the trailers that ended it.
func (r *rawH2) waitEnd(t *testing.T, ids ...uint32) map[uint32]string {
	t.Helper()
	ended := map[uint32]string{}
	for len(ended) < len(ids) {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("streams %v: %d ended (%v) before %v", ids, len(ended), ended, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				r.fr.WritePing(true, f.Data)
			}
		case *http2.RSTStreamFrame:
			if _, seen := ended[f.StreamID]; !seen {
				ended[f.StreamID] = "reset"
			}
		case *http2.MetaHeadersFrame:
			if !f.StreamEnded() {
				continue
			}
			ended[f.StreamID] = "no grpc-status"
			for _, hf := range f.RegularFields() {
				if hf.Name == "grpc-status" {
					ended[f.StreamID] = hf.Value
				}
			}
		}
	}
	return ended
}

type bytesWriter struct{ b *[]byte }

func (w bytesWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// TestStalledRequestsAreReset: a call whose client sends headers only, or half its
// message, and stops, is answered DEADLINE_EXCEEDED once MaxCallDuration has passed,
// so nothing it holds stays held; other clients are served meanwhile.
func TestStalledRequestsAreReset(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.Limits.MaxCallDuration = 300 * time.Millisecond })
	r := dialRawH2(t, ts.addr)
	r.startCall(t, 1, "/signsvr.v1.SignService/Sign", 0, 0)          // headers only
	r.startCall(t, 3, "/signsvr.v1.SignService/Sign", 100000, 50000) // half a message
	if _, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Fatalf("another client while two calls stall: %v", err)
	}
	for id, got := range r.waitEnd(t, 1, 3) {
		if got != "4" { // DEADLINE_EXCEEDED
			t.Errorf("stalled stream %d ended with grpc-status %q, want 4 (DEADLINE_EXCEEDED)", id, got)
		}
	}
	ts.assertServing(t)
}

// TestConnectionLimit: past MaxConnections a new client is not served until a served
// connection closes.
func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.Limits.MaxConnections = 2 })
	// The test server's own client holds one connection; a second one fills the limit.
	if _, err := ts.keys.ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{}); err != nil {
		t.Fatal(err)
	}
	second := dialRawH2(t, ts.addr)
	second.waitSettings(t)
	third, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	// However slow the machine, the third connection cannot be served while two are
	// open: the call can only run out of time.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = signsvrv1.NewKeyServiceClient(third).ListKeys(ctx, &signsvrv1.ListKeysRequest{}, grpc.WaitForReady(true))
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a third connection past a limit of two: %v, want DEADLINE_EXCEEDED", err)
	}
	second.conn.Close()
	if _, err := signsvrv1.NewKeyServiceClient(third).ListKeys(ctxT(t), &signsvrv1.ListKeysRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("the third connection once the second closed: %v", err)
	}
}

// waitSettings reads frames until the server's SETTINGS: the connection is served.
func (r *rawH2) waitSettings(t *testing.T) *http2.SettingsFrame {
	t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no SETTINGS from the server: %v", err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			r.fr.WriteSettingsAck()
			return s
		}
	}
}

// TestStreamsPerConnection: the server announces MaxStreamsPerConnection.
func TestStreamsPerConnection(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.Limits.MaxStreamsPerConnection = 7 })
	s := dialRawH2(t, ts.addr).waitSettings(t)
	if v, ok := s.Value(http2.SettingMaxConcurrentStreams); !ok || v != 7 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (present %v), want 7", v, ok)
	}
}

// TestInflightBudget: calls whose messages would take the server past its budget of
// request bytes in flight are refused with RESOURCE_EXHAUSTED as soon as their
// length prefix arrives, before their body is asked for; small calls keep their
// share meanwhile; everything held is given back when the stalled calls end.
func TestInflightBudget(t *testing.T) {
	ts := startServer(t, func(o *server.Options) {
		o.MaxMessageBytes = 4 << 20
		o.Limits.MaxInflightBytes = 8 << 20 // 7 MiB for large requests
		o.Limits.RequestReadTimeout = time.Minute
	})
	r := dialRawH2(t, ts.addr)
	r.waitSettings(t)
	r.startCall(t, 1, "/signsvr.v1.SignService/Sign", 3<<20, 1024) // two stalled halves
	r.startCall(t, 3, "/signsvr.v1.SignService/Sign", 3<<20, 1024)
	eventually(t, "the stalled calls hold their messages' size", func() bool { return ts.srv.InflightBytes() >= 6<<20 })
	r.startCall(t, 5, "/signsvr.v1.SignService/Sign", 3<<20, 0) // the prefix only: its body is never sent
	msg := make([]byte, 5)
	binary.BigEndian.PutUint32(msg[1:], 3<<20)
	if err := r.fr.WriteData(5, false, msg); err != nil {
		t.Fatal(err)
	}
	if got := r.waitEnd(t, 5)[5]; got != "8" { // RESOURCE_EXHAUSTED
		t.Fatalf("a call past the budget ended with grpc-status %q, want 8 (RESOURCE_EXHAUSTED)", got)
	}
	if _, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Fatalf("a small call while large ones fill the budget: %v", err)
	}
	r.conn.Close()
	eventually(t, "the budget is given back", func() bool { return ts.srv.InflightBytes() == 0 })
	ts.assertServing(t)
}

// TestRequestReadTimeout: a request whose body stops arriving is answered
// DEADLINE_EXCEEDED at RequestReadTimeout, well before MaxCallDuration.
func TestRequestReadTimeout(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.Limits.RequestReadTimeout = 200 * time.Millisecond })
	r := dialRawH2(t, ts.addr)
	r.startCall(t, 1, "/signsvr.v1.SignService/Sign", 0, 0)         // headers only
	r.startCall(t, 3, "/signsvr.v1.SignService/Sign", 1<<20, 50000) // part of a message
	for id, got := range r.waitEnd(t, 1, 3) {
		if got != "4" {
			t.Errorf("stalled stream %d ended with grpc-status %q, want 4 (DEADLINE_EXCEEDED)", id, got)
		}
	}
	eventually(t, "the budget is given back", func() bool { return ts.srv.InflightBytes() == 0 })
}
