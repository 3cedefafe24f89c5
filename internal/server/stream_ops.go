package server

// The operations of StreamService, each the streamed form of a unary one (sign.go,
// envelope.go) with the same options, checks and errors.

import (
	"errors"
	"io"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/sign"
)

// outFlush is how much output a stream gathers before it sends a message.
const outFlush = 256 << 10

// sender sends a stream's output in chunk messages, digesting it for the audit
// record, and counts it.
type sender struct {
	c    *streamCall
	send func([]byte) error
	buf  *[]byte
	size uint64
}

func newSender(c *streamCall, send func([]byte) error) *sender {
	return &sender{c: c, send: send, buf: outBufs.Get().(*[]byte)}
}

// out is the buffer to append output to.
func (s *sender) out() []byte { return (*s.buf)[:0] }

// flush sends b (which came from out) when it is not empty.
func (s *sender) flush(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	*s.buf = b[:0]
	s.c.wrote(b)
	s.size += uint64(len(b))
	return s.send(b)
}

// flushFull sends b once it holds outFlush bytes or more, and returns the buffer to
// append to next (b itself while it is smaller).
func (s *sender) flushFull(b []byte) ([]byte, error) {
	if len(b) < outFlush {
		return b, nil
	}
	if err := s.flush(b); err != nil {
		return b, err
	}
	return s.out(), nil
}

func (s *sender) release() {
	if cap(*s.buf) <= 2*MaxStreamChunk {
		outBufs.Put(s.buf)
	}
}

func isSignOpts(m *signsvrv1.SignStreamRequest) bool { return m.GetOptions() != nil }

// SignStream implements signsvrv1.StreamServiceServer.
func (s streamService) SignStream(ss signsvrv1.StreamService_SignStreamServer) error {
	return s.runStream(ss, signsvrv1.StreamService_SignStream_FullMethodName, func(c *streamCall) error {
		recv := receiver(c, streamRecv[signsvrv1.SignStreamRequest](c, ss))
		first, err := firstMessage(c, recv, isSignOpts)
		if err != nil {
			return err
		}
		o := first.GetOptions()
		c.req = &signsvrv1.SignRequest{Key: o.GetKey(), Detached: o.GetDetached(), Options: o.GetOptions()}
		k, err := s.useKey(c.ctx, o.GetKey(), OpSign)
		if err != nil {
			return err
		}
		var opts sign.Options
		if err := s.signOptions(k, o.GetDetached(), o.GetOptions(), &opts); err != nil {
			return err
		}
		signer, err := signerOf(c.ctx, k)
		if err != nil {
			return err
		}
		al := c.auditLog()
		if al != nil {
			// The record's output is the signerInfos, as unary Sign's (audit.go); its
			// input the signer's own content digest when that is in the log's hash.
			opts.ContentDigest, c.out = &c.ri.contentDigest, nil
		}
		st, err := sign.NewStreamSigner(signer, k.chain, &opts)
		if err != nil {
			return err
		}
		if al != nil && al.hashIs(st.Digest().Algorithm) {
			c.in = nil
		}
		snd := newSender(c, func(b []byte) error {
			return ss.Send(&signsvrv1.SignStreamResponse{Msg: &signsvrv1.SignStreamResponse_Chunk{Chunk: b}})
		})
		defer snd.release()
		out := snd.out()
		var prefix []byte
		if !opts.Detached {
			if prefix, err = st.Prefix(); err != nil {
				return err
			}
			out = append(snd.out(), prefix...)
		}
		r := newChunkReader(c, recv, isSignOpts)
		for {
			chunk, err := r.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			st.Write(chunk)
			if !opts.Detached {
				out = cms.AppendStreamChunk(out, chunk)
				if out, err = snd.flushFull(out); err != nil {
					return err
				}
			}
		}
		if err := r.finish(); err != nil {
			return err
		}
		tail, err := st.Finish()
		s.signed(c.ctx, k, err)
		if err != nil {
			return err
		}
		if al != nil {
			// prefix and tail hold the whole SignedData but the content's chunks.
			c.outSum = al.log.Digest(signerInfosOr(append(prefix[:len(prefix):len(prefix)], tail...)))
			if c.in == nil {
				c.inSum = al.reusable(&c.ri.contentDigest)
			}
		}
		res := &signsvrv1.SignStreamResult{}
		if opts.Detached {
			res.Cms = tail
			c.wrote(tail)
			snd.size = uint64(len(tail))
		} else {
			out = append(out, tail...)
			c.wrote(out)
			snd.size += uint64(len(out))
		}
		c.used = s.keyUsed(c.ctx, o.GetKey())
		res.Stream = &signsvrv1.StreamResult{Size: snd.size, Received: uint64(r.n), KeyUsed: c.used}
		// The signature leaves only once it is in the audit log.
		if err := c.commit(); err != nil {
			return err
		}
		if !opts.Detached {
			if err := ss.Send(&signsvrv1.SignStreamResponse{Msg: &signsvrv1.SignStreamResponse_Chunk{Chunk: out}}); err != nil {
				return err
			}
		}
		return ss.Send(&signsvrv1.SignStreamResponse{Msg: &signsvrv1.SignStreamResponse_Result{Result: res}})
	})
}

