package cli

// The file commands stream: `signsvr sign|verify|envelope|decrypt` send their input
// through StreamService (internal/streamclient) in chunks, so a file of any size
// goes through in constant memory on both sides, and write the output as it comes.
// An output file is written beside its final name and renamed into place only when
// the call succeeded (for decrypt, the plaintext of a CBC envelope counts only once
// its padding checked at the end); standard output gets the bytes as they come.
//
// On a terminal, stderr shows a progress bar; it stays quiet otherwise (--quiet
// silences it everywhere).
//
// --digest-only (sign, verify) hashes the file here and sends only its digest: a
// detached signature made, or checked, from the digest (the key must accept client
// digests of its algorithm). The algorithm is --digest, or the key's default, which
// ListKeys tells (SM2: SM3; P-384: SHA-384; others SHA-256); for verify, the
// signer's.
//
// The commands take every flag of their request options (options.go), as the unary
// commands do. Two sign requests have no streamed form and go through the unary
// Sign with the input in one message, so within the server's message limit: a
// signature timestamp (--timestamp, which SignStreamOptions cannot ask for; with
// --digest-only it is the digest's Sign, for a file of any size), and an SM2
// signature without signed attributes (it covers SM3(Z || content), which only the
// key's backend computes). Verifying such a signature, the server answers
// content-needed to the stream; verify then sends the input it kept (up to the
// unary limit) to the unary Verify.

import (
	"bufio"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"google.golang.org/grpc"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/streamclient"
	"signsvr.dev/signsvr/pkg/cms"
)

// streamTimeout is the default deadline of a streamed command: large files take
// longer than one message.
const streamTimeout = time.Hour

// streamFlags are what every streamed command adds to clientFlags.
type streamFlags struct {
	quiet bool
}

func (sf *streamFlags) register(fs *flag.FlagSet, c *clientFlags) {
	fs.BoolVar(&sf.quiet, "quiet", false, "no progress bar on a terminal")
	if f := fs.Lookup("timeout"); f != nil {
		f.DefValue = streamTimeout.String()
		f.Value.Set(f.DefValue)
	}
}

// openInput opens the input file (stdin for "" or "-") and its size when known.
func openInput(path string, stdin io.Reader) (io.Reader, int64, func(), error) {
	if path == "" || path == "-" {
		return bufio.NewReaderSize(stdin, 1<<20), -1, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return bufio.NewReaderSize(f, 1<<20), size, func() { f.Close() }, nil
}

// output is where a streamed command writes: stdout, or a temporary file beside
// the final one that commit renames into place.
type output struct {
	w     *bufio.Writer
	f     *os.File
	final string
}

func openOutput(path string, stdout io.Writer) (*output, error) {
	if path == "" || path == "-" {
		return &output{w: bufio.NewWriterSize(stdout, 1<<20)}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return nil, err
	}
	return &output{w: bufio.NewWriterSize(f, 1<<20), f: f, final: path}, nil
}

func (o *output) Write(p []byte) (int, error) { return o.w.Write(p) }

// commit flushes and, for a file, renames it into place.
func (o *output) commit() error {
	if err := o.w.Flush(); err != nil {
		o.abort()
		return err
	}
	if o.f == nil {
		return nil
	}
	if err := o.f.Close(); err != nil {
		os.Remove(o.f.Name())
		return err
	}
	return os.Rename(o.f.Name(), o.final)
}

// abort drops a file output.
func (o *output) abort() {
	if o.f != nil {
		o.f.Close()
		os.Remove(o.f.Name())
	}
}

// finish ends command cmd, which streamed its output into o (through pw when it
// writes PEM, else pw is nil): when the call failed (err) or the PEM trailer cannot
// be written, the output is discarded and the failure reported; otherwise the
// output is kept.
func (o *output) finish(stderr io.Writer, cmd string, err error, pw *pemWriter) int {
	if err == nil && pw != nil {
		err = pw.Close()
	}
	if err != nil {
		o.abort()
		return fail(stderr, cmd, err)
	}
	if err := o.commit(); err != nil {
		return inputError(stderr, cmd, err)
	}
	return ExitOK
}

// progress draws a bar on stderr when it is a terminal.
type progress struct {
	w     io.Writer
	what  string
	total int64
	start time.Time
	last  time.Time
}

// newProgress is nil (no bar) unless stderr is a terminal and not quiet.
func newProgress(stderr io.Writer, quiet bool, what string, total int64) *progress {
	f, ok := stderr.(*os.File)
	if quiet || !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	now := time.Now()
	return &progress{w: stderr, what: what, total: total, start: now}
}

func (p *progress) update(sent int64) {
	if p == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && sent != p.total {
		return
	}
	p.last = now
	rate := float64(sent) / max(now.Sub(p.start).Seconds(), 1e-3) / 1e6
	if p.total > 0 {
		const width = 30
		n := int(int64(width) * sent / p.total)
		fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s / %s %.0f MB/s ", p.what, strings.Repeat("=", n), strings.Repeat(" ", width-n),
			100*sent/p.total, mib(sent), mib(p.total), rate)
		return
	}
	fmt.Fprintf(p.w, "\r%s %s %.0f MB/s ", p.what, mib(sent), rate)
}

