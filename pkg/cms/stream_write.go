package cms

// Writing streamed (BER, indefinite-length) messages.
//
// A message made while its content streams through cannot know its lengths before
// the content ends, so it is written as `openssl cms -stream` writes it: every
// element from the ContentInfo down to the content uses the indefinite length form,
// and the content octets go out as a constructed OCTET STRING of primitive chunks:
//
//	30 80                      ContentInfo
//	  06 .. contentType
//	  a0 80                    [0] EXPLICIT
//	    30 80                  SignedData / EnvelopedData / AuthEnvelopedData
//	      ... fields before the content, in DER ...
//	      24 80 | a0 80        the content: OCTET STRING or [0] IMPLICIT, constructed
//	        04 len chunk       one primitive OCTET STRING per chunk
//	        ...
//	      00 00
//	      ... fields after the content, in DER ...
//	    00 00
//	  00 00
//	00 00
//
// The prefix and suffix are cut out of a DER encoding of the same structure made
// with an empty content by the structure's ordinary writer, so each field has one
// writer; only the path to the content is known here.

import (
	"encoding/asn1"
	"errors"
)

// Paths from a ContentInfo to its content element, as child indexes.
var (
	// ContentInfo [0] -> SignedData -> encapContentInfo (3rd) -> [0] -> OCTET STRING.
	pathSignedContent = []int{1, 0, 2, 1, 0}
	// ContentInfo [0] -> (Auth)EnvelopedData -> (auth)encryptedContentInfo (3rd
	// without originatorInfo) -> [0] IMPLICIT encryptedContent.
	pathEnvelopedContent = []int{1, 0, 2, 2}
)

// StreamParts are the prefix and suffix of a streamed message: the prefix, then
// every chunk of content as AppendStreamChunk writes it, then the suffix.
type StreamParts struct {
	Prefix, Suffix []byte
}

// SignedDataStreamParts cuts the streamed form out of sd, which must hold an empty
// (non-nil) EContent. Only the prefix of a SignedData without SignerInfos is
// needed before the content; call it again with the finished SignedData for the
// suffix (the prefix depends only on the fields before the content).
func SignedDataStreamParts(sd *SignedData) (StreamParts, error) {
	if sd.EContent == nil || len(sd.EContent) != 0 {
		return StreamParts{}, errors.New("cms: a streamed SignedData needs an empty EContent to cut")
	}
	der, err := sd.Marshal()
	if err != nil {
		return StreamParts{}, err
	}
	return streamSplit(der, pathSignedContent)
}

// EnvelopedDataStreamParts cuts the streamed form out of ed (EncryptedContent must
// be empty and non-nil; no originatorInfo).
func EnvelopedDataStreamParts(ed *EnvelopedData, contentType asn1.ObjectIdentifier) (StreamParts, error) {
	if ed.EncryptedContentInfo.EncryptedContent == nil || len(ed.EncryptedContentInfo.EncryptedContent) != 0 || len(ed.OriginatorInfo) != 0 {
		return StreamParts{}, errors.New("cms: a streamed EnvelopedData needs an empty encrypted content and no originatorInfo")
	}
	der, err := ed.MarshalContentInfo(contentType)
	if err != nil {
		return StreamParts{}, err
	}
	return streamSplit(der, pathEnvelopedContent)
}

// AuthEnvelopedDataStreamParts cuts the streamed form out of ad (as
// EnvelopedDataStreamParts). The MAC is in the suffix: cut the prefix with any MAC
// of the right length, and the suffix with the real one.
func AuthEnvelopedDataStreamParts(ad *AuthEnvelopedData) (StreamParts, error) {
	if ad.AuthEncryptedContentInfo.EncryptedContent == nil || len(ad.AuthEncryptedContentInfo.EncryptedContent) != 0 || len(ad.OriginatorInfo) != 0 {
		return StreamParts{}, errors.New("cms: a streamed AuthEnvelopedData needs an empty encrypted content and no originatorInfo")
	}
	der, err := ad.MarshalContentInfo()
	if err != nil {
		return StreamParts{}, err
	}
	return streamSplit(der, pathEnvelopedContent)
}

// AppendStreamChunk appends one chunk of content as a primitive OCTET STRING. An
// empty chunk appends nothing.
func AppendStreamChunk(dst, chunk []byte) []byte {
	if len(chunk) == 0 {
		return dst
	}
	dst = appendHeader(dst, []byte{tagOctetString}, len(chunk))
	return append(dst, chunk...)
}

// StreamChunkHeader appends the header AppendStreamChunk writes before n bytes, for
// a caller that writes the bytes itself.
func StreamChunkHeader(dst []byte, n int) []byte {
	return appendHeader(dst, []byte{tagOctetString}, n)
}

var eoc = []byte{0, 0}

// streamSplit returns the streamed form of the DER element der around the empty
// primitive element that path leads to.
func streamSplit(der []byte, path []int) (StreamParts, error) {
	tag, constructed, length, hdr, err := berHeader(der)
	if err != nil {
		return StreamParts{}, err
	}
	if hdr+length != len(der) {
		return StreamParts{}, errors.New("cms: streamSplit: trailing data")
	}
	if len(path) == 0 {
		if constructed || length != 0 {
			return StreamParts{}, errors.New("cms: streamSplit: the content element is not an empty primitive")
		}
		p := append([]byte{}, tag...)
		p[0] |= constructedBit
		return StreamParts{Prefix: append(p, 0x80), Suffix: append([]byte{}, eoc...)}, nil
	}
	if !constructed {
		return StreamParts{}, errors.New("cms: streamSplit: path through a primitive element")
	}
	body := der[hdr:]
	var children [][]byte
	for len(body) > 0 {
		_, _, l, h, err := berHeader(body)
		if err != nil {
			return StreamParts{}, err
		}
		children = append(children, body[:h+l])
		body = body[h+l:]
	}
	i := path[0]
	if i >= len(children) {
		return StreamParts{}, errors.New("cms: streamSplit: no such child")
	}
	inner, err := streamSplit(children[i], path[1:])
	if err != nil {
		return StreamParts{}, err
	}
	prefix := append(append([]byte{}, tag...), 0x80)
	for _, c := range children[:i] {
		prefix = append(prefix, c...)
	}
	prefix = append(prefix, inner.Prefix...)
	suffix := inner.Suffix
	for _, c := range children[i+1:] {
		suffix = append(suffix, c...)
	}
	return StreamParts{Prefix: prefix, Suffix: append(suffix, eoc...)}, nil
}

// SplitSignedData cuts the streamed form out of the DER ContentInfo of a SignedData
// whose eContent is present and empty.
func SplitSignedData(der []byte) (StreamParts, error) {
	return streamSplit(der, pathSignedContent)
}
