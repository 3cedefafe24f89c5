package algorithm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"signsvr.dev/signsvr/pkg/cms"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the algorithm table in the repository's README.md")

// TestSupported is the list of what is supported: every family x purpose x use, the
// default first. A change to the table has to change this list too.
func TestSupported(t *testing.T) {
	shaAll := []Digest{SHA256, SHA384, SHA512}
	with := func(s Scheme, ds ...Digest) []Use {
		var out []Use
		for _, d := range ds {
			out = append(out, Use{s, d})
		}
		return out
	}
	rsaSign := append(with(PKCS1v15, shaAll...), with(PSS, shaAll...)...)
	want := map[Family]map[Purpose][]Use{
		RSA: {
			SignCMS:         rsaSign,
			VerifyCMS:       rsaSign,
			LoginAnswer:     {{PKCS1v15, SHA256}, {PSS, SHA256}},
			LoginToken:      {{PKCS1v15, SHA256}},
			AuditCheckpoint: {{PKCS1v15, SHA256}},
			KeyTransport:    {{RSAESOAEP, SHA256}, {RSAESPKCS1v15, NoDigest}},
			RawSignature:    rsaSign,
			RawEncryption:   append(with(RSAESOAEP, shaAll...), Use{RSAESPKCS1v15, NoDigest}),
		},
		ECDSAP256: {
			SignCMS:         with(ECDSA, shaAll...),
			VerifyCMS:       with(ECDSA, shaAll...),
			LoginAnswer:     {{ECDSA, SHA256}},
			LoginToken:      {{ECDSA, SHA256}},
			AuditCheckpoint: {{ECDSA, SHA256}},
			KeyAgreement:    {{ECDHX963, SHA256}, {ECDHCofactorX963, SHA256}},
			RawSignature:    with(ECDSA, shaAll...),
		},
		ECDSAP384: {
			SignCMS:         with(ECDSA, shaAll...),
			VerifyCMS:       with(ECDSA, shaAll...),
			LoginAnswer:     {{ECDSA, SHA384}},
			LoginToken:      {{ECDSA, SHA384}},
			AuditCheckpoint: {{ECDSA, SHA384}},
			KeyAgreement:    {{ECDHX963, SHA384}, {ECDHCofactorX963, SHA384}},
			RawSignature:    with(ECDSA, SHA384, SHA256, SHA512),
		},
		SM2: {
			SignCMS:         {{SM2WithSM3, SM3}},
			VerifyCMS:       {{SM2WithSM3, SM3}},
			LoginAnswer:     {{SM2WithSM3, SM3}},
			LoginToken:      {{SM2WithSM3, SM3}},
			AuditCheckpoint: {{SM2WithSM3, SM3}},
			KeyTransport:    {{SM2Encrypt, SM3}},
			RawSignature:    {{SM2WithSM3, SM3}},
			RawEncryption:   {{SM2Encrypt, SM3}},
		},
		Unsupported: {},
	}
	for f := range len(families) {
		fam := Family(f)
		for _, p := range Purposes() {
			got := Uses(fam, p)
			if !slices.Equal(got, want[fam][p]) {
				t.Errorf("%s for %s: %v, want %v", fam, p, got, want[fam][p])
			}
			for _, u := range got {
				if !Allows(fam, p, u) {
					t.Errorf("%s for %s: Allows(%v) = false", fam, p, u)
				}
			}
			d, ok := Default(fam, p)
			if ok != (len(got) > 0) || (ok && d != got[0]) {
				t.Errorf("%s for %s: Default = %v, %v", fam, p, d, ok)
			}
		}
	}
	if Allows(ECDSAP256, LoginAnswer, Use{ECDSA, SHA512}) || Allows(SM2, SignCMS, Use{SM2WithSM3, SHA256}) {
		t.Error("Allows accepts a use that is not in the table")
	}
	if SignCMS.MinRSABits() != 2048 || LoginToken.MinRSABits() != 2048 || VerifyCMS.MinRSABits() != 0 || RawSignature.MinRSABits() != 0 {
		t.Error("RSA minimum sizes changed")
	}
}

