// Package streamclient is the client side of StreamService: it sends a file (any
// io.Reader) through a streaming call in chunks and writes what comes back to an
// io.Writer, so neither side holds a document whole. The CLI and the tests use it.
//
// Each function follows the protocol of stream.proto: options first, chunks of
// ChunkSize, the end message with the size sent, a half-close; then it reads the
// answer to its result message. The output written before an error is void (a CBC
// plaintext whose padding failed, a signature stream cut short): callers write to
// a temporary file and keep it only when the function returns nil.
package streamclient

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// ChunkSize is the size of the chunks sent: large enough that a message costs
// little per byte, small enough to stay far below the server's 1 MiB bound.
const ChunkSize = 256 << 10

// Progress is told the bytes sent so far; nil tells nothing.
type Progress func(sent int64)

// sendAll sends r in chunks through send, then the end message and the
// half-close. It runs beside the reading of the answer (the server answers while
// the data still arrives), and returns the bytes sent.
func sendAll(r io.Reader, chunk func([]byte) error, end func(size uint64) error, closeSend func() error, p Progress) (int64, error) {
	buf := make([]byte, ChunkSize)
	var n int64
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if serr := chunk(buf[:k]); serr != nil {
				return n, serr
			}
			n += int64(k)
			if p != nil {
				p(n)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if err := end(uint64(n)); err != nil {
		return n, err
	}
	return n, closeSend()
}

// bidi runs a bidirectional call: sending in a goroutine, receiving here. A send
// error that is io.EOF means the server ended the call; its status comes from the
// receiving side. cancel ends the call (when the receiving failed, the sending
// stops with it).
func bidi(cancel context.CancelFunc, send func() error, recv func() error) error {
	sent := make(chan error, 1)
	go func() { sent <- send() }()
	rerr := recv()
	if rerr != nil {
		cancel()
		<-sent
		return rerr
	}
	if serr := <-sent; serr != nil && !errors.Is(serr, io.EOF) {
		return serr
	}
	return nil
}

// sendStream is the sending side of a call: the options message, then r in chunks,
// the end message and the half-close. chunk and end wrap their part in the call's
// request message.
func sendStream[Q any](send func(Q) error, closeSend func() error, r io.Reader, p Progress, opts Q, chunk func([]byte) Q, end func(size uint64) Q) error {
	if err := send(opts); err != nil {
		return err
	}
	_, err := sendAll(r,
		func(b []byte) error { return send(chunk(b)) },
		func(n uint64) error { return send(end(n)) },
		closeSend, p)
	return err
}

// receive is the receiving side of a call whose answer is output chunks, then one
// result message: chunks are written to w, every other message goes to result,
// which says whether it was the result (and may write it out too); after the
// result the call's end is read. A call that ends first returns its status (io.EOF
// when it had none), so no call returns nil without its result.
func receive[M interface{ GetChunk() []byte }](st grpc.ClientStream, recv func() (M, error), w io.Writer, result func(M) (bool, error)) error {
	for {
		m, err := recv()
		if err != nil {
			return err
		}
		if chunk := m.GetChunk(); chunk != nil {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			continue
		}
		done, err := result(m)
		if err != nil {
			return err
		}
		if done {
			return drain(st)
		}
	}
}

// Sign signs r with key. Attached: the SignedData is written to w as it comes.
// Detached: the SignedData is written to w at the end.
func Sign(ctx context.Context, c signsvrv1.StreamServiceClient, o *signsvrv1.SignStreamOptions, r io.Reader, w io.Writer, p Progress) (*signsvrv1.SignStreamResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.SignStream(ctx)
	if err != nil {
		return nil, err
	}
	var res *signsvrv1.SignStreamResult
	err = bidi(cancel, func() error {
		return sendStream(st.Send, st.CloseSend, r, p,
			&signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Options{Options: o}},
			func(b []byte) *signsvrv1.SignStreamRequest {
				return &signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Chunk{Chunk: b}}
			},
			func(n uint64) *signsvrv1.SignStreamRequest {
				return &signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_End{End: &signsvrv1.StreamEnd{Size: n}}}
			})
	}, func() error {
		return receive(st, st.Recv, w, func(m *signsvrv1.SignStreamResponse) (bool, error) {
			if res = m.GetResult(); res == nil {
				return false, nil
			}
			if len(res.GetCms()) > 0 {
				if _, err := w.Write(res.GetCms()); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	})
	return res, err
}

// drain reads the call's end after its result message.
func drain(st grpc.ClientStream) error {
	var m any = new(signsvrv1.SignStreamResponse)
	if err := st.RecvMsg(m); err != io.EOF {
		if err == nil {
			return errors.New("streamclient: a message after the result")
		}
		return err
	}
	return nil
}

// Verify verifies a streamed message: detachedCMS empty means r is an attached
// SignedData; otherwise detachedCMS is the SignedData and r its content.
func Verify(ctx context.Context, c signsvrv1.StreamServiceClient, detachedCMS []byte, o *signsvrv1.VerifyOptions, r io.Reader, p Progress) (*signsvrv1.VerifyStreamResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.VerifyStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&signsvrv1.VerifyStreamRequest{Msg: &signsvrv1.VerifyStreamRequest_Options{Options: &signsvrv1.VerifyStreamOptions{Cms: detachedCMS, Options: o}}}); err != nil {
		_, rerr := st.CloseAndRecv()
		return nil, rerr
	}
	_, err = sendAll(r,
		func(b []byte) error {
			return st.Send(&signsvrv1.VerifyStreamRequest{Msg: &signsvrv1.VerifyStreamRequest_Chunk{Chunk: b}})
		},
		func(n uint64) error {
			return st.Send(&signsvrv1.VerifyStreamRequest{Msg: &signsvrv1.VerifyStreamRequest_End{End: &signsvrv1.StreamEnd{Size: n}}})
		}, func() error { return nil }, p)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// CloseAndRecv half-closes and gets the answer (or the error that ended the
	// call, when a send above found it over).
	return st.CloseAndRecv()
}

