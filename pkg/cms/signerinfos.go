package cms

// Finding the SignerInfos of a SignedData without reading the rest.
//
// An audit record names a SignedData by a digest of its signerInfos SET (pkg/audit):
// the signatures, what they sign (the signed attributes, whose messageDigest is the
// content's digest) and who signed. SignerInfosDER finds that SET by walking the
// headers in front of it (ContentInfo, [0], SignedData, version, digestAlgorithms,
// encapContentInfo, certificates, crls), skipping every element by its length, so
// the content and the certificates are never read, let alone hashed. BER input
// (indefinite lengths) is walked element by element; only the SET itself is
// normalised, to the DER ParseSignedData would keep as RawSignerInfos.

import (
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
)

// SignerInfosDER returns the DER of the signerInfos SET (the whole element) of a BER
// or DER ContentInfo holding a SignedData of either family: a sub-slice of ber when
// the SET is DER already, else its normalised copy. Errors wrap ErrMalformed.
func SignerInfosDER(ber []byte) ([]byte, error) {
	ci, err := berBody(ber, 0x30, "ContentInfo")
	if err != nil {
		return nil, err
	}
	oid, ci, err := berNext(ci, 0)
	if err != nil || len(oid) == 0 || oid[0] != 0x06 {
		return nil, malformed("ContentInfo.contentType")
	}
	var ct asn1.ObjectIdentifier
	if s := cryptobyte.String(oid); !s.ReadASN1ObjectIdentifier(&ct) || !IsSignedDataType(ct) {
		return nil, malformed("ContentInfo: not a SignedData")
	}
	explicit, _, err := berNext(ci, 0)
	if err != nil {
		return nil, err
	}
	if explicit, err = berBody(explicit, 0xa0, "ContentInfo.content"); err != nil {
		return nil, err
	}
	sdElem, _, err := berNext(explicit, 0)
	if err != nil {
		return nil, err
	}
	sd, err := berBody(sdElem, 0x30, "SignedData")
	if err != nil {
		return nil, err
	}
	// version, digestAlgorithms, encapContentInfo, then [0] certificates and [1]
	// crls when present, then the SET.
	for i := 0; ; i++ {
		var elem []byte
		if elem, sd, err = berNext(sd, 0); err != nil {
			return nil, err
		}
		if i < 3 {
			continue
		}
		switch elem[0] {
		case 0xa0, 0xa1:
			continue
		case 0x31:
			if berEnded(sd) {
				return normalize(elem)
			}
		}
		return nil, malformed("SignedData.signerInfos")
	}
}

// berBody returns the contents of the single element in (its tag must be tag):
// for the indefinite form, everything up to and including the end-of-contents.
func berBody(in []byte, tag byte, what string) ([]byte, error) {
	t, _, length, hdr, err := berHeader(in)
	if err != nil || len(t) != 1 || t[0] != tag {
		return nil, malformed(what)
	}
	if length < 0 {
		return in[hdr:], nil
	}
	return in[hdr : hdr+length], nil
}

// berEnded reports whether rest, what follows an element inside a body berBody
// returned, holds nothing more: it is empty, or the end-of-contents of an
// indefinite-length parent.
func berEnded(rest []byte) bool {
	return len(rest) == 0 || len(rest) >= 2 && rest[0] == 0 && rest[1] == 0
}

// berNext splits the next element off in, which must not be at its end (an empty
// body or an end-of-contents).
func berNext(in []byte, depth int) (elem, rest []byte, err error) {
	if berEnded(in) {
		return nil, nil, malformed("element missing")
	}
	n, err := berLen(in, depth)
	if err != nil {
		return nil, nil, err
	}
	return in[:n], in[n:], nil
}

// berLen is the size of the element in starts with, headers and end-of-contents
// included.
func berLen(in []byte, depth int) (int, error) {
	if depth > maxBERDepth {
		return 0, malformed("nested too deeply")
	}
	_, _, length, hdr, err := berHeader(in)
	if err != nil {
		return 0, err
	}
	if length >= 0 {
		return hdr + length, nil
	}
	n := hdr
	for {
		if len(in)-n >= 2 && in[n] == 0 && in[n+1] == 0 {
			return n + 2, nil
		}
		if n >= len(in) {
			return 0, malformed("indefinite length without end-of-contents")
		}
		c, err := berLen(in[n:], depth+1)
		if err != nil {
			return 0, err
		}
		n += c
	}
}
