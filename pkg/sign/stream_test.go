package sign

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	gmpkcs7 "github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm3"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

// streamSign signs content through a StreamSigner in pieces of n bytes and returns
// the whole message (attached: prefix, chunks, suffix).
func streamSign(t testing.TB, content []byte, p *testPKI, opts *Options, n int) []byte {
	t.Helper()
	s, err := NewStreamSigner(p.key, p.chain, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Prefix()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(content); i += n {
		piece := content[i:min(i+n, len(content))]
		s.Write(piece)
		if !opts.Detached {
			out = cms.AppendStreamChunk(out, piece)
		}
	}
	tail, err := s.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return append(out, tail...)
}

func verifyStreamedBytes(t testing.TB, msg []byte, p *testPKI) *Result {
	t.Helper()
	sr, err := cms.NewStreamReader(bytes.NewReader(msg), 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := VerifyStreamed(sr, nil, &VerifyOptions{Certs: p.chain})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestStreamSignVerify: streamed signatures verify with Verify and VerifyStreamed,
// attached ones are indefinite-length BER, and a changed content fails.
func TestStreamSignVerify(t *testing.T) {
	content := testContent(200_001)
	for _, alg := range allAlgs {
		p := pkiFor(t, alg)
		for _, opts := range []Options{{}, {Detached: true}, {SignerID: SubjectKeyID}, {NoSignedAttributes: alg != devpki.SM2}} {
			t.Run(fmt.Sprintf("%s/%+v", alg, opts), func(t *testing.T) {
				msg := streamSign(t, content, p, &opts, 65536)
				vo := &VerifyOptions{Certs: p.chain}
				if opts.Detached {
					vo.Content = content
				} else if msg[1] != 0x80 {
					t.Fatal("attached streamed output is not indefinite-length")
				}
				res, err := Verify(msg, vo)
				if err != nil || len(res.Signers) != 1 || !res.Signers[0].Signature.Valid {
					t.Fatalf("Verify: %v %+v", err, res)
				}
				if opts.Detached {
					sd, _ := cms.ParseSignedDataContentInfo(msg)
					h := NewContentHasher(SignerDigestAlgorithms(sd)...)
					h.Write(content)
					res, err := Verify(msg, &VerifyOptions{Certs: p.chain, ContentDigests: h.Digests()})
					if err != nil || !res.Signers[0].Signature.Valid {
						t.Fatalf("Verify with digests: %v", err)
					}
					h = NewContentHasher(SignerDigestAlgorithms(sd)...)
					h.Write(content[1:])
					res, _ = Verify(msg, &VerifyOptions{Certs: p.chain, ContentDigests: h.Digests()})
					if res.Signers[0].Signature.Valid {
						t.Fatal("verified with the digest of another content")
					}
					return
				}
				res = verifyStreamedBytes(t, msg, p)
				if !res.Signers[0].Signature.Valid || res.Detached {
					t.Fatalf("VerifyStreamed: %+v", res.Signers[0].Signature)
				}
				bad := bytes.Clone(msg)
				bad[len(msg)/2] ^= 1
				if res := verifyStreamedBytes(t, bad, p); res.Signers[0].Signature.Valid {
					t.Fatal("VerifyStreamed accepted a changed content")
				}
			})
		}
	}
	if _, err := NewStreamSigner(pkiFor(t, devpki.SM2).key, pkiFor(t, devpki.SM2).chain, &Options{NoSignedAttributes: true}); err == nil {
		t.Fatal("a streamed SM2 signature without signed attributes was accepted")
	}
}

// TestStreamSignOpenSSL: OpenSSL verifies streamed RSA and ECDSA signatures, attached
// and detached, and VerifyStreamed verifies `openssl cms -sign -stream` output.
func TestStreamSignOpenSSL(t *testing.T) {
	content := testContent(1_000_003)
	for _, alg := range opensslAlgs {
		p := pkiFor(t, alg)
		dir := t.TempDir()
		writePKI(t, dir, p)
		writeFile(t, filepath.Join(dir, "content.bin"), content)
		for _, detached := range []bool{false, true} {
			msg := streamSign(t, content, p, &Options{Detached: detached}, 65536)
			writeFile(t, filepath.Join(dir, "s.ber"), msg)
			args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", "s.ber", "-CAfile", "root.pem", "-out", "out.bin"}
			if detached {
				args = append(args, "-content", "content.bin")
			}
			if out := runOpenSSL(t, dir, args...); !strings.Contains(string(out), "Verification successful") {
				t.Fatalf("%s detached=%v: %s", alg, detached, out)
			}
			if !bytes.Equal(readFile(t, filepath.Join(dir, "out.bin")), content) {
				t.Fatal("openssl extracted another content")
			}
		}
		runOpenSSL(t, dir, "cms", "-sign", "-stream", "-binary", "-nodetach", "-in", "content.bin", "-signer", "signer.pem", "-inkey", "signer.key", "-outform", "DER", "-out", "o.ber")
		o := readFile(t, filepath.Join(dir, "o.ber"))
		if o[1] != 0x80 {
			t.Fatal("openssl -stream did not write indefinite lengths")
		}
		if res := verifyStreamedBytes(t, o, p); !res.Signers[0].Signature.Valid {
			t.Fatalf("%s: openssl's streamed signature: %+v", alg, res.Signers[0].Signature)
		}
	}
}

// TestSignDigestOpenSSL: a detached signature made from the content's digest
// verifies with `openssl cms -verify -content`; a digest of the wrong algorithm or
// length is refused.
func TestSignDigestOpenSSL(t *testing.T) {
	content := testContent(5000)
	sum := sha256.Sum256(content)
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256} {
		p := pkiFor(t, alg)
		dir := t.TempDir()
		writePKI(t, dir, p)
		writeFile(t, filepath.Join(dir, "content.bin"), content)
		der, err := SignDigest(ContentDigest{Algorithm: cms.OIDSHA256, Digest: sum[:]}, p.key, p.chain, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "d.der"), der)
		out := runOpenSSL(t, dir, "cms", "-verify", "-binary", "-inform", "DER", "-in", "d.der", "-content", "content.bin", "-CAfile", "root.pem", "-out", "/dev/null")
		if !strings.Contains(string(out), "Verification successful") {
			t.Fatalf("%s: %s", alg, out)
		}
		if res, err := Verify(der, &VerifyOptions{Certs: p.chain, Content: content}); err != nil || !res.Signers[0].Signature.Valid {
			t.Fatalf("Verify: %v", err)
		}
		if _, err := SignDigest(ContentDigest{Algorithm: cms.OIDSHA384, Digest: sum[:]}, p.key, p.chain, nil); err == nil {
			t.Fatal("a SHA-384 digest accepted for a SHA-256 signature")
		}
		if _, err := SignDigest(ContentDigest{Algorithm: cms.OIDSHA256, Digest: sum[:20]}, p.key, p.chain, &Options{Hash: crypto.SHA256}); err == nil {
			t.Fatal("a short digest accepted")
		}
	}
}

// TestStreamSM2Gmsm: gmsm's pkcs7 reads streamed SM2 signatures and one made from an
// SM3 digest.
func TestStreamSM2Gmsm(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	content := testContent(300_000)
	sum := sm3.Sum(content)
	fromDigest, err := SignDigest(ContentDigest{Algorithm: cms.OIDSM3, Digest: sum[:]}, p.key, p.chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	// gmsm v0.44.1 reads only the first chunk of a constructed eContent (as it does
	// with OpenSSL's -stream output, and OpenSSL's -cmsout keeps the chunks), so the
	// attached message goes to it re-encoded as DER by pkg/cms; the signature and
	// signed attributes are the streamed ones, byte for byte.
	sd, err := cms.ParseSignedDataContentInfo(streamSign(t, content, p, &Options{}, 65536))
	if err != nil {
		t.Fatal(err)
	}
	attached, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, msg := range map[string][]byte{
		"attached":    attached,
		"detached":    streamSign(t, content, p, &Options{Detached: true}, 65536),
		"from digest": fromDigest,
	} {
		p7, err := gmpkcs7.Parse(msg)
		if err != nil {
			t.Fatalf("%s: gmsm Parse: %v", name, err)
		}
		if p7.Content == nil {
			p7.Content = content
		}
		if !bytes.Equal(p7.Content, content) {
			t.Fatalf("%s: gmsm sees other content: %d bytes % x", name, len(p7.Content), p7.Content[:min(16, len(p7.Content))])
		}
		if err := p7.Verify(); err != nil {
			t.Fatalf("%s: gmsm Verify: %v", name, err)
		}
	}
}
