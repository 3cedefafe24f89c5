package envelope

// Streamed envelopes: content of any size in constant memory.
//
// A StreamSealer writes an EnvelopedData (CBC) or AuthEnvelopedData (GCM) in the
// BER indefinite-length form `openssl cms -stream` writes: the prefix (recipient
// infos, algorithm) first, then the ciphertext in OCTET STRING chunks as the content
// arrives, then the suffix (for GCM, with the tag).
//
// OpenStream opens one read by a cms.StreamReader. The rules of Open hold, and one
// more for GCM: no plaintext leaves before the tag has been checked. The ciphertext
// goes to a Spool (the caller's: a temporary file, say) while GHASH runs over it; the
// tag is checked when the message has ended; only then is the spool decrypted and
// handed out. CBC content has no tag: its plaintext is handed out as it is
// decrypted, the last block held back for the padding check, and a failure at the
// end (wrong key, bad padding) is the same ErrDecrypt as every other; the caller
// must treat what it received as void unless OpenStream returns nil.

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// StreamSealer encrypts one streamed envelope.
type StreamSealer struct {
	prefix, suffix []byte
	gcm            *gcmStream
	ad             *cms.AuthEnvelopedData
	cbc            cipher.BlockMode
	pend           []byte // CBC: a partial block
	bs             int
	closed         bool
	// Cipher names the content cipher, e.g. "AES-256-GCM".
	Cipher string
}

// NewStreamSealer chooses the content key and algorithm for recipients as Envelope
// does, and encrypts the key to each of them.
func NewStreamSealer(recipients []*smx509.Certificate, opts *Options) (*StreamSealer, error) {
	p, err := newPlan(recipients, opts, false)
	if err != nil {
		return nil, err
	}
	cek, err := p.newContentKey()
	if err != nil {
		return nil, err
	}
	defer clear(cek)
	ris, err := p.recipientInfos(recipients, cek, false)
	if err != nil {
		return nil, err
	}
	block, err := p.alg.newBlock(cek)
	if err != nil {
		return nil, err
	}
	s := &StreamSealer{Cipher: p.alg.name}
	eci := cms.EncryptedContentInfo{ContentType: p.dataType(), EncryptedContent: []byte{}}
	if p.alg.gcm {
		nonce := make([]byte, gcmNonceLen)
		if _, err := io.ReadFull(p.rand, nonce); err != nil {
			return nil, err
		}
		if s.gcm, err = newGCMStream(block, nonce); err != nil {
			return nil, err
		}
		params, err := cms.GCMParameters{Nonce: nonce, ICVLen: gcmTagLen}.Marshal()
		if err != nil {
			return nil, err
		}
		eci.ContentEncryptionAlgorithm = cms.AlgorithmIdentifier{Algorithm: p.alg.oid, Parameters: params}
		s.ad = &cms.AuthEnvelopedData{Version: 0, RecipientInfos: ris, AuthEncryptedContentInfo: eci, MAC: make([]byte, gcmTagLen)}
		parts, err := cms.AuthEnvelopedDataStreamParts(s.ad)
		if err != nil {
			return nil, err
		}
		s.prefix = parts.Prefix
		return s, nil
	}
	s.bs = block.BlockSize()
	iv := make([]byte, s.bs)
	if _, err := io.ReadFull(p.rand, iv); err != nil {
		return nil, err
	}
	s.cbc = cipher.NewCBCEncrypter(block, iv)
	eci.ContentEncryptionAlgorithm = cms.AlgorithmIdentifier{Algorithm: p.alg.oid, Parameters: append([]byte{0x04, byte(s.bs)}, iv...)}
	ed := &cms.EnvelopedData{RecipientInfos: ris, EncryptedContentInfo: eci}
	outer := cms.OIDEnvelopedData
	if p.gmt {
		ed.Version, outer = 1, cms.OIDSM2EnvelopedData
	} else {
		ed.Version = ed.StandardVersion()
	}
	parts, err := cms.EnvelopedDataStreamParts(ed, outer)
	if err != nil {
		return nil, err
	}
	s.prefix, s.suffix = parts.Prefix, parts.Suffix
	s.pend = make([]byte, 0, s.bs)
	return s, nil
}

// Prefix is what the message starts with.
func (s *StreamSealer) Prefix() []byte { return s.prefix }

