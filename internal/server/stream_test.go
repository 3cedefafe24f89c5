package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/streamclient"
)

// streamTestBytes is the size of the documents the in-process stream tests send
// (SIGNSVR_STREAM_TEST_BYTES overrides it); the large run with the memory bound is
// in cmd/signsvr against a server process.
func streamTestBytes(t testing.TB) int {
	if v := os.Getenv("SIGNSVR_STREAM_TEST_BYTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 3<<20 + 12345
}

// streamContent is n bytes of a repeatable pattern.
func streamContent(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

func (ts *testServer) streams() signsvrv1.StreamServiceClient {
	return signsvrv1.NewStreamServiceClient(ts.conn)
}

// TestStreamEveryFamily: each family signs (attached, detached), verifies, envelopes
// and decrypts through the streams; the unary forms read what the streams wrote.
func TestStreamEveryFamily(t *testing.T) {
	spool := t.TempDir()
	ts := startServer(t, func(o *server.Options) { o.Streams.SpoolDir = spool })
	sc := ts.streams()
	data := streamContent(streamTestBytes(t))
	small := data[:100_000]
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			ctx := ctxT(t)
			for _, detached := range []bool{false, true} {
				var sig bytes.Buffer
				res, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: fam + "-sign", Detached: detached}, bytes.NewReader(data), &sig, nil)
				if err != nil {
					t.Fatalf("SignStream detached=%v: %v", detached, err)
				}
				if res.GetStream().GetReceived() != uint64(len(data)) || res.GetStream().GetSize() != uint64(sig.Len()) {
					t.Fatalf("result sizes %v, sent %d, got %d", res.GetStream(), len(data), sig.Len())
				}
				var v *signsvrv1.VerifyStreamResponse
				if detached {
					v, err = streamclient.Verify(ctx, sc, sig.Bytes(), nil, bytes.NewReader(data), nil)
				} else {
					if sig.Bytes()[1] != 0x80 {
						t.Fatal("an attached streamed signature is not indefinite-length BER")
					}
					v, err = streamclient.Verify(ctx, sc, nil, nil, bytes.NewReader(sig.Bytes()), nil)
				}
				if err != nil {
					t.Fatalf("VerifyStream: %v", err)
				}
				wantVerified(t, v.GetVerified(), v.GetSigners(), data, data)
				if v.GetDetached() != detached {
					t.Fatalf("detached %v", v.GetDetached())
				}
				// Another content does not verify.
				other := bytes.Clone(data)
				other[len(other)/3] ^= 1
				if detached {
					v, err = streamclient.Verify(ctx, sc, sig.Bytes(), nil, bytes.NewReader(other), nil)
					if err != nil || v.GetVerified() || v.GetSigners()[0].GetSignature().GetReason() != "message-digest-mismatch" {
						t.Fatalf("other content: %v %v", err, v.GetSigners())
					}
				}
			}
			// A small streamed signature reads through the unary Verify too.
			var sig bytes.Buffer
			if _, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: fam + "-sign"}, bytes.NewReader(small), &sig, nil); err != nil {
				t.Fatal(err)
			}
			uv, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: sig.Bytes()})
			if err != nil {
				t.Fatal(err)
			}
			wantVerified(t, uv.GetVerified(), uv.GetSigners(), uv.GetContent(), small)

			ciphers := []signsvrv1.Cipher{signsvrv1.Cipher_CIPHER_UNSPECIFIED, signsvrv1.Cipher_CIPHER_AES128_CBC, signsvrv1.Cipher_CIPHER_AES256_GCM}
			if fam == "sm2" {
				ciphers = []signsvrv1.Cipher{signsvrv1.Cipher_CIPHER_UNSPECIFIED, signsvrv1.Cipher_CIPHER_SM4_GCM}
			}
			for _, c := range ciphers {
				eo := &signsvrv1.EnvelopeOptions{Cipher: c}
				if c == signsvrv1.Cipher_CIPHER_SM4_GCM {
					eo.Sm2Dialect = signsvrv1.Sm2Dialect_SM2_DIALECT_PKCS7
				}
				var env bytes.Buffer
				if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{fam + "-enc"}, Options: eo}, bytes.NewReader(data), &env, nil); err != nil {
					t.Fatalf("EnvelopeStream %v: %v", c, err)
				}
				var plain bytes.Buffer
				dres, err := streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Key: fam + "-enc"}, bytes.NewReader(env.Bytes()), &plain, nil)
				if err != nil {
					t.Fatalf("DecryptStream %v: %v", c, err)
				}
				if !bytes.Equal(plain.Bytes(), data) || dres.GetStream().GetSize() != uint64(len(data)) {
					t.Fatalf("DecryptStream %v: %d bytes back, want %d", c, plain.Len(), len(data))
				}
				// The unary Decrypt reads a small streamed envelope.
				env.Reset()
				if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{fam + "-enc"}, Options: eo}, bytes.NewReader(small), &env, nil); err != nil {
					t.Fatal(err)
				}
				d, err := ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: fam + "-enc", Cms: env.Bytes()})
				if err != nil || !bytes.Equal(d.GetData(), small) {
					t.Fatalf("unary Decrypt of a streamed envelope: %v", err)
				}
			}
		})
	}
	noSpoolLeft(t, spool)
	ts.assertServing(t)
}