func isVerifyOpts(m *signsvrv1.VerifyStreamRequest) bool { return m.GetOptions() != nil }

// VerifyStream implements signsvrv1.StreamServiceServer.
func (s streamService) VerifyStream(ss signsvrv1.StreamService_VerifyStreamServer) error {
	return s.runStream(ss, signsvrv1.StreamService_VerifyStream_FullMethodName, func(c *streamCall) error {
		recv := receiver(c, streamRecv[signsvrv1.VerifyStreamRequest](c, ss))
		first, err := firstMessage(c, recv, isVerifyOpts)
		if err != nil {
			return err
		}
		o := first.GetOptions().GetOptions()
		vo := s.verifyOptions(c.ctx)
		if err := s.applyVerifyOptions(vo, o, "options"); err != nil {
			return err
		}
		// The record's input is the message's signerInfos, as unary Verify's
		// (audit.go): the content is not digested for it.
		c.in = nil
		r := newChunkReader(c, recv, isVerifyOpts)
		var res *sign.Result
		if der := first.GetOptions().GetCms(); len(der) > 0 {
			if al := c.auditLog(); al != nil {
				c.inSum = al.log.Digest(signerInfosOr(der))
			}
			// Detached: the message is in the options, the content streams.
			sd, err := cms.ParseSignedDataContentInfo(der)
			if err != nil {
				return err
			}
			if sd.EContent != nil {
				return invalidRequest("the SignedData in the options carries its content: stream the whole message instead")
			}
			h := sign.NewContentHasher(sign.SignerDigestAlgorithms(sd)...)
			if _, err := io.Copy(h, r); err != nil {
				return err
			}
			if err := r.finish(); err != nil {
				return err
			}
			vo.ContentDigests = h.Digests()
			if res, err = sign.VerifyParsed(sd, vo); err != nil {
				return err
			}
		} else {
			sr, err := cms.NewStreamReader(r, 0)
			if err != nil {
				return err
			}
			if res, err = sign.VerifyStreamed(sr, nil, vo); err != nil {
				return err
			}
			if err := r.finish(); err != nil {
				return err
			}
		}
		if al := c.auditLog(); al != nil && c.inSum == nil {
			c.inSum = al.log.Digest(res.SignerInfos)
		}
		stamps := s.checkTimestamps(c.ctx, res) // timestamp.go
		resp := &signsvrv1.VerifyStreamResponse{ContentType: res.ContentType, Detached: res.Detached, Received: uint64(r.n)}
		resp.Signers, resp.Verified = s.signerResultsAt(c.ctx, res, stamps)
		if stamps != nil {
			resp.Timestamps = stamps.list
		}
		// The record's output is the unary form's: its response without content.
		unary := &signsvrv1.VerifyResponse{Verified: resp.Verified, Signers: resp.Signers, ContentType: resp.ContentType,
			Detached: resp.Detached, Timestamps: resp.Timestamps}
		enc, _ := wholeMessage(unary, nil)
		c.wrote(enc)
		if err := c.commit(); err != nil {
			return err
		}
		return ss.SendAndClose(resp)
	})
}

