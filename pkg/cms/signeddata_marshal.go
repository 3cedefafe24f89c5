package cms

// Writing SignedData, with the sizes-first writer of signedder.go (see there why).

import (
	"bytes"
	"fmt"
)

// Marshal returns the DER of the ContentInfo holding this SignedData. It allocates
// the output once, at its exact size.
func (sd *SignedData) Marshal() ([]byte, error) {
	return sd.AppendMarshal(nil)
}

// AppendMarshal appends the DER ContentInfo to dst (growing it once) and returns it.
func (sd *SignedData) AppendMarshal(dst []byte) ([]byte, error) {
	// Encodings that need scratch space (unsorted SET OF digest algorithms, signed
	// or unsigned attributes given as parsed values) are made first.
	var enc sdEncoding
	if err := enc.prepare(sd); err != nil {
		return nil, err
	}
	ct := sd.ContentType
	if ct == nil {
		ct = OIDSignedData
	}
	if !sdOidValid(ct) || !sdOidValid(sd.EContentType) {
		return nil, fmt.Errorf("cms: SignedData has an invalid content type")
	}
	sdLen := enc.signedDataLen(sd)
	ciBody := sdTlvSize(sdOidSize(ct)) + sdTlvSize(sdTlvSize(sdLen))
	total := sdTlvSize(ciBody)
	if cap(dst)-len(dst) < total {
		grown := make([]byte, len(dst), len(dst)+total)
		copy(grown, dst)
		dst = grown
	}
	start := len(dst)
	dst = sdAppendTL(dst, sdTagSequence, ciBody)
	dst = sdAppendOID(dst, ct)
	dst = sdAppendTL(dst, sdTagContext0Cons, sdTlvSize(sdLen))
	dst = enc.appendSignedData(dst, sd, sdLen)
	if len(dst)-start != total {
		return nil, fmt.Errorf("cms: internal error: SignedData length %d, computed %d", len(dst)-start, total)
	}
	return dst, nil
}

// sdEncoding holds the pieces of a SignedData encoding that are not simple copies.
type sdEncoding struct {
	digestAlgs []byte // content of the digestAlgorithms SET when it had to be sorted
	sorted     bool
	signed     [][]byte // per signer: content of signedAttrs when encoded from values
	unsigned   [][]byte // per signer: content of unsignedAttrs
}

func (e *sdEncoding) prepare(sd *SignedData) error {
	if len(sd.DigestAlgorithms) > 1 {
		encs := make([][]byte, len(sd.DigestAlgorithms))
		total := 0
		for i, a := range sd.DigestAlgorithms {
			if !sdOidValid(a.Algorithm) {
				return fmt.Errorf("cms: invalid digest algorithm")
			}
			encs[i] = sdAppendAlgID(nil, a)
			total += len(encs[i])
		}
		sdSortBytes(encs)
		e.digestAlgs = make([]byte, 0, total)
		for _, x := range encs {
			e.digestAlgs = append(e.digestAlgs, x...)
		}
		e.sorted = true
	} else if len(sd.DigestAlgorithms) == 1 && !sdOidValid(sd.DigestAlgorithms[0].Algorithm) {
		return fmt.Errorf("cms: invalid digest algorithm")
	}
	for i := range sd.SignerInfos {
		si := &sd.SignerInfos[i]
		if !sdOidValid(si.DigestAlgorithm.Algorithm) || !sdOidValid(si.SignatureAlgorithm.Algorithm) {
			return fmt.Errorf("cms: SignerInfo %d has an invalid algorithm", i)
		}
		if si.SID.SubjectKeyID == nil && (si.SID.IssuerAndSerial.Serial == nil || len(si.SID.IssuerAndSerial.Issuer) == 0) {
			return fmt.Errorf("cms: SignerInfo %d has no signer identifier", i)
		}
		if raw := si.RawSignedAttrs; len(raw) > 0 {
			_, _, n, hdr, err := berHeader(raw)
			if err != nil || (raw[0] != sdTagSet && raw[0] != sdTagContext0Cons) || n < 0 || hdr+n != len(raw) {
				return fmt.Errorf("cms: SignerInfo %d: RawSignedAttrs is not one SET element", i)
			}
		} else if len(si.SignedAttrs) > 0 {
			body, err := MarshalAttributeSet(si.SignedAttrs)
			if err != nil {
				return err
			}
			if e.signed == nil {
				e.signed = make([][]byte, len(sd.SignerInfos))
			}
			e.signed[i] = body
		}
		if len(si.UnsignedAttrs) > 0 {
			body, err := MarshalAttributeSet(si.UnsignedAttrs)
			if err != nil {
				return err
			}
			if e.unsigned == nil {
				e.unsigned = make([][]byte, len(sd.SignerInfos))
			}
			e.unsigned[i] = body
		}
	}
	return nil
}

func (e *sdEncoding) digestAlgsLen(sd *SignedData) int {
	if e.sorted {
		return len(e.digestAlgs)
	}
	n := 0
	for _, a := range sd.DigestAlgorithms {
		n += sdAlgIDSize(a)
	}
	return n
}

func sdEncapLen(sd *SignedData) int {
	n := sdTlvSize(sdOidSize(sd.EContentType))
	if sd.EContent != nil {
		n += sdTlvSize(sdTlvSize(len(sd.EContent)))
	}
	return n
}

func sdConcatLen(list [][]byte) int {
	n := 0
	for _, c := range list {
		n += len(c)
	}
	return n
}

