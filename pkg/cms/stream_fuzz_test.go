package cms

import (
	"bytes"
	"io"
	"testing"
)

// FuzzStreamReader: whatever the input, the StreamReader ends with content or an
// error, never a panic; what it accepts, the whole-message parser accepts with the
// same content.
func FuzzStreamReader(f *testing.F) {
	for _, in := range streamSeeds(f) {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sr, err := NewStreamReader(bytes.NewReader(in), 1<<16)
		if err != nil {
			return
		}
		content, err := io.ReadAll(sr)
		if err != nil {
			return
		}
		rest, err := sr.Finish()
		if err != nil {
			return
		}
		if _, err := ParseContentInfo(rest); err != nil {
			t.Fatalf("the rest of an accepted message does not parse: %v", err)
		}
		ci, err := ParseContentInfo(in)
		if err != nil {
			return // the whole-message parser is stricter in places (e.g. SET contents)
		}
		if IsSignedDataType(ci.ContentType) {
			if sd, err := ParseSignedData(ci.Content); err == nil && sd.EContent != nil && !bytes.Equal(sd.EContent, content) {
				t.Fatal("the streamed content differs from the parsed one")
			}
		}
	})
}
