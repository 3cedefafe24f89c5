package keystore

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"testing"
)

func TestSelfCheckModes(t *testing.T) {
	checked := func(c *SelfCheck, n int) (idx []int) {
		for i := 1; i <= n; i++ {
			if c.Next() {
				idx = append(idx, i)
			}
		}
		return idx
	}
	rsaPub, ecPub := &rsa.PublicKey{}, &ecdsa.PublicKey{}
	for _, tc := range []struct {
		name string
		c    *SelfCheck
		want int // checks among 200 signatures
	}{
		{"nil", nil, 200},
		{"zero", &SelfCheck{}, 200},
		{"auto RSA", NewSelfCheck(SelfCheckAuto, rsaPub), 200},
		{"auto EC", NewSelfCheck(SelfCheckAuto, ecPub), SelfCheckFirst + 200/SelfCheckEvery - SelfCheckFirst/SelfCheckEvery},
		{"always EC", NewSelfCheck(SelfCheckAlways, ecPub), 200},
		{"off RSA", NewSelfCheck(SelfCheckOff, rsaPub), 0},
	} {
		if got := checked(tc.c, 200); len(got) != tc.want {
			t.Errorf("%s: %d of 200 checked (%v), want %d", tc.name, len(got), got, tc.want)
		}
	}
	c := NewSelfCheck(SelfCheckAuto, ecPub)
	got := checked(c, 130)
	if len(got) != 34 || got[31] != 32 || got[32] != 64 || got[33] != 128 {
		t.Fatalf("auto EC checks %v", got)
	}
	c.Failed()
	if got := checked(c, 10); len(got) != 10 {
		t.Fatalf("after a failure %d of 10 checked", len(got))
	}
	for _, s := range []string{"", "auto", "always", "off"} {
		if _, err := ParseSelfCheckMode(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	if _, err := ParseSelfCheckMode("sometimes"); err == nil {
		t.Error(`"sometimes" accepted`)
	}
}
