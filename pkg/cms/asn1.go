package cms

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ContentInfo is the outermost CMS structure. Content is the DER of the value inside
// the [0] EXPLICIT tag (for example a SignedData SEQUENCE), or nil when absent.
type ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     []byte
}

// ParseContentInfo reads a BER or DER ContentInfo. The returned Content aliases the
// normalised input.
func ParseContentInfo(ber []byte) (*ContentInfo, error) {
	der, err := normalize(ber)
	if err != nil {
		return nil, err
	}
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("ContentInfo")
	}
	ci := &ContentInfo{}
	if !seq.ReadASN1ObjectIdentifier(&ci.ContentType) {
		return nil, malformed("ContentInfo.contentType")
	}
	if seq.Empty() {
		return ci, nil
	}
	var explicit cryptobyte.String
	if !seq.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !seq.Empty() {
		return nil, malformed("ContentInfo.content")
	}
	var inner cryptobyte.String
	var tag cbasn1.Tag
	if !explicit.ReadAnyASN1Element(&inner, &tag) || !explicit.Empty() {
		return nil, malformed("ContentInfo.content")
	}
	ci.Content = inner
	return ci, nil
}

// Marshal returns the DER encoding.
func (ci *ContentInfo) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	ci.marshalInto(&b)
	return b.Bytes()
}

func (ci *ContentInfo) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(ci.ContentType)
		if ci.Content != nil {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddBytes(ci.Content)
			})
		}
	})
}

// AlgorithmIdentifier names an algorithm. Parameters is the complete DER element of
// the parameters (for example 05 00 for NULL), or nil when they are absent.
type AlgorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters []byte
}

// NullParameters is the DER of an ASN.1 NULL, as RSA algorithm identifiers carry.
var NullParameters = []byte{0x05, 0x00}

// HasNullOrNoParameters reports whether the parameters are absent or NULL, the two
// forms peers use interchangeably for digest algorithms.
func (a AlgorithmIdentifier) HasNullOrNoParameters() bool {
	return len(a.Parameters) == 0 || bytes.Equal(a.Parameters, NullParameters)
}

// Equal compares algorithm and parameters.
func (a AlgorithmIdentifier) Equal(o AlgorithmIdentifier) bool {
	return a.Algorithm.Equal(o.Algorithm) && bytes.Equal(a.Parameters, o.Parameters)
}

// readAlgorithmIdentifier reads one AlgorithmIdentifier. Well-known algorithm OIDs are
// interned (sdReadOID): the result shares them, so treat it as read-only.
func readAlgorithmIdentifier(s *cryptobyte.String, out *AlgorithmIdentifier) bool {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !sdReadOID(&seq, &out.Algorithm) {
		return false
	}
	out.Parameters = nil
	if seq.Empty() {
		return true
	}
	var params cryptobyte.String
	var tag cbasn1.Tag
	if !seq.ReadAnyASN1Element(&params, &tag) || !seq.Empty() {
		return false
	}
	out.Parameters = params
	return true
}

// ParseAlgorithmIdentifier reads one DER AlgorithmIdentifier with nothing after it.
func ParseAlgorithmIdentifier(der []byte) (AlgorithmIdentifier, error) {
	s := cryptobyte.String(der)
	var a AlgorithmIdentifier
	if !readAlgorithmIdentifier(&s, &a) || !s.Empty() {
		return a, malformed("AlgorithmIdentifier")
	}
	return a, nil
}

func (a AlgorithmIdentifier) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(a.Algorithm)
		if a.Parameters != nil {
			b.AddBytes(a.Parameters)
		}
	})
}

// Marshal returns the DER encoding.
func (a AlgorithmIdentifier) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	a.marshalInto(&b)
	return b.Bytes()
}

// IssuerAndSerial names a certificate by its issuer's DER Name and serial number.
type IssuerAndSerial struct {
	Issuer []byte // the complete DER Name (a SEQUENCE)
	Serial *big.Int
}

func readIssuerAndSerial(s *cryptobyte.String, out *IssuerAndSerial) bool {
	var seq, name cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Element(&name, cbasn1.SEQUENCE) {
		return false
	}
	out.Issuer = name
	out.Serial = new(big.Int)
	return seq.ReadASN1Integer(out.Serial) && seq.Empty()
}

func (ias IssuerAndSerial) marshalInto(b *cryptobyte.Builder) {
	if ias.Serial == nil {
		b.SetError(errors.New("cms: IssuerAndSerial without a serial number"))
		return
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(ias.Issuer)
		b.AddASN1BigInt(ias.Serial)
	})
}

// Matches reports whether the certificate with the given raw issuer and serial is the
// one named.
func (ias IssuerAndSerial) Matches(rawIssuer []byte, serial *big.Int) bool {
	return ias.Serial != nil && serial != nil && ias.Serial.Cmp(serial) == 0 && bytes.Equal(ias.Issuer, rawIssuer)
}

