package sign

import (
	"bytes"
	"crypto"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

// OpenSSL 3.0 is the peer for RSA and ECDSA (its cms command cannot sign with SM2:
// "illegal zero content"). Both directions run at test time in t.TempDir().

var opensslAlgs = []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.ECDSAP384}

// TestOpenSSLVerifiesOurs: `openssl cms -verify` accepts what Sign writes.
func TestOpenSSLVerifiesOurs(t *testing.T) {
	content := testContent(1024)
	type variant struct {
		name string
		opts Options
	}
	for _, alg := range opensslAlgs {
		p := pkiFor(t, alg)
		dir := t.TempDir()
		writePKI(t, dir, p)
		writeFile(t, filepath.Join(dir, "content.bin"), content)
		variants := []variant{
			{"attached", Options{}},
			{"detached", Options{Detached: true}},
			{"noattr", Options{NoSignedAttributes: true}},
			{"noattr-detached", Options{NoSignedAttributes: true, Detached: true}},
			{"keyid", Options{SignerID: SubjectKeyID}},
			{"sha384", Options{Hash: crypto.SHA384}},
			{"sha512-chain", Options{Hash: crypto.SHA512, Certs: IncludeChain}},
		}
		if alg == devpki.RSA2048 {
			variants = append(variants,
				variant{"pss", Options{PSS: true}},
				variant{"pss-detached-sha384", Options{PSS: true, Detached: true, Hash: crypto.SHA384}},
				variant{"pss-noattr", Options{PSS: true, NoSignedAttributes: true}},
				variant{"pss-keyid", Options{PSS: true, SignerID: SubjectKeyID}},
			)
		}
		for _, v := range variants {
			t.Run(fmt.Sprintf("%s/%s", alg, v.name), func(t *testing.T) {
				opts := v.opts
				opts.Now = fixedClock
				der, err := Sign(content, p.key, p.chain, &opts)
				if err != nil {
					t.Fatal(err)
				}
				name := v.name + ".der"
				writeFile(t, filepath.Join(dir, name), der)
				out := v.name + ".out"
				args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", name,
					"-CAfile", "root.pem", "-out", out}
				if opts.Detached {
					args = append(args, "-content", "content.bin")
				}
				msg := runOpenSSL(t, dir, args...)
				if !strings.Contains(string(msg), "Verification successful") {
					t.Fatalf("openssl did not report success: %s", msg)
				}
				if got := readFile(t, filepath.Join(dir, out)); !bytes.Equal(got, content) {
					t.Fatalf("openssl output %d bytes, differs from the content", len(got))
				}
				// And a tampered copy must fail there too (the peer really checks).
				bad := bytes.Clone(der)
				bad[len(bad)-5] ^= 0x01
				writeFile(t, filepath.Join(dir, "bad-"+name), bad)
				args[5] = "bad-" + name
				if msg, err := tryOpenSSL(t, dir, args...); err == nil {
					t.Fatalf("openssl accepted a tampered signature: %s", msg)
				}
			})
		}
	}
}