func isEnvelopeOpts(m *signsvrv1.EnvelopeStreamRequest) bool { return m.GetOptions() != nil }

// EnvelopeStream implements signsvrv1.StreamServiceServer.
func (s streamService) EnvelopeStream(ss signsvrv1.StreamService_EnvelopeStreamServer) error {
	return s.runStream(ss, signsvrv1.StreamService_EnvelopeStream_FullMethodName, func(c *streamCall) error {
		recv := receiver(c, streamRecv[signsvrv1.EnvelopeStreamRequest](c, ss))
		first, err := firstMessage(c, recv, isEnvelopeOpts)
		if err != nil {
			return err
		}
		o := first.GetOptions()
		c.req = &signsvrv1.EnvelopeRequest{Options: o.GetOptions(), RecipientPasswords: o.GetRecipientPasswords()}
		rcpts, opts, err := s.streamRecipients(c, o.GetRecipientCerts(), o.GetRecipientKeys(), o, o.GetOptions())
		if err != nil {
			return err
		}
		sealer, err := envelope.NewStreamSealer(rcpts, &opts)
		if err != nil {
			return err
		}
		snd := newSender(c, func(b []byte) error {
			return ss.Send(&signsvrv1.EnvelopeStreamResponse{Msg: &signsvrv1.EnvelopeStreamResponse_Chunk{Chunk: b}})
		})
		defer snd.release()
		out := append(snd.out(), sealer.Prefix()...)
		r := newChunkReader(c, recv, isEnvelopeOpts)
		for {
			chunk, err := r.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			out = sealer.Seal(out, chunk)
			if out, err = snd.flushFull(out); err != nil {
				return err
			}
		}
		if err := r.finish(); err != nil {
			return err
		}
		if out, err = sealer.Close(out); err != nil {
			return err
		}
		c.wrote(out)
		snd.size += uint64(len(out))
		if err := c.commit(); err != nil {
			return err
		}
		if err := ss.Send(&signsvrv1.EnvelopeStreamResponse{Msg: &signsvrv1.EnvelopeStreamResponse_Chunk{Chunk: out}}); err != nil {
			return err
		}
		return ss.Send(&signsvrv1.EnvelopeStreamResponse{Msg: &signsvrv1.EnvelopeStreamResponse_Result{
			Result: &signsvrv1.StreamResult{Size: snd.size, Received: uint64(r.n), RecipientKeysUsed: s.keysUsed(c.ctx, o.GetRecipientKeys())}}})
	})
}

func isDecryptOpts(m *signsvrv1.DecryptStreamRequest) bool { return m.GetOptions() != nil }

// lazySpool makes its file on the first write: CBC envelopes never need one.
type lazySpool struct {
	s  *Server
	sp *fileSpool
}

func (l *lazySpool) Write(p []byte) (int, error) {
	if l.sp == nil {
		var err error
		if l.sp, err = l.s.newSpool(); err != nil {
			return 0, err
		}
	}
	return l.sp.Write(p)
}

func (l *lazySpool) Rewind() (io.Reader, error) {
	if l.sp == nil {
		return eofReader{}, nil
	}
	return l.sp.Rewind()
}

