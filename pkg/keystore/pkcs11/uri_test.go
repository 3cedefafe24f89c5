package pkcs11

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		in    string
		check func(*URI) bool
	}{
		// Examples from RFC 7512 section 3.
		{"pkcs11:", func(u *URI) bool { return u.Token == "" && !u.Has("token") }},
		{"pkcs11:object=my-pubkey;type=public", func(u *URI) bool { return u.Object == "my-pubkey" && u.Type == "public" }},
		{"pkcs11:object=my-key;type=private?pin-source=file:/etc/token", func(u *URI) bool {
			return u.Object == "my-key" && u.Type == "private" && u.PINSource == "file:/etc/token"
		}},
		{"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
			func(u *URI) bool {
				return u.Token == "The Software PKCS#11 Softtoken" && u.Manufacturer == "Snake Oil, Inc." &&
					u.Model == "1.0" && u.Type == "cert" && bytes.Equal(u.ID, []byte{0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91}) &&
					u.Has("serial") && u.Serial == "" && u.PINSource == "file:/etc/token_pin"
			}},
		{"pkcs11:object=my-sign-key;type=private?module-name=mypkcs11", func(u *URI) bool { return u.ModuleName == "mypkcs11" }},
		{"pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1", func(u *URI) bool { return u.ModulePath == "/mnt/libmypkcs11.so.1" }},
		{"pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin", func(u *URI) bool { return u.PINValue == "the-pin" }},
		{"pkcs11:slot-description=Sun%20Metaslot", func(u *URI) bool { return u.SlotDescription == "Sun Metaslot" }},
		{"pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23", func(u *URI) bool {
			return u.LibraryVersion == "1.23" && u.LibraryDescription == "Soft Token Library"
		}},
		{"pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06", func(u *URI) bool {
			return u.Token == "My token% created by Joe" && len(u.ID) == 10 && u.ID[3] == 0xba
		}},
		{"pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert", func(u *URI) bool { return u.Token == "A name with a substring %;" }},
		{"pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert", func(u *URI) bool { return strings.HasSuffix(u.Token, "á") }},
		{"pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b", nil}, // not x-: rejected below
		{"pkcs11:slot-id=42;x-vendor=a%3Bb?x-q=1/2", func(u *URI) bool {
			return u.SlotID == 42 && u.Vendor["x-vendor"] == "a;b" && u.VendorQuery["x-q"] == "1/2"
		}},
		{"pkcs11:token=:[]@!$'()*+,=&?pin-source=:[]@!$'()*+,=/?|", func(u *URI) bool { return u.Token == ":[]@!$'()*+,=&" && u.PINSource == ":[]@!$'()*+,=/?|" }},
		{"PKCS11:token=upper-scheme", func(u *URI) bool { return u.Token == "upper-scheme" }},
	}
	for _, tc := range tests {
		u, err := ParseURI(tc.in)
		if tc.check == nil {
			if err == nil {
				t.Errorf("ParseURI(%q) accepted an unknown attribute", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tc.in, err)
			continue
		}
		if !tc.check(u) {
			t.Errorf("ParseURI(%q) = %+v", tc.in, u)
		}
		// Round trip: String parses back to the same values.
		u2, err := ParseURI(u.String())
		if err != nil {
			t.Errorf("ParseURI(String(%q) = %q): %v", tc.in, u.String(), err)
			continue
		}
		if u2.String() != u.String() || !tc.check(u2) {
			t.Errorf("round trip of %q gave %q", tc.in, u2.String())
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"pkcs12:token=a",
		"token=a",
		"pkcs11:token",
		"pkcs11:=a",
		"pkcs11:token=a;token=b",
		"pkcs11:token=a b",
		"pkcs11:token=a%2",
		"pkcs11:token=a%zz",
		"pkcs11:token=a/b",
		"pkcs11:token=a?pin-source=a&b",
		"pkcs11:token=a?pin-source=x&pin-source=y",
		"pkcs11:type=key",
		"pkcs11:library-version=1.",
		"pkcs11:library-version=a",
		"pkcs11:slot-id=-1",
		"pkcs11:slot-id=99999999999999999999999",
		"pkcs11:pin-value=1234",
		"pkcs11:?token=a",
		"pkcs11:x-=a",
		"pkcs11:x-a b=a",
		"pkcs11:Token=a",
	} {
		if u, err := ParseURI(in); err == nil {
			t.Errorf("ParseURI(%q) = %+v, want an error", in, u)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=signsvr;object=customs-rsa-sign;id=%01%02;type=private",
		"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
		"pkcs11:slot-id=42;x-vendor=a%3Bb?x-q=1/2&module-path=/usr/lib/softhsm/libsofthsm2.so",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		out := u.String()
		u2, err := ParseURI(out)
		if err != nil {
			t.Fatalf("String() of a parsed URI does not parse: %q -> %q: %v", s, out, err)
		}
		if u2.String() != out {
			t.Fatalf("String() not stable: %q -> %q -> %q", s, out, u2.String())
		}
	})
}