// Envelope encrypts r to the recipients; the envelope is written to w as it comes.
func Envelope(ctx context.Context, c signsvrv1.StreamServiceClient, o *signsvrv1.EnvelopeStreamOptions, r io.Reader, w io.Writer, p Progress) (*signsvrv1.StreamResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.EnvelopeStream(ctx)
	if err != nil {
		return nil, err
	}
	var res *signsvrv1.StreamResult
	err = bidi(cancel, func() error {
		return sendStream(st.Send, st.CloseSend, r, p,
			&signsvrv1.EnvelopeStreamRequest{Msg: &signsvrv1.EnvelopeStreamRequest_Options{Options: o}},
			func(b []byte) *signsvrv1.EnvelopeStreamRequest {
				return &signsvrv1.EnvelopeStreamRequest{Msg: &signsvrv1.EnvelopeStreamRequest_Chunk{Chunk: b}}
			},
			func(n uint64) *signsvrv1.EnvelopeStreamRequest {
				return &signsvrv1.EnvelopeStreamRequest{Msg: &signsvrv1.EnvelopeStreamRequest_End{End: &signsvrv1.StreamEnd{Size: n}}}
			})
	}, func() error {
		return receive(st, st.Recv, w, func(m *signsvrv1.EnvelopeStreamResponse) (bool, error) {
			res = m.GetResult()
			return res != nil, nil
		})
	})
	return res, err
}

