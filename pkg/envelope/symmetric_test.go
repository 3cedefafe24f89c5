package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
)

// mutate re-encodes an EnvelopedData or AuthEnvelopedData after f changed it.
func mutate(t *testing.T, der []byte, f func(ris []cms.RecipientInfo, eci *cms.EncryptedContentInfo, mac []byte)) []byte {
	t.Helper()
	ci, err := cms.ParseContentInfo(der)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	if ci.ContentType.Equal(cms.OIDAuthEnvelopedData) {
		ad, err := cms.ParseAuthEnvelopedData(bytes.Clone(ci.Content))
		if err != nil {
			t.Fatal(err)
		}
		f(ad.RecipientInfos, &ad.AuthEncryptedContentInfo, ad.MAC)
		out, err = ad.MarshalContentInfo()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ed, err := cms.ParseEnvelopedData(bytes.Clone(ci.Content))
	if err != nil {
		t.Fatal(err)
	}
	f(ed.RecipientInfos, &ed.EncryptedContentInfo, nil)
	if out, err = ed.MarshalContentInfo(ci.ContentType); err != nil {
		t.Fatal(err)
	}
	return out
}

// tamperKey flips a bit of the encrypted key of the first RecipientInfo that pick
// returns, and re-encodes the message.
func tamperKey(t *testing.T, der []byte, pick func(ri *cms.RecipientInfo) []byte) []byte {
	t.Helper()
	return mutate(t, der, func(ris []cms.RecipientInfo, _ *cms.EncryptedContentInfo, _ []byte) {
		for i := range ris {
			if ek := pick(&ris[i]); ek != nil {
				ek[len(ek)/2] ^= 0x10
				return
			}
		}
		t.Fatal("no RecipientInfo to tamper with")
	})
}

// tamperContent changes the content so that decryption must fail: a bit of the GCM
// tag, or for CBC the bit of the next-to-last block that flips the last padding byte
// (a change anywhere else in unauthenticated CBC content may decrypt to other bytes).
func tamperContent(t *testing.T, der []byte) []byte {
	t.Helper()
	return mutate(t, der, func(_ []cms.RecipientInfo, eci *cms.EncryptedContentInfo, mac []byte) {
		if mac != nil {
			mac[0] ^= 1
			return
		}
		ct := eci.EncryptedContent
		ct[len(ct)-17] ^= 1
	})
}

func firstKind(t *testing.T, der []byte) cms.RecipientInfo {
	t.Helper()
	m, err := parseMessage(der)
	if err != nil {
		t.Fatal(err)
	}
	return m.ris[0]
}

// Cofactor ECDH: what 'openssl cms -encrypt -keyopt ecdh_cofactor_mode:1' writes
// opens here, ours opens with openssl, and tampered copies fail with ErrDecrypt.
func TestECDHCofactor(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	content := testContent(1000)
	in := filepath.Join(dir, "content.bin")
	writeFile(t, in, content)
	for _, tc := range []struct {
		p      *party
		md     string
		scheme []int
	}{
		{f.ec256, "sha256", cms.OIDDHSinglePassCofactorDHSHA256KDF},
		{f.ec256, "sha1", cms.OIDDHSinglePassCofactorDHSHA1KDF},
		{f.ec384, "sha384", cms.OIDDHSinglePassCofactorDHSHA384KDF},
		{f.ec384, "sha224", cms.OIDDHSinglePassCofactorDHSHA224KDF},
		{f.ec256, "sha512", cms.OIDDHSinglePassCofactorDHSHA512KDF},
	} {
		t.Run(tc.p.name+" "+tc.md, func(t *testing.T) {
			crt, key := tc.p.writePEM(t, dir)
			der := runOpenSSL(t, dir, nil, "cms", "-encrypt", "-binary", "-outform", "DER", "-in", in, "-aes256",
				"-recip", crt, "-keyopt", "ecdh_kdf_md:"+tc.md, "-keyopt", "ecdh_cofactor_mode:1")
			if ri := firstKind(t, der); ri.KeyAgree == nil || !ri.KeyAgree.KeyEncryptionAlgorithm.Algorithm.Equal(tc.scheme) {
				t.Fatalf("openssl wrote %+v, want scheme %v", ri.KeyAgree, tc.scheme)
			}
			got, err := Open(der, tc.p.opener(t), tc.p.cert, nil)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("Open: %v", err)
			}
			bad := tamperKey(t, der, func(ri *cms.RecipientInfo) []byte {
				if ri.KeyAgree == nil {
					return nil
				}
				return ri.KeyAgree.RecipientEncryptedKeys[0].EncryptedKey
			})
			for _, b := range [][]byte{bad, tamperContent(t, der)} {
				if _, err := Open(b, tc.p.opener(t), tc.p.cert, nil); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("tampered: %v, want ErrDecrypt", err)
				}
			}

			ours, err := Envelope(content, []*smx509.Certificate{tc.p.cert}, &Options{Cipher: AES256CBC, ECDHCofactor: true})
			if err != nil {
				t.Fatal(err)
			}
			msg := filepath.Join(dir, "ours.der")
			writeFile(t, msg, ours)
			if out := runOpenSSL(t, dir, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", msg, "-recip", crt, "-inkey", key); !bytes.Equal(out, content) {
				t.Fatal("openssl: content differs")
			}
			ri := firstKind(t, ours)
			if s, _, _ := algorithm.KeyAgreementByOID(ri.KeyAgree.KeyEncryptionAlgorithm.Algorithm); s != algorithm.ECDHCofactorX963 {
				t.Fatalf("we wrote scheme %v", ri.KeyAgree.KeyEncryptionAlgorithm.Algorithm)
			}
		})
	}
}