func (e *sdEncoding) signedDataLen(sd *SignedData) int {
	n := sdIntSize(int64(sd.Version))
	n += sdTlvSize(e.digestAlgsLen(sd))
	n += sdTlvSize(sdEncapLen(sd))
	if sd.Certificates != nil {
		n += sdTlvSize(sdConcatLen(sd.Certificates))
	}
	if sd.CRLs != nil {
		n += sdTlvSize(sdConcatLen(sd.CRLs))
	}
	si := 0
	for i := range sd.SignerInfos {
		si += sdTlvSize(e.signerInfoLen(sd, i))
	}
	return n + sdTlvSize(si)
}

func sdSidLen(id *SignerIdentifier) int {
	if id.SubjectKeyID != nil {
		return sdTlvSize(len(id.SubjectKeyID))
	}
	return sdTlvSize(len(id.IssuerAndSerial.Issuer) + sdBigIntSize(id.IssuerAndSerial.Serial))
}

func (e *sdEncoding) signedAttrsLen(sd *SignedData, i int) int {
	si := &sd.SignerInfos[i]
	if len(si.RawSignedAttrs) > 0 {
		return len(si.RawSignedAttrs)
	}
	if e.signed != nil && e.signed[i] != nil {
		return sdTlvSize(len(e.signed[i]))
	}
	return 0
}

func (e *sdEncoding) signerInfoLen(sd *SignedData, i int) int {
	si := &sd.SignerInfos[i]
	n := sdIntSize(int64(si.Version)) + sdSidLen(&si.SID) + sdAlgIDSize(si.DigestAlgorithm)
	n += e.signedAttrsLen(sd, i)
	n += sdAlgIDSize(si.SignatureAlgorithm) + sdTlvSize(len(si.Signature))
	if e.unsigned != nil && e.unsigned[i] != nil {
		n += sdTlvSize(len(e.unsigned[i]))
	}
	return n
}

func (e *sdEncoding) appendSignedData(dst []byte, sd *SignedData, sdLen int) []byte {
	dst = sdAppendTL(dst, sdTagSequence, sdLen)
	dst = sdAppendInt(dst, int64(sd.Version))
	dst = sdAppendTL(dst, sdTagSet, e.digestAlgsLen(sd))
	if e.sorted {
		dst = append(dst, e.digestAlgs...)
	} else {
		for _, a := range sd.DigestAlgorithms {
			dst = sdAppendAlgID(dst, a)
		}
	}
	dst = sdAppendTL(dst, sdTagSequence, sdEncapLen(sd))
	dst = sdAppendOID(dst, sd.EContentType)
	if sd.EContent != nil {
		dst = sdAppendTL(dst, sdTagContext0Cons, sdTlvSize(len(sd.EContent)))
		dst = sdAppendTL(dst, tagOctetString, len(sd.EContent))
		dst = append(dst, sd.EContent...)
	}
	if sd.Certificates != nil {
		dst = sdAppendTL(dst, sdTagContext0Cons, sdConcatLen(sd.Certificates))
		for _, c := range sd.Certificates {
			dst = append(dst, c...)
		}
	}
	if sd.CRLs != nil {
		dst = sdAppendTL(dst, sdTagContext1Cons, sdConcatLen(sd.CRLs))
		for _, c := range sd.CRLs {
			dst = append(dst, c...)
		}
	}
	siTotal := 0
	for i := range sd.SignerInfos {
		siTotal += sdTlvSize(e.signerInfoLen(sd, i))
	}
	dst = sdAppendTL(dst, sdTagSet, siTotal)
	for i := range sd.SignerInfos {
		dst = e.appendSignerInfo(dst, sd, i)
	}
	return dst
}

func (e *sdEncoding) appendSignerInfo(dst []byte, sd *SignedData, i int) []byte {
	si := &sd.SignerInfos[i]
	dst = sdAppendTL(dst, sdTagSequence, e.signerInfoLen(sd, i))
	dst = sdAppendInt(dst, int64(si.Version))
	if si.SID.SubjectKeyID != nil {
		dst = sdAppendTL(dst, sdTagContext0Prim, len(si.SID.SubjectKeyID))
		dst = append(dst, si.SID.SubjectKeyID...)
	} else {
		ias := &si.SID.IssuerAndSerial
		dst = sdAppendTL(dst, sdTagSequence, len(ias.Issuer)+sdBigIntSize(ias.Serial))
		dst = append(dst, ias.Issuer...)
		dst = sdAppendBigInt(dst, ias.Serial)
	}
	dst = sdAppendAlgID(dst, si.DigestAlgorithm)
	if len(si.RawSignedAttrs) > 0 {
		dst = append(dst, sdTagContext0Cons)
		dst = append(dst, si.RawSignedAttrs[1:]...)
	} else if e.signed != nil && e.signed[i] != nil {
		dst = sdAppendTL(dst, sdTagContext0Cons, len(e.signed[i]))
		dst = append(dst, e.signed[i]...)
	}
	dst = sdAppendAlgID(dst, si.SignatureAlgorithm)
	dst = sdAppendTL(dst, tagOctetString, len(si.Signature))
	dst = append(dst, si.Signature...)
	if e.unsigned != nil && e.unsigned[i] != nil {
		dst = sdAppendTL(dst, sdTagContext1Cons, len(e.unsigned[i]))
		dst = append(dst, e.unsigned[i]...)
	}
	return dst
}

func sdSortBytes(list [][]byte) {
	// Insertion sort: these lists have a handful of entries.
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && bytes.Compare(list[j-1], list[j]) > 0; j-- {
			list[j-1], list[j] = list[j], list[j-1]
		}
	}
}