// Seal appends to dst the encryption of the next piece of content, as an OCTET
// STRING chunk (nothing when no full block is ready yet, for CBC). It encrypts into
// the space it appends; chunk is left as it is.
func (s *StreamSealer) Seal(dst, chunk []byte) []byte {
	if s.gcm != nil {
		if len(chunk) == 0 {
			return dst
		}
		dst = cms.StreamChunkHeader(dst, len(chunk))
		start := len(dst)
		dst = append(dst, chunk...)
		s.gcm.seal(dst[start:], dst[start:])
		return dst
	}
	n := (len(s.pend) + len(chunk)) / s.bs * s.bs
	if n == 0 {
		s.pend = append(s.pend, chunk...)
		return dst
	}
	dst = cms.StreamChunkHeader(dst, n)
	start := len(dst)
	dst = append(dst, s.pend...)
	take := n - len(s.pend)
	dst = append(dst, chunk[:take]...)
	s.pend = append(s.pend[:0], chunk[take:]...)
	s.cbc.CryptBlocks(dst[start:], dst[start:])
	return dst
}

// Close appends the end of the message: CBC's last block with its padding, and the
// suffix (for GCM with the tag).
func (s *StreamSealer) Close(dst []byte) ([]byte, error) {
	if s.closed {
		return dst, errors.New("envelope: StreamSealer closed twice")
	}
	s.closed = true
	if s.gcm != nil {
		tag, err := s.gcm.tag(nil)
		if err != nil {
			return dst, err
		}
		s.ad.MAC = tag[:]
		parts, err := cms.AuthEnvelopedDataStreamParts(s.ad)
		if err != nil {
			return dst, err
		}
		return append(dst, parts.Suffix...), nil
	}
	pad := s.bs - len(s.pend)
	last := append(s.pend, make([]byte, pad)...)
	for i := len(last) - pad; i < len(last); i++ {
		last[i] = byte(pad)
	}
	s.cbc.CryptBlocks(last, last)
	dst = cms.AppendStreamChunk(dst, last)
	return append(dst, s.suffix...), nil
}

// Spool holds a GCM envelope's ciphertext until its tag has been checked.
type Spool interface {
	io.Writer
	// Rewind ends the writing and returns a reader of everything written.
	Rewind() (io.Reader, error)
}

// StreamOpened is what OpenStream found besides the plaintext.
type StreamOpened struct {
	// ContentType is the type of the decrypted content.
	ContentType asn1.ObjectIdentifier
	// Cipher names the content cipher.
	Cipher string
	// Authenticated is true for GCM (the tag was checked before any plaintext).
	Authenticated bool
}

// streamBuf is the size of the pieces OpenStream reads and hands out.
const streamBuf = 256 << 10

// OpenStream opens the envelope sr reads (just returned by cms.NewStreamReader) with
// key, for cert, as Open does, and hands the plaintext to out in pieces. spool is
// needed for GCM (AuthEnvelopedData); out's error ends the opening and is returned.
// Errors of sr (the message's framing, the caller's reader) are returned as they
// are; decryption failures are ErrDecrypt, for GCM before any call of out.
//
// ended, when not nil, is called once the whole message has been read and (for
// GCM) authenticated, before any plaintext is handed out (for CBC, before the last
// block); its error ends the opening: the caller checks there that its input ended
// as it should.
func OpenStream(sr *cms.StreamReader, key any, cert *smx509.Certificate, opts *OpenOptions, spool Spool, ended func() error, out func([]byte) error) (*StreamOpened, error) {
	e, err := ReadStreamEnvelope(sr)
	if err != nil {
		return nil, err
	}
	return e.Open(key, cert, opts, spool, ended, out)
}

// StreamEnvelope is a streamed envelope whose header (its recipients and content
// algorithm) has been read, and none of its content yet: a caller holding several
// keys (the generations of one key name) tries them on it in turn.
type StreamEnvelope struct {
	sr  *cms.StreamReader
	hdr *cms.EnvelopedData
	m   *message
}

// ReadStreamEnvelope reads the header of the envelope sr reads (just returned by
// cms.NewStreamReader).
func ReadStreamEnvelope(sr *cms.StreamReader) (*StreamEnvelope, error) {
	ct := sr.ContentType()
	auth := ct.Equal(cms.OIDAuthEnvelopedData)
	if !auth && !cms.ContentTypeIsEnveloped(ct) {
		return nil, unsupported("content type %s is not a streamable envelope", ct)
	}
	hdr, err := sr.EnvelopeHeader()
	if err != nil {
		return nil, err
	}
	m := &message{contentType: ct, ris: hdr.RecipientInfos, eci: &hdr.EncryptedContentInfo, auth: auth}
	return &StreamEnvelope{sr: sr, hdr: hdr, m: m}, nil
}

