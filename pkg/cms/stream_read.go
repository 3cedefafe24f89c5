package cms

// Reading streamed messages incrementally.
//
// A StreamReader reads a SignedData, EnvelopedData or AuthEnvelopedData ContentInfo
// from an io.Reader in one pass and in bounded memory: the fields before the content
// are read whole (they are small: algorithms, recipient infos), the content octets
// are passed through to the caller as they arrive, whatever their framing (one
// primitive OCTET STRING with a definite length, or a constructed one of chunks,
// nested, with definite or indefinite lengths, as `openssl cms -stream` writes), and
// the fields after the content (certificates, signer infos, the MAC) are read whole
// again. Everything but the content counts against a byte limit.
//
// The fields are kept as DER; the caller gets them back as a DER ContentInfo of the
// same message with the content left out (a detached SignedData, or an envelope
// with an empty encrypted content), which the ordinary parsers of this package
// read. So the structure rules live in one place, and only the descent to the
// content is written here.

import (
	"bufio"
	"encoding/asn1"
	"errors"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DefaultStreamPartsLimit bounds what a StreamReader holds besides the content.
const DefaultStreamPartsLimit = 4 << 20

// maxChunkDepth bounds the nesting of constructed OCTET STRINGs in a content.
const maxChunkDepth = 8

// streamLevel is one constructed element on the way from the ContentInfo to the
// content: its tag, where it ends (-1: indefinite), and its other children, DER.
type streamLevel struct {
	tag    []byte
	end    int64
	before [][]byte
	after  [][]byte
}

// StreamReader reads one streamed message; see the file comment. Read returns the
// content octets; after Read returned io.EOF, Finish reads the rest.
type StreamReader struct {
	r     *bufio.Reader
	pos   int64
	limit int
	used  int

	contentType asn1.ObjectIdentifier
	levels      []streamLevel
	// contentTag is the content element's tag; detached means the SignedData has no
	// eContent at all.
	contentTag []byte
	detached   bool
	signed     bool
	// eContentType is a SignedData's.
	eContentType asn1.ObjectIdentifier

	frames      []int64 // open constructed chunks of the content: their ends
	prim        int64   // octets left in the current primitive chunk
	contentDone bool
	finished    bool
	err         error
}

// NewStreamReader reads from r up to the first content octet. limit bounds the
// bytes of the other fields (0 means DefaultStreamPartsLimit). A SignedData without
// encapsulated content is accepted (Detached reports it; Read then returns io.EOF).
func NewStreamReader(r io.Reader, limit int) (*StreamReader, error) {
	if limit <= 0 {
		limit = DefaultStreamPartsLimit
	}
	s := &StreamReader{r: bufio.NewReaderSize(r, 32<<10), limit: limit}
	if err := s.descend(); err != nil {
		return nil, err
	}
	return s, nil
}

// ContentType is the ContentInfo's content type.
func (s *StreamReader) ContentType() asn1.ObjectIdentifier { return s.contentType }

// Detached reports a SignedData without encapsulated content.
func (s *StreamReader) Detached() bool { return s.detached }

func (s *StreamReader) readByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err != nil {
		return 0, unexpected(err)
	}
	s.pos++
	return b, nil
}

func unexpected(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return malformed("the message ends early")
	}
	return err
}

// readHeader reads one identifier and length; length is -1 for the indefinite form.
// raw holds the header octets as read.
func (s *StreamReader) readHeader() (raw []byte, constructed bool, length int64, err error) {
	b, err := s.readByte()
	if err != nil {
		return nil, false, 0, err
	}
	raw = append(raw, b)
	constructed = b&constructedBit != 0
	if b&0x1f == 0x1f {
		for i := 0; ; i++ {
			if i >= 4 {
				return nil, false, 0, malformed("tag number too large")
			}
			if b, err = s.readByte(); err != nil {
				return nil, false, 0, err
			}
			raw = append(raw, b)
			if b&0x80 == 0 {
				break
			}
		}
	}
	if b, err = s.readByte(); err != nil {
		return nil, false, 0, err
	}
	raw = append(raw, b)
	switch {
	case b < 0x80:
		length = int64(b)
	case b == 0x80:
		if !constructed {
			return nil, false, 0, malformed("indefinite length on a primitive element")
		}
		length = -1
	default:
		n := int(b & 0x7f)
		if n > 7 {
			return nil, false, 0, malformed("length too large")
		}
		for range n {
			if b, err = s.readByte(); err != nil {
				return nil, false, 0, err
			}
			raw = append(raw, b)
			length = length<<8 | int64(b)
		}
	}
	return raw, constructed, length, nil
}