func (l *lazySpool) Close() {
	if l.sp != nil {
		l.sp.Close()
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// DecryptStream implements signsvrv1.StreamServiceServer.
func (s streamService) DecryptStream(ss signsvrv1.StreamService_DecryptStreamServer) error {
	return s.runStream(ss, signsvrv1.StreamService_DecryptStream_FullMethodName, func(c *streamCall) error {
		recv := receiver(c, streamRecv[signsvrv1.DecryptStreamRequest](c, ss))
		first, err := firstMessage(c, recv, isDecryptOpts)
		if err != nil {
			return err
		}
		o := first.GetOptions()
		c.req = &signsvrv1.DecryptRequest{Key: o.GetKey(), Options: o.GetOptions()}
		priv, leaf, err := s.openerFor(c.ctx, o.GetKey(), o.GetOptions()) // a private key, a KEK or a password
		if err != nil {
			return err
		}
		r := newChunkReader(c, recv, isDecryptOpts)
		sr, err := cms.NewStreamReader(r, 0)
		if err != nil {
			return err
		}
		env, err := envelope.ReadStreamEnvelope(sr)
		if err != nil {
			return streamDecryptError(err)
		}
		spool := &lazySpool{s: s.Server}
		defer spool.Close()
		var size uint64
		var res *envelope.StreamOpened
		c.used, err = s.openWithGenerations(c.ctx, o.GetKey(), priv, leaf, func(priv any, leaf *smx509.Certificate) (err error) {
			res, err = env.Open(priv, leaf, s.openOptions(o.GetOptions()), spool, r.finish, func(b []byte) error {
				c.wrote(b)
				size += uint64(len(b))
				return ss.Send(&signsvrv1.DecryptStreamResponse{Msg: &signsvrv1.DecryptStreamResponse_Chunk{Chunk: b}})
			})
			return err
		})
		if err != nil {
			return streamDecryptError(err)
		}
		if err := c.commit(); err != nil {
			return err
		}
		return ss.Send(&signsvrv1.DecryptStreamResponse{Msg: &signsvrv1.DecryptStreamResponse_Result{Result: &signsvrv1.DecryptStreamResult{
			ContentType: res.ContentType.String(), Stream: &signsvrv1.StreamResult{Size: size, Received: uint64(r.n), KeyUsed: c.used}}}})
	})
}

// streamDecryptError is decryptError, except for the stream's own errors (its
// framing, its limits), which depend on the transport alone and pass as they are.
func streamDecryptError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err // the transport's
	}
	return decryptError(err)
}

func isSignAndEnvelopeOpts(m *signsvrv1.SignAndEnvelopeStreamRequest) bool {
	return m.GetOptions() != nil
}