func (p *progress) done() {
	if p != nil {
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (p *progress) fn() streamclient.Progress {
	if p == nil {
		return nil
	}
	return p.update
}

// pemWriter writes PEM ("-----BEGIN CMS-----", base64 in lines of 64) as the DER
// streams through.
type pemWriter struct {
	w    io.Writer
	line *lineWriter
	enc  io.WriteCloser
}

type lineWriter struct {
	w io.Writer
	n int
}

func (l *lineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(len(p), 64-l.n)
		if _, err := l.w.Write(p[:k]); err != nil {
			return written, err
		}
		written += k
		l.n += k
		p = p[k:]
		if l.n == 64 {
			if _, err := l.w.Write([]byte("\n")); err != nil {
				return written, err
			}
			l.n = 0
		}
	}
	return written, nil
}

func newPEMWriter(w io.Writer) (*pemWriter, error) {
	if _, err := io.WriteString(w, "-----BEGIN CMS-----\n"); err != nil {
		return nil, err
	}
	l := &lineWriter{w: w}
	return &pemWriter{w: w, line: l, enc: base64.NewEncoder(base64.StdEncoding, l)}, nil
}

func (p *pemWriter) Write(b []byte) (int, error) { return p.enc.Write(b) }

func (p *pemWriter) Close() error {
	if err := p.enc.Close(); err != nil {
		return err
	}
	if p.line.n > 0 {
		io.WriteString(p.w, "\n")
	}
	_, err := io.WriteString(p.w, "-----END CMS-----\n")
	return err
}

// keyInfo asks the server about key.
func keyInfo(ctx context.Context, cc *grpc.ClientConn, key string) (*signsvrv1.KeyInfo, error) {
	resp, err := signsvrv1.NewKeyServiceClient(cc).ListKeys(ctx, &signsvrv1.ListKeysRequest{})
	if err != nil {
		return nil, err
	}
	for _, k := range resp.GetKeys() {
		if k.GetName() == key {
			return k, nil
		}
	}
	return nil, fmt.Errorf("the server lists no key %q", key)
}

// defaultDigest is the digest key k signs with by default.
func defaultDigest(k *signsvrv1.KeyInfo) signsvrv1.DigestAlgorithm {
	switch {
	case k.GetAlgorithm() == signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2:
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3
	case k.GetCurve() == "P-384":
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384
	}
	return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256
}

// newDigest is the hash of a DigestAlgorithm.
func newDigest(d signsvrv1.DigestAlgorithm) (hash.Hash, error) {
	switch d {
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256:
		return crypto.SHA256.New(), nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384:
		return crypto.SHA384.New(), nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512:
		return crypto.SHA512.New(), nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3:
		return sm3.New(), nil
	}
	return nil, fmt.Errorf("no digest %v", d)
}

// digestOfOID is the API's name of a digest OID.
func digestOfOID(oid string) signsvrv1.DigestAlgorithm {
	switch oid {
	case cms.OIDSHA256.String():
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256
	case cms.OIDSHA384.String():
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384
	case cms.OIDSHA512.String():
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512
	case cms.OIDSM3.String(), cms.OIDSM3Alt.String():
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3
	}
	return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED
}

// hashInput hashes r, showing progress.
func hashInput(r io.Reader, h hash.Hash, p *progress) error {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := r.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		p.update(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var signCmd = &Command{
	Name: "sign", Args: "--key NAME [--detached | --digest-only] [--in F] [--out F] [--pem] [--quiet] [SignOptions flags] [--timestamp server|external]",
	Summary: "SignStream: a CMS SignedData over a file of any size (Sign from its digest with --digest-only)", Client: true, Run: Sign,
}

// Sign is `signsvr sign`: the input signed by a server key as CMS SignedData,
// streamed (attached output is BER with indefinite lengths, as `openssl cms
// -stream` writes), or made from the input's digest (--digest-only).
//
// --timestamp, and an SM2 key with --no-signed-attributes, go through the unary
// Sign (see the top of this file).
func Sign(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var sf streamFlags
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	sf.register(fs, &c)
	key := fs.String("key", "", "signing key name (required)")
	detached := fs.Bool("detached", false, "detached signature: leave the content out")
	digestOnly := fs.Bool("digest-only", false, "hash the input here and send only its digest (a detached signature; the key must accept client digests)")
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	stamp := fs.String("timestamp", "", "embed a signature timestamp: "+words(timestampWords)+" (default none; the input goes in one message unless --digest-only)")
	var so signOptionFlags
	so.register(fs)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *key == "" {
		fmt.Fprintln(stderr, "signsvr sign: --key is required")
		return ExitUsage
	}
	opts, err := so.options()
	if err != nil {
		return inputError(stderr, "sign", err)
	}
	ts, err := enumFlag("timestamp", *stamp, timestampWords)
	if err != nil {
		return inputError(stderr, "sign", err)
	}
	in, size, closeIn, err := openInput(c.in, stdin)
	if err != nil {
		return inputError(stderr, "sign", err)
	}
	defer closeIn()
	out, err := openOutput(c.out, stdout)
	if err != nil {
		return inputError(stderr, "sign", err)
	}
	var w io.Writer = out
	var pw *pemWriter
	if *asPEM {
		if pw, err = newPEMWriter(out); err != nil {
			out.abort()
			return inputError(stderr, "sign", err)
		}
		w = pw
	}
	p := newProgress(stderr, sf.quiet, "sign", size)
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		unary := ts != signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_UNSPECIFIED
		needDigest := *digestOnly && opts.Digest == signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED
		if needDigest || (!unary && !*digestOnly && opts.NoSignedAttributes) {
			// A client that may not list keys still streams; for an SM2 key the
			// server then refuses the stream and says why.
			k, err := keyInfo(ctx, cc, *key)
			if err != nil && needDigest {
				return err
			}
			if needDigest {
				opts.Digest = defaultDigest(k)
			}
			unary = unary || k.GetAlgorithm() == signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2
		}
		req := &signsvrv1.SignRequest{Key: *key, Detached: *detached, Options: opts, Timestamp: ts}
		switch {
		case *digestOnly:
			h, err := newDigest(opts.Digest)
			if err != nil {
				return err
			}
			if err := hashInput(in, h, p); err != nil {
				return &localError{err}
			}
			req.Detached, req.ContentDigest = true, h.Sum(nil)
		case unary:
			if req.Data, err = io.ReadAll(in); err != nil {
				return &localError{err}
			}
			p.update(int64(len(req.Data)))
		default:
			_, err := streamclient.Sign(ctx, signsvrv1.NewStreamServiceClient(cc),
				&signsvrv1.SignStreamOptions{Key: *key, Detached: *detached, Options: opts}, in, w, p.fn())
			return err
		}
		resp, err := signsvrv1.NewSignServiceClient(cc).Sign(ctx, req)
		if err != nil {
			return err
		}
		_, err = w.Write(resp.GetCms())
		return err
	})
	p.done()
	return out.finish(stderr, "sign", err, pw)
}

var verifyCmd = &Command{
	Name: "verify", Args: "[--in SIG] [--content F [--digest-only]] [--out F] [--json] [--quiet] [VerifyOptions flags]",
	Summary: "VerifyStream: every signer of a SignedData, streamed; exit 1 unless all verify", Client: true, Run: Verify,
}

// Verify is `signsvr verify`: the server verifies a SignedData streamed to it
// (attached), or a detached one with its content streamed (--content), or by the
// content's digest (--digest-only --content); the exit code is ExitOK only when
// every signer has a valid signature and a good certificate.
func Verify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var sf streamFlags
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	sf.register(fs, &c)
	fs.StringVar(&c.in, "in", "", "the signature, DER, BER or PEM (default stdin)")
	contentOut := fs.String("out", "", "write the signed content of an attached signature to this file (kept only when verified)")
	content := fs.String("content", "", "the content of a detached signature (an empty file is empty content)")
	digestOnly := fs.Bool("digest-only", false, "with --content: hash the content here and send only its digest")
	asJSON := fs.Bool("json", false, "print the full result as JSON")
	var vf verifyOptionFlags
	vf.register(fs)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *digestOnly && *content == "" {
		fmt.Fprintln(stderr, "signsvr verify: --digest-only needs --content")
		return ExitUsage
	}
	vo, err := vf.options()
	if err != nil {
		return inputError(stderr, "verify", err)
	}
	vo.OmitContent = true // the streams imply it; the content is written as it streams
	var resp *signsvrv1.VerifyStreamResponse
	var out *output
	if *content != "" {
		sig, err := readFileOr(c.in, stdin)
		if err != nil {
			return inputError(stderr, "verify", err)
		}
		sig = pemOrDER(sig)
		in, size, closeIn, err := openInput(*content, stdin)
		if err != nil {
			return inputError(stderr, "verify", err)
		}
		defer closeIn()
		p := newProgress(stderr, sf.quiet, "verify", size)
		err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
			if !*digestOnly {
				var rp replay
				resp, err = streamclient.Verify(ctx, signsvrv1.NewStreamServiceClient(cc), sig, vo, io.TeeReader(in, &rp), p.fn())
				if err == nil && rp.usable(resp) {
					resp, err = verifyWhole(ctx, cc, &signsvrv1.VerifyRequest{Cms: sig, Data: append([]byte{}, rp.buf...), Options: vo}, resp)
				}
				return err
			}
			sd, err := cms.ParseSignedDataContentInfo(sig)
			if err != nil {
				return &localError{fmt.Errorf("the signature: %w", err)}
			}
			if len(sd.SignerInfos) == 0 {
				return &localError{errors.New("the signature has no signer")}
			}
			alg := digestOfOID(sd.SignerInfos[0].DigestAlgorithm.Algorithm.String())
			h, err := newDigest(alg)
			if err != nil {
				return &localError{err}
			}
			if err := hashInput(in, h, p); err != nil {
				return &localError{err}
			}
			resp, err = verifyWhole(ctx, cc, &signsvrv1.VerifyRequest{Cms: sig, Options: vo,
				ContentDigest: h.Sum(nil), ContentDigestAlgorithm: alg}, nil)
			return err
		})
		p.done()
	} else {
		in, size, closeIn, err2 := openInput(c.in, stdin)
		if err2 != nil {
			return inputError(stderr, "verify", err2)
		}
		defer closeIn()
		in = pemStream(in)
		if *contentOut != "" {
			if out, err = openOutput(*contentOut, stdout); err != nil {
				return inputError(stderr, "verify", err)
			}
		}
		p := newProgress(stderr, sf.quiet, "verify", size)
		err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
			var extract func() error
			if out != nil {
				in, extract = extractContent(in, out)
			}
			var rp replay
			resp, err = streamclient.Verify(ctx, signsvrv1.NewStreamServiceClient(cc), nil, vo, io.TeeReader(in, &rp), p.fn())
			if extract != nil {
				if xerr := extract(); err == nil && xerr != nil {
					err = &localError{xerr}
				}
			}
			if err == nil && rp.usable(resp) {
				resp, err = verifyWhole(ctx, cc, &signsvrv1.VerifyRequest{Cms: rp.buf, Options: vo}, resp)
			}
			return err
		})
		p.done()
	}
	if err != nil {
		if out != nil {
			out.abort()
		}
		return fail(stderr, "verify", err)
	}
	if out != nil {
		if resp.GetVerified() {
			if err := out.commit(); err != nil {
				return inputError(stderr, "verify", err)
			}
		} else {
			out.abort()
		}
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			return inputError(stderr, "verify", err)
		}
	} else {
		printVerify(stdout, resp.GetVerified(), resp.GetSigners())
	}
	if !resp.GetVerified() {
		return ExitFailure
	}
	return ExitOK
}