// TestPick checks the lookups made from the table: the use for what a request asks,
// the digests of a family and the families of a scheme or digest.
func TestPick(t *testing.T) {
	for _, c := range []struct {
		f    Family
		p    Purpose
		s    Scheme
		d    Digest
		want Use
		ok   bool
	}{
		{RSA, RawSignature, 0, NoDigest, Use{PKCS1v15, SHA256}, true},
		{RSA, RawSignature, PSS, NoDigest, Use{PSS, SHA256}, true},
		{RSA, RawSignature, 0, SHA512, Use{PKCS1v15, SHA512}, true},
		{RSA, RawSignature, PSS, SHA384, Use{PSS, SHA384}, true},
		{RSA, RawSignature, 0, SM3, Use{}, false},
		{ECDSAP256, RawSignature, 0, NoDigest, Use{ECDSA, SHA256}, true},
		{ECDSAP384, RawSignature, 0, NoDigest, Use{ECDSA, SHA384}, true},
		{ECDSAP384, SignCMS, 0, NoDigest, Use{ECDSA, SHA256}, true},
		{ECDSAP384, RawSignature, PSS, NoDigest, Use{}, false},
		{SM2, RawSignature, 0, NoDigest, Use{SM2WithSM3, SM3}, true},
		{SM2, SignCMS, 0, SHA256, Use{}, false},
		{Unsupported, SignCMS, 0, NoDigest, Use{}, false},
	} {
		if u, ok := Pick(c.f, c.p, c.s, c.d); u != c.want || ok != c.ok {
			t.Errorf("Pick(%s, %s, %v, %v) = %v, %v; want %v, %v", c.f, c.p, c.s, c.d, u, ok, c.want, c.ok)
		}
	}
	if got := Digests(ECDSAP384, RawSignature); !slices.Equal(got, []Digest{SHA384, SHA256, SHA512}) {
		t.Errorf("P-384 raw digests %v", got)
	}
	if got := Digests(SM2, SignCMS); !slices.Equal(got, []Digest{SM3}) {
		t.Errorf("SM2 digests %v", got)
	}
	if got := Digests(RSA, KeyTransport); !slices.Equal(got, []Digest{SHA256, NoDigest}) {
		t.Errorf("RSA key transport digests %v", got)
	}
	if Digests(Unsupported, SignCMS) != nil {
		t.Error("digests for an unsupported key")
	}
	if got := Families(SignCMS, 0, SM3); !slices.Equal(got, []Family{SM2}) {
		t.Errorf("SM3 families %v", got)
	}
	if got := Families(RawSignature, PSS, NoDigest); !slices.Equal(got, []Family{RSA}) {
		t.Errorf("PSS families %v", got)
	}
	if got := Families(SignCMS, 0, SHA384); !slices.Equal(got, []Family{RSA, ECDSAP256, ECDSAP384}) {
		t.Errorf("SHA-384 families %v", got)
	}
}

func TestOf(t *testing.T) {
	ecKey := func(c elliptic.Curve) crypto.PublicKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k.Public()
	}
	sm2Key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		name string
		pub  crypto.PublicKey
		want Family
		key  string
	}{
		{"RSA", rsaKey.Public(), RSA, "RSA-2048"},
		{"P-256", ecKey(elliptic.P256()), ECDSAP256, "ECDSA-P256"},
		{"P-384", ecKey(elliptic.P384()), ECDSAP384, "ECDSA-P384"},
		{"SM2 private key's public", sm2Key.Public(), SM2, "SM2"},
		{"SM2 as ecdsa", &sm2Key.PublicKey, SM2, "SM2"},
		{"P-521", ecKey(elliptic.P521()), Unsupported, ""},
		{"P-224", ecKey(elliptic.P224()), Unsupported, ""},
		{"Ed25519", edPub, Unsupported, ""},
		{"nil", nil, Unsupported, ""},
		{"nil RSA", (*rsa.PublicKey)(nil), Unsupported, ""},
		{"RSA without modulus", &rsa.PublicKey{}, Unsupported, ""},
		{"nil ECDSA", (*ecdsa.PublicKey)(nil), Unsupported, ""},
		{"ECDSA without curve", &ecdsa.PublicKey{}, Unsupported, ""},
	} {
		if got := Of(c.pub); got != c.want {
			t.Errorf("%s: Of = %v, want %v", c.name, got, c.want)
		}
		if got := KeyName(c.pub); got != c.key {
			t.Errorf("%s: KeyName = %q, want %q", c.name, got, c.key)
		}
		if c.want != RSA {
			if got := ByKeyName(c.key); got != c.want {
				t.Errorf("%s: ByKeyName(%q) = %v, want %v", c.name, c.key, got, c.want)
			}
		}
		for _, p := range Purposes() {
			_, err := Check(c.pub, p)
			if c.want == Unsupported && !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: Check(%s) = %v, want ErrUnsupported", c.name, p, err)
			}
		}
	}

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Purposes() {
		_, err := Check(small.Public(), p)
		if want := p.MinRSABits() > 1024 || len(Uses(RSA, p)) == 0; (err != nil) != want {
			t.Errorf("RSA-1024 for %s: %v", p, err)
		}
	}
	for _, name := range []string{"RSA-2048", "RSA", "ecdsa-p256", "ECDSA-P521", "unsupported"} {
		if f := ByKeyName(name); f != Unsupported {
			t.Errorf("ByKeyName(%q) = %v, want Unsupported", name, f)
		}
	}
	if _, err := Check(ecKey(elliptic.P256()), KeyTransport); !errors.Is(err, ErrUnsupported) {
		t.Errorf("P-256 key transport: %v", err)
	}
}

