package cli

// The flags of the API's option messages, one flag for each field, named as the
// field (sm2_user_id is --sm2-user-id), registered by every command whose request
// holds the message: SignOptions for sign, sign-batch and sign-and-envelope,
// VerifyOptions for verify, verify-batch and decrypt-and-verify, and so on.

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// enumFlag maps flag words to enum values.
func enumFlag[T ~int32](name, v string, words map[string]T) (T, error) {
	if v == "" {
		return 0, nil
	}
	if e, ok := words[strings.ToLower(v)]; ok {
		return e, nil
	}
	return 0, fmt.Errorf("--%s: %q is not one of %s", name, v, strings.Join(sortedKeys(words), ", "))
}

var (
	digestWords = map[string]signsvrv1.DigestAlgorithm{
		"sha256": signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256,
		"sha384": signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384,
		"sha512": signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512,
		"sm3":    signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3,
	}
	rsaSigWords = map[string]signsvrv1.RsaSignatureScheme{
		"pkcs1v15": signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PKCS1V15,
		"pss":      signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS,
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
	timestampWords = map[string]signsvrv1.SignatureTimestamp{
		"server":   signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_SERVER,
		"external": signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_EXTERNAL,
	}
	formatWords = map[string]signsvrv1.EnvelopeFormat{
		"nested":                    signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_NESTED,
		"signed-and-enveloped-data": signsvrv1.EnvelopeFormat_ENVELOPE_FORMAT_SIGNED_AND_ENVELOPED_DATA,
	}
	usageWords = map[string]signsvrv1.KeyUsage{
		"sign":    signsvrv1.KeyUsage_KEY_USAGE_SIGN,
		"decrypt": signsvrv1.KeyUsage_KEY_USAGE_DECRYPT,
	}
	purposeWords = map[string]signsvrv1.CertificatePurpose{
		"sign":        signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_SIGN,
		"encrypt":     signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_ENCRYPT,
		"client-auth": signsvrv1.CertificatePurpose_CERTIFICATE_PURPOSE_CLIENT_AUTH,
	}
)

func words[T any](m map[string]T) string { return strings.Join(sortedKeys(m), ", ") }

// optionalBool is a boolean flag that also knows whether it was given, for the
// API's optional bool fields: absent leaves the server's default, --f or --f=true
// asks for true, --f=false for false.
type optionalBool struct{ v *bool }

func (b *optionalBool) IsBoolFlag() bool { return true }
func (b *optionalBool) String() string {
	if b == nil || b.v == nil {
		return ""
	}
	return strconv.FormatBool(*b.v)
}
func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.v = &v
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// signOptionFlags are the flags of SignOptions.
type signOptionFlags struct {
	digest, rsaScheme, signerID, certificates, sm2Dialect, sm2UserID string
	pss, noSignedAttributes                                          bool
}

func (f *signOptionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.digest, "digest", "", "digest: "+words(digestWords)+" (default: the key's)")
	fs.StringVar(&f.rsaScheme, "rsa-scheme", "", "RSA signature padding: "+words(rsaSigWords)+" (default pkcs1v15)")
	fs.BoolVar(&f.pss, "pss", false, "the same as --rsa-scheme pss")
	fs.StringVar(&f.signerID, "signer-id", "", "how the SignerInfo names the certificate: "+words(signerIDWords)+" (default issuer-serial)")
	fs.StringVar(&f.certificates, "certificates", "", "certificates to include: "+words(certWords)+" (default leaf)")
	fs.StringVar(&f.certificates, "certs", "", "the same as --certificates")
	fs.StringVar(&f.sm2Dialect, "sm2-dialect", "", "SM2 OIDs: "+words(dialectWords)+" (default gmt0010 for SM2-only messages)")
	fs.StringVar(&f.sm2UserID, "sm2-user-id", "", "SM2 user ID in the Z value (default 1234567812345678)")
	fs.StringVar(&f.sm2UserID, "sm2-uid", "", "the same as --sm2-user-id")
	fs.BoolVar(&f.noSignedAttributes, "no-signed-attributes", false, "no signed attributes (no signing time), for old peers")
	fs.BoolVar(&f.noSignedAttributes, "no-attrs", false, "the same as --no-signed-attributes")
}