// atEnd reports whether l has no more children, consuming its end-of-contents.
func (s *StreamReader) atEnd(l *streamLevel) (bool, error) {
	return s.endOf(l.end)
}

func (s *StreamReader) endOf(end int64) (bool, error) {
	if end >= 0 {
		switch {
		case s.pos == end:
			return true, nil
		case s.pos > end:
			return false, malformed("an element overruns its parent")
		}
		return false, nil
	}
	p, err := s.r.Peek(2)
	if err != nil {
		return false, unexpected(err)
	}
	if p[0] == 0 && p[1] == 0 {
		s.r.Discard(2)
		s.pos += 2
		return true, nil
	}
	return false, nil
}

func (s *StreamReader) charge(n int64) error {
	if n < 0 || int64(s.used)+n > int64(s.limit) {
		return malformed("the fields besides the content exceed the limit")
	}
	s.used += int(n)
	return nil
}

// readBody appends the body of an element whose header was just read, as received
// (BER).
func (s *StreamReader) readBody(dst []byte, constructed bool, length int64, depth int) ([]byte, error) {
	if depth > maxBERDepth {
		return nil, malformed("nesting too deep")
	}
	if length >= 0 {
		if err := s.charge(length); err != nil {
			return nil, err
		}
		start := len(dst)
		dst = append(dst, make([]byte, length)...)
		n, err := io.ReadFull(s.r, dst[start:])
		s.pos += int64(n)
		if err != nil {
			return nil, unexpected(err)
		}
		return dst, nil
	}
	for {
		end, err := s.endOf(-1)
		if err != nil {
			return nil, err
		}
		if end {
			return append(dst, 0, 0), nil
		}
		hdr, cons, l, err := s.readHeader()
		if err != nil {
			return nil, err
		}
		if err := s.charge(int64(len(hdr))); err != nil {
			return nil, err
		}
		dst = append(dst, hdr...)
		if dst, err = s.readBody(dst, cons, l, depth+1); err != nil {
			return nil, err
		}
	}
}

// readRest reads the rest of an element whose header was read and returns its DER.
func (s *StreamReader) readRest(hdr []byte, constructed bool, length int64) ([]byte, error) {
	if err := s.charge(int64(len(hdr))); err != nil {
		return nil, err
	}
	raw, err := s.readBody(append([]byte{}, hdr...), constructed, length, 1)
	if err != nil {
		return nil, err
	}
	return normalize(raw)
}

// enter pushes the constructed element whose header was read as a level.
func (s *StreamReader) enter(hdr []byte, constructed bool, length int64) error {
	if !constructed {
		return malformed("expected a constructed element")
	}
	if err := s.charge(int64(len(hdr))); err != nil {
		return err
	}
	end := int64(-1)
	if length >= 0 {
		end = s.pos + length
	}
	if len(s.levels) > 0 {
		if p := s.top().end; p >= 0 && end > p {
			return malformed("an element overruns its parent")
		}
	}
	tag := hdr[:len(hdr)-lengthOctets(hdr)]
	s.levels = append(s.levels, streamLevel{tag: append([]byte{}, tag...), end: end})
	return nil
}

// lengthOctets is how many octets of hdr are its length.
func lengthOctets(hdr []byte) int {
	i := 1
	if hdr[0]&0x1f == 0x1f {
		for hdr[i]&0x80 != 0 {
			i++
		}
		i++
	}
	return len(hdr) - i
}