func TestCurves(t *testing.T) {
	for _, c := range []struct {
		f     Family
		curve elliptic.Curve
	}{{ECDSAP256, elliptic.P256()}, {ECDSAP384, elliptic.P384()}, {SM2, sm2.P256()}} {
		if c.f.Curve() != c.curve || OfCurve(c.curve) != c.f || ByCurveOID(c.f.CurveOID()) != c.f {
			t.Errorf("%s: curve and OID do not round-trip", c.f)
		}
	}
	if RSA.Curve() != nil || RSA.CurveOID() != nil || OfCurve(elliptic.P521()) != Unsupported || OfCurve(nil) != Unsupported {
		t.Error("a curve where there is none")
	}
	if ByCurveOID(cms.OIDSHA256) != Unsupported {
		t.Error("ByCurveOID of a digest OID")
	}
	for f := range len(families) {
		fam := Family(f)
		_, agrees := Default(fam, KeyAgreement)
		if (fam.ECDH() != nil) != agrees {
			t.Errorf("%s: ECDH curve %v, key agreement %v", fam, fam.ECDH(), agrees)
		}
		if u, ok := Default(fam, KeyAgreement); ok && u.KDFOID() == nil {
			t.Errorf("%s: no KDF OID", fam)
		}
		alg, _ := fam.JWS()
		if _, tokens := Default(fam, LoginToken); (alg != "") != tokens {
			t.Errorf("%s: JWS %q, login token %v", fam, alg, tokens)
		}
	}
}

func TestOIDs(t *testing.T) {
	for _, r := range table {
		switch r.purpose {
		case SignCMS, VerifyCMS, LoginAnswer, LoginToken, AuditCheckpoint, RawSignature:
			if r.SignatureOID() == nil || r.X509SignatureOID() == nil || r.Digest.OID() == nil {
				t.Errorf("%s %s %v: no OID", r.family, r.purpose, r.Use)
			}
		}
		if r.Digest != NoDigest && r.Digest != SM3 && DigestOf(r.Digest.Hash()) != r.Digest {
			t.Errorf("%v: DigestOf(Hash) does not round-trip", r.Digest)
		}
	}
	for _, c := range []struct {
		oid      []int
		want     crypto.Hash
		cofactor bool
	}{
		{cms.OIDDHSinglePassStdDHSHA1KDF, crypto.SHA1, false}, {cms.OIDDHSinglePassStdDHSHA224KDF, crypto.SHA224, false},
		{cms.OIDDHSinglePassStdDHSHA256KDF, crypto.SHA256, false}, {cms.OIDDHSinglePassStdDHSHA384KDF, crypto.SHA384, false},
		{cms.OIDDHSinglePassStdDHSHA512KDF, crypto.SHA512, false}, {cms.OIDSHA256, 0, false},
		{cms.OIDDHSinglePassCofactorDHSHA1KDF, crypto.SHA1, true}, {cms.OIDDHSinglePassCofactorDHSHA224KDF, crypto.SHA224, true},
		{cms.OIDDHSinglePassCofactorDHSHA256KDF, crypto.SHA256, true}, {cms.OIDDHSinglePassCofactorDHSHA384KDF, crypto.SHA384, true},
		{cms.OIDDHSinglePassCofactorDHSHA512KDF, crypto.SHA512, true},
	} {
		if h, ok := KDFByOID(c.oid); h != c.want || ok != (c.want != 0) {
			t.Errorf("KDFByOID(%v) = %v, %v", c.oid, h, ok)
		}
		s, _, ok := KeyAgreementByOID(c.oid)
		if want := map[bool]Scheme{false: ECDHX963, true: ECDHCofactorX963}[c.cofactor]; ok && s != want {
			t.Errorf("KeyAgreementByOID(%v) = %v, want %v", c.oid, s, want)
		}
		if u := (Use{s, DigestOf(c.want)}); ok && u.KDFOID() != nil && !u.KDFOID().Equal(c.oid) {
			t.Errorf("KDFOID of %v does not round-trip", c.oid)
		}
	}
	for _, c := range []struct {
		u    Use
		want string
	}{
		{Use{PKCS1v15, SHA256}, "1.2.840.113549.1.1.11"}, {Use{PKCS1v15, SHA384}, "1.2.840.113549.1.1.12"},
		{Use{PKCS1v15, SHA512}, "1.2.840.113549.1.1.13"}, {Use{PSS, SHA384}, "1.2.840.113549.1.1.10"},
		{Use{ECDSA, SHA256}, "1.2.840.10045.4.3.2"}, {Use{ECDSA, SHA384}, "1.2.840.10045.4.3.3"},
		{Use{ECDSA, SHA512}, "1.2.840.10045.4.3.4"}, {Use{SM2WithSM3, SM3}, "1.2.156.10197.1.501"},
	} {
		if got := c.u.X509SignatureOID().String(); got != c.want {
			t.Errorf("%v: X.509 signature OID %s, want %s", c.u, got, c.want)
		}
	}
	if (Use{PKCS1v15, SM3}).X509SignatureOID() != nil || (Use{RSAESOAEP, SHA256}).X509SignatureOID() != nil {
		t.Error("an X.509 signature OID for a use that has none")
	}
	if DigestOf(crypto.SHA1) != NoDigest || DigestOf(0) != NoDigest {
		t.Error("DigestOf of a hash not in the table")
	}
}

