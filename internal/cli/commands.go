package cli

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/cli/hsmkeys"
)

// enumFlag maps flag words to enum values.
func enumFlag[T ~int32](name, v string, words map[string]T) (T, error) {
	if v == "" {
		return 0, nil
	}
	if e, ok := words[strings.ToLower(v)]; ok {
		return e, nil
	}
	keys := make([]string, 0, len(words))
	for k := range words {
		keys = append(keys, k)
	}
	return 0, fmt.Errorf("--%s: %q is not one of %s", name, v, strings.Join(sortStrings(keys), ", "))
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

var (
	digestWords = map[string]signsvrv1.DigestAlgorithm{
		"sha256": signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256,
		"sha384": signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384,
		"sha512": signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512,
		"sm3":    signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3,
	}
	signerIDWords = map[string]signsvrv1.SignerIdType{
		"issuer-serial": signsvrv1.SignerIdType_SIGNER_ID_TYPE_ISSUER_AND_SERIAL,
		"ski":           signsvrv1.SignerIdType_SIGNER_ID_TYPE_SUBJECT_KEY_ID,
	}
	certWords = map[string]signsvrv1.CertInclusion{
		"leaf":  signsvrv1.CertInclusion_CERT_INCLUSION_LEAF,
		"chain": signsvrv1.CertInclusion_CERT_INCLUSION_CHAIN,
		"none":  signsvrv1.CertInclusion_CERT_INCLUSION_NONE,
	}
	dialectWords = map[string]signsvrv1.Sm2Dialect{
		"pkcs7":   signsvrv1.Sm2Dialect_SM2_DIALECT_PKCS7,
		"gmt0010": signsvrv1.Sm2Dialect_SM2_DIALECT_GMT0010,
	}
	cipherWords = map[string]signsvrv1.Cipher{
		"aes128-cbc": signsvrv1.Cipher_CIPHER_AES128_CBC,
		"aes256-cbc": signsvrv1.Cipher_CIPHER_AES256_CBC,
		"aes128-gcm": signsvrv1.Cipher_CIPHER_AES128_GCM,
		"aes256-gcm": signsvrv1.Cipher_CIPHER_AES256_GCM,
		"sm4-cbc":    signsvrv1.Cipher_CIPHER_SM4_CBC,
		"sm4-gcm":    signsvrv1.Cipher_CIPHER_SM4_GCM,
	}
	rsaEncWords = map[string]signsvrv1.RsaEncryptionScheme{
		"oaep":     signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_OAEP,
		"pkcs1v15": signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15,
	}
	recipientIDWords = map[string]signsvrv1.RecipientIdType{
		"issuer-serial": signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_ISSUER_AND_SERIAL,
		"ski":           signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_SUBJECT_KEY_ID,
	}
)

// Sign is `signsvr sign`: the input signed by a server key, as CMS SignedData.
func Sign(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	key := fs.String("key", "", "signing key name (required)")
	detached := fs.Bool("detached", false, "detached signature: leave the content out")
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	digest := fs.String("digest", "", "sha256, sha384, sha512 or sm3 (default: the key's)")
	pss := fs.Bool("pss", false, "RSA-PSS instead of PKCS#1 v1.5 (RSA keys)")
	signerID := fs.String("signer-id", "", "issuer-serial (default) or ski")
	certs := fs.String("certs", "", "certificates to include: leaf (default), chain or none")
	dialect := fs.String("sm2-dialect", "", "SM2 OIDs: gmt0010 (default for SM2) or pkcs7")
	uid := fs.String("sm2-uid", "", "SM2 user ID (default 1234567812345678)")
	noAttrs := fs.Bool("no-attrs", false, "no signed attributes (old peers)")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	if *key == "" {
		fmt.Fprintln(stderr, "signsvr sign: --key is required")
		return ExitUsage
	}
	opts := &signsvrv1.SignOptions{NoSignedAttributes: *noAttrs, Sm2UserId: []byte(*uid)}
	var err error
	if *pss {
		opts.RsaScheme = signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS
	}
	if opts.Digest, err = enumFlag("digest", *digest, digestWords); err == nil {
		if opts.SignerId, err = enumFlag("signer-id", *signerID, signerIDWords); err == nil {
			if opts.Certificates, err = enumFlag("certs", *certs, certWords); err == nil {
				opts.Sm2Dialect, err = enumFlag("sm2-dialect", *dialect, dialectWords)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
		return ExitUsage
	}
	data, err := c.readInput(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
		return ExitFailure
	}
	var resp *signsvrv1.SignResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).Sign(ctx, &signsvrv1.SignRequest{
			Key: *key, Data: data, Detached: *detached, Options: opts,
		})
		return err
	})
	if err != nil {
		return fail(stderr, "sign", err)
	}
	out := resp.GetCms()
	if *asPEM {
		out = cmsPEM(out)
	}
	if err := c.writeOutput(stdout, out); err != nil {
		fmt.Fprintf(stderr, "signsvr sign: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// Verify is `signsvr verify`: the server verifies a SignedData; the exit code is
// ExitOK only when every signer has a valid signature and a good certificate.
func Verify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	fs.StringVar(&c.in, "in", "", "the signature, DER or PEM (default stdin)")
	contentOut := fs.String("out", "", "write the signed content to this file")
	content := fs.String("content", "", "the content of a detached signature")
	asJSON := fs.Bool("json", false, "print the full result as JSON")
	uid := fs.String("sm2-uid", "", "SM2 user ID (default 1234567812345678)")
	var extra stringList
	fs.Var(&extra, "certs", "PEM file of certificates to find signers in (repeatable)")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	sig, err := c.readInput(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
		return ExitFailure
	}
	req := &signsvrv1.VerifyRequest{Cms: pemOrDER(sig), Options: &signsvrv1.VerifyOptions{Sm2UserId: []byte(*uid)}}
	if *content != "" {
		if req.Data, err = readFileOr(*content, stdin); err != nil {
			fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
			return ExitFailure
		}
	}
	for _, f := range extra {
		ders, err := certsFromFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr verify: --certs: %v\n", err)
			return ExitFailure
		}
		req.Options.Certificates = append(req.Options.Certificates, ders...)
	}
	if *contentOut == "" && !*asJSON {
		req.Options.OmitContent = true
	}
	var resp *signsvrv1.VerifyResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewSignServiceClient(cc).Verify(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "verify", err)
	}
	if *contentOut != "" {
		c.out = *contentOut
		if err := c.writeOutput(stdout, resp.GetContent()); err != nil {
			fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
			return ExitFailure
		}
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			fmt.Fprintf(stderr, "signsvr verify: %v\n", err)
			return ExitFailure
		}
	} else {
		printVerify(stdout, resp.GetVerified(), resp.GetSigners())
	}
	if !resp.GetVerified() {
		return ExitFailure
	}
	return ExitOK
}

