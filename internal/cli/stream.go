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

import (
	"bufio"
	"context"
	"crypto"
	"encoding/base64"
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

// keyDefaultDigest asks the server which digest key signs with by default.
func keyDefaultDigest(ctx context.Context, cc *grpc.ClientConn, key string) (signsvrv1.DigestAlgorithm, error) {
	resp, err := signsvrv1.NewKeyServiceClient(cc).ListKeys(ctx, &signsvrv1.ListKeysRequest{})
	if err != nil {
		return 0, err
	}
	for _, k := range resp.GetKeys() {
		if k.GetName() != key {
			continue
		}
		switch {
		case k.GetAlgorithm() == signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2:
			return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3, nil
		case k.GetCurve() == "P-384":
			return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384, nil
		}
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256, nil
	}
	return 0, fmt.Errorf("the server lists no key %q", key)
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

// SignStreamed is `signsvr sign`: the input signed by a server key as CMS
// SignedData, streamed (attached output is BER with indefinite lengths, as
// `openssl cms -stream` writes), or made from the input's digest (--digest-only).
func SignStreamed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
	digest := fs.String("digest", "", "sha256, sha384, sha512 or sm3 (default: the key's)")
	pss := fs.Bool("pss", false, "RSA-PSS instead of PKCS#1 v1.5 (RSA keys)")
	signerID := fs.String("signer-id", "", "issuer-serial (default) or ski")
	certs := fs.String("certs", "", "certificates to include: leaf (default), chain or none")
	dialect := fs.String("sm2-dialect", "", "SM2 OIDs: gmt0010 (default for SM2) or pkcs7")
	uid := fs.String("sm2-uid", "", "SM2 user ID (default 1234567812345678)")
	noAttrs := fs.Bool("no-attrs", false, "no signed attributes (old peers; not for SM2 when streamed)")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *key == "" {
		fmt.Fprintln(stderr, "signsvr sign: --key is required")
		return ExitUsage
	}
	opts := &signsvrv1.SignOptions{NoSignedAttributes: *noAttrs, Sm2UserId: []byte(*uid)}
	var err error
	if *pss {
		opts.RsaScheme = signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS
	}
	if opts.Digest, err = enumFlag("digest", *digest, digestWords); err == nil {
		if opts.SignerId, err = enumFlag("signer-id", *signerID, signerIDWords); err == nil {
			if opts.Certificates, err = enumFlag("certs", *certs, certWords); err == nil {
				opts.Sm2Dialect, err = enumFlag("sm2-dialect", *dialect, dialectWords)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
		return ExitUsage
	}
	in, size, closeIn, err := openInput(c.in, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
		return ExitFailure
	}
	defer closeIn()
	out, err := openOutput(c.out, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
		return ExitFailure
	}
	var w io.Writer = out
	var pw *pemWriter
	if *asPEM {
		if pw, err = newPEMWriter(out); err != nil {
			out.abort()
			fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
			return ExitFailure
		}
		w = pw
	}
	p := newProgress(stderr, sf.quiet, "sign", size)
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		if !*digestOnly {
			_, err := streamclient.Sign(ctx, signsvrv1.NewStreamServiceClient(cc),
				&signsvrv1.SignStreamOptions{Key: *key, Detached: *detached, Options: opts}, in, w, p.fn())
			return err
		}
		if opts.Digest == signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED {
			if opts.Digest, err = keyDefaultDigest(ctx, cc, *key); err != nil {
				return err
			}
		}
		h, err := newDigest(opts.Digest)
		if err != nil {
			return err
		}
		if err := hashInput(in, h, p); err != nil {
			return err
		}
		resp, err := signsvrv1.NewSignServiceClient(cc).Sign(ctx, &signsvrv1.SignRequest{
			Key: *key, Detached: true, Options: opts, ContentDigest: h.Sum(nil)})
		if err != nil {
			return err
		}
		_, err = w.Write(resp.GetCms())
		return err
	})
	p.done()
	if err == nil && pw != nil {
		err = pw.Close()
	}
	if err != nil {
		out.abort()
		return fail(stderr, "sign", err)
	}
	if err := out.commit(); err != nil {
		fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// VerifyStreamed is `signsvr verify`: the server verifies a SignedData streamed to
// it (attached), or a detached one with its content streamed (--content), or by the
// content's digest (--digest-only --content); the exit code is ExitOK only when
// every signer has a valid signature and a good certificate.
func VerifyStreamed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var sf streamFlags
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	sf.register(fs, &c)
	fs.StringVar(&c.in, "in", "", "the signature, DER, BER or PEM (default stdin)")
	contentOut := fs.String("out", "", "write the signed content of an attached signature to this file (kept only when verified)")
	content := fs.String("content", "", "the content of a detached signature")
	digestOnly := fs.Bool("digest-only", false, "with --content: hash the content here and send only its digest")
	asJSON := fs.Bool("json", false, "print the full result as JSON")
	uid := fs.String("sm2-uid", "", "SM2 user ID (default 1234567812345678)")
	var extra stringList
	fs.Var(&extra, "certs", "PEM file of certificates to find signers in (repeatable)")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *digestOnly && *content == "" {
		fmt.Fprintln(stderr, "signsvr verify: --digest-only needs --content")
		return ExitUsage
	}
	vo := &signsvrv1.VerifyOptions{Sm2UserId: []byte(*uid)}
	for _, f := range extra {
		ders, err := certsFromFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr verify: --certs: %v\n", err)
			return ExitFailure
		}
		vo.Certificates = append(vo.Certificates, ders...)
	}
	var resp *signsvrv1.VerifyStreamResponse
	var out *output
	var err error
	if *content != "" {
		sig, err := readFileOr(c.in, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
			return ExitFailure
		}
		sig = pemOrDER(sig)
		in, size, closeIn, err := openInput(*content, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
			return ExitFailure
		}
		defer closeIn()
		p := newProgress(stderr, sf.quiet, "verify", size)
		err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
			if !*digestOnly {
				resp, err = streamclient.Verify(ctx, signsvrv1.NewStreamServiceClient(cc), sig, vo, in, p.fn())
				return err
			}
			sd, err := cms.ParseSignedDataContentInfo(sig)
			if err != nil {
				return err
			}
			if len(sd.SignerInfos) == 0 {
				return fmt.Errorf("the signature has no signer")
			}
			alg := digestOfOID(sd.SignerInfos[0].DigestAlgorithm.Algorithm.String())
			h, err := newDigest(alg)
			if err != nil {
				return err
			}
			if err := hashInput(in, h, p); err != nil {
				return err
			}
			u, err := signsvrv1.NewSignServiceClient(cc).Verify(ctx, &signsvrv1.VerifyRequest{Cms: sig, Options: vo,
				ContentDigest: h.Sum(nil), ContentDigestAlgorithm: alg})
			if err != nil {
				return err
			}
			resp = &signsvrv1.VerifyStreamResponse{Verified: u.GetVerified(), Signers: u.GetSigners(), ContentType: u.GetContentType(),
				Detached: u.GetDetached(), Timestamps: u.GetTimestamps()}
			return nil
		})
		p.done()
	} else {
		in, size, closeIn, err2 := openInput(c.in, stdin)
		if err2 != nil {
			fmt.Fprintf(stderr, "signsvr verify: %v\n", err2)
			return ExitFailure
		}
		defer closeIn()
		in = pemStream(in)
		if *contentOut != "" {
			if out, err = openOutput(*contentOut, stdout); err != nil {
				fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
				return ExitFailure
			}
		}
		p := newProgress(stderr, sf.quiet, "verify", size)
		err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
			var extract func() error
			if out != nil {
				in, extract = extractContent(in, out)
			}
			resp, err = streamclient.Verify(ctx, signsvrv1.NewStreamServiceClient(cc), nil, vo, in, p.fn())
			if extract != nil {
				if xerr := extract(); err == nil {
					err = xerr
				}
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
				fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
				return ExitFailure
			}
		} else {
			out.abort()
		}
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
			return ExitFailure
		}
	} else {
		printVerify(stdout, resp.GetVerified(), resp.GetSigners())
	}
	if !resp.GetVerified() {
		return ExitFailure
	}
	return ExitOK
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