// replayLimit is how much of a verified input replay keeps: what fits in one
// unary request beside the signature.
const replayLimit = clientMaxMessage - 2<<20

// replay keeps a streamed input, up to replayLimit, for the one verification a
// stream cannot do: an SM2 signer without signed attributes, whose signature covers
// SM3(Z || content) with Z from the signer's certificate, which comes after the
// content or needs the backend's SM2 code. The server answers content-needed for
// it, and the unary Verify then gets the input whole.
type replay struct {
	buf  []byte
	over bool
}

func (r *replay) Write(p []byte) (int, error) {
	if !r.over {
		if len(r.buf)+len(p) > replayLimit {
			r.buf, r.over = nil, true
		} else {
			r.buf = append(r.buf, p...)
		}
	}
	return len(p), nil
}

// usable is whether resp has a signer that needed the content and r holds it.
func (r *replay) usable(resp *signsvrv1.VerifyStreamResponse) bool {
	if r.over {
		return false
	}
	for _, s := range resp.GetSigners() {
		if s.GetSignature().GetReason() == "content-needed" {
			return true
		}
	}
	return false
}

// verifyWhole is the unary Verify of req, as a VerifyStreamResponse (with the byte
// count of streamed, when the input streamed first).
func verifyWhole(ctx context.Context, cc *grpc.ClientConn, req *signsvrv1.VerifyRequest, streamed *signsvrv1.VerifyStreamResponse) (*signsvrv1.VerifyStreamResponse, error) {
	u, err := signsvrv1.NewSignServiceClient(cc).Verify(ctx, req)
	if err != nil {
		return nil, err
	}
	return &signsvrv1.VerifyStreamResponse{Verified: u.GetVerified(), Signers: u.GetSigners(), ContentType: u.GetContentType(),
		Detached: u.GetDetached(), Timestamps: u.GetTimestamps(), Received: streamed.GetReceived()}, nil
}

