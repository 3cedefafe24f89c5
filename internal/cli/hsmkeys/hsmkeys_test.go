package hsmkeys

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"generate"},
		{"generate", "--module", "/x.so", "--token", "t", "--pin-env", "P"},                     // no label/type
		{"generate", "--module", "/x.so", "--token", "t", "--label", "a", "--type", "rsa-2048"}, // no PIN source
		{"generate", "--module", "/x.so", "--token", "t", "--pin-env", "P", "--pin-file", "f", "--label", "a", "--type", "rsa-2048"},
		{"generate", "--label", "a", "--type", "rsa-2048", "--usage", "wrap", "--module", "/x.so", "--token", "t", "--pin-env", "P"},
		{"generate", "--label", "a", "--type", "rsa-2048", "--id", "zz", "--module", "/x.so", "--token", "t", "--pin-env", "P"},
		{"csr", "--key", "pkcs11:token=t;object=a"},
		{"csr", "--key", "pkcs11:token=t;object=a", "--subject", "CN", "--module", "/x.so", "--token", "t", "--pin-env", "P"},
		{"import-cert", "--key", "pkcs11:token=t;object=a"},
		{"generate", "--bogus"},
		{"generate", "extra-arg"},
	} {
		var out, errb bytes.Buffer
		if code := Run(args, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("Run(%q) = %d, want 2 (stderr %q)", args, code, errb.String())
		}
		if len(args) > 0 && errb.Len() == 0 {
			t.Errorf("Run(%q) wrote nothing to stderr", args)
		}
	}
}

func TestParseSubject(t *testing.T) {
	n, err := ParseSubject(`CN=customs-sm2-sign, O=Customs\, Inc.,OU=IT,C=CN,ST=Shanghai,L=Pudong,SERIALNUMBER=91310000`)
	if err != nil {
		t.Fatal(err)
	}
	if n.CommonName != "customs-sm2-sign" || n.Organization[0] != "Customs, Inc." || n.Country[0] != "CN" || n.SerialNumber != "91310000" {
		t.Fatalf("%+v", n)
	}
	for _, bad := range []string{"", "CN", "CN=", "X=1", "CN=a,,O=b"} {
		if _, err := ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) succeeded", bad)
		}
	}
}

func FuzzParseSubject(f *testing.F) {
	f.Add(`CN=customs-sm2-sign, O=Customs\, Inc.,OU=IT,C=CN`)
	f.Add(`CN=a\`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseSubject(s)
	})
}