// TestWeVerifyOpenSSL: objects made by `openssl cms -sign`, DER and streamed BER,
// verify here.
func TestWeVerifyOpenSSL(t *testing.T) {
	content := testContent(3000) // more than one streaming chunk
	type variant struct {
		name     string
		args     []string
		detached bool
		noattr   bool
	}
	for _, alg := range opensslAlgs {
		p := pkiFor(t, alg)
		dir := t.TempDir()
		writePKI(t, dir, p)
		writeFile(t, filepath.Join(dir, "content.bin"), content)
		variants := []variant{
			{"der-attached", []string{"-nodetach", "-outform", "DER"}, false, false},
			{"der-detached", []string{"-outform", "DER"}, true, false},
			{"keyid", []string{"-nodetach", "-keyid", "-outform", "DER"}, false, false},
			{"noattr", []string{"-nodetach", "-noattr", "-outform", "DER"}, false, true},
			{"noattr-detached", []string{"-noattr", "-outform", "DER"}, true, true},
			{"sha384", []string{"-nodetach", "-md", "sha384", "-outform", "DER"}, false, false},
			{"stream-attached", []string{"-nodetach", "-stream", "-outform", "DER"}, false, false},
			// With -stream and DER output OpenSSL embeds the content even without
			// -nodetach (checked with openssl 3.0.19), so this one is attached too.
			{"stream-default", []string{"-stream", "-outform", "DER"}, false, false},
			{"indef", []string{"-nodetach", "-indef", "-outform", "DER"}, false, false},
		}
		if alg == devpki.RSA2048 {
			variants = append(variants,
				variant{"pss", []string{"-nodetach", "-keyopt", "rsa_padding_mode:pss", "-outform", "DER"}, false, false},
				// PSS cannot be combined with -stream in openssl 3.0 ("illegal zero content").
				variant{"pss-sha512", []string{"-nodetach", "-md", "sha512", "-keyopt", "rsa_padding_mode:pss", "-outform", "DER"}, false, false},
				variant{"pss-detached", []string{"-keyopt", "rsa_padding_mode:pss", "-outform", "DER"}, true, false},
				variant{"pss-noattr", []string{"-nodetach", "-noattr", "-keyopt", "rsa_padding_mode:pss", "-outform", "DER"}, false, true},
			)
		}
		for _, v := range variants {
			t.Run(fmt.Sprintf("%s/%s", alg, v.name), func(t *testing.T) {
				out := v.name + ".p7"
				args := append([]string{"cms", "-sign", "-binary", "-in", "content.bin",
					"-signer", "signer.pem", "-inkey", "signer.key", "-out", out}, v.args...)
				runOpenSSL(t, dir, args...)
				der := readFile(t, filepath.Join(dir, out))
				if strings.Contains(v.name, "stream") || v.name == "indef" {
					if !bytes.Contains(der[:4], []byte{0x30, 0x80}) {
						t.Fatalf("expected indefinite-length BER from openssl, got % x", der[:4])
					}
				}
				vo := &VerifyOptions{}
				if v.detached {
					vo.Content = content
				}
				res, err := Verify(der, vo)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if len(res.Signers) != 1 {
					t.Fatalf("%d signers", len(res.Signers))
				}
				s := res.Signers[0]
				if !s.Signature.Valid {
					t.Fatalf("not valid: %s: %v", s.Signature.Reason, s.Signature.Err)
				}
				if s.Certificate == nil || !bytes.Equal(s.Certificate.Raw, p.leaf.Raw) {
					t.Fatalf("signer certificate not found in the message")
				}
				if !bytes.Equal(res.Content, content) || res.Detached != v.detached {
					t.Fatalf("content or detached flag wrong (detached=%v)", res.Detached)
				}
				if v.noattr != s.SigningTime.IsZero() {
					t.Fatalf("signing time %v with noattr=%v", s.SigningTime, v.noattr)
				}
				if strings.Contains(v.name, "keyid") && s.SubjectKeyID == nil {
					t.Fatalf("expected a signer named by key identifier")
				}
				// Other content must not verify.
				if v.detached {
					vo.Content = append(bytes.Clone(content), 'x')
					res, err := Verify(der, vo)
					want := ReasonMessageDigestMismatch
					if v.noattr {
						want = ReasonSignatureInvalid
					}
					if err != nil || res.Signers[0].Signature.Reason != want {
						t.Fatalf("other content: %v %+v", err, res.Signers[0].Signature)
					}
				}
				// Re-marshalling a parsed OpenSSL message (BER in, DER out) keeps it valid.
				sd, err := cms.ParseSignedDataContentInfo(der)
				if err != nil {
					t.Fatal(err)
				}
				again, err := sd.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if res, err := Verify(again, vo0(v.detached, content)); err != nil || !res.Signers[0].Signature.Valid {
					t.Fatalf("re-marshalled: %v", err)
				}
			})
		}
	}
}

func vo0(detached bool, content []byte) *VerifyOptions {
	if detached {
		return &VerifyOptions{Content: content}
	}
	return nil
}
