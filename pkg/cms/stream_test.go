package cms

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// readStreamed reads a whole message through a StreamReader, r wrapping in.
func readStreamed(t testing.TB, r io.Reader) (content, rest []byte, sr *StreamReader, err error) {
	sr, err = NewStreamReader(r, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	content, err = io.ReadAll(sr)
	if err != nil {
		return nil, nil, sr, err
	}
	rest, err = sr.Finish()
	return content, rest, sr, err
}

// streamSeeds are OpenSSL-made and gmsm-made messages of the three streamable types.
func streamSeeds(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, dir := range []string{"testdata/signed", "testdata/envelopes"} {
		names, err := filepath.Glob(filepath.Join(dir, "*.[db]er"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			out[n] = b
		}
	}
	if len(out) == 0 {
		t.Fatal("no seeds")
	}
	return out
}

// TestStreamReaderReadsWholeMessages: every seed reads through the StreamReader one
// byte at a time and in one go, the content is the one the whole-message parser
// finds, and the message without content parses to the same fields.
func TestStreamReaderReadsWholeMessages(t *testing.T) {
	for name, in := range streamSeeds(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			ci, err := ParseContentInfo(in)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			switch {
			case IsSignedDataType(ci.ContentType):
				sd, err := ParseSignedData(ci.Content)
				if err != nil {
					t.Fatal(err)
				}
				want = sd.EContent
			case ContentTypeIsEnveloped(ci.ContentType):
				ed, err := ParseEnvelopedData(ci.Content)
				if err != nil {
					t.Fatal(err)
				}
				want = ed.EncryptedContentInfo.EncryptedContent
			case ci.ContentType.Equal(OIDAuthEnvelopedData):
				ad, err := ParseAuthEnvelopedData(ci.Content)
				if err != nil {
					t.Fatal(err)
				}
				want = ad.AuthEncryptedContentInfo.EncryptedContent
			default:
				t.Skip("not streamable:", ci.ContentType)
			}
			for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in)), iotest.HalfReader(bytes.NewReader(in))} {
				content, rest, sr, err := readStreamed(t, r)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(content, want) {
					t.Fatalf("content differs: %d bytes, want %d", len(content), len(want))
				}
				if sr.Detached() != (want == nil) {
					t.Fatalf("detached %v", sr.Detached())
				}
				rci, err := ParseContentInfo(rest)
				if err != nil {
					t.Fatalf("rest: %v", err)
				}
				switch {
				case IsSignedDataType(ci.ContentType):
					sd, _ := ParseSignedData(ci.Content)
					rsd, err := ParseSignedData(rci.Content)
					if err != nil {
						t.Fatal(err)
					}
					if rsd.EContent != nil || len(rsd.SignerInfos) != len(sd.SignerInfos) || len(rsd.Certificates) != len(sd.Certificates) {
						t.Fatal("rest is not the message without its content")
					}
					algs, ect, err := sr.SignedDataHeader()
					if err != nil || len(algs) != len(sd.DigestAlgorithms) || !ect.Equal(sd.EContentType) {
						t.Fatalf("header: %v %v %v", algs, ect, err)
					}
				case ContentTypeIsEnveloped(ci.ContentType):
					red, err := ParseEnvelopedData(rci.Content)
					if err != nil {
						t.Fatal(err)
					}
					if len(red.EncryptedContentInfo.EncryptedContent) != 0 {
						t.Fatal("rest holds content")
					}
				default:
					ad, _ := ParseAuthEnvelopedData(ci.Content)
					rad, err := ParseAuthEnvelopedData(rci.Content)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(rad.MAC, ad.MAC) {
						t.Fatal("MAC differs")
					}
				}
				if !ci.ContentType.Equal(OIDSignedData) && !ci.ContentType.Equal(OIDSM2SignedData) {
					h, err := sr.EnvelopeHeader()
					if err != nil {
						t.Fatal(err)
					}
					if len(h.RecipientInfos) == 0 {
						t.Fatal("no recipients in the header")
					}
				}
			}
		})
	}
}