// Open is OpenStream once the header is read. When no RecipientInfo names cert
// (or the KEK, or a password) it returns ErrNoRecipient having read nothing more,
// and may be called again with another key; any other return ends the envelope.
func (e *StreamEnvelope) Open(key any, cert *smx509.Certificate, opts *OpenOptions, spool Spool, ended func() error, out func([]byte) error) (*StreamOpened, error) {
	if ended == nil {
		ended = func() error { return nil }
	}
	cek, keyOK, alg, err := e.m.contentKey(key, cert, opts)
	if err != nil {
		return nil, err
	}
	defer clear(cek)
	res := &StreamOpened{ContentType: e.hdr.EncryptedContentInfo.ContentType, Cipher: alg.name, Authenticated: alg.gcm}
	block, err := alg.newBlock(cek)
	if err != nil {
		return nil, ErrDecrypt
	}
	params := e.hdr.EncryptedContentInfo.ContentEncryptionAlgorithm.Parameters
	if alg.gcm {
		return res, openGCMStream(e.sr, block, params, keyOK, spool, ended, out)
	}
	return res, openCBCStream(e.sr, block, params, keyOK, ended, out)
}

func openGCMStream(sr *cms.StreamReader, block cipher.Block, params []byte, keyOK int, spool Spool, ended func() error, out func([]byte) error) error {
	p, err := cms.ParseGCMParameters(params)
	if err != nil || p.ICVLen != gcmTagLen || len(p.Nonce) != gcmNonceLen {
		// Other nonce and tag sizes are valid GCM, but not streamed here.
		return unsupported("streamed GCM needs a 96-bit nonce and a 128-bit tag")
	}
	if spool == nil {
		return errors.New("envelope: a GCM envelope needs a spool")
	}
	g, err := newGCMStream(block, p.Nonce)
	if err != nil {
		return unsupported("%v", err)
	}
	buf := make([]byte, streamBuf)
	for {
		n, err := sr.Read(buf)
		if n > 0 {
			g.hash(buf[:n])
			if _, werr := spool.Write(buf[:n]); werr != nil {
				return fmt.Errorf("envelope: spool: %w", werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	rest, err := sr.Finish()
	if err != nil {
		return err
	}
	ci, err := cms.ParseContentInfo(rest)
	if err != nil {
		return err
	}
	ad, err := cms.ParseAuthEnvelopedData(ci.Content)
	if err != nil {
		return err
	}
	aad, err := ad.AAD()
	if err != nil {
		return err
	}
	tag, err := g.tag(aad)
	if err != nil {
		return unsupported("%v", err)
	}
	if keyOK&subtle.ConstantTimeCompare(tag[:], ad.MAC) != 1 {
		return ErrDecrypt
	}
	if err := ended(); err != nil {
		return err
	}
	r, err := spool.Rewind()
	if err != nil {
		return fmt.Errorf("envelope: spool: %w", err)
	}
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			g.crypt(buf[:n], buf[:n])
			if oerr := out(buf[:n]); oerr != nil {
				return oerr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("envelope: spool: %w", err)
		}
	}
}

func openCBCStream(sr *cms.StreamReader, block cipher.Block, params []byte, keyOK int, ended func() error, out func([]byte) error) error {
	bs := block.BlockSize()
	iv, err := cms.ParseIVParameters(params)
	if err != nil || len(iv) != bs {
		return ErrDecrypt
	}
	dec := cipher.NewCBCDecrypter(block, iv)
	// buf holds, after the bytes read, up to one block held back: the last block
	// seen, which may be the padded one.
	buf := make([]byte, streamBuf+bs)
	have := 0
	total := 0
	for {
		n, err := sr.Read(buf[have : have+streamBuf])
		have += n
		total += n
		if err != nil && err != io.EOF {
			return err
		}
		if err == io.EOF {
			break
		}
		// Decrypt every whole block but the last one.
		ready := (have - 1) / bs * bs
		if ready > 0 {
			dec.CryptBlocks(buf[:ready], buf[:ready])
			if oerr := out(buf[:ready]); oerr != nil {
				return oerr
			}
			copy(buf, buf[ready:have])
			have -= ready
		}
	}
	if _, err := sr.Finish(); err != nil {
		return err
	}
	if err := ended(); err != nil {
		return err
	}
	if total == 0 || have%bs != 0 {
		return ErrDecrypt
	}
	dec.CryptBlocks(buf[:have], buf[:have])
	n, padOK := unpadConstantTime(buf[:have], bs)
	if keyOK&padOK != 1 {
		clear(buf)
		return ErrDecrypt
	}
	if n > 0 {
		return out(buf[:n])
	}
	return nil
}
