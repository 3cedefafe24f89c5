package sign

// Signing a content that streams through, and signing a digest.
//
// A StreamSigner hashes the content as it passes (Write) and signs at the end, so the
// content is never held. The signature is the one Sign makes over the same content
// with the same options, except that an attached SignedData is written in the
// streamed BER form (`openssl cms -stream`): Prefix before the content, which the
// caller passes on itself as OCTET STRING chunks (cms.AppendStreamChunk), and the
// suffix Finish returns. A detached one is the DER ContentInfo Finish returns.
//
// SignDigest makes a detached signature from the content's digest alone, computed
// by someone else (a client that keeps its document). The digest cannot be checked
// here: the signer vouches for whatever digest it is given, which is why the server
// allows it per key only.
//
// An SM2 signature without signed attributes covers SM3(Z || content), which the
// signer (an HSM, say) computes from the whole content: neither form can make one.
// With signed attributes (the default) SM2 works as every other key.

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// StreamSigner signs one streamed content; see the file comment.
type StreamSigner struct {
	signer crypto.Signer
	chain  []*smx509.Certificate
	leaf   *smx509.Certificate
	o      Options
	p      plan
	si     cms.SignerInfo
	h      hash.Hash
	done   bool
}

// NewStreamSigner checks signer, chain and opts as Sign does.
func NewStreamSigner(signer crypto.Signer, chain []*smx509.Certificate, opts *Options) (*StreamSigner, error) {
	s := &StreamSigner{signer: signer, chain: chain}
	if err := s.init(opts); err != nil {
		return nil, err
	}
	s.h = s.p.digest.newHash()
	return s, nil
}

func (s *StreamSigner) init(opts *Options) error {
	if opts != nil {
		s.o = *opts
	}
	leaf, pub, err := signerCertificate(s.signer, s.chain)
	if err != nil {
		return err
	}
	s.leaf = leaf
	if s.p, err = makePlan(pub, &s.o); err != nil {
		return err
	}
	if err := applyContentOptions(&s.p, &s.o); err != nil {
		return err
	}
	if s.p.kind == keySM2 && s.o.NoSignedAttributes {
		return fmt.Errorf("%w: an SM2 signature without signed attributes needs the whole content; sign it unstreamed", ErrInvalidOptions)
	}
	s.si, err = newSignerInfo(&s.p, leaf, s.o.SignerID)
	return err
}

// Digest names the digest algorithm the content is hashed with.
func (s *StreamSigner) Digest() ContentDigest {
	return ContentDigest{Algorithm: s.p.digest.oid()}
}

// Prefix is the start of the attached, streamed SignedData, up to the content's
// chunks; nil for a detached signature.
func (s *StreamSigner) Prefix() ([]byte, error) {
	if s.o.Detached {
		return nil, nil
	}
	sd := cms.SignedData{
		ContentType: s.p.outerType, Version: 1, EContentType: s.p.eType, EContent: []byte{},
		DigestAlgorithms: []cms.AlgorithmIdentifier{s.si.DigestAlgorithm},
	}
	if s.si.Version == 3 {
		sd.Version = 3
	}
	parts, err := cms.SignedDataStreamParts(&sd)
	return parts.Prefix, err
}

// Write hashes the next piece of content.
func (s *StreamSigner) Write(p []byte) (int, error) { return s.h.Write(p) }

// Finish signs: it returns the detached DER ContentInfo, or the suffix of the
// attached streamed one.
func (s *StreamSigner) Finish() ([]byte, error) {
	if s.done {
		return nil, errors.New("sign: StreamSigner finished twice")
	}
	s.done = true
	md := s.h.Sum(nil)
	if s.o.Detached {
		return s.signDigest(md)
	}
	der, err := s.signDigest(md)
	if err != nil {
		return nil, err
	}
	parts, err := cms.SplitSignedData(der)
	return parts.Suffix, err
}

// signDigest makes the SignedData over the content whose digest is md: detached,
// or with an empty eContent (the streamed form is cut out of it).
func (s *StreamSigner) signDigest(md []byte) ([]byte, error) {
	var tbs []byte
	var err error
	if !s.o.NoSignedAttributes {
		if tbs, err = signedAttributes(&s.p, &s.o, md); err != nil {
			return nil, err
		}
		s.si.RawSignedAttrs = tbs
	}
	rnd := s.o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	uid := s.o.SM2UID
	if len(uid) == 0 {
		uid = defaultSM2UID
	}
	sig, err := signTBS(s.signer, rnd, &s.p, tbs, md, s.o.NoSignedAttributes, uid)
	if err != nil {
		return nil, err
	}
	if !s.o.SkipSelfCheck {
		if err := selfCheck(s.leaf, &s.p, tbs, md, sig, s.o.NoSignedAttributes, uid); err != nil {
			return nil, err
		}
	}
	s.si.Signature = sig
	out, err := marshalSignedData(&s.p, &s.o, &s.si, []byte{}, s.chain)
	if err == nil && s.o.ContentDigest != nil {
		*s.o.ContentDigest = ContentDigest{Algorithm: s.p.digest.oid(), Digest: append([]byte(nil), md...)}
	}
	return out, err
}

