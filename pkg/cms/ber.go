package cms

// BER to DER.
//
// OpenSSL's streaming output (cms -stream, or any S/MIME output) encodes with
// indefinite lengths and splits OCTET STRINGs into constructed chunks; old peers write
// non-minimal lengths. cryptobyte reads only DER, so input goes through normalize first:
// it re-encodes every length in minimal definite form and joins constructed
// UNIVERSAL OCTET STRINGs into primitive ones. It does not reorder SET
// OF elements: signed attributes must be checked in the order the signer hashed them.
//
// Context-specific constructed tags are kept constructed (an [0] IMPLICIT OCTET STRING
// that was streamed in chunks stays a constructed [0] holding OCTET STRINGs); the
// structure parsers that expect such a field join its chunks (see readOctetsOrChunks).

const (
	maxBERDepth    = 64
	tagOctetString = 0x04
	classMask      = 0xc0
	constructedBit = 0x20
)

// normalize returns the DER re-encoding of one complete BER element in, with nothing
// after it. When in already is DER it is returned as is, without copying.
func normalize(in []byte) ([]byte, error) {
	if isDER(in, 0) {
		return in, nil
	}
	out := make([]byte, 0, len(in))
	out, rest, err := convert(out, in, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("trailing data after the outermost element")
	}
	return out, nil
}

// berHeader reads one identifier and length. length is -1 for the indefinite form.
// tag holds the identifier octets as read (one or more bytes).
func berHeader(in []byte) (tag []byte, constructed bool, length int, hdrLen int, err error) {
	if len(in) < 2 {
		return nil, false, 0, 0, malformed("truncated header")
	}
	i := 1
	if in[0]&0x1f == 0x1f { // high tag number form
		for {
			if i >= len(in) {
				return nil, false, 0, 0, malformed("truncated tag")
			}
			b := in[i]
			i++
			if b&0x80 == 0 {
				break
			}
			if i > 5 {
				return nil, false, 0, 0, malformed("tag number too large")
			}
		}
	}
	tag = in[:i]
	constructed = in[0]&constructedBit != 0
	if i >= len(in) {
		return nil, false, 0, 0, malformed("truncated length")
	}
	l := in[i]
	i++
	switch {
	case l < 0x80:
		length = int(l)
	case l == 0x80:
		if !constructed {
			return nil, false, 0, 0, malformed("indefinite length on a primitive element")
		}
		length = -1
	default:
		n := int(l & 0x7f)
		if n > 4 {
			return nil, false, 0, 0, malformed("length too large")
		}
		if i+n > len(in) {
			return nil, false, 0, 0, malformed("truncated length")
		}
		length = 0
		for _, b := range in[i : i+n] {
			length = length<<8 | int(b)
		}
		if length < 0 {
			return nil, false, 0, 0, malformed("length too large")
		}
		i += n
	}
	if length > len(in)-i {
		return nil, false, 0, 0, malformed("length exceeds input")
	}
	return tag, constructed, length, i, nil
}

// isDER reports whether in is exactly one element whose lengths are all minimal and
// definite, with no constructed OCTET STRING (a cheap check that lets DER
// input skip the copy).
func isDER(in []byte, depth int) bool {
	rest, ok := derElement(in, depth)
	return ok && len(rest) == 0
}

func derElement(in []byte, depth int) ([]byte, bool) {
	if depth > maxBERDepth {
		return nil, false
	}
	tag, constructed, length, hdr, err := berHeader(in)
	if err != nil || length < 0 {
		return nil, false
	}
	// Minimal length encoding.
	lenBytes := hdr - len(tag)
	if length < 0x80 && lenBytes != 1 || length >= 0x80 && lenBytes != 1+bytesFor(length) {
		return nil, false
	}
	body := in[hdr : hdr+length]
	if constructed {
		if tag[0]&classMask == 0 && tag[0]&0x1f == tagOctetString {
			return nil, false
		}
		for len(body) > 0 {
			var ok bool
			body, ok = derElement(body, depth+1)
			if !ok {
				return nil, false
			}
		}
	}
	return in[hdr+length:], true
}

func bytesFor(n int) int {
	c := 0
	for n > 0 {
		c++
		n >>= 8
	}
	return c
}

// convert appends the DER form of the first element of in to out and returns the rest.
func convert(out, in []byte, depth int) ([]byte, []byte, error) {
	if depth > maxBERDepth {
		return nil, nil, malformed("nesting too deep")
	}
	tag, constructed, length, hdr, err := berHeader(in)
	if err != nil {
		return nil, nil, err
	}
	if !constructed {
		out = appendHeader(out, tag, length)
		out = append(out, in[hdr:hdr+length]...)
		return out, in[hdr+length:], nil
	}
	universal := tag[0]&classMask == 0
	joinString := universal && tag[0]&0x1f == tagOctetString

	// Convert the children into a scratch buffer, then write the header with the
	// final length. Children of a constructed string are joined into one primitive.
	var body []byte
	rest := in[hdr:]
	if length >= 0 {
		rest = in[hdr : hdr+length]
	}
	var children []byte
	for {
		if length < 0 {
			if len(rest) < 2 {
				return nil, nil, malformed("missing end-of-contents")
			}
			if rest[0] == 0 && rest[1] == 0 {
				rest = rest[2:]
				break
			}
		} else if len(rest) == 0 {
			break
		}
		start := len(children)
		children, rest, err = convert(children, rest, depth+1)
		if err != nil {
			return nil, nil, err
		}
		if joinString {
			child := children[start:]
			ctag, cons, clen, chdr, err := berHeader(child)
			if err != nil || cons || ctag[0]&0x1f != tag[0]&0x1f || clen != len(child)-chdr {
				return nil, nil, malformed("bad chunk in a constructed string")
			}
			body = append(body, child[chdr:]...)
			children = children[:start]
		}
	}
	var after []byte
	if length < 0 {
		after = rest
	} else {
		after = in[hdr+length:]
	}
	if joinString {
		prim := []byte{tag[0] &^ constructedBit}
		out = appendHeader(out, prim, len(body))
		out = append(out, body...)
		return out, after, nil
	}
	out = appendHeader(out, tag, len(children))
	out = append(out, children...)
	return out, after, nil
}

func appendHeader(out, tag []byte, length int) []byte {
	out = append(out, tag...)
	if length < 0x80 {
		return append(out, byte(length))
	}
	n := bytesFor(length)
	out = append(out, 0x80|byte(n))
	for i := n - 1; i >= 0; i-- {
		out = append(out, byte(length>>(8*i)))
	}
	return out
}
