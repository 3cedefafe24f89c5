package sign

import (
	"bytes"
	"crypto"
	"crypto/sha512"
	"testing"

	"github.com/emmansun/gmsm/sm3"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

// Options.ContentDigest hands out the content digest Sign computed: the messageDigest
// that Verify checks, with its algorithm.
func TestContentDigestOut(t *testing.T) {
	content := testContent(3000)
	sha256 := func(b []byte) []byte { s := crypto.SHA256.New(); s.Write(b); return s.Sum(nil) }
	tests := []struct {
		alg    devpki.Algorithm
		opts   Options
		oid    string
		digest []byte
	}{
		{devpki.RSA2048, Options{}, cms.OIDSHA256.String(), sha256(content)},
		{devpki.ECDSAP256, Options{Detached: true}, cms.OIDSHA256.String(), sha256(content)},
		{devpki.ECDSAP384, Options{Hash: crypto.SHA384}, cms.OIDSHA384.String(), func() []byte { s := sha512.Sum384(content); return s[:] }()},
		{devpki.SM2, Options{}, cms.OIDSM3.String(), func() []byte { s := sm3.Sum(content); return s[:] }()},
		{devpki.SM2, Options{NoSignedAttributes: true}, cms.OIDSM3.String(), func() []byte { s := sm3.Sum(content); return s[:] }()},
	}
	for _, tt := range tests {
		p := pkiFor(t, tt.alg)
		var cd ContentDigest
		o := tt.opts
		o.Now, o.ContentDigest = fixedClock, &cd
		if _, err := Sign(content, p.key, p.chain, &o); err != nil {
			t.Fatalf("%v: %v", tt.alg, err)
		}
		if cd.Algorithm.String() != tt.oid || !bytes.Equal(cd.Digest, tt.digest) {
			t.Errorf("%v %+v: got %s %x, want %s %x", tt.alg, tt.opts, cd.Algorithm, cd.Digest, tt.oid, tt.digest)
		}
	}
	// A failed Sign leaves it alone.
	p := pkiFor(t, devpki.SM2)
	cd := ContentDigest{Digest: []byte("untouched")}
	if _, err := Sign(content, p.key, p.chain, &Options{Hash: crypto.SHA256, ContentDigest: &cd}); err == nil {
		t.Fatal("SHA-256 with SM2 accepted")
	}
	if string(cd.Digest) != "untouched" {
		t.Fatal("ContentDigest written by a failed Sign")
	}
}