// TestREADME checks that README.md's algorithm table is this table;
// `go test ./pkg/algorithm -update-readme` rewrites it.
func TestREADME(t *testing.T) {
	const path = "../../README.md"
	const begin = "<!-- algorithm table: generated from pkg/algorithm by `go test ./pkg/algorithm -update-readme` -->\n"
	const end = "<!-- end of algorithm table -->\n"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(readme, []byte(begin))
	j := bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no algorithm table between %q and %q", begin, end)
	}
	got := string(readme[i+len(begin) : j])
	want := markdown()
	if got == want {
		return
	}
	if *updateREADME {
		out := slices.Concat(readme[:i+len(begin)], []byte(want), readme[j:])
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's algorithm table differs from the table (run go test ./pkg/algorithm -update-readme)\n got:\n%s\nwant:\n%s", got, want)
}

// markdown renders the table: a row per purpose, a column per family, each cell the
// schemes with their digests, the default first.
func markdown() string {
	fams := []Family{RSA, ECDSAP256, ECDSAP384, SM2}
	var b strings.Builder
	b.WriteString("\n| purpose |")
	for _, f := range fams {
		fmt.Fprintf(&b, " %s |", f)
	}
	b.WriteString("\n|---|")
	for range fams {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, p := range Purposes() {
		fmt.Fprintf(&b, "| %s |", p)
		for _, f := range fams {
			b.WriteString(" " + cell(f, p) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	return b.String()
}

func cell(f Family, p Purpose) string {
	uses := Uses(f, p)
	if len(uses) == 0 {
		return "—"
	}
	// Group the digests by scheme, keeping the table's order.
	var schemes []Scheme
	byScheme := map[Scheme][]string{}
	for _, u := range uses {
		if _, seen := byScheme[u.Scheme]; !seen {
			schemes = append(schemes, u.Scheme)
			byScheme[u.Scheme] = nil
		}
		if u.Digest != NoDigest {
			byScheme[u.Scheme] = append(byScheme[u.Scheme], u.Digest.String())
		}
	}
	var parts []string
	for _, s := range schemes {
		part := s.String()
		if ds := byScheme[s]; len(ds) > 0 {
			part += " (" + strings.Join(ds, ", ") + ")"
		}
		parts = append(parts, part)
	}
	out := strings.Join(parts, ", ")
	if p == LoginToken {
		alg, _ := f.JWS()
		out = "`" + alg + "`: " + out
	}
	if p == KeyAgreement {
		out = f.ECDH().(fmt.Stringer).String() + ", " + out
	}
	if f == RSA && p.MinRSABits() > 0 {
		out += fmt.Sprintf("; ≥ %d bits", p.MinRSABits())
	}
	return out
}