// TestStreamWriterRoundTrip: the streamed form written here parses as the same
// message with the whole-message parser and with the StreamReader.
func TestStreamWriterRoundTrip(t *testing.T) {
	sd := sdMinimalSignedData(SignerIdentifier{SubjectKeyID: []byte{1, 2}})
	sd.Version = 3
	content := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	head := *sd
	head.EContent, head.SignerInfos, head.Certificates, head.CRLs = []byte{}, nil, nil, nil
	hp, err := SignedDataStreamParts(&head)
	if err != nil {
		t.Fatal(err)
	}
	full := *sd
	full.EContent = []byte{}
	fp, err := SignedDataStreamParts(&full)
	if err != nil {
		t.Fatal(err)
	}
	var msg []byte
	msg = append(msg, hp.Prefix...)
	for i := 0; i < len(content); i += 4096 {
		msg = AppendStreamChunk(msg, content[i:min(i+4096, len(content))])
	}
	msg = append(msg, fp.Suffix...)
	got, err := ParseSignedDataContentInfo(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.EContent, content) || len(got.SignerInfos) != 1 || len(got.Certificates) != 2 {
		t.Fatal("the streamed SignedData does not parse back")
	}
	c, rest, _, err := readStreamed(t, iotest.HalfReader(bytes.NewReader(msg)))
	if err != nil || !bytes.Equal(c, content) {
		t.Fatalf("StreamReader: %v", err)
	}
	det := *sd
	det.EContent = nil
	want, _ := det.Marshal()
	if !bytes.Equal(rest, want) {
		t.Fatal("the rest is not the detached SignedData")
	}

	ed := &EnvelopedData{
		RecipientInfos: []RecipientInfo{{KeyTrans: &KeyTransRecipientInfo{RID: RecipientIdentifier{SubjectKeyID: []byte{1}},
			KeyEncryptionAlgorithm: AlgorithmIdentifier{Algorithm: OIDRSAEncryption, Parameters: NullParameters}, EncryptedKey: []byte{9}}}},
		EncryptedContentInfo: EncryptedContentInfo{ContentType: OIDData,
			ContentEncryptionAlgorithm: AlgorithmIdentifier{Algorithm: OIDAES128CBC, Parameters: marshalIVParameters(make([]byte, 16))},
			EncryptedContent:           []byte{}},
	}
	ed.Version = ed.StandardVersion()
	ep, err := EnvelopedDataStreamParts(ed, OIDEnvelopedData)
	if err != nil {
		t.Fatal(err)
	}
	msg = append([]byte{}, ep.Prefix...)
	msg = AppendStreamChunk(msg, content[:100])
	msg = AppendStreamChunk(msg, content[100:200])
	msg = append(msg, ep.Suffix...)
	ci, err := ParseContentInfo(msg)
	if err != nil {
		t.Fatal(err)
	}
	red, err := ParseEnvelopedData(ci.Content)
	if err != nil || !bytes.Equal(red.EncryptedContentInfo.EncryptedContent, content[:200]) {
		t.Fatalf("EnvelopedData: %v", err)
	}
}

// TestStreamReaderRejects: framing errors are ErrMalformed, never a panic or a hang.
func TestStreamReaderRejects(t *testing.T) {
	good := streamSeeds(t)["testdata/signed/ecdsa-stream.ber"]
	cases := map[string][]byte{
		"empty":            {},
		"not a sequence":   {0x31, 0x80, 0, 0},
		"truncated":        good[:len(good)/2],
		"truncated header": good[:3],
		"trailing data":    append(append([]byte{}, good...), 0x30),
		"no eoc":           good[:len(good)-2],
		"chunk not octets": {0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x80, 0x06, 0x01, 0x2a, 0xa0, 0x80, 0x24, 0x80, 0x02, 0x01, 0x00},
		"unknown type":     {0x30, 0x80, 0x06, 0x01, 0x2a, 0xa0, 0x80},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := readStreamed(t, bytes.NewReader(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is neither malformed nor unsupported", err)
			}
		})
	}
}
