package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ran records the commands the tests ran, for TestEveryCommandRan.
var ran struct {
	sync.Mutex
	names map[string]bool
}

// run is cli that also records which command ran and checks the exit code.
func run(t *testing.T, want int, stdin []byte, args ...string) ([]byte, string) {
	t.Helper()
	if c, _ := find(Commands(), args); c != nil {
		ran.Lock()
		if ran.names == nil {
			ran.names = map[string]bool{}
		}
		ran.names[c.Name] = true
		ran.Unlock()
	}
	code, out, errs := cli(t, shared.addr, stdin, args...)
	if code != want {
		t.Fatalf("signsvr %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

func write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLIEveryCall drives every client command against the development server,
// with the flags of its request options, and checks the exit codes: 0 for what
// verifies, 1 for a forgery or an invalid certificate, 2 for bad input.
func TestCLIEveryCall(t *testing.T) {
	data := []byte("every call of the API from the command line\n")
	dataFile := write(t, "data", data)
	forgedFile := write(t, "forged", []byte("every call of the API from the command line!\n"))

	t.Run("sign-verify-options", func(t *testing.T) {
		sig, _ := run(t, ExitOK, data, "sign", "--key", "rsa-sign", "--digest", "sha384", "--rsa-scheme", "pss",
			"--signer-id", "ski", "--certificates", "chain", "--timestamp", "server", "--sm2-dialect", "pkcs7")
		out, _ := run(t, ExitOK, sig, "verify", "--json", "--allow-sha1", "--allow-sm2-without-z=false")
		var res struct {
			Verified   bool
			Timestamps []struct{ Valid bool }
			Signers    []struct{ DigestAlgorithm, SignatureAlgorithm string }
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		if !res.Verified || len(res.Timestamps) != 1 || !res.Timestamps[0].Valid ||
			res.Signers[0].DigestAlgorithm != "2.16.840.1.101.3.4.2.2" || res.Signers[0].SignatureAlgorithm != "1.2.840.113549.1.1.10" {
			t.Errorf("sign options did not arrive: %s", out)
		}
		// The same options through SignStream (no timestamp): its attached output is
		// BER with indefinite lengths, and the verification streams too.
		sig, _ = run(t, ExitOK, data, "sign", "--key", "rsa-sign", "--digest", "sha384", "--pss",
			"--signer-id", "ski", "--certs", "chain", "--sm2-dialect", "pkcs7")
		if len(sig) < 2 || sig[1] != 0x80 {
			t.Errorf("sign without --timestamp did not stream: % x", sig[:min(len(sig), 4)])
		}
		out, _ = run(t, ExitOK, sig, "verify", "--json", "--allow-sha1")
		res.Signers = nil
		if err := json.Unmarshal(out, &res); err != nil || !res.Verified ||
			res.Signers[0].DigestAlgorithm != "2.16.840.1.101.3.4.2.2" || res.Signers[0].SignatureAlgorithm != "1.2.840.113549.1.1.10" ||
			!strings.Contains(string(out), `"received"`) {
			t.Errorf("streamed sign options did not arrive: %v %s", err, out)
		}
		// SM2 with a user ID: verifies with the same ID only.
		sig, _ = run(t, ExitOK, data, "sign", "--key", "sm2-sign", "--sm2-user-id", "alice@example.org", "--no-signed-attributes")
		run(t, ExitOK, sig, "verify", "--sm2-user-id", "alice@example.org")
		run(t, ExitFailure, sig, "verify")
		// Certificates given to find the signer in.
		sig, _ = run(t, ExitOK, data, "sign", "--key", "ecdsa-sign", "--certificates", "none")
		run(t, ExitFailure, sig, "verify")
		run(t, ExitOK, sig, "verify", "--certificates", devFile("keys", "ecdsa-sign.chain.pem"))
		// A forgery: the content of an attached signature altered.
		sig, _ = run(t, ExitOK, data, "sign", "--key", "ecdsa-sign")
		bad := bytes.Replace(sig, data[:10], []byte("EVERY CALL"), 1)
		out, _ = run(t, ExitFailure, bad, "verify")
		if !strings.Contains(string(out), "message-digest-mismatch") {
			t.Errorf("forged: %s", out)
		}
		// The flags work after the command too (cli gives --addr before it).
		if code, _, errs := cli(t, "127.0.0.1:1", sig, "verify", "--addr", shared.addr); code != ExitOK {
			t.Errorf("--addr after the command: exit %d %s", code, errs)
		}
	})

	t.Run("gmssl-without-z", func(t *testing.T) {
		// GmSSL's cmssign output; its CA is not a development trust anchor, so the
		// result is not verified, but the signature is valid only with the flag.
		signed, err := os.ReadFile("../../pkg/sign/testdata/gmssl/signed.pem")
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Signers []struct {
				Signature   struct{ Valid bool }
				Sm2WithoutZ bool
			}
		}
		out, _ := run(t, ExitFailure, signed, "verify", "--json", "--allow-sm2-without-z")
		if err := json.Unmarshal(out, &res); err != nil || !res.Signers[0].Signature.Valid || !res.Signers[0].Sm2WithoutZ {
			t.Errorf("--allow-sm2-without-z: %v %s", err, out)
		}
		out, _ = run(t, ExitFailure, signed, "verify", "--json")
		res.Signers = nil
		if err := json.Unmarshal(out, &res); err != nil || res.Signers[0].Signature.Valid {
			t.Errorf("without the flag: %v %s", err, out)
		}
	})

	t.Run("detached-empty-content", func(t *testing.T) {
		empty := write(t, "empty", nil)
		sigFile := filepath.Join(t.TempDir(), "sig")
		run(t, ExitOK, nil, "sign", "--key", "rsa-sign", "--detached", "--in", empty, "--out", sigFile)
		run(t, ExitOK, nil, "verify", "--in", sigFile, "--content", empty)
		run(t, ExitFailure, nil, "verify", "--in", sigFile, "--content", dataFile)
		_, errs := run(t, ExitUsage, nil, "verify", "--in", sigFile)
		if !strings.Contains(errs, "no content given") {
			t.Errorf("no --content: %s", errs)
		}
		opensslRun(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", empty, "-CAfile", devFile("roots.pem"))
	})

	t.Run("batches", func(t *testing.T) {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(a, []byte("item a"), 0o600)
		os.WriteFile(b, []byte("item b"), 0o600)
		run(t, ExitOK, nil, "sign-batch", "--key", "sm2-sign", "--detached", "--digest", "sm3", a, b)
		run(t, ExitOK, nil, "verify-batch", a+".p7s="+a, b+".p7s="+b)
		out, _ := run(t, ExitFailure, nil, "verify-batch", a+".p7s="+a, b+".p7s="+a)
		if strings.Count(string(out), "verified: yes") != 1 || strings.Count(string(out), "verified: NO") != 1 {
			t.Errorf("verify-batch with one forgery:\n%s", out)
		}
		run(t, ExitUsage, nil, "verify-batch", a) // the content is not a CMS message
		run(t, ExitServer, nil, "sign-batch", "--key", "no-such-key", a)
	})

	t.Run("raw", func(t *testing.T) {
		for _, key := range []string{"rsa-sign", "ecdsa-sign", "sm2-sign"} {
			sig := write(t, "sig", func() []byte { out, _ := run(t, ExitOK, data, "sign-raw", "--key", key); return out }())
			run(t, ExitOK, data, "verify-raw", "--key", key, "--signature", sig)
			run(t, ExitOK, nil, "verify-raw", "--certificate", devFile("keys", key+".chain.pem"), "--signature", sig, "--in", dataFile)
			out, _ := run(t, ExitFailure, nil, "verify-raw", "--key", key, "--signature", sig, "--in", forgedFile)
			if !strings.Contains(string(out), "signature INVALID") {
				t.Errorf("%s forged: %s", key, out)
			}
		}
		sig := write(t, "sig", func() []byte {
			out, _ := run(t, ExitOK, data, "sign-raw", "--key", "rsa-sign", "--rsa-scheme", "pss", "--digest", "sha512")
			return out
		}())
		run(t, ExitOK, data, "verify-raw", "--key", "rsa-sign", "--signature", sig, "--rsa-scheme", "pss", "--digest", "sha512")
		run(t, ExitFailure, data, "verify-raw", "--key", "rsa-sign", "--signature", sig)
		sig = write(t, "sig", func() []byte {
			out, _ := run(t, ExitOK, data, "sign-raw", "--key", "sm2-sign", "--sm2-user-id", "bob")
			return out
		}())
		run(t, ExitOK, data, "verify-raw", "--key", "sm2-sign", "--signature", sig, "--sm2-user-id", "bob")
		out, _ := run(t, ExitOK, data, "sign-raw", "--key", "ecdsa-sign", "--json")
		if !strings.Contains(string(out), `"signatureAlgorithm"`) {
			t.Errorf("sign-raw --json: %s", out)
		}
	})

	t.Run("envelopes", func(t *testing.T) {
		env, _ := run(t, ExitOK, data, "envelope", "--recipient-keys", "rsa-enc", "--cipher", "aes128-cbc",
			"--rsa-scheme", "pkcs1v15", "--recipient-id", "ski")
		out, _ := run(t, ExitOK, env, "decrypt", "--key", "rsa-enc", "--allow-legacy")
		if !bytes.Equal(out, data) {
			t.Errorf("decrypt: %q", out)
		}
		for _, tc := range []struct {
			key, enc, format string
			flags            []string
			damaged          int
		}{
			{"rsa-sign", "rsa-enc", "nested", []string{"--envelope-rsa-scheme", "oaep", "--rsa-scheme", "pss"}, ExitUsage},
			{"sm2-sign", "sm2-enc", "signed-and-enveloped-data", []string{"--envelope-sm2-dialect", "gmt0010", "--sm2-dialect", "gmt0010"}, ExitFailure},
		} {
			env, _ := run(t, ExitOK, data, append([]string{"sign-and-envelope", "--key", tc.key, "--recipient-certs", devFile("keys", tc.enc+".chain.pem"),
				"--format", tc.format, "--pem", "--no-signed-attributes"}, tc.flags...)...)
			contentOut := filepath.Join(t.TempDir(), "content")
			out, _ := run(t, ExitOK, env, "decrypt-and-verify", "--key", tc.enc, "--out", contentOut, "--allow-legacy",
				"--allow-sm2-without-z", "--certificates", devFile("keys", tc.key+".chain.pem"))
			if got, _ := os.ReadFile(contentOut); !bytes.Equal(got, data) || !strings.Contains(string(out), "verified: yes") {
				t.Errorf("%s: %q\n%s", tc.format, got, out)
			}
			// Damage near the end: in the nested form the encrypted content, refused as
			// input (DECRYPTION_FAILED is INVALID_ARGUMENT); in a SignedAndEnvelopedData
			// the signature, a forgery.
			der := pemOrDER(env)
			der[len(der)-20] ^= 0xff
			run(t, tc.damaged, der, "decrypt-and-verify", "--key", tc.enc)
		}
		run(t, ExitServer, env, "decrypt", "--key", "rsa-sign") // a signing key: FAILED_PRECONDITION
		// A password recipient, in an envelope and a signed envelope.
		pw := write(t, "pw", []byte("correct horse battery staple\n"))
		env, _ = run(t, ExitOK, data, "envelope", "--password-file", pw, "--pbkdf2-iterations", "2000", "--cipher", "aes256-cbc")
		if out, _ := run(t, ExitOK, env, "decrypt", "--password-file", pw); !bytes.Equal(out, data) {
			t.Errorf("decrypt --password-file: %q", out)
		}
		run(t, ExitUsage, env, "decrypt", "--password-file", write(t, "wrong", []byte("wrong\n")))
		env, _ = run(t, ExitOK, data, "sign-and-envelope", "--key", "ecdsa-sign", "--password-file", pw, "--pbkdf2-iterations", "2000")
		run(t, ExitOK, env, "decrypt-and-verify", "--password-file", pw)
		// Raw encryption.
		ct, _ := run(t, ExitOK, data, "encrypt-raw", "--key", "sm2-enc", "--sm2-encoding", "c1c3c2")
		if out, _ := run(t, ExitOK, ct, "decrypt-raw", "--key", "sm2-enc", "--sm2-encoding", "c1c3c2"); !bytes.Equal(out, data) {
			t.Errorf("decrypt-raw: %q", out)
		}
		ct, _ = run(t, ExitOK, data, "encrypt-raw", "--certificate", devFile("keys", "rsa-enc.chain.pem"), "--oaep-digest", "sha384")
		run(t, ExitOK, ct, "decrypt-raw", "--key", "rsa-enc", "--oaep-digest", "sha384")
	})

	t.Run("timestamp", func(t *testing.T) {
		resp, _ := run(t, ExitOK, data, "timestamp", "--nonce", "0102", "--digest-algorithm", "sha256")
		respFile := write(t, "resp.tsr", resp)
		opensslRun(t, "ts", "-verify", "-in", respFile, "-data", dataFile, "-CAfile", devFile("roots.pem"))
		tok, _ := run(t, ExitOK, nil, "timestamp", "--digest", hex.EncodeToString(make([]byte, 32)), "--token", "--omit-certificate")
		if len(tok) == 0 || tok[0] != 0x30 {
			t.Errorf("--token: %x", tok)
		}
		query := opensslRun(t, "ts", "-query", "-data", dataFile, "-sha256", "-cert")
		resp, _ = run(t, ExitOK, nil, "timestamp", "--request", write(t, "q.tsq", query))
		opensslRun(t, "ts", "-verify", "-in", write(t, "r.tsr", resp), "-queryfile", write(t, "q2.tsq", query), "-CAfile", devFile("roots.pem"))
		run(t, ExitUsage, nil, "timestamp", "--digest", "zz")
	})

	t.Run("cert", func(t *testing.T) {
		chain := devFile("keys", "rsa-sign.chain.pem")
		out, _ := run(t, ExitOK, nil, "cert", "validate", "--in", chain, "--purpose", "sign")
		if !strings.Contains(string(out), "certificate GOOD") {
			t.Errorf("cert validate: %s", out)
		}
		out, _ = run(t, ExitFailure, nil, "cert", "validate", "--in", chain, "--purpose", "encrypt")
		if !strings.Contains(string(out), "WRONG_USAGE") {
			t.Errorf("cert validate --purpose encrypt: %s", out)
		}
		run(t, ExitFailure, nil, "cert", "validate", "--in", chain, "--time", "2001-01-01T00:00:00Z")
		gmsslCA := "../../pkg/sign/testdata/gmssl/ca.pem"
		run(t, ExitFailure, nil, "cert", "validate", "--in", "../../pkg/sign/testdata/gmssl/signer.pem", "--intermediates", gmsslCA)
		out, _ = run(t, ExitOK, nil, "cert", "parse", "--in", chain)
		if !strings.Contains(string(out), "subject: CN=signsvr development rsa-sign") {
			t.Errorf("cert parse: %s", out)
		}
		out, _ = run(t, ExitOK, nil, "cert", "parse", "--in", gmsslCA, "--json")
		var parsed struct{ Info struct{ Subject string } }
		if err := json.Unmarshal(out, &parsed); err != nil || parsed.Info.Subject != "CN=GmSSL fixture CA,O=GmSSL fixtures,C=CN" {
			t.Errorf("cert parse --json: %s", out)
		}
		run(t, ExitUsage, []byte("not a certificate"), "cert", "parse")
	})

	t.Run("keys-auth", func(t *testing.T) {
		out, _ := run(t, ExitOK, nil, "keys", "list", "--usage", "decrypt")
		if strings.Contains(string(out), "-sign\t") || !strings.Contains(string(out), "# rsa-enc") {
			t.Errorf("keys list --usage decrypt:\n%s", out)
		}
		out, _ = run(t, ExitOK, nil, "auth", "token-key")
		if !strings.Contains(string(out), "BEGIN PUBLIC KEY") {
			t.Errorf("auth token-key: %s", out)
		}
		// A login answered with the server's own calls: a raw signature by sign-raw,
		// a CMS one by sign.
		ch, _ := run(t, ExitOK, nil, "auth", "challenge")
		challenge := strings.TrimSpace(string(ch))
		sig := write(t, "sig", func() []byte { o, _ := run(t, ExitOK, []byte(challenge), "sign-raw", "--key", "rsa-sign"); return o }())
		run(t, ExitOK, nil, "login", "--challenge", challenge, "--signature", sig, "--cert", devFile("keys", "rsa-sign.chain.pem"),
			"--rsa-scheme", "pkcs1v15")
		ch, _ = run(t, ExitOK, nil, "auth", "challenge", "--json")
		var c struct{ Challenge string }
		json.Unmarshal(ch, &c)
		cms := write(t, "cms", func() []byte { o, _ := run(t, ExitOK, []byte(c.Challenge), "sign", "--key", "ecdsa-sign"); return o }())
		run(t, ExitOK, nil, "login", "--challenge", c.Challenge, "--cms", cms)
		// A forged signature: refused, exit 1.
		forged, _ := os.ReadFile(sig)
		forged[len(forged)-1] ^= 1
		out, _ = run(t, ExitFailure, nil, "login", "--challenge", challenge, "--signature", write(t, "forged", forged),
			"--cert", devFile("keys", "rsa-sign.chain.pem"))
		if !strings.Contains(string(out), "refused: ") {
			t.Errorf("forged login: %s", out)
		}
	})
}

// TestCLIUsageAndExitCodes: the dispatch, usage and exit codes that need no call.
func TestCLIUsageAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"version", []string{"version"}, ExitOK, "signsvr "},
		{"--version", []string{"--version"}, ExitOK, "signsvr "},
		{"help", []string{"help"}, ExitOK, "Exit codes:"},
		{"keys without subcommand", []string{"keys"}, ExitUsage, "signsvr keys list"},
		{"cert without subcommand", []string{"cert"}, ExitUsage, "signsvr cert validate"},
		{"unknown subcommand", []string{"keys", "frobnicate"}, ExitUsage, "unknown subcommand"},
		{"unknown command", []string{"frobnicate"}, ExitUsage, "unknown command"},
		{"bad flag", []string{"verify", "--no-such-flag"}, ExitUsage, "flag provided but not defined"},
		{"bad flag before the command", []string{"--frob", "verify"}, ExitUsage, "before the command"},
		{"bad enum", []string{"sign", "--key", "k", "--digest", "md5"}, ExitUsage, "--digest"},
		{"missing file", []string{"verify", "--in", "/no/such/file"}, ExitUsage, "no such file"},
		{"unreadable tls-ca", []string{"--tls-ca", "/no/such/ca.pem", "keys", "list"}, ExitUsage, "no such file"},
		{"global flag on an offline command", []string{"--addr", "x:1", "audit", "verify", "f"}, ExitUsage, "applies to commands that talk to a server"},
		{"keys generate help", []string{"keys", "generate", "-h"}, ExitOK, "-module"},
		{"audit verify of nothing", []string{"audit", "verify", "/no/such/audit.jsonl"}, ExitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := Main(t.Context(), tc.args, strings.NewReader(""), &out, &errs)
			if code != tc.code || !strings.Contains(out.String()+errs.String(), tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s%s", code, tc.code, tc.want, out.String(), errs.String())
			}
		})
	}
	// A dead address: exit 3, for every client command that gets as far as a call.
	dead := deadAddr(t)
	for _, args := range [][]string{{"keys", "list"}, {"verify"}, {"cert", "parse"}, {"auth", "challenge"}, {"version"}} {
		code, _, errs := cli(t, dead, []byte("0"), append(args, "--timeout", "2s")...)
		want := ExitServer
		if args[0] == "version" {
			want = ExitUsage // an offline command given --addr
		}
		if code != want {
			t.Errorf("%v at a dead address: exit %d, want %d: %s", args, code, want, errs)
		}
	}
}

// TestEveryCommandRan: TestCLIEveryCall ran every client command of the table.
func TestEveryCommandRan(t *testing.T) {
	if testing.Short() || !ran.names["verify"] {
		t.Skip("runs after TestCLIEveryCall")
	}
	for _, c := range Commands() {
		if c.Client && !ran.names[c.Name] {
			t.Errorf("no test runs %q against the server", c.Name)
		}
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