// KEK recipients: 'openssl cms -encrypt -secretkey -secretkeyid' opens here by key
// identifier, ours opens with openssl, and a wrong key or tampered copy fails with
// ErrDecrypt.
func TestKEKRecipient(t *testing.T) {
	dir := t.TempDir()
	content := testContent(2000)
	in := filepath.Join(dir, "content.bin")
	writeFile(t, in, content)
	for _, tc := range []struct {
		name   string
		size   int
		cipher string
		ours   Cipher
	}{
		{"aes128 key aes-128-cbc", 16, "-aes128", AES128CBC},
		{"aes192 key aes-256-cbc", 24, "-aes256", AES256CBC},
		{"aes256 key aes-256-gcm", 32, "-aes-256-gcm", AES256GCM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := make(AESKey, tc.size)
			rand.Read(key)
			id := []byte("kek-" + tc.name)
			hk, hid := hex.EncodeToString(key), hex.EncodeToString(id)
			der := runOpenSSL(t, dir, nil, "cms", "-encrypt", "-binary", "-outform", "DER", "-in", in, tc.cipher,
				"-secretkey", hk, "-secretkeyid", hid)
			r := KEKRecipient{ID: id, Key: key}
			got, err := Open(der, r, nil, nil)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("Open: %v", err)
			}
			if _, err := Open(der, KEKRecipient{ID: []byte("other"), Key: key}, nil, nil); !errors.Is(err, ErrNoRecipient) {
				t.Fatalf("other id: %v, want ErrNoRecipient", err)
			}
			wrong := make(AESKey, tc.size)
			bad := tamperKey(t, der, func(ri *cms.RecipientInfo) []byte {
				if ri.KEK == nil {
					return nil
				}
				return ri.KEK.EncryptedKey
			})
			for name, c := range map[string]struct {
				der []byte
				key AESKey
			}{"wrong key": {der, wrong}, "tampered key": {bad, key}, "tampered content": {tamperContent(t, der), key}} {
				if _, err := Open(c.der, KEKRecipient{ID: id, Key: c.key}, nil, nil); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%s: %v, want ErrDecrypt", name, err)
				}
			}

			ours, err := Envelope(content, nil, &Options{Cipher: tc.ours, KEKRecipients: []KEKRecipient{r}})
			if err != nil {
				t.Fatal(err)
			}
			msg := filepath.Join(dir, "ours.der")
			writeFile(t, msg, ours)
			if out := runOpenSSL(t, dir, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", msg,
				"-secretkey", hk, "-secretkeyid", hid); !bytes.Equal(out, content) {
				t.Fatal("openssl: content differs")
			}
		})
	}
}

