package tsa

import (
	"bytes"
	"math/big"
	"testing"

	"signsvr.dev/signsvr/internal/devpki"
)

// seedObjects are real requests, responses, tokens and TSTInfos from our TSA.
func seedObjects(f *testing.F) (reqs, resps, tokens, infos [][]byte) {
	p := pkiFor(f, devpki.ECDSAP256)
	a := newAuthority(f, p)
	for i, r := range []*Request{
		{MessageImprint: sha256Imprint([]byte("a")), Nonce: big.NewInt(1 << 40), CertReq: true},
		{MessageImprint: sha256Imprint([]byte("b")), Policy: DefaultPolicy},
		{MessageImprint: sha256Imprint([]byte("c")), Extensions: []byte{0xa0, 0x00}},
	} {
		der, err := r.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		reqs = append(reqs, der)
		resp, is, err := a.Respond(der, p.key)
		if err != nil {
			f.Fatal(err)
		}
		resps = append(resps, resp)
		if is != nil {
			tokens = append(tokens, is.Token)
			info, _ := is.Info.Marshal()
			infos = append(infos, info)
		} else if i < 2 {
			f.Fatalf("request %d refused", i)
		}
	}
	return
}

// FuzzParseRequest: never panics; what parses re-marshals to the same DER.
func FuzzParseRequest(f *testing.F) {
	reqs, _, _, _ := seedObjects(f)
	for _, r := range reqs {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParseRequest(der)
		if err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatalf("parsed request does not marshal: %v", err)
		}
		if r2, err := ParseRequest(again); err != nil || r2.CertReq != r.CertReq {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

// FuzzParseResponse: never panics.
func FuzzParseResponse(f *testing.F) {
	_, resps, _, _ := seedObjects(f)
	for _, r := range resps {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParseResponse(der)
		if err != nil {
			return
		}
		if _, err := r.Marshal(); err != nil {
			t.Fatalf("parsed response does not marshal: %v", err)
		}
	})
}

// FuzzParseTSTInfo: never panics; a parsed TSTInfo marshals and parses again to
// the same genTime.
func FuzzParseTSTInfo(f *testing.F) {
	_, _, _, infos := seedObjects(f)
	for _, i := range infos {
		f.Add(i)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		info, err := ParseTSTInfo(der)
		if err != nil {
			return
		}
		again, err := info.Marshal()
		if err != nil {
			return // e.g. a year out of range for GeneralizedTime is refused on output
		}
		info2, err := ParseTSTInfo(again)
		if err != nil || !info2.GenTime.Equal(info.GenTime) {
			t.Fatalf("re-parse: %v (%v vs %v)", err, info2, info)
		}
	})
}

// FuzzVerifyToken: token verification never panics, and what verifies has a TSA
// certificate fit for timestamping and stamps the data.
func FuzzVerifyToken(f *testing.F) {
	_, _, tokens, _ := seedObjects(f)
	for _, tok := range tokens {
		f.Add(tok)
	}
	data := []byte("a")
	f.Fuzz(func(t *testing.T, der []byte) {
		tok, err := VerifyToken(der, &VerifyOptions{Data: data})
		if err != nil {
			return
		}
		if CheckTSACertificate(tok.Certificate) != nil {
			t.Fatal("verified with a certificate unfit for timestamping")
		}
		if want, _ := Digest(tok.Info.MessageImprint.HashAlgorithm, data); !bytes.Equal(want, tok.Info.MessageImprint.HashedMessage) {
			t.Fatal("verified with another imprint")
		}
	})
}