// Attribute is one attribute; each of Values is a complete DER element.
type Attribute struct {
	Type   asn1.ObjectIdentifier
	Values [][]byte
}

// readAttributes reads the elements of a SET OF Attribute whose content is s.
func readAttributes(s cryptobyte.String) ([]Attribute, bool) {
	var attrs []Attribute
	for !s.Empty() {
		var seq, set cryptobyte.String
		var a Attribute
		if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&a.Type) ||
			!seq.ReadASN1(&set, cbasn1.SET) || !seq.Empty() {
			return nil, false
		}
		for !set.Empty() {
			var v cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadAnyASN1Element(&v, &tag) {
				return nil, false
			}
			a.Values = append(a.Values, v)
		}
		if len(a.Values) == 0 {
			return nil, false
		}
		attrs = append(attrs, a)
	}
	return attrs, true
}

func (a Attribute) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(a.Type)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			addSetOfElements(b, len(a.Values), func(i int, b *cryptobyte.Builder) { b.AddBytes(a.Values[i]) })
		})
	})
}

// MarshalAttributeSet returns the contents of a DER SET OF Attribute (without the SET
// header): each attribute encoded, then sorted by encoding as DER requires. Signed
// attributes are hashed as 31 <len> <this>; in a SignerInfo they are tagged [0].
func MarshalAttributeSet(attrs []Attribute) ([]byte, error) {
	var b cryptobyte.Builder
	addSetOfElements(&b, len(attrs), func(i int, b *cryptobyte.Builder) { attrs[i].marshalInto(b) })
	return b.Bytes()
}

// addAttributes appends a SET OF Attribute with the given (IMPLICIT) tag.
func addAttributes(b *cryptobyte.Builder, tag cbasn1.Tag, attrs []Attribute) {
	b.AddASN1(tag, func(b *cryptobyte.Builder) {
		addSetOfElements(b, len(attrs), func(i int, b *cryptobyte.Builder) { attrs[i].marshalInto(b) })
	})
}

// addSetOfElements appends the n elements that elem writes, in the order DER requires
// of the contents of a SET OF: sorted by their encodings. A single element is written
// in place; several are encoded one by one, then sorted.
func addSetOfElements(b *cryptobyte.Builder, n int, elem func(i int, b *cryptobyte.Builder)) {
	if n == 1 {
		elem(0, b)
		return
	}
	encs := make([][]byte, n)
	for i := range encs {
		var e cryptobyte.Builder
		elem(i, &e)
		der, err := e.Bytes()
		if err != nil {
			b.SetError(err)
			return
		}
		encs[i] = der
	}
	slices.SortFunc(encs, bytes.Compare)
	for _, e := range encs {
		b.AddBytes(e)
	}
}

// addTagged appends one element with the given tag and contents.
func addTagged(b *cryptobyte.Builder, tag cbasn1.Tag, contents []byte) {
	b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(contents) })
}

// addContentInfo appends ContentInfo { contentType, [0] EXPLICIT content }, the
// content written by inner.
func addContentInfo(b *cryptobyte.Builder, contentType asn1.ObjectIdentifier, inner cryptobyte.BuilderContinuation) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(contentType)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), inner)
	})
}

// FindAttribute returns the attribute of the given type, and whether it occurs exactly
// once (CMS requires contentType, messageDigest and signingTime to be single).
func FindAttribute(attrs []Attribute, typ asn1.ObjectIdentifier) (a Attribute, found, single bool) {
	n := 0
	for _, at := range attrs {
		if at.Type.Equal(typ) {
			if n == 0 {
				a = at
			}
			n++
		}
	}
	return a, n > 0, n == 1 && len(a.Values) == 1
}

// readOctetsOrChunks reads an OCTET STRING-like field with the given primitive tag that
// a BER writer may have split into a constructed element of OCTET STRING chunks (as
// OpenSSL streams encryptedContent [0] IMPLICIT). It returns the joined bytes.
func readOctetsOrChunks(s *cryptobyte.String, tag cbasn1.Tag) ([]byte, bool) {
	if s.PeekASN1Tag(tag) {
		var v cryptobyte.String
		if !s.ReadASN1(&v, tag) {
			return nil, false
		}
		return v, true
	}
	var cons cryptobyte.String
	if !s.ReadASN1(&cons, tag.Constructed()) {
		return nil, false
	}
	var out []byte
	for !cons.Empty() {
		var chunk cryptobyte.String
		if !cons.ReadASN1(&chunk, cbasn1.OCTET_STRING) {
			return nil, false
		}
		out = append(out, chunk...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, true
}
