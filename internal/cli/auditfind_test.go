package cli

import (
	"encoding/asn1"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIAuditFind: a signature made by the development server is found in its
// audit log from the CMS file, from OpenSSL's PEM re-encoding of it, and from a
// re-wrap with the certificates stripped and the content detached, which no
// whole-object digest would match: the record names the signerInfos. A verified
// object's record is found too, and a file no operation saw is not (exit 1).
func TestCLIAuditFind(t *testing.T) {
	dir := t.TempDir()
	data := []byte("a declaration the auditor asks about\n")
	in := filepath.Join(dir, "data")
	sigFile := filepath.Join(dir, "sig.der")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, shared.addr, nil, "sign", "--key", "ecdsa-sign", "--in", in, "--out", sigFile); code != 0 {
		t.Fatalf("sign: %s", errs)
	}
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		t.Fatal(err)
	}
	logDir := devFile("audit")

	code, out, errs := auditFind(t, "--log", logDir, sigFile, in)
	if code != ExitOK {
		t.Fatalf("audit find: exit %d\n%s%s", code, out, errs)
	}
	text := string(out)
	if !strings.Contains(text, "op sign key \"ecdsa-sign\"") || !strings.Contains(text, "out = signerInfos") ||
		!strings.Contains(text, "(in = file)") {
		t.Errorf("audit find of the signature and its content:\n%s", text)
	}

	// The CLI streamed the signature (BER, indefinite lengths); OpenSSL re-encodes
	// it as DER, and as PEM.
	reDER, rePEM := filepath.Join(dir, "re.der"), filepath.Join(dir, "re.pem")
	opensslRun(t, "cms", "-cmsout", "-inform", "DER", "-in", sigFile, "-outform", "DER", "-out", reDER)
	opensslRun(t, "cms", "-cmsout", "-inform", "DER", "-in", sigFile, "-outform", "PEM", "-out", rePEM)
	der, err := os.ReadFile(reDER)
	if err != nil {
		t.Fatal(err)
	}
	if string(der) == string(sig) {
		t.Fatal("OpenSSL wrote the signature as it was: no re-encoding to test")
	}
	// The same signerInfos with neither certificates nor content around them.
	bare := filepath.Join(dir, "bare.der")
	if err := os.WriteFile(bare, stripSignedData(t, der), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{reDER, rePEM, bare} {
		code, out, errs := auditFind(t, "--log", logDir, f)
		if code != ExitOK || !strings.Contains(string(out), "op sign key \"ecdsa-sign\"") || !strings.Contains(string(out), "out = signerInfos") {
			t.Errorf("audit find %s: exit %d\n%s%s", filepath.Base(f), code, out, errs)
		}
		if f != rePEM && strings.Contains(string(out), "= file") {
			t.Errorf("the re-wrapped object matched as a whole:\n%s", out)
		}
	}

	if code, out, errs := cli(t, shared.addr, nil, "verify", "--in", sigFile); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = auditFind(t, "--log", logDir, bare)
	if code != ExitOK || !strings.Contains(string(out), "op verify") || !strings.Contains(string(out), "in = signerInfos") {
		t.Errorf("the verification's record: exit %d\n%s", code, out)
	}

	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("nobody signed this"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = auditFind(t, "--log", logDir, sigFile, other)
	if code != ExitFailure || !strings.Contains(string(out), "other: no record") {
		t.Errorf("a file no operation saw: exit %d\n%s", code, out)
	}
	if code, _, _ := auditFind(t, sigFile); code != ExitUsage {
		t.Errorf("find without --log: exit %d", code)
	}
}

// auditFind runs `signsvr audit find ARGS...` (offline: no --addr).
func auditFind(t *testing.T, args ...string) (int, []byte, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := Main(t.Context(), append([]string{"audit", "find"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, []byte(stdout.String()), stderr.String()
}

// stripSignedData re-wraps DER SignedData der without its certificates and content
// (detached), keeping the signerInfos as they are: encoding/asn1, not pkg/cms.
func stripSignedData(t *testing.T, der []byte) []byte {
	t.Helper()
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	var sd struct {
		Version      int
		DigestAlgs   asn1.RawValue
		Encap        asn1.RawValue
		Certificates asn1.RawValue `asn1:"optional,tag:0"`
		SignerInfos  asn1.RawValue
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	var encap struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"optional,explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(sd.Encap.FullBytes, &encap); err != nil {
		t.Fatal(err)
	}
	detachedEncap, err := asn1.Marshal(struct{ Type asn1.ObjectIdentifier }{encap.Type})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := asn1.Marshal(struct {
		Version     int
		DigestAlgs  asn1.RawValue
		Encap       asn1.RawValue
		SignerInfos asn1.RawValue
	}{sd.Version, sd.DigestAlgs, asn1.RawValue{FullBytes: detachedEncap}, sd.SignerInfos})
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{ci.Type, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