// EnvelopeStreamed is `signsvr envelope`: the input enveloped, streamed, to
// certificates and/or server keys.
func EnvelopeStreamed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var sf streamFlags
	fs := flag.NewFlagSet("envelope", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	sf.register(fs, &c)
	var certFiles, to stringList
	fs.Var(&certFiles, "cert", "recipient certificate file, PEM or DER (repeatable)")
	fs.Var(&to, "to", "recipient key name on the server (repeatable)")
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	cipher := fs.String("cipher", "", "aes128-cbc, aes256-cbc, aes128-gcm, aes256-gcm (default), sm4-cbc (default for SM2), sm4-gcm")
	rsaScheme := fs.String("rsa", "", "RSA key transport: oaep (default) or pkcs1v15")
	rid := fs.String("recipient-id", "", "issuer-serial (default) or ski")
	dialect := fs.String("sm2-dialect", "", "SM2 OIDs: gmt0010 (default for SM2) or pkcs7")
	var keks stringList
	fs.Var(&keks, "to-kek", "recipient symmetric key-encryption key name on the server (repeatable)")
	var pwf passwordFlags
	pwf.register(fs, true)
	cofactor := fs.Bool("ecdh-cofactor", false, "cofactor ECDH for EC recipients")
	iterations := fs.Uint("pbkdf2-iterations", 0, "PBKDF2 iterations of password recipients (default: the server's)")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	passwords, err := pwf.passwords()
	if err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitUsage
	}
	if len(certFiles)+len(to)+len(keks)+len(passwords) == 0 {
		fmt.Fprintln(stderr, "signsvr envelope: give at least one --cert or --to (or --to-kek, --password-file, --password-env)")
		return ExitUsage
	}
	eo := &signsvrv1.EnvelopeOptions{EcdhCofactor: *cofactor, Pbkdf2Iterations: uint32(*iterations)}
	if eo.Cipher, err = enumFlag("cipher", *cipher, cipherWords); err == nil {
		if eo.RsaScheme, err = enumFlag("rsa", *rsaScheme, rsaEncWords); err == nil {
			if eo.RecipientId, err = enumFlag("recipient-id", *rid, recipientIDWords); err == nil {
				eo.Sm2Dialect, err = enumFlag("sm2-dialect", *dialect, dialectWords)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitUsage
	}
	o := &signsvrv1.EnvelopeStreamOptions{RecipientKeys: to, Options: eo, RecipientKekKeys: keks, RecipientPasswords: passwords}
	for _, f := range certFiles {
		ders, err := certsFromFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr envelope: --cert: %v\n", err)
			return ExitFailure
		}
		o.RecipientCerts = append(o.RecipientCerts, ders[0])
	}
	in, size, closeIn, err := openInput(c.in, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitFailure
	}
	defer closeIn()
	out, err := openOutput(c.out, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitFailure
	}
	var w io.Writer = out
	var pw *pemWriter
	if *asPEM {
		if pw, err = newPEMWriter(out); err != nil {
			out.abort()
			return ExitFailure
		}
		w = pw
	}
	p := newProgress(stderr, sf.quiet, "envelope", size)
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := streamclient.Envelope(ctx, signsvrv1.NewStreamServiceClient(cc), o, in, w, p.fn())
		return err
	})
	p.done()
	if err == nil && pw != nil {
		err = pw.Close()
	}
	if err != nil {
		out.abort()
		return fail(stderr, "envelope", err)
	}
	if err := out.commit(); err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// DecryptStreamed is `signsvr decrypt`: an envelope streamed to the server and