// noSpoolLeft checks that the spool directory is empty and, the server being in
// this process, that no spool file is still open.
func noSpoolLeft(t *testing.T, dir string) {
	t.Helper()
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Fatalf("%d files left in the spool directory", len(ents))
	}
	eventually(t, "spool files closed", func() bool {
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.Contains(target, "signsvr-spool") {
				return false
			}
		}
		return true
	})
}

// TestStreamOpenSSL: OpenSSL verifies the streams' RSA and ECDSA signatures
// (attached and detached) and decrypts their envelopes; what `openssl cms -sign
// -stream` and `-encrypt -stream` write verifies and decrypts through the streams.
func TestStreamOpenSSL(t *testing.T) {
	ts := startServer(t)
	sc := ts.streams()
	ctx := ctxT(t)
	data := streamContent(streamTestBytes(t))
	dataFile := writeFile(t, "data", data)
	for _, fam := range []string{"rsa", "ecdsa"} {
		for _, detached := range []bool{false, true} {
			var sig bytes.Buffer
			if _, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: fam + "-sign", Detached: detached}, bytes.NewReader(data), &sig, nil); err != nil {
				t.Fatal(err)
			}
			args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", writeFile(t, "sig.ber", sig.Bytes()), "-CAfile", pki.RootsPath}
			if detached {
				args = append(args, "-content", dataFile)
			}
			if out := openssl(t, nil, args...); !bytes.Equal(out, data) {
				t.Fatalf("%s detached=%v: openssl gives %d bytes", fam, detached, len(out))
			}
		}
		kf := keyFile(t, fam+"-enc")
		leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
		for _, c := range []signsvrv1.Cipher{signsvrv1.Cipher_CIPHER_AES256_GCM, signsvrv1.Cipher_CIPHER_AES256_CBC} {
			var env bytes.Buffer
			if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{fam + "-enc"}, Options: &signsvrv1.EnvelopeOptions{Cipher: c}}, bytes.NewReader(data), &env, nil); err != nil {
				t.Fatal(err)
			}
			out := openssl(t, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", writeFile(t, "env.ber", env.Bytes()), "-inkey", kf.KeyPath, "-recip", leaf)
			if !bytes.Equal(out, data) {
				t.Fatalf("%s %v: openssl decrypts %d bytes", fam, c, len(out))
			}
		}
		// OpenSSL's streamed objects through the streams.
		skf := keyFile(t, fam+"-sign")
		signed := openssl(t, nil, "cms", "-sign", "-stream", "-binary", "-nodetach", "-outform", "DER", "-in", dataFile, "-signer", skf.CertPath, "-inkey", skf.KeyPath)
		v, err := streamclient.Verify(ctx, sc, nil, nil, bytes.NewReader(signed), nil)
		if err != nil {
			t.Fatalf("VerifyStream of openssl -stream: %v", err)
		}
		wantVerified(t, v.GetVerified(), v.GetSigners(), data, data)
		for _, cipher := range []string{"-aes-256-gcm", "-aes128"} {
			args := []string{"cms", "-encrypt", "-stream", "-binary", "-outform", "DER", "-in", dataFile, cipher}
			if fam == "ecdsa" {
				args = append(args, "-recip", leaf, "-keyopt", "ecdh_kdf_md:sha256")
			} else {
				args = append(args, "-recip", leaf)
			}
			env := openssl(t, nil, args...)
			var plain bytes.Buffer
			if _, err := streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Key: fam + "-enc"}, bytes.NewReader(env), &plain, nil); err != nil {
				t.Fatalf("DecryptStream of openssl %s -stream: %v", cipher, err)
			}
			if !bytes.Equal(plain.Bytes(), data) {
				t.Fatal("DecryptStream of openssl's envelope: content differs")
			}
		}
	}
}