func printVerify(w io.Writer, verified bool, signers []*signsvrv1.SignerResult) {
	if verified {
		fmt.Fprintln(w, "verified: yes")
	} else {
		fmt.Fprintln(w, "verified: NO")
	}
	if len(signers) == 0 {
		fmt.Fprintln(w, "no signers")
	}
	for _, s := range signers {
		sig := "valid"
		if !s.GetSignature().GetValid() {
			sig = "INVALID (" + s.GetSignature().GetReason() + ")"
		}
		cv := s.GetCertificateVerdict()
		cert := strings.TrimPrefix(cv.GetStatus().String(), "CERTIFICATE_STATUS_")
		if cv.GetReason() != "" {
			cert += " (" + cv.GetReason() + ")"
		}
		who := s.GetSubject()
		if who == "" {
			who = "issuer " + s.GetIssuer() + " serial " + s.GetSerial()
		}
		fmt.Fprintf(w, "signer %d: signature %s; certificate %s; %s", s.GetIndex(), sig, cert, who)
		if t := s.GetSigningTime(); t != nil {
			fmt.Fprintf(w, "; signed at %s", t.AsTime().UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// Envelope is `signsvr envelope`: the input enveloped to certificates and/or server keys.
func Envelope(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("envelope", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	var certFiles, to stringList
	fs.Var(&certFiles, "cert", "recipient certificate file, PEM or DER (repeatable)")
	fs.Var(&to, "to", "recipient key name on the server (repeatable)")
	asPEM := fs.Bool("pem", false, "write PEM instead of DER")
	cipher := fs.String("cipher", "", "aes128-cbc, aes256-cbc, aes128-gcm, aes256-gcm (default), sm4-cbc (default for SM2), sm4-gcm")
	rsaScheme := fs.String("rsa", "", "RSA key transport: oaep (default) or pkcs1v15")
	rid := fs.String("recipient-id", "", "issuer-serial (default) or ski")
	dialect := fs.String("sm2-dialect", "", "SM2 OIDs: gmt0010 (default for SM2) or pkcs7")
	var keks stringList
	fs.Var(&keks, "to-kek", "recipient symmetric key-encryption key name on the server (repeatable)")
	var pwf passwordFlags
	pwf.register(fs, true)
	cofactor := fs.Bool("ecdh-cofactor", false, "cofactor ECDH for EC recipients")
	iterations := fs.Uint("pbkdf2-iterations", 0, "PBKDF2 iterations of password recipients (default: the server's)")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	passwords, err := pwf.passwords()
	if err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitUsage
	}
	if len(certFiles)+len(to)+len(keks)+len(passwords) == 0 {
		fmt.Fprintln(stderr, "signsvr envelope: give at least one --cert or --to (or --to-kek, --password-file, --password-env)")
		return ExitUsage
	}
	opts := &signsvrv1.EnvelopeOptions{EcdhCofactor: *cofactor, Pbkdf2Iterations: uint32(*iterations)}
	if opts.Cipher, err = enumFlag("cipher", *cipher, cipherWords); err == nil {
		if opts.RsaScheme, err = enumFlag("rsa", *rsaScheme, rsaEncWords); err == nil {
			if opts.RecipientId, err = enumFlag("recipient-id", *rid, recipientIDWords); err == nil {
				opts.Sm2Dialect, err = enumFlag("sm2-dialect", *dialect, dialectWords)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitUsage
	}
	req := &signsvrv1.EnvelopeRequest{RecipientKeys: to, Options: opts, RecipientKekKeys: keks, RecipientPasswords: passwords}
	for _, f := range certFiles {
		ders, err := certsFromFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr envelope: --cert: %v\n", err)
			return ExitFailure
		}
		// A PEM chain file names its leaf first: that is the recipient.
		req.RecipientCerts = append(req.RecipientCerts, ders[0])
	}
	if req.Data, err = c.readInput(stdin); err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitFailure
	}
	var resp *signsvrv1.EnvelopeResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewEnvelopeServiceClient(cc).Envelope(ctx, req)
		return err
	})
	if err != nil {
		return fail(stderr, "envelope", err)
	}
	out := resp.GetCms()
	if *asPEM {
		out = cmsPEM(out)
	}
	if err := c.writeOutput(stdout, out); err != nil {
		fmt.Fprintf(stderr, "signsvr envelope: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// Decrypt is `signsvr decrypt`: an envelope opened with a server key.
func Decrypt(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, true)
	key := fs.String("key", "", "decryption key name (a private or a key-encryption key); or give a password")
	legacy := fs.Bool("allow-legacy", false, "accept legacy algorithms (3DES, SHA-1)")
	var pwf passwordFlags
	pwf.register(fs, false)
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	passwords, err := pwf.passwords()
	if err != nil || len(passwords) > 1 {
		fmt.Fprintf(stderr, "signsvr decrypt: give one password at most (%v)\n", err)
		return ExitUsage
	}
	var password []byte
	if len(passwords) == 1 {
		password = passwords[0]
	}
	if (*key == "") == (password == nil) {
		fmt.Fprintln(stderr, "signsvr decrypt: give --key or a password (--password-file, --password-env)")
		return ExitUsage
	}
	in, err := c.readInput(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr decrypt: %v\n", err)
		return ExitFailure
	}
	var resp *signsvrv1.DecryptResponse
	err = c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewEnvelopeServiceClient(cc).Decrypt(ctx, &signsvrv1.DecryptRequest{
			Key: *key, Cms: pemOrDER(in), Options: &signsvrv1.DecryptOptions{AllowLegacy: *legacy, Password: password},
		})
		return err
	})
	if err != nil {
		return fail(stderr, "decrypt", err)
	}
	if err := c.writeOutput(stdout, resp.GetData()); err != nil {
		fmt.Fprintf(stderr, "signsvr decrypt: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// Keys is `signsvr keys`: `list` asks the server for its keys; `generate`, `csr`
// and `import-cert` manage keys in an HSM token directly (internal/cli/hsmkeys).
func Keys(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "signsvr keys: give a subcommand: list, generate, csr or import-cert")
		return ExitUsage
	}
	switch args[0] {
	case "list":
		return runKeysList(ctx, args[1:], stdout, stderr)
	case "generate", "csr", "import-cert", "import-secret":
		return hsmkeys.Run(args, stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "signsvr keys: unknown subcommand %q (list, generate, csr, import-cert)\n", args[0])
	return ExitUsage
}

func runKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c clientFlags
	fs := flag.NewFlagSet("keys list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	if !parseFlags(fs, args, stderr) {
		return ExitUsage
	}
	var resp *signsvrv1.ListKeysResponse
	err := c.call(ctx, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = signsvrv1.NewKeyServiceClient(cc).ListKeys(ctx, &signsvrv1.ListKeysRequest{})
		return err
	})
	if err != nil {
		return fail(stderr, "keys list", err)
	}
	if *asJSON {
		if err := printJSON(stdout, resp); err != nil {
			fmt.Fprintf(stderr, "signsvr keys list: %v\n", err)
			return ExitFailure
		}
		return ExitOK
	}
	for _, k := range resp.GetKeys() {
		usages := make([]string, 0, len(k.GetUsages()))
		for _, u := range k.GetUsages() {
			usages = append(usages, strings.ToLower(strings.TrimPrefix(u.String(), "KEY_USAGE_")))
		}
		alg := strings.TrimPrefix(k.GetAlgorithm().String(), "KEY_ALGORITHM_")
		if k.GetCurve() != "" && k.GetAlgorithm() != signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2 {
			alg += "-" + k.GetCurve()
		} else if k.GetAlgorithm() == signsvrv1.KeyAlgorithm_KEY_ALGORITHM_RSA {
			alg += fmt.Sprintf("-%d", k.GetKeyBits())
		}
		notAfter := ""
		if t := k.GetNotAfter(); t != nil {
			notAfter = t.AsTime().UTC().Format(time.RFC3339)
		}
		if k.GetExpiresSoon() {
			notAfter += " (EXPIRES SOON)"
		}
		fmt.Fprintf(stdout, "# %s\t%s\t%s\tnot after %s\t%s\n", k.GetName(), alg, strings.Join(usages, ","), notAfter, k.GetSubject())
		for _, der := range k.GetCertificateChain() {
			pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
	}
	return ExitOK
}