// opened with its key; the plaintext streams back.
func DecryptStreamed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	var sf streamFlags
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	sf.register(fs, &c)
	key := fs.String("key", "", "decryption key name (a private or a key-encryption key); or give a password")
	legacy := fs.Bool("allow-legacy", false, "accept legacy algorithms (3DES, SHA-1)")
	var pwf passwordFlags
	pwf.register(fs, false)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	passwords, err := pwf.passwords()
	if err != nil || len(passwords) > 1 {
		fmt.Fprintf(stderr, "signsvr decrypt: give one password at most (%v)\n", err)
		return ExitUsage
	}
	var password []byte
	if len(passwords) == 1 {
		password = passwords[0]
	}
	if (*key == "") == (password == nil) {
		fmt.Fprintln(stderr, "signsvr decrypt: give --key or a password (--password-file, --password-env)")
		return ExitUsage
	}
	in, size, closeIn, err := openInput(c.in, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr decrypt: %v\n", err)
		return ExitFailure
	}
	defer closeIn()
	out, err := openOutput(c.out, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr decrypt: %v\n", err)
		return ExitFailure
	}
	p := newProgress(stderr, sf.quiet, "decrypt", size)
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := streamclient.Decrypt(ctx, signsvrv1.NewStreamServiceClient(cc),
			&signsvrv1.DecryptStreamOptions{Key: *key, Options: &signsvrv1.DecryptOptions{AllowLegacy: *legacy, Password: password}}, pemStream(in), out, p.fn())
		return err
	})
	p.done()
	if err != nil {
		out.abort()
		return fail(stderr, "decrypt", err)
	}
	if err := out.commit(); err != nil {
		fmt.Fprintf(stderr, "signsvr decrypt: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