// pemStream decodes a PEM input as it streams (BER or DER input passes as it is).
func pemStream(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(11)
	if string(head) != "-----BEGIN " {
		return br
	}
	// The header line, then base64 lines until the END line.
	br.ReadString('\n')
	return base64.NewDecoder(base64.StdEncoding, &pemBody{r: br})
}

// pemBody reads base64 lines up to the END line, without the line breaks.
type pemBody struct {
	r    *bufio.Reader
	line []byte
	done bool
}

func (p *pemBody) Read(b []byte) (int, error) {
	for len(p.line) == 0 {
		if p.done {
			return 0, io.EOF
		}
		l, err := p.r.ReadBytes('\n')
		if strings.HasPrefix(string(l), "-----END ") || (err != nil && len(l) == 0) {
			p.done = true
			continue
		}
		p.line = []byte(strings.TrimSpace(string(l)))
	}
	n := copy(b, p.line)
	p.line = p.line[n:]
	return n, nil
}

// extractContent tees in into a local StreamReader that writes the encapsulated
// content to w; wait returns its error once the input has been read.
func extractContent(in io.Reader, w io.Writer) (io.Reader, func() error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		sr, err := cms.NewStreamReader(pr, 0)
		if err == nil {
			if _, err = io.Copy(w, sr); err == nil {
				_, err = sr.Finish()
			}
		}
		io.Copy(io.Discard, pr) // keep the tee flowing whatever happened
		done <- err
	}()
	tee := &closingTee{r: io.TeeReader(in, pw), pw: pw}
	return tee, func() error { pw.Close(); return <-done }
}