// ErrDigest: the digest given to SignDigest does not fit its algorithm or the key.
var ErrDigest = errors.New("sign: the digest does not fit")

// SignDigest makes a detached DER SignedData over the content whose digest is d
// (d.Algorithm must be the digest the options choose for the key: opts.Hash, or the
// key's default). It verifies its own signature as Sign does.
func SignDigest(d ContentDigest, signer crypto.Signer, chain []*smx509.Certificate, opts *Options) ([]byte, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Detached = true
	s := &StreamSigner{signer: signer, chain: chain}
	if err := s.init(&o); err != nil {
		return nil, err
	}
	if !d.Algorithm.Equal(s.p.digest.oid()) {
		return nil, fmt.Errorf("%w: a %s digest given, the key signs with %v", ErrDigest, d.Algorithm, s.p.digest)
	}
	if len(d.Digest) != s.p.digest.newHash().Size() {
		return nil, fmt.Errorf("%w: %d bytes for %v", ErrDigest, len(d.Digest), s.p.digest)
	}
	return s.signDigest(d.Digest)
}

// maxStreamDigests bounds the digest algorithms a streamed content is hashed with.
const maxStreamDigests = 4

// ContentHasher hashes a content once per digest algorithm a SignedData names, for
// VerifyOptions.ContentDigests.
type ContentHasher struct {
	algs   []digestAlg
	hashes []hash.Hash
}

// NewContentHasher hashes with each known algorithm among algs, once each (at most
// four; unknown ones are left out: their signers get ReasonContentNeeded or
// ReasonUnsupportedAlgorithm).
func NewContentHasher(algs ...cms.AlgorithmIdentifier) *ContentHasher {
	h := &ContentHasher{}
	for _, a := range algs {
		d := digestFromOID(a.Algorithm)
		if d == digestUnknown || len(h.algs) == maxStreamDigests {
			continue
		}
		dup := false
		for _, have := range h.algs {
			dup = dup || have == d
		}
		if !dup {
			h.algs = append(h.algs, d)
			h.hashes = append(h.hashes, d.newHash())
		}
	}
	return h
}

// Write hashes the next piece of content with every algorithm.
func (h *ContentHasher) Write(p []byte) (int, error) {
	for _, x := range h.hashes {
		x.Write(p)
	}
	return len(p), nil
}

// Digests returns the digests of everything written.
func (h *ContentHasher) Digests() []ContentDigest {
	out := make([]ContentDigest, len(h.algs))
	for i, d := range h.algs {
		out[i] = ContentDigest{Algorithm: d.oid(), Digest: h.hashes[i].Sum(nil)}
	}
	return out
}

// SignerDigestAlgorithms lists the digest algorithms a SignedData declares and its
// signers use, for NewContentHasher over a detached content.
func SignerDigestAlgorithms(sd *cms.SignedData) []cms.AlgorithmIdentifier {
	out := append([]cms.AlgorithmIdentifier{}, sd.DigestAlgorithms...)
	for i := range sd.SignerInfos {
		out = append(out, sd.SignerInfos[i].DigestAlgorithm)
	}
	return out
}

// VerifyStreamed verifies the SignedData sr reads (just returned by
// cms.NewStreamReader): the content is hashed as it passes, with every digest
// algorithm the message declares, and written to content when that is not nil; the
// result is Verify's with Content nil. opts.Content and opts.ContentDigests must be
// empty: an attached content is the stream's own, and a detached one is refused
// (ErrNoContent).
func VerifyStreamed(sr *cms.StreamReader, content io.Writer, opts *VerifyOptions) (*Result, error) {
	if !IsSignedDataStream(sr) {
		return nil, fmt.Errorf("%w: the message is not a SignedData", cms.ErrUnsupported)
	}
	if sr.Detached() {
		return nil, ErrNoContent
	}
	algs, _, err := sr.SignedDataHeader()
	if err != nil {
		return nil, err
	}
	h := NewContentHasher(algs...)
	var w io.Writer = h
	if content != nil {
		w = io.MultiWriter(h, content)
	}
	if _, err := io.Copy(w, sr); err != nil {
		return nil, err
	}
	rest, err := sr.Finish()
	if err != nil {
		return nil, err
	}
	sd, err := cms.ParseSignedDataContentInfo(rest)
	if err != nil {
		return nil, err
	}
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	o.Content, o.ContentDigests = nil, h.Digests()
	// The signers' own digest algorithms were not known before the content; one the
	// header did not declare cannot be checked (ReasonContentNeeded).
	res, err := VerifyParsed(sd, &o)
	if err != nil {
		return nil, err
	}
	res.Detached = false
	return res, nil
}

// IsSignedDataStream reports whether sr reads a SignedData.
func IsSignedDataStream(sr *cms.StreamReader) bool {
	return cms.IsSignedDataType(sr.ContentType())
}