func (s *StreamReader) top() *streamLevel { return &s.levels[len(s.levels)-1] }

// nextChild reads the next child's header of the top level; ok is false at its end.
func (s *StreamReader) nextChild() (hdr []byte, cons bool, length int64, ok bool, err error) {
	end, err := s.atEnd(s.top())
	if err != nil || end {
		return nil, false, 0, false, err
	}
	hdr, cons, length, err = s.readHeader()
	return hdr, cons, length, err == nil, err
}

// keep reads the rest of the child whose header was read and keeps it before the
// content in the top level.
func (s *StreamReader) keep(hdr []byte, cons bool, length int64) error {
	der, err := s.readRest(hdr, cons, length)
	if err != nil {
		return err
	}
	l := s.top()
	l.before = append(l.before, der)
	return nil
}

// descend reads from the ContentInfo down to the first content octet.
func (s *StreamReader) descend() error {
	hdr, cons, length, err := s.readHeader()
	if err != nil {
		return err
	}
	if hdr[0] != 0x30 {
		return malformed("a ContentInfo must be a SEQUENCE")
	}
	if err := s.enter(hdr, cons, length); err != nil {
		return err
	}
	// contentType
	hdr, cons, length, ok, err := s.nextChild()
	if err != nil {
		return err
	}
	if !ok || hdr[0] != 0x06 {
		return malformed("ContentInfo without a contentType")
	}
	if err := s.keep(hdr, cons, length); err != nil {
		return err
	}
	oid := cryptobyte.String(s.top().before[0])
	if !oid.ReadASN1ObjectIdentifier(&s.contentType) {
		return malformed("ContentInfo contentType")
	}
	var path func() error
	switch ct := s.contentType; {
	case IsSignedDataType(ct):
		s.signed = true
		path = s.descendSigned
	case ContentTypeIsEnveloped(ct), ct.Equal(OIDAuthEnvelopedData):
		path = s.descendEnveloped
	default:
		return errors.Join(ErrUnsupported, errors.New("cms: a streamed content type must be SignedData, EnvelopedData or AuthEnvelopedData"))
	}
	// [0] EXPLICIT content, then the inner SEQUENCE.
	if hdr, cons, length, ok, err = s.nextChild(); err != nil {
		return err
	}
	if !ok || hdr[0] != 0xa0 {
		return malformed("ContentInfo without content")
	}
	if err := s.enter(hdr, cons, length); err != nil {
		return err
	}
	if hdr, cons, length, ok, err = s.nextChild(); err != nil {
		return err
	}
	if !ok || hdr[0] != 0x30 {
		return malformed("the content is not a SEQUENCE")
	}
	if err := s.enter(hdr, cons, length); err != nil {
		return err
	}
	// Fields up to the first SEQUENCE (encapContentInfo, encryptedContentInfo).
	for {
		if hdr, cons, length, ok, err = s.nextChild(); err != nil {
			return err
		}
		if !ok {
			return malformed("no content info in the message")
		}
		if hdr[0] == 0x30 {
			if err := s.enter(hdr, cons, length); err != nil {
				return err
			}
			break
		}
		if err := s.keep(hdr, cons, length); err != nil {
			return err
		}
	}
	return path()
}

func (s *StreamReader) descendSigned() error {
	hdr, cons, length, ok, err := s.nextChild()
	if err != nil {
		return err
	}
	if !ok || hdr[0] != 0x06 {
		return malformed("encapContentInfo without eContentType")
	}
	if err := s.keep(hdr, cons, length); err != nil {
		return err
	}
	oid := cryptobyte.String(s.top().before[0])
	if !oid.ReadASN1ObjectIdentifier(&s.eContentType) {
		return malformed("eContentType")
	}
	if hdr, cons, length, ok, err = s.nextChild(); err != nil {
		return err
	}
	if !ok {
		// No eContent: the encapContentInfo has ended, and goes back to its parent
		// as DER; Finish goes on from there.
		s.detached, s.contentDone = true, true
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(s.top().before[0]) })
		encap, err := b.Bytes()
		if err != nil {
			return malformed("encapContentInfo")
		}
		s.levels = s.levels[:len(s.levels)-1]
		s.top().before = append(s.top().before, encap)
		return nil
	}
	if hdr[0] != 0xa0 {
		return malformed("eContent is not [0]")
	}
	if err := s.enter(hdr, cons, length); err != nil {
		return err
	}
	if hdr, cons, length, ok, err = s.nextChild(); err != nil {
		return err
	}
	if !ok || hdr[0]&^constructedBit != tagOctetString || len(hdr) < 2 {
		return malformed("eContent is not an OCTET STRING")
	}
	return s.startContent(hdr, cons, length)
}