// closingTee closes the pipe when its input ends, so the reader sees the end.
type closingTee struct {
	r  io.Reader
	pw *io.PipeWriter
}

func (t *closingTee) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if err != nil {
		t.pw.Close()
	}
	return n, err
}

var envelopeCmd = &Command{
	Name: "envelope", Args: "(--recipient-certs F | --recipient-keys NAME)... [--in F] [--out F] [--pem] [--quiet] [EnvelopeOptions flags]",
	Summary: "EnvelopeStream: encrypt a file of any size to certificates, server keys, KEKs or passwords", Client: true, Run: Envelope,
}

// Envelope is `signsvr envelope`: the input enveloped, streamed, to certificates,
// server keys, key-encryption keys and/or passwords.
func Envelope(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var sf streamFlags
	fs := flag.NewFlagSet("envelope", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	sf.register(fs, &c)
	var rf recipientFlags
	rf.register(fs)
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	var ef envelopeOptionFlags
	ef.register(fs, "")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	opts, err := ef.options()
	if err != nil {
		return inputError(stderr, "envelope", err)
	}
	r, err := rf.recipients()
	if err != nil {
		return inputError(stderr, "envelope", err)
	}
	o := &signsvrv1.EnvelopeStreamOptions{RecipientCerts: r.certs, RecipientKeys: r.keys, Options: opts,
		RecipientKekKeys: r.keks, RecipientPasswords: r.passwords}
	in, size, closeIn, err := openInput(c.in, stdin)
	if err != nil {
		return inputError(stderr, "envelope", err)
	}
	defer closeIn()
	out, err := openOutput(c.out, stdout)
	if err != nil {
		return inputError(stderr, "envelope", err)
	}
	var w io.Writer = out
	var pw *pemWriter
	if *asPEM {
		if pw, err = newPEMWriter(out); err != nil {
			out.abort()
			return inputError(stderr, "envelope", err)
		}
		w = pw
	}
	p := newProgress(stderr, sf.quiet, "envelope", size)
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := streamclient.Envelope(ctx, signsvrv1.NewStreamServiceClient(cc), o, in, w, p.fn())
		return err
	})
	p.done()
	return out.finish(stderr, "envelope", err, pw)
}