func (f *signOptionFlags) options() (*signsvrv1.SignOptions, error) {
	o := &signsvrv1.SignOptions{NoSignedAttributes: f.noSignedAttributes, Sm2UserId: []byte(f.sm2UserID)}
	var err error
	if o.Digest, err = enumFlag("digest", f.digest, digestWords); err != nil {
		return nil, err
	}
	if o.RsaScheme, err = enumFlag("rsa-scheme", f.rsaScheme, rsaSigWords); err != nil {
		return nil, err
	}
	if f.pss {
		if f.rsaScheme != "" && o.RsaScheme != signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS {
			return nil, fmt.Errorf("--pss contradicts --rsa-scheme %s", f.rsaScheme)
		}
		o.RsaScheme = signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS
	}
	if o.SignerId, err = enumFlag("signer-id", f.signerID, signerIDWords); err != nil {
		return nil, err
	}
	if o.Certificates, err = enumFlag("certificates", f.certificates, certWords); err != nil {
		return nil, err
	}
	if o.Sm2Dialect, err = enumFlag("sm2-dialect", f.sm2Dialect, dialectWords); err != nil {
		return nil, err
	}
	return o, nil
}

// verifyOptionFlags are the flags of VerifyOptions.
type verifyOptionFlags struct {
	sm2UserID        string
	certificates     stringList
	allowSHA1        bool
	omitContent      bool
	allowSM2WithoutZ optionalBool
}

func (f *verifyOptionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.sm2UserID, "sm2-user-id", "", "SM2 user ID in the Z value (default 1234567812345678)")
	fs.StringVar(&f.sm2UserID, "sm2-uid", "", "the same as --sm2-user-id")
	fs.Var(&f.certificates, "certificates", "PEM or DER file of certificates to find signers in (repeatable)")
	fs.Var(&f.certificates, "certs", "the same as --certificates")
	fs.BoolVar(&f.allowSHA1, "allow-sha1", false, "accept SHA-1 digests, to read old data")
	fs.BoolVar(&f.omitContent, "omit-content", false, "ask the server not to return the content (implied unless --out or --json)")
	fs.Var(&f.allowSM2WithoutZ, "allow-sm2-without-z", "accept SM2 signatures without the Z value, as GmSSL 3.x writes them; "+
		"=false refuses them even where the server allows them by default (default: the server's verify.allow_sm2_without_z)")
}

func (f *verifyOptionFlags) options() (*signsvrv1.VerifyOptions, error) {
	o := &signsvrv1.VerifyOptions{Sm2UserId: []byte(f.sm2UserID), AllowSha1: f.allowSHA1, OmitContent: f.omitContent,
		AllowSm2WithoutZ: f.allowSM2WithoutZ.v}
	for _, file := range f.certificates {
		ders, err := certsFromFile(file)
		if err != nil {
			return nil, fmt.Errorf("--certificates: %w", err)
		}
		o.Certificates = append(o.Certificates, ders...)
	}
	return o, nil
}

// envelopeOptionFlags are the flags of EnvelopeOptions. prefix goes before the
// names that would collide with SignOptions' in sign-and-envelope.
type envelopeOptionFlags struct {
	cipher, rsaScheme, recipientID, sm2Dialect string
	ecdhCofactor                               bool
	pbkdf2Iterations                           uint
	prefix                                     string
}

func (f *envelopeOptionFlags) register(fs *flag.FlagSet, prefix string) {
	f.prefix = prefix
	fs.StringVar(&f.cipher, "cipher", "", "content cipher: "+words(cipherWords)+" (default aes256-gcm, sm4-cbc when every recipient is SM2)")
	fs.StringVar(&f.rsaScheme, prefix+"rsa-scheme", "", "RSA key transport: "+words(rsaEncWords)+" (default oaep)")
	if prefix == "" {
		fs.StringVar(&f.rsaScheme, "rsa", "", "the same as --rsa-scheme")
	}
	fs.StringVar(&f.recipientID, "recipient-id", "", "how RecipientInfos name certificates: "+words(recipientIDWords)+" (default issuer-serial)")
	fs.StringVar(&f.sm2Dialect, prefix+"sm2-dialect", "", "SM2 OIDs of the envelope: "+words(dialectWords))
	fs.BoolVar(&f.ecdhCofactor, "ecdh-cofactor", false, "cofactor ECDH for EC recipients")
	fs.UintVar(&f.pbkdf2Iterations, "pbkdf2-iterations", 0, "PBKDF2 iterations of password recipients (default: the server's)")
}