// rawDecrypt sends msgs on a DecryptStream as they are (then half-closes unless
// open) and returns the chunks received and the call's error.
func rawDecrypt(t *testing.T, sc signsvrv1.StreamServiceClient, msgs []*signsvrv1.DecryptStreamRequest) (int, error) {
	t.Helper()
	st, err := sc.DecryptStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, m := range msgs {
			if st.Send(m) != nil {
				return
			}
		}
		st.CloseSend()
	}()
	chunks := 0
	for {
		m, err := st.Recv()
		if err != nil {
			return chunks, err
		}
		if m.GetChunk() != nil {
			chunks++
		}
	}
}

func decOpts(key string) *signsvrv1.DecryptStreamRequest {
	return &signsvrv1.DecryptStreamRequest{Msg: &signsvrv1.DecryptStreamRequest_Options{Options: &signsvrv1.DecryptStreamOptions{Key: key}}}
}

func decChunk(b []byte) *signsvrv1.DecryptStreamRequest {
	return &signsvrv1.DecryptStreamRequest{Msg: &signsvrv1.DecryptStreamRequest_Chunk{Chunk: b}}
}

func decEnd(n uint64) *signsvrv1.DecryptStreamRequest {
	return &signsvrv1.DecryptStreamRequest{Msg: &signsvrv1.DecryptStreamRequest_End{End: &signsvrv1.StreamEnd{Size: n}}}
}