// Decrypt opens the envelope r with key; the plaintext is written to w as it comes
// (for GCM, only after the server checked the tag).
func Decrypt(ctx context.Context, c signsvrv1.StreamServiceClient, o *signsvrv1.DecryptStreamOptions, r io.Reader, w io.Writer, p Progress) (*signsvrv1.DecryptStreamResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.DecryptStream(ctx)
	if err != nil {
		return nil, err
	}
	var res *signsvrv1.DecryptStreamResult
	err = bidi(cancel, func() error {
		return sendStream(st.Send, st.CloseSend, r, p,
			&signsvrv1.DecryptStreamRequest{Msg: &signsvrv1.DecryptStreamRequest_Options{Options: o}},
			func(b []byte) *signsvrv1.DecryptStreamRequest {
				return &signsvrv1.DecryptStreamRequest{Msg: &signsvrv1.DecryptStreamRequest_Chunk{Chunk: b}}
			},
			func(n uint64) *signsvrv1.DecryptStreamRequest {
				return &signsvrv1.DecryptStreamRequest{Msg: &signsvrv1.DecryptStreamRequest_End{End: &signsvrv1.StreamEnd{Size: n}}}
			})
	}, func() error {
		return receive(st, st.Recv, w, func(m *signsvrv1.DecryptStreamResponse) (bool, error) {
			res = m.GetResult()
			return res != nil, nil
		})
	})
	return res, err
}

// SignAndEnvelope signs r and envelopes the SignedData; the envelope is written to
// w as it comes.
func SignAndEnvelope(ctx context.Context, c signsvrv1.StreamServiceClient, o *signsvrv1.SignAndEnvelopeStreamOptions, r io.Reader, w io.Writer, p Progress) (*signsvrv1.StreamResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.SignAndEnvelopeStream(ctx)
	if err != nil {
		return nil, err
	}
	var res *signsvrv1.StreamResult
	err = bidi(cancel, func() error {
		return sendStream(st.Send, st.CloseSend, r, p,
			&signsvrv1.SignAndEnvelopeStreamRequest{Msg: &signsvrv1.SignAndEnvelopeStreamRequest_Options{Options: o}},
			func(b []byte) *signsvrv1.SignAndEnvelopeStreamRequest {
				return &signsvrv1.SignAndEnvelopeStreamRequest{Msg: &signsvrv1.SignAndEnvelopeStreamRequest_Chunk{Chunk: b}}
			},
			func(n uint64) *signsvrv1.SignAndEnvelopeStreamRequest {
				return &signsvrv1.SignAndEnvelopeStreamRequest{Msg: &signsvrv1.SignAndEnvelopeStreamRequest_End{End: &signsvrv1.StreamEnd{Size: n}}}
			})
	}, func() error {
		return receive(st, st.Recv, w, func(m *signsvrv1.SignAndEnvelopeStreamResponse) (bool, error) {
			res = m.GetResult()
			return res != nil, nil
		})
	})
	return res, err
}

// DecryptAndVerify opens the envelope r with key and verifies the SignedData in it;
// the signed content is written to w as it comes. It counts only when the call
// returns nil and the result says verified.
func DecryptAndVerify(ctx context.Context, c signsvrv1.StreamServiceClient, o *signsvrv1.DecryptAndVerifyStreamOptions, r io.Reader, w io.Writer, p Progress) (*signsvrv1.DecryptAndVerifyStreamResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.DecryptAndVerifyStream(ctx)
	if err != nil {
		return nil, err
	}
	var res *signsvrv1.DecryptAndVerifyStreamResult
	err = bidi(cancel, func() error {
		return sendStream(st.Send, st.CloseSend, r, p,
			&signsvrv1.DecryptAndVerifyStreamRequest{Msg: &signsvrv1.DecryptAndVerifyStreamRequest_Options{Options: o}},
			func(b []byte) *signsvrv1.DecryptAndVerifyStreamRequest {
				return &signsvrv1.DecryptAndVerifyStreamRequest{Msg: &signsvrv1.DecryptAndVerifyStreamRequest_Chunk{Chunk: b}}
			},
			func(n uint64) *signsvrv1.DecryptAndVerifyStreamRequest {
				return &signsvrv1.DecryptAndVerifyStreamRequest{Msg: &signsvrv1.DecryptAndVerifyStreamRequest_End{End: &signsvrv1.StreamEnd{Size: n}}}
			})
	}, func() error {
		return receive(st, st.Recv, w, func(m *signsvrv1.DecryptAndVerifyStreamResponse) (bool, error) {
			res = m.GetResult()
			return res != nil, nil
		})
	})
	return res, err
}