func (f *envelopeOptionFlags) options() (*signsvrv1.EnvelopeOptions, error) {
	if f.pbkdf2Iterations > 1<<32-1 {
		return nil, fmt.Errorf("--pbkdf2-iterations %d is too large", f.pbkdf2Iterations)
	}
	o := &signsvrv1.EnvelopeOptions{EcdhCofactor: f.ecdhCofactor, Pbkdf2Iterations: uint32(f.pbkdf2Iterations)}
	var err error
	if o.Cipher, err = enumFlag("cipher", f.cipher, cipherWords); err != nil {
		return nil, err
	}
	if o.RsaScheme, err = enumFlag(f.prefix+"rsa-scheme", f.rsaScheme, rsaEncWords); err != nil {
		return nil, err
	}
	if o.RecipientId, err = enumFlag("recipient-id", f.recipientID, recipientIDWords); err != nil {
		return nil, err
	}
	if o.Sm2Dialect, err = enumFlag(f.prefix+"sm2-dialect", f.sm2Dialect, dialectWords); err != nil {
		return nil, err
	}
	return o, nil
}

// recipientFlags are the recipients of EnvelopeRequest and SignAndEnvelopeRequest:
// recipient_certs, recipient_keys, recipient_kek_keys and recipient_passwords (a
// password from a file or the environment, never a flag value).
type recipientFlags struct {
	certs, keys, keks stringList
	passwords         passwordFlags
}

func (f *recipientFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.certs, "recipient-certs", "recipient certificate file, PEM or DER; of a chain file the leaf (repeatable)")
	fs.Var(&f.certs, "cert", "the same as --recipient-certs")
	fs.Var(&f.keys, "recipient-keys", "recipient named by a server key name (repeatable)")
	fs.Var(&f.keys, "to", "the same as --recipient-keys")
	fs.Var(&f.keks, "recipient-kek-keys", "recipient symmetric key-encryption key name on the server (repeatable)")
	fs.Var(&f.keks, "to-kek", "the same as --recipient-kek-keys")
	f.passwords.register(fs, true)
}

// recipients are the recipients of a request.
type recipients struct {
	certs     [][]byte
	keys      []string
	keks      []string
	passwords [][]byte
}

// recipients reads the certificate files (a PEM chain file names its leaf first, and
// that is the recipient) and the passwords.
func (f *recipientFlags) recipients() (recipients, error) {
	r := recipients{keys: f.keys, keks: f.keks}
	var err error
	if r.passwords, err = f.passwords.passwords(); err != nil {
		return r, err
	}
	if len(f.certs)+len(f.keys)+len(f.keks)+len(r.passwords) == 0 {
		return r, fmt.Errorf("give at least one --recipient-certs (--cert) or --recipient-keys (--to) " +
			"(or --recipient-kek-keys, --password-file, --password-env)")
	}
	for _, file := range f.certs {
		ders, err := certsFromFile(file)
		if err != nil {
			return r, fmt.Errorf("--recipient-certs: %w", err)
		}
		r.certs = append(r.certs, ders[0])
	}
	return r, nil
}

// decryptOptionFlags are the flags of DecryptOptions (the password from a file or
// the environment).
type decryptOptionFlags struct {
	allowLegacy bool
	password    passwordFlags
}

func (f *decryptOptionFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.allowLegacy, "allow-legacy", false, "accept legacy algorithms (3DES, SHA-1 based), to read old data")
	f.password.register(fs, false)
}

func (f *decryptOptionFlags) options() (*signsvrv1.DecryptOptions, error) {
	o := &signsvrv1.DecryptOptions{AllowLegacy: f.allowLegacy}
	pw, err := f.password.passwords()
	switch {
	case err != nil:
		return nil, err
	case len(pw) > 1:
		return nil, errors.New("give one password at most")
	case len(pw) == 1:
		o.Password = pw[0]
	}
	return o, nil
}