// SignAndEnvelopeStream implements signsvrv1.StreamServiceServer: SignStream's
// attached SignedData, streamed, is the content of EnvelopeStream's envelope.
func (s streamService) SignAndEnvelopeStream(ss signsvrv1.StreamService_SignAndEnvelopeStreamServer) error {
	return s.runStream(ss, signsvrv1.StreamService_SignAndEnvelopeStream_FullMethodName, func(c *streamCall) error {
		recv := receiver(c, streamRecv[signsvrv1.SignAndEnvelopeStreamRequest](c, ss))
		first, err := firstMessage(c, recv, isSignAndEnvelopeOpts)
		if err != nil {
			return err
		}
		o := first.GetOptions()
		c.req = &signsvrv1.SignAndEnvelopeRequest{Key: o.GetKey(), SignOptions: o.GetSignOptions(), EnvelopeOptions: o.GetEnvelopeOptions(),
			RecipientPasswords: o.GetRecipientPasswords()}
		rcpts, eopts, err := s.streamRecipients(c, o.GetRecipientCerts(), o.GetRecipientKeys(), o, o.GetEnvelopeOptions())
		if err != nil {
			return err
		}
		k, err := s.useKey(c.ctx, o.GetKey(), OpSign)
		if err != nil {
			return err
		}
		var sopts sign.Options
		if err := s.signOptions(k, false, o.GetSignOptions(), &sopts); err != nil {
			return err
		}
		signer, err := signerOf(c.ctx, k)
		if err != nil {
			return err
		}
		st, err := sign.NewStreamSigner(signer, k.chain, &sopts)
		if err != nil {
			return err
		}
		sealer, err := envelope.NewStreamSealer(rcpts, &eopts)
		if err != nil {
			return err
		}
		inner, err := st.Prefix()
		if err != nil {
			return err
		}
		snd := newSender(c, func(b []byte) error {
			return ss.Send(&signsvrv1.SignAndEnvelopeStreamResponse{Msg: &signsvrv1.SignAndEnvelopeStreamResponse_Chunk{Chunk: b}})
		})
		defer snd.release()
		out := sealer.Seal(append(snd.out(), sealer.Prefix()...), inner)
		r := newChunkReader(c, recv, isSignAndEnvelopeOpts)
		for {
			chunk, err := r.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			st.Write(chunk)
			inner = cms.AppendStreamChunk(inner[:0], chunk)
			out = sealer.Seal(out, inner)
			if out, err = snd.flushFull(out); err != nil {
				return err
			}
		}
		if err := r.finish(); err != nil {
			return err
		}
		tail, err := st.Finish()
		s.signed(c.ctx, k, err)
		if err != nil {
			return err
		}
		out = sealer.Seal(out, tail)
		if out, err = sealer.Close(out); err != nil {
			return err
		}
		c.wrote(out)
		snd.size += uint64(len(out))
		c.used = s.keyUsed(c.ctx, o.GetKey())
		if err := c.commit(); err != nil {
			return err
		}
		if err := ss.Send(&signsvrv1.SignAndEnvelopeStreamResponse{Msg: &signsvrv1.SignAndEnvelopeStreamResponse_Chunk{Chunk: out}}); err != nil {
			return err
		}
		return ss.Send(&signsvrv1.SignAndEnvelopeStreamResponse{Msg: &signsvrv1.SignAndEnvelopeStreamResponse_Result{
			Result: &signsvrv1.StreamResult{Size: snd.size, Received: uint64(r.n), KeyUsed: c.used,
				RecipientKeysUsed: s.keysUsed(c.ctx, o.GetRecipientKeys())}}})
	})
}

func isDecryptAndVerifyOpts(m *signsvrv1.DecryptAndVerifyStreamRequest) bool {
	return m.GetOptions() != nil
}