// TestStreamBadInput: a stream that breaks the protocol or a limit gets a clear
// status, a tampered GCM envelope releases no plaintext, nothing is left behind,
// and the server keeps serving.
func TestStreamBadInput(t *testing.T) {
	spool := t.TempDir()
	ts := startServer(t, func(o *server.Options) {
		o.Streams.SpoolDir = spool
		o.Streams.MaxBytes = 2 << 20
	})
	sc := ts.streams()
	ctx := ctxT(t)
	data := streamContent(700_000)
	var env bytes.Buffer
	if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"rsa-enc"}, Options: &signsvrv1.EnvelopeOptions{Cipher: signsvrv1.Cipher_CIPHER_AES256_GCM}}, bytes.NewReader(data), &env, nil); err != nil {
		t.Fatal(err)
	}
	e := env.Bytes()
	half := len(e) / 2
	bigEnv, err := ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: streamContent(3 << 20), RecipientKeys: []string{"rsa-enc"}})
	if err != nil {
		t.Fatal(err)
	}
	big := bigEnv.GetCms()
	tampered := bytes.Clone(e)
	tampered[half] ^= 1
	tamperedTag := bytes.Clone(e)
	tamperedTag[len(e)-10] ^= 1 // inside the MAC, before the last end-of-contents
	for _, tc := range []struct {
		name   string
		msgs   []*signsvrv1.DecryptStreamRequest
		code   codes.Code
		reason string
	}{
		{"no options", []*signsvrv1.DecryptStreamRequest{decChunk(e), decEnd(0)}, codes.InvalidArgument, "INVALID_REQUEST"},
		{"nothing at all", nil, codes.InvalidArgument, "INVALID_REQUEST"},
		{"options twice", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decOpts("rsa-enc")}, codes.InvalidArgument, "INVALID_REQUEST"},
		{"ends early", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(e[:half])}, codes.InvalidArgument, "INVALID_REQUEST"},
		{"no end message", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(e[:half]), decChunk(e[half:])}, codes.InvalidArgument, "INVALID_REQUEST"},
		{"chunk after the end", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(e), decEnd(0), decChunk([]byte{1})}, codes.InvalidArgument, "INVALID_REQUEST"},
		{"wrong size at the end", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(e), decEnd(uint64(len(e) + 1))}, codes.InvalidArgument, "INVALID_REQUEST"},
		{"chunk over 1 MiB", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(make([]byte, 1<<20+1))}, codes.InvalidArgument, "INVALID_REQUEST"},
		{"over the maximum size", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(big[:1<<20]), decChunk(big[1<<20 : 2<<20]), decChunk(big[2<<20 : 3<<20]), decEnd(0)}, codes.ResourceExhausted, "TOO_LARGE"},
		{"truncated envelope", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(e[:len(e)-40]), decEnd(0)}, codes.InvalidArgument, "MALFORMED_INPUT"},
		{"trailing data", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(e), decChunk([]byte{0x30}), decEnd(0)}, codes.InvalidArgument, "MALFORMED_INPUT"},
		{"tampered ciphertext", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(tampered), decEnd(0)}, codes.InvalidArgument, "DECRYPTION_FAILED"},
		{"tampered tag", []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(tamperedTag), decEnd(0)}, codes.InvalidArgument, "DECRYPTION_FAILED"},
		{"another key", []*signsvrv1.DecryptStreamRequest{decOpts("ecdsa-enc"), decChunk(e), decEnd(0)}, codes.InvalidArgument, "DECRYPTION_FAILED"},
		{"unknown key", []*signsvrv1.DecryptStreamRequest{decOpts("nope"), decChunk(e), decEnd(0)}, codes.NotFound, "KEY_NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks, err := rawDecrypt(t, sc, tc.msgs)
			wantStatus(t, err, tc.code, tc.reason)
			if chunks != 0 {
				t.Fatalf("%d plaintext chunks released", chunks)
			}
		})
	}
	// The good envelope still opens.
	if chunks, err := rawDecrypt(t, sc, []*signsvrv1.DecryptStreamRequest{decOpts("rsa-enc"), decChunk(e[:half]), decChunk(e[half:]), decEnd(uint64(len(e)))}); err != io.EOF || chunks == 0 {
		t.Fatalf("good envelope: %v, %d chunks", err, chunks)
	}
	// The other streams follow the same protocol.
	st, err := sc.SignStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Chunk{Chunk: []byte("x")}})
	st.CloseSend()
	_, err = st.Recv()
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	vs, err := sc.VerifyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs.Send(&signsvrv1.VerifyStreamRequest{Msg: &signsvrv1.VerifyStreamRequest_Options{Options: &signsvrv1.VerifyStreamOptions{}}})
	var sig bytes.Buffer
	if _, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: "rsa-sign"}, bytes.NewReader(data), &sig, nil); err != nil {
		t.Fatal(err)
	}
	vs.Send(&signsvrv1.VerifyStreamRequest{Msg: &signsvrv1.VerifyStreamRequest_Chunk{Chunk: sig.Bytes()}})
	_, err = vs.CloseAndRecv()
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	if _, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: "sm2-sign", Options: &signsvrv1.SignOptions{NoSignedAttributes: true}}, bytes.NewReader(data), io.Discard, nil); err == nil {
		t.Fatal("a streamed SM2 signature without signed attributes")
	}

	// A GCM decryption cancelled halfway (its spool file in use) frees it.
	cctx, cancel := context.WithCancel(ctx)
	ds, err := sc.DecryptStream(cctx)
	if err != nil {
		t.Fatal(err)
	}
	ds.Send(decOpts("rsa-enc"))
	ds.Send(decChunk(e[:half]))
	eventually(t, "the spool file opened", func() bool { return openSpools() > 0 })
	cancel()
	noSpoolLeft(t, spool)
	ts.assertServing(t)
}

// openSpools counts this process's open spool files.
func openSpools() int {
	n := 0
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.Contains(target, "signsvr-spool") {
			n++
		}
	}
	return n
}