func (s *StreamReader) descendEnveloped() error {
	for range 2 { // contentType, contentEncryptionAlgorithm
		hdr, cons, length, ok, err := s.nextChild()
		if err != nil {
			return err
		}
		if !ok || (hdr[0] != 0x06 && hdr[0] != 0x30) {
			return malformed("encryptedContentInfo")
		}
		if err := s.keep(hdr, cons, length); err != nil {
			return err
		}
	}
	hdr, cons, length, ok, err := s.nextChild()
	if err != nil {
		return err
	}
	if !ok {
		return errors.Join(ErrUnsupported, errors.New("cms: detached encrypted content"))
	}
	if hdr[0]&^constructedBit != 0x80 {
		return malformed("encryptedContent is not [0]")
	}
	return s.startContent(hdr, cons, length)
}

// startContent begins the content element whose header was read.
func (s *StreamReader) startContent(hdr []byte, cons bool, length int64) error {
	if err := s.charge(int64(len(hdr))); err != nil {
		return err
	}
	s.contentTag = []byte{hdr[0] &^ constructedBit}
	p := s.top().end
	if cons {
		end := int64(-1)
		if length >= 0 {
			end = s.pos + length
		}
		if p >= 0 && end > p {
			return malformed("the content overruns its parent")
		}
		s.frames = append(s.frames, end)
		return nil
	}
	if p >= 0 && s.pos+length > p {
		return malformed("the content overruns its parent")
	}
	s.prim = length
	if length == 0 {
		s.contentDone = true
	}
	return nil
}

// Read reads content octets; io.EOF at the content's end. A malformed framing is an
// error wrapping ErrMalformed.
func (s *StreamReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (s *StreamReader) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if s.prim > 0 {
			n := int(min(int64(len(p)), s.prim))
			n, err := s.r.Read(p[:n])
			s.pos += int64(n)
			s.prim -= int64(n)
			if err != nil && n == 0 {
				return 0, unexpected(err)
			}
			if s.prim == 0 && len(s.frames) == 0 {
				s.contentDone = true
			}
			return n, nil
		}
		if s.contentDone || len(s.frames) == 0 {
			s.contentDone = true
			return 0, io.EOF
		}
		end, err := s.endOf(s.frames[len(s.frames)-1])
		if err != nil {
			return 0, err
		}
		if end {
			s.frames = s.frames[:len(s.frames)-1]
			if len(s.frames) == 0 {
				s.contentDone = true
			}
			continue
		}
		hdr, cons, length, err := s.readHeader()
		if err != nil {
			return 0, err
		}
		if hdr[0]&^constructedBit != tagOctetString {
			return 0, malformed("a content chunk is not an OCTET STRING")
		}
		if err := s.charge(int64(len(hdr))); err != nil {
			return 0, err
		}
		parent := s.frames[len(s.frames)-1]
		if cons {
			if len(s.frames) >= maxChunkDepth {
				return 0, malformed("content chunks nested too deep")
			}
			end := int64(-1)
			if length >= 0 {
				end = s.pos + length
			}
			if parent >= 0 && end > parent {
				return 0, malformed("a content chunk overruns its parent")
			}
			s.frames = append(s.frames, end)
			continue
		}
		if parent >= 0 && s.pos+length > parent {
			return 0, malformed("a content chunk overruns its parent")
		}
		s.prim = length
	}
}