// DecryptAndVerifyStream implements signsvrv1.StreamServiceServer: DecryptStream's
// plaintext, a streamed SignedData, is verified as VerifyStream verifies one, its
// content sent on as it passes.
func (s streamService) DecryptAndVerifyStream(ss signsvrv1.StreamService_DecryptAndVerifyStreamServer) error {
	return s.runStream(ss, signsvrv1.StreamService_DecryptAndVerifyStream_FullMethodName, func(c *streamCall) error {
		recv := receiver(c, streamRecv[signsvrv1.DecryptAndVerifyStreamRequest](c, ss))
		first, err := firstMessage(c, recv, isDecryptAndVerifyOpts)
		if err != nil {
			return err
		}
		o := first.GetOptions()
		c.req = &signsvrv1.DecryptAndVerifyRequest{Key: o.GetKey(), DecryptOptions: o.GetDecryptOptions(), VerifyOptions: o.GetVerifyOptions()}
		priv, leaf, err := s.openerFor(c.ctx, o.GetKey(), o.GetDecryptOptions())
		if err != nil {
			return err
		}
		vopt := o.GetVerifyOptions()
		vo := s.verifyOptions(c.ctx)
		if err := s.applyVerifyOptions(vo, vopt, "verify_options"); err != nil {
			return err
		}
		r := newChunkReader(c, recv, isDecryptAndVerifyOpts)
		sr, err := cms.NewStreamReader(r, 0)
		if err != nil {
			return err
		}
		env, err := envelope.ReadStreamEnvelope(sr)
		if err != nil {
			return streamDecryptError(err)
		}
		spool := &lazySpool{s: s.Server}
		defer spool.Close()

		// The plaintext goes through a pipe to the verification, which runs beside
		// the decryption and is the only sender of content.
		pr, pw := io.Pipe()
		var size uint64
		type verdict struct {
			res *sign.Result
			err error
		}
		done := make(chan verdict, 1)
		go func() {
			var content io.Writer
			if !vopt.GetOmitContent() {
				content = writerFunc(func(b []byte) (int, error) {
					c.wrote(b)
					size += uint64(len(b))
					return len(b), ss.Send(&signsvrv1.DecryptAndVerifyStreamResponse{Msg: &signsvrv1.DecryptAndVerifyStreamResponse_Chunk{Chunk: b}})
				})
			}
			var v verdict
			inner, err := cms.NewStreamReader(pr, 0)
			if err == nil {
				v.res, err = sign.VerifyStreamed(inner, content, vo)
			}
			v.err = err
			pr.CloseWithError(io.ErrClosedPipe) // the decryption's writes fail from now on
			done <- v
		}()
		c.used, err = s.openWithGenerations(c.ctx, o.GetKey(), priv, leaf, func(priv any, leaf *smx509.Certificate) error {
			_, err := env.Open(priv, leaf, s.openOptions(o.GetDecryptOptions()), spool, r.finish, func(b []byte) error {
				_, err := pw.Write(b)
				return err
			})
			return err
		})
		pw.CloseWithError(err)
		v := <-done
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return streamDecryptError(err)
		}
		if v.err != nil {
			var e *Error
			if errors.As(v.err, &e) {
				return v.err // the transport's (sending the content)
			}
			// A plaintext that is not a SignedData is a failure to decrypt, as for
			// DecryptAndVerify.
			return errDecryptFailed(v.err)
		}
		if err != nil {
			return streamDecryptError(err)
		}
		signers, verified := s.signerResults(c.ctx, v.res)
		res := &signsvrv1.DecryptAndVerifyStreamResult{Verified: verified, Signers: signers, ContentType: v.res.ContentType,
			Stream: &signsvrv1.StreamResult{Size: size, Received: uint64(r.n), KeyUsed: c.used}}
		// The record's output is the unary form's: the content (digested as it
		// passed), then the rest of its answer (audit.go).
		if c.out != nil {
			verdictDigest(c.out, &signsvrv1.DecryptAndVerifyResponse{Verified: verified, Signers: signers,
				ContentType: v.res.ContentType, KeyUsed: c.used})
		}
		if err := c.commit(); err != nil {
			return err
		}
		return ss.Send(&signsvrv1.DecryptAndVerifyStreamResponse{Msg: &signsvrv1.DecryptAndVerifyStreamResponse_Result{Result: res}})
	})
}

// writerFunc is an io.Writer from a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// streamRecipients gathers an envelope stream's recipients as Envelope does: the
// certificates and named keys, then the key-encryption keys and passwords in opts.
func (s *Server) streamRecipients(c *streamCall, certs [][]byte, keys []string, sym symmetricRequest, o *signsvrv1.EnvelopeOptions) ([]*smx509.Certificate, envelope.Options, error) {
	var rcpts []*smx509.Certificate
	var err error
	if len(sym.GetRecipientKekKeys())+len(sym.GetRecipientPasswords()) == 0 || len(certs)+len(keys) > 0 {
		if rcpts, err = s.recipients(c.ctx, certs, keys); err != nil {
			return nil, envelope.Options{}, err
		}
	}
	opts, err := envelopeOptions(o)
	if err != nil {
		return nil, opts, err
	}
	if err := s.symmetricRecipients(c.ctx, sym, o, &opts); err != nil {
		return nil, opts, err
	}
	return rcpts, opts, c.ctx.Err()
}