// TestStreamAuditEqualsUnary: a streamed operation leaves the record its unary form
// leaves: op, key, algorithms, and the digests of input and output.
func TestStreamAuditEqualsUnary(t *testing.T) {
	as := startAuditedServer(t, nil)
	sc := as.streams()
	ctx := ctxT(t)
	data := streamContent(700_000)
	// Sign: the same input; the outputs are each call's own signature.
	u, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data, Detached: true})
	if err != nil {
		t.Fatal(err)
	}
	var sig bytes.Buffer
	if _, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: "ecdsa-sign", Detached: true}, bytes.NewReader(data), &sig, nil); err != nil {
		t.Fatal(err)
	}
	// Decrypt: the same envelope in, the same plaintext out.
	env, err := as.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"rsa-enc"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: env.GetCms()}); err != nil {
		t.Fatal(err)
	}
	if _, err := streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Key: "rsa-enc"}, bytes.NewReader(env.GetCms()), io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	// A refused stream is recorded too.
	streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Key: "rsa-enc"}, bytes.NewReader(env.GetCms()[:100]), io.Discard, nil)
	// Envelope and Verify: the same input digests as their unary forms'.
	if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"rsa-enc"}}, bytes.NewReader(data), io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := as.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: u.GetCms(), Data: data, Options: &signsvrv1.VerifyOptions{OmitContent: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := streamclient.Verify(ctx, sc, u.GetCms(), nil, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}

	recs := as.stopAndRead(t)
	if len(recs) != 9 {
		t.Fatalf("%d records, want 9", len(recs))
	}
	for _, pair := range [][2]int{{2, 6}, {7, 8}} {
		a, b := recs[pair[0]], recs[pair[1]]
		for _, f := range []string{"op", "key", "algs", "in", "code"} {
			if !equalJSON(a[f], b[f]) {
				t.Errorf("%v: %s %v (unary) != %v (stream)", a["op"], f, a[f], b[f])
			}
		}
	}
	us, ss, _, ud, sd, bad := recs[0], recs[1], recs[2], recs[3], recs[4], recs[5]
	for _, f := range []string{"op", "key", "algs", "in", "code"} {
		if !equalJSON(us[f], ss[f]) {
			t.Errorf("sign: %s %v (unary) != %v (stream)", f, us[f], ss[f])
		}
	}
	if ss["out"] != sha(signerInfosOf(t, sig.Bytes())) || us["out"] != sha(signerInfosOf(t, u.GetCms())) {
		t.Errorf("sign: output digests %v %v", us["out"], ss["out"])
	}
	for _, f := range []string{"op", "key", "algs", "in", "out", "code"} {
		if !equalJSON(ud[f], sd[f]) {
			t.Errorf("decrypt: %s %v (unary) != %v (stream)", f, ud[f], sd[f])
		}
	}
	if sd["out"] != sha(data) || sd["in"] != sha(env.GetCms()) {
		t.Errorf("decrypt: digests %v %v", sd["in"], sd["out"])
	}
	if bad["op"] != "decrypt" || bad["code"] != "InvalidArgument" {
		t.Errorf("refused stream: %v", bad)
	}
}