// Finish reads the rest of the message after the content (which must have been
// read to io.EOF) and its end, and returns the DER ContentInfo of the message
// without its content: a SignedData without eContent (detached), or an envelope
// whose encrypted content is empty. Nothing may follow the message in r.
func (s *StreamReader) Finish() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if !s.contentDone {
		return nil, errors.New("cms: Finish before the content was read")
	}
	if s.finished {
		return nil, errors.New("cms: Finish called twice")
	}
	s.finished = true
	for i := len(s.levels) - 1; i >= 0; i-- {
		l := &s.levels[i]
		for {
			end, err := s.atEnd(l)
			if err != nil {
				return nil, err
			}
			if end {
				break
			}
			hdr, cons, length, err := s.readHeader()
			if err != nil {
				return nil, err
			}
			der, err := s.readRest(hdr, cons, length)
			if err != nil {
				return nil, err
			}
			l.after = append(l.after, der)
		}
	}
	if _, err := s.r.ReadByte(); err != io.EOF {
		if err != nil {
			return nil, err
		}
		return nil, malformed("data after the message")
	}
	return s.rebuild()
}

// rebuild writes the levels back as DER around the content left out.
func (s *StreamReader) rebuild() ([]byte, error) {
	levels := s.levels
	var inner []byte
	switch {
	case s.detached:
	case s.signed:
		// Drop the [0] EXPLICIT around the content: the result is detached.
		if len(levels) < 1 || len(levels[len(levels)-1].after) != 0 || len(levels[len(levels)-1].before) != 0 {
			return nil, malformed("eContent [0] holds more than the content")
		}
		levels = levels[:len(levels)-1]
	default:
		inner = append(append([]byte{}, s.contentTag...), 0)
	}
	var b cryptobyte.Builder
	build(&b, levels, inner)
	return b.Bytes()
}

func build(b *cryptobyte.Builder, levels []streamLevel, inner []byte) {
	l := levels[0]
	b.AddASN1(cbasn1.Tag(l.tag[0]), func(b *cryptobyte.Builder) {
		for _, c := range l.before {
			b.AddBytes(c)
		}
		if len(levels) > 1 {
			build(b, levels[1:], inner)
		} else {
			b.AddBytes(inner)
		}
		for _, c := range l.after {
			b.AddBytes(c)
		}
	})
}

// SignedDataHeader returns, once NewStreamReader returned for a SignedData, the
// digest algorithms and eContentType the fields before the content declare.
func (s *StreamReader) SignedDataHeader() (digestAlgs []AlgorithmIdentifier, eContentType asn1.ObjectIdentifier, err error) {
	if !s.signed || len(s.levels) < 3 {
		return nil, nil, errors.New("cms: not a SignedData stream")
	}
	sdl := s.levels[2]
	for _, f := range sdl.before {
		if len(f) > 0 && f[0] == 0x31 {
			set := cryptobyte.String(f)
			var elems cryptobyte.String
			if !set.ReadASN1(&elems, cbasn1.SET) {
				return nil, nil, malformed("digestAlgorithms")
			}
			for !elems.Empty() {
				var a AlgorithmIdentifier
				if !readAlgorithmIdentifier(&elems, &a) {
					return nil, nil, malformed("digestAlgorithms")
				}
				digestAlgs = append(digestAlgs, a)
			}
			break
		}
	}
	return digestAlgs, s.eContentType, nil
}

// EnvelopeHeader returns, once NewStreamReader returned for an EnvelopedData or
// AuthEnvelopedData, its version, recipient infos and encrypted content info (with
// an empty EncryptedContent), parsed by the same code as whole messages.
func (s *StreamReader) EnvelopeHeader() (*EnvelopedData, error) {
	if s.signed || len(s.levels) < 4 {
		return nil, errors.New("cms: not an envelope stream")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, c := range s.levels[2].before {
			b.AddBytes(c)
		}
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, c := range s.levels[3].before {
				b.AddBytes(c)
			}
			b.AddBytes(append(append([]byte{}, s.contentTag...), 0))
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, malformed("envelope header")
	}
	return ParseEnvelopedData(der)
}