var decryptCmd = &Command{
	Name: "decrypt", Args: "(--key NAME | --password-file F | --password-env VAR) [--in F] [--out F] [--quiet] [DecryptOptions flags]",
	Summary: "DecryptStream: open an envelope of any size with a server key or a password", Client: true, Run: Decrypt,
}

// Decrypt is `signsvr decrypt`: an envelope streamed to the server and opened with
// its key or a password; the plaintext streams back.
func Decrypt(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var sf streamFlags
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	sf.register(fs, &c)
	key := fs.String("key", "", "decryption key name (a private or a key-encryption key); or give a password")
	var df decryptOptionFlags
	df.register(fs)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	opts, err := df.options()
	if err != nil {
		return inputError(stderr, "decrypt", err)
	}
	if (*key == "") == (opts.Password == nil) {
		fmt.Fprintln(stderr, "signsvr decrypt: give --key or a password (--password-file, --password-env)")
		return ExitUsage
	}
	in, size, closeIn, err := openInput(c.in, stdin)
	if err != nil {
		return inputError(stderr, "decrypt", err)
	}
	defer closeIn()
	out, err := openOutput(c.out, stdout)
	if err != nil {
		return inputError(stderr, "decrypt", err)
	}
	p := newProgress(stderr, sf.quiet, "decrypt", size)
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := streamclient.Decrypt(ctx, signsvrv1.NewStreamServiceClient(cc),
			&signsvrv1.DecryptStreamOptions{Key: *key, Options: opts}, pemStream(in), out, p.fn())
		return err
	})
	p.done()
	return out.finish(stderr, "decrypt", err, nil)
}