// Password recipients (RFC 3211): 'openssl cms -encrypt -pwri_password' opens here,
// ours opens with openssl, a wrong password or tampered copy fails with ErrDecrypt,
// and an iteration count over the limit is refused before any is spent.
func TestPasswordRecipient(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	content := testContent(1500)
	in := filepath.Join(dir, "content.bin")
	writeFile(t, in, content)
	pw := Password("correct horse battery staple")
	for _, tc := range []struct {
		name   string
		cipher string
		ours   Cipher
	}{
		{"aes-128-cbc", "-aes128", AES128CBC},
		{"aes-256-cbc", "-aes256", AES256CBC},
		{"sm4-cbc", "-sm4-cbc", SM4CBC},
		{"aes-256-gcm (ours only)", "", AES256GCM},
		{"sm4-gcm (ours only)", "", SM4GCM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cipher != "" {
				der := runOpenSSL(t, dir, nil, "cms", "-encrypt", "-binary", "-outform", "DER", "-in", in, tc.cipher,
					"-pwri_password", string(pw))
				got, err := Open(der, pw, nil, nil)
				if err != nil || !bytes.Equal(got, content) {
					t.Fatalf("Open: %v", err)
				}
				bad := tamperKey(t, der, func(ri *cms.RecipientInfo) []byte {
					if ri.Password == nil {
						return nil
					}
					return ri.Password.EncryptedKey
				})
				for name, c := range map[string]struct {
					der []byte
					pw  Password
				}{"wrong password": {der, Password("Correct horse battery staple")}, "tampered key": {bad, pw}, "tampered content": {tamperContent(t, der), pw}} {
					if _, err := Open(c.der, c.pw, nil, nil); !errors.Is(err, ErrDecrypt) {
						t.Fatalf("%s: %v, want ErrDecrypt", name, err)
					}
				}
				if _, err := Open(der, pw, nil, &OpenOptions{MaxPBKDF2Iterations: 100}); !errors.Is(err, ErrTooCostly) || !errors.Is(err, cms.ErrUnsupported) {
					t.Fatalf("over the iteration limit: %v, want ErrTooCostly", err)
				}
			}

			// Ours, with an RSA recipient beside the password.
			ours, err := Envelope(content, []*smx509.Certificate{f.rsa.cert}, &Options{Cipher: tc.ours, Passwords: []Password{pw}, PBKDF2Iterations: 2000})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Open(ours, pw, nil, nil)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("Open ours: %v", err)
			}
			if got, err := Open(ours, f.rsa.opener(t), f.rsa.cert, nil); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("Open ours as the RSA recipient: %v", err)
			}
			if _, err := Open(ours, Password("nope"), nil, nil); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("wrong password: %v, want ErrDecrypt", err)
			}
			if tc.ours == SM4GCM {
				return // OpenSSL 3.0 has no SM4-GCM content decryption
			}
			msg := filepath.Join(dir, "ours.der")
			writeFile(t, msg, ours)
			if out := runOpenSSL(t, dir, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", msg,
				"-pwri_password", string(pw)); !bytes.Equal(out, content) {
				t.Fatal("openssl: content differs")
			}
		})
	}
	if _, err := Envelope(content, nil, &Options{Passwords: []Password{pw}, PBKDF2Iterations: 10}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("10 iterations: %v, want ErrInvalidOptions", err)
	}
	// Several password recipients together are bounded as one message.
	two, err := Envelope(content, nil, &Options{Cipher: AES128CBC, Passwords: []Password{Password("a"), pw}, PBKDF2Iterations: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(two, pw, nil, nil); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("second password: %v", err)
	}
	if _, err := Open(two, pw, nil, &OpenOptions{MaxPBKDF2Iterations: 5000}); !errors.Is(err, ErrTooCostly) {
		t.Fatalf("two recipients over the limit: %v, want ErrTooCostly", err)
	}
}

// CFCA-style SM2 encrypted keys (C1||C2||C3 without the 04 prefix), written by
// gmsm's pkcs7.EncryptCFCA, open; a tampered copy fails with ErrDecrypt.
func TestCFCASM2EncryptedKey(t *testing.T) {
	f := getFixture(t)
	content := testContent(500)
	der, err := pkcs7.EncryptCFCA(pkcs.SM4CBC, content, []*smx509.Certificate{f.sm2a.cert})
	if err != nil {
		t.Fatal(err)
	}
	ri := firstKind(t, der)
	if ri.KeyTrans == nil || len(ri.KeyTrans.EncryptedKey) != 64+16+32 {
		t.Fatalf("gmsm wrote an encrypted key of %d bytes, want the 112 of C1C2C3 without prefix", len(ri.KeyTrans.EncryptedKey))
	}
	got, err := Open(der, f.sm2a.opener(t), f.sm2a.cert, nil)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Open: %v", err)
	}
	bad := tamperKey(t, der, func(ri *cms.RecipientInfo) []byte {
		if ri.KeyTrans == nil {
			return nil
		}
		return ri.KeyTrans.EncryptedKey
	})
	for _, b := range [][]byte{bad, tamperContent(t, der)} {
		if _, err := Open(b, f.sm2a.opener(t), f.sm2a.cert, nil); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("tampered: %v, want ErrDecrypt", err)
		}
	}
}
