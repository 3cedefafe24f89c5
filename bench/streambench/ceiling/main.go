// Command ceiling serves a StreamService that does no work, over the transport of
// signsvr's server (server.BareTransport: the same windows, codec, buffer pool and
// listener), so that bench/streambench can measure, in the run that measures the
// real calls, how fast the transport alone moves a stream of the same shape:
//
//   - VerifyStream: the chunks are received and dropped (upload only);
//   - SignStream, EnvelopeStream, SignAndEnvelopeStream: every chunk is sent back as
//     it arrives (upload and download at once, as an attached signature or an
//     envelope is);
//   - DecryptStream, DecryptAndVerifyStream: the chunks are received and dropped,
//     then as many bytes are sent back after the end message (upload, then
//     download, as a GCM envelope is opened: its plaintext leaves only after the
//     whole ciphertext arrived).
//
// It prints "listening ADDR" once it serves, and stops on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
)

// outChunk is the size of the messages sent back after the upload: what the
// server's GCM opening hands out at a time.
const outChunk = 256 << 10

type msg interface {
	GetChunk() []byte
	GetEnd() *signsvrv1.StreamEnd
}

type service struct {
	signsvrv1.UnimplementedStreamServiceServer
	release func([]byte)
}

// drain receives a stream's messages to its half-close, handing each chunk to
// each (which must not keep it), and returns the bytes received.
func drain[M msg](recv func() (M, error), release func([]byte), each func([]byte) error) (uint64, error) {
	var n uint64
	for {
		m, err := recv()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if c := m.GetChunk(); len(c) > 0 {
			n += uint64(len(c))
			if each != nil {
				if err := each(c); err != nil {
					return n, err
				}
			}
			release(c)
		}
	}
}

// sendBack sends n bytes in outChunk messages.
func sendBack(n uint64, send func([]byte) error) error {
	buf := make([]byte, outChunk)
	for n > 0 {
		k := min(n, outChunk)
		if err := send(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (s service) VerifyStream(ss signsvrv1.StreamService_VerifyStreamServer) error {
	n, err := drain(ss.Recv, s.release, nil)
	if err != nil {
		return err
	}
	return ss.SendAndClose(&signsvrv1.VerifyStreamResponse{Received: n})
}

func (s service) SignStream(ss signsvrv1.StreamService_SignStreamServer) error {
	n, err := drain(ss.Recv, s.release, func(b []byte) error {
		return ss.Send(&signsvrv1.SignStreamResponse{Msg: &signsvrv1.SignStreamResponse_Chunk{Chunk: b}})
	})
	if err != nil {
		return err
	}
	return ss.Send(&signsvrv1.SignStreamResponse{Msg: &signsvrv1.SignStreamResponse_Result{
		Result: &signsvrv1.SignStreamResult{Stream: &signsvrv1.StreamResult{Size: n, Received: n}}}})
}

func (s service) EnvelopeStream(ss signsvrv1.StreamService_EnvelopeStreamServer) error {
	n, err := drain(ss.Recv, s.release, func(b []byte) error {
		return ss.Send(&signsvrv1.EnvelopeStreamResponse{Msg: &signsvrv1.EnvelopeStreamResponse_Chunk{Chunk: b}})
	})
	if err != nil {
		return err
	}
	return ss.Send(&signsvrv1.EnvelopeStreamResponse{Msg: &signsvrv1.EnvelopeStreamResponse_Result{
		Result: &signsvrv1.StreamResult{Size: n, Received: n}}})
}

func (s service) SignAndEnvelopeStream(ss signsvrv1.StreamService_SignAndEnvelopeStreamServer) error {
	n, err := drain(ss.Recv, s.release, func(b []byte) error {
		return ss.Send(&signsvrv1.SignAndEnvelopeStreamResponse{Msg: &signsvrv1.SignAndEnvelopeStreamResponse_Chunk{Chunk: b}})
	})
	if err != nil {
		return err
	}
	return ss.Send(&signsvrv1.SignAndEnvelopeStreamResponse{Msg: &signsvrv1.SignAndEnvelopeStreamResponse_Result{
		Result: &signsvrv1.StreamResult{Size: n, Received: n}}})
}

func (s service) DecryptStream(ss signsvrv1.StreamService_DecryptStreamServer) error {
	n, err := drain(ss.Recv, s.release, nil)
	if err != nil {
		return err
	}
	if err := sendBack(n, func(b []byte) error {
		return ss.Send(&signsvrv1.DecryptStreamResponse{Msg: &signsvrv1.DecryptStreamResponse_Chunk{Chunk: b}})
	}); err != nil {
		return err
	}
	return ss.Send(&signsvrv1.DecryptStreamResponse{Msg: &signsvrv1.DecryptStreamResponse_Result{
		Result: &signsvrv1.DecryptStreamResult{Stream: &signsvrv1.StreamResult{Size: n, Received: n}}}})
}

func (s service) DecryptAndVerifyStream(ss signsvrv1.StreamService_DecryptAndVerifyStreamServer) error {
	n, err := drain(ss.Recv, s.release, nil)
	if err != nil {
		return err
	}
	if err := sendBack(n, func(b []byte) error {
		return ss.Send(&signsvrv1.DecryptAndVerifyStreamResponse{Msg: &signsvrv1.DecryptAndVerifyStreamResponse_Chunk{Chunk: b}})
	}); err != nil {
		return err
	}
	return ss.Send(&signsvrv1.DecryptAndVerifyStreamResponse{Msg: &signsvrv1.DecryptAndVerifyStreamResponse_Result{
		Result: &signsvrv1.DecryptAndVerifyStreamResult{Verified: true, Stream: &signsvrv1.StreamResult{Size: n, Received: n}}}})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "the address to serve on")
	flag.Parse()
	bare := server.BareTransport()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer(bare.Options...)
	signsvrv1.RegisterStreamServiceServer(g, service{release: bare.ReleaseChunk})
	fmt.Printf("listening %s\n", lis.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		g.Stop()
	}()
	if err := g.Serve(bare.Listener(lis)); err != nil && err != grpc.ErrServerStopped {
		log.Fatal(err)
	}
}
