package cms

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// envDER writes what cryptobyte writes, at every length-encoding boundary.
func TestEnvDERMatchesCryptobyte(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 70000} {
		body := bytes.Repeat([]byte{0xab}, n)
		var w envDER
		outer := w.begin(0x30)
		w.element(0x04, body)
		inner := w.begin(0xa0)
		w.element(0x80, body[:n/2])
		w.end(inner)
		w.end(outer)
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(body)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(body[:n/2]) })
			})
		})
		want := b.BytesOrPanic()
		got, err := w.bytes()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("n=%d: got %x..., want %x...", n, got[:min(len(got), 12)], want[:min(len(want), 12)])
		}
	}
}

func TestEnvDERIntegersAndOIDs(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 255, 256, -1, -128, -129, 1 << 40, -(1 << 40)} {
		var w envDER
		w.int64(v)
		want, _ := asn1.Marshal(v)
		if !bytes.Equal(w.b, want) {
			t.Errorf("int64 %d: %x, want %x", v, w.b, want)
		}
		var wb envDER
		wb.bigInt(big.NewInt(v))
		if !bytes.Equal(wb.b, want) {
			t.Errorf("bigInt %d: %x, want %x", v, wb.b, want)
		}
	}
	huge, _ := new(big.Int).SetString("ff00000000000000000000000000000001", 16)
	for _, n := range []*big.Int{huge, new(big.Int).Neg(huge)} {
		var w envDER
		w.bigInt(n)
		want, _ := asn1.Marshal(n)
		if !bytes.Equal(w.b, want) {
			t.Errorf("bigInt %s: %x, want %x", n, w.b, want)
		}
	}
	for _, oid := range []asn1.ObjectIdentifier{OIDData, OIDSM2EnvelopedData, OIDAES256Wrap, {2, 999, 3}, {1, 2, 1 << 30}} {
		var w envDER
		w.oid(oid)
		want, _ := asn1.Marshal(oid)
		if !bytes.Equal(w.b, want) {
			t.Errorf("oid %s: %x, want %x", oid, w.b, want)
		}
	}
	for _, bad := range []asn1.ObjectIdentifier{nil, {1}, {3, 1}, {1, 40}, {1, 2, -1}} {
		var w envDER
		w.oid(bad)
		if _, err := w.bytes(); err == nil {
			t.Errorf("oid %v accepted", bad)
		}
	}
	var w envDER
	w.bigInt(nil)
	if _, err := w.bytes(); err == nil {
		t.Error("nil INTEGER accepted")
	}
}