func equalJSON(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestStreamSignAndEnvelopeThenDecryptAndVerify: the nested form streamed both ways,
// read by the unary DecryptAndVerify and OpenSSL (RSA); a tampered GCM envelope
// gives DECRYPTION_FAILED and no content.
func TestStreamSignAndEnvelopeThenDecryptAndVerify(t *testing.T) {
	ts := startServer(t)
	sc := ts.streams()
	ctx := ctxT(t)
	data := streamContent(streamTestBytes(t))
	for _, fam := range families {
		var env bytes.Buffer
		o := &signsvrv1.SignAndEnvelopeStreamOptions{Key: fam + "-sign", RecipientKeys: []string{fam + "-enc"}}
		if _, err := streamclient.SignAndEnvelope(ctx, sc, o, bytes.NewReader(data), &env, nil); err != nil {
			t.Fatalf("%s: SignAndEnvelopeStream: %v", fam, err)
		}
		var content bytes.Buffer
		res, err := streamclient.DecryptAndVerify(ctx, sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: fam + "-enc"}, bytes.NewReader(env.Bytes()), &content, nil)
		if err != nil {
			t.Fatalf("%s: DecryptAndVerifyStream: %v", fam, err)
		}
		wantVerified(t, res.GetVerified(), res.GetSigners(), content.Bytes(), data)
		if fam == "rsa" {
			kf := keyFile(t, "rsa-enc")
			leaf := writeFile(t, "leaf.pem", openssl(t, nil, "x509", "-in", kf.CertPath))
			signed := openssl(t, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", writeFile(t, "env.ber", env.Bytes()), "-inkey", kf.KeyPath, "-recip", leaf)
			if out := openssl(t, nil, "cms", "-verify", "-binary", "-inform", "DER", "-in", writeFile(t, "signed.ber", signed), "-CAfile", pki.RootsPath); !bytes.Equal(out, data) {
				t.Fatal("openssl: the nested streamed message does not open and verify")
			}
		}
		if fam == "ecdsa" {
			bad := bytes.Clone(env.Bytes())
			bad[len(bad)/2] ^= 1
			content.Reset()
			_, err := streamclient.DecryptAndVerify(ctx, sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: fam + "-enc"}, bytes.NewReader(bad), &content, nil)
			wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
			if content.Len() != 0 {
				t.Fatalf("a tampered GCM envelope released %d bytes", content.Len())
			}
		}
	}
	// A small one through the unary DecryptAndVerify.
	var env bytes.Buffer
	if _, err := streamclient.SignAndEnvelope(ctx, sc, &signsvrv1.SignAndEnvelopeStreamOptions{Key: "sm2-sign", RecipientKeys: []string{"sm2-enc"}}, bytes.NewReader(data[:50_000]), &env, nil); err != nil {
		t.Fatal(err)
	}
	u, err := ts.env.DecryptAndVerify(ctx, &signsvrv1.DecryptAndVerifyRequest{Key: "sm2-enc", Cms: env.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	wantVerified(t, u.GetVerified(), u.GetSigners(), u.GetContent(), data[:50_000])
	// A plain envelope (no SignedData inside) is a failure to decrypt.
	env.Reset()
	if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"rsa-enc"}}, bytes.NewReader(data[:1000]), &env, nil); err != nil {
		t.Fatal(err)
	}
	_, err = streamclient.DecryptAndVerify(ctx, sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: "rsa-enc"}, bytes.NewReader(env.Bytes()), io.Discard, nil)
	wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
	ts.assertServing(t)
}

// TestStreamIdleTimeout: a stream whose client stops sending is ended with
// DEADLINE_EXCEEDED, and what it held is freed.
func TestStreamIdleTimeout(t *testing.T) {
	spool := t.TempDir()
	ts := startServer(t, func(o *server.Options) {
		o.Streams.IdleTimeout = 300 * time.Millisecond
		o.Streams.SpoolDir = spool
	})
	sc := ts.streams()
	ctx := ctxT(t)
	var env bytes.Buffer
	if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"rsa-enc"}}, bytes.NewReader(streamContent(100_000)), &env, nil); err != nil {
		t.Fatal(err)
	}
	st, err := sc.DecryptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(decOpts("rsa-enc"))
	st.Send(decChunk(env.Bytes()[:env.Len()/2]))
	// The client sends nothing more and waits for the server's answer.
	_, err = st.Recv()
	wantStatus(t, err, codes.DeadlineExceeded, "DEADLINE")
	noSpoolLeft(t, spool)
	ts.assertServing(t)
}

// TestStreamPasswordRecipient: a password recipient (PasswordRecipientInfo) through
// EnvelopeStream and DecryptStream; a wrong password is DECRYPTION_FAILED.
func TestStreamPasswordRecipient(t *testing.T) {
	ts := startServer(t)
	sc := ts.streams()
	ctx := ctxT(t)
	data := streamContent(300_000)
	pw := []byte("correct horse battery staple")
	var env bytes.Buffer
	if _, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientPasswords: [][]byte{pw},
		Options: &signsvrv1.EnvelopeOptions{Pbkdf2Iterations: 1000}}, bytes.NewReader(data), &env, nil); err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Options: &signsvrv1.DecryptOptions{Password: pw}}, bytes.NewReader(env.Bytes()), &plain, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Bytes(), data) {
		t.Fatal("content differs")
	}
	d, err := ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Cms: env.Bytes(), Options: &signsvrv1.DecryptOptions{Password: pw}})
	if err != nil || !bytes.Equal(d.GetData(), data) {
		t.Fatalf("unary Decrypt: %v", err)
	}
	plain.Reset()
	_, err = streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Options: &signsvrv1.DecryptOptions{Password: []byte("wrong password, long enough")}}, bytes.NewReader(env.Bytes()), &plain, nil)
	wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
	if plain.Len() != 0 {
		t.Fatalf("%d bytes released with a wrong password", plain.Len())
	}
}
