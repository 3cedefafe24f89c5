package envelope

import (
	"bytes"
	"crypto"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/emmansun/gmsm/sm3"

	"signsvr.dev/signsvr/pkg/cms"
)

// Recipients with a symmetric key-encryption key: a KEKRecipientInfo (a key both
// sides hold under an identifier, AES key wrap, RFC 3394 / RFC 3565) and a
// PasswordRecipientInfo (a key derived from a password with PBKDF2 and the RFC 3211
// key wrap, in the content cipher's CBC mode, as 'openssl cms -pwri_password' writes).

// KeyWrapper is a symmetric key-encryption key that wraps and unwraps content keys
// with AES key wrap (RFC 3394, default IV). A key in an HSM unwraps inside the token.
type KeyWrapper interface {
	// KeySize is the AES key's length in bytes: 16, 24 or 32.
	KeySize() int
	// WrapKey wraps a content key (a multiple of 8 bytes, at least 16).
	WrapKey(key []byte) ([]byte, error)
	// UnwrapKey unwraps it. Every failure is an error; Open folds it into ErrDecrypt.
	UnwrapKey(wrapped []byte) ([]byte, error)
}

// KEKRecipient is a recipient holding a symmetric key-encryption key: ID is the
// kekid keyIdentifier written to (and looked for in) the KEKRecipientInfo.
type KEKRecipient struct {
	ID  []byte
	Key KeyWrapper
}

// Password is the secret of a PasswordRecipientInfo. Give it to Open as the key (with
// a nil certificate) to open a password envelope. Open never keeps it.
type Password []byte

// AESKey is a KeyWrapper over an AES key in memory (16, 24 or 32 bytes).
type AESKey []byte

// KeySize implements KeyWrapper.
func (k AESKey) KeySize() int { return len(k) }

// WrapKey implements KeyWrapper.
func (k AESKey) WrapKey(key []byte) ([]byte, error) { return aesKeyWrap(k, key) }

// UnwrapKey implements KeyWrapper.
func (k AESKey) UnwrapKey(wrapped []byte) ([]byte, error) { return aesKeyUnwrap(k, wrapped) }

// PBKDF2 iteration counts of password recipients.
const (
	// DefaultPBKDF2Iterations is what Envelope writes when Options.PBKDF2Iterations
	// is 0.
	DefaultPBKDF2Iterations = 100_000
	// DefaultMaxPBKDF2Iterations bounds, when OpenOptions.MaxPBKDF2Iterations is 0,
	// the iterations Open spends on one message, over all its password recipients:
	// the count is the sender's to choose, so a hostile envelope could otherwise cost
	// unbounded CPU. 600,000 is what current guidance asks of PBKDF2-HMAC-SHA256, so
	// a well-tuned peer's envelope opens.
	DefaultMaxPBKDF2Iterations = 600_000
	// minPBKDF2Iterations is the least Envelope writes.
	minPBKDF2Iterations = 1000
	pbkdf2SaltLen       = 16
)

// ErrTooCostly is wrapped (with cms.ErrUnsupported) by the error of Open for a
// password envelope whose PBKDF2 iteration counts exceed OpenOptions.MaxPBKDF2Iterations.
// The count is in the clear, so saying so tells nothing secret.
var ErrTooCostly = errors.New("envelope: PBKDF2 iteration count over the limit")

func wrapAlgForKEK(size int) (asn1.ObjectIdentifier, error) {
	switch size {
	case 16:
		return cms.OIDAES128Wrap, nil
	case 24:
		return cms.OIDAES192Wrap, nil
	case 32:
		return cms.OIDAES256Wrap, nil
	}
	return nil, fmt.Errorf("%w: a key-encryption key must be an AES key of 16, 24 or 32 bytes, not %d", ErrInvalidOptions, size)
}

// kekRecipient makes the KEKRecipientInfo of r for cek.
func kekRecipient(r KEKRecipient, cek []byte) (*cms.KEKRecipientInfo, error) {
	if len(r.ID) == 0 || r.Key == nil {
		return nil, fmt.Errorf("%w: a KEK recipient needs a key identifier and a key", ErrInvalidOptions)
	}
	oid, err := wrapAlgForKEK(r.Key.KeySize())
	if err != nil {
		return nil, err
	}
	ek, err := r.Key.WrapKey(cek)
	if err != nil {
		return nil, fmt.Errorf("envelope: KEK recipient: %w", err)
	}
	return &cms.KEKRecipientInfo{Version: 4, KeyID: r.ID, KeyEncryptionAlgorithm: cms.AlgorithmIdentifier{Algorithm: oid}, EncryptedKey: ek}, nil
}

// unwrapKEK recovers the content key from the KEKRecipientInfo with r's key
// identifier: as the other unwraps, a keyLen-byte key in every case, ok = 0 when the
// unwrap failed; errors only for what the message says in the clear.
func (m *message) unwrapKEK(rand io.Reader, r KEKRecipient, keyLen int, backend func(error) bool) ([]byte, int, error) {
	if r.Key == nil {
		return nil, 0, ErrKeyType
	}
	var kekri *cms.KEKRecipientInfo
	for i := range m.ris {
		if k := m.ris[i].KEK; k != nil && bytes.Equal(k.KeyID, r.ID) {
			kekri = k
			break
		}
	}
	if kekri == nil {
		return nil, 0, ErrNoRecipient
	}
	n, ok := wrapKeyLenByOID(kekri.KeyEncryptionAlgorithm.Algorithm)
	if !ok {
		return nil, 0, unsupported("key wrap %s for a KEK recipient", kekri.KeyEncryptionAlgorithm.Algorithm)
	}
	if n != r.Key.KeySize() {
		return nil, 0, unsupported("key wrap %s does not fit the %d-bit key-encryption key", kekri.KeyEncryptionAlgorithm.Algorithm, 8*r.Key.KeySize())
	}
	out, err := randomKey(rand, keyLen)
	if err != nil {
		return nil, 0, err
	}
	key, err := r.Key.UnwrapKey(kekri.EncryptedKey)
	if err != nil && backend != nil && backend(err) {
		clear(out)
		return nil, 0, backendError(err)
	}
	good := boolToInt(err == nil) & subtle.ConstantTimeEq(int32(len(key)), int32(keyLen))
	return selectKey(out, key, err), good, nil
}

// prfByOID maps the PBKDF2 pseudo-random functions read here.
func prfByOID(oid asn1.ObjectIdentifier) (func() hash.Hash, bool) {
	switch {
	case oid.Equal(cms.OIDHMACWithSHA1):
		return crypto.SHA1.New, true
	case oid.Equal(cms.OIDHMACWithSHA256):
		return crypto.SHA256.New, true
	case oid.Equal(cms.OIDHMACWithSHA384):
		return crypto.SHA384.New, true
	case oid.Equal(cms.OIDHMACWithSHA512):
		return crypto.SHA512.New, true
	case oid.Equal(cms.OIDHMACWithSM3):
		return sm3.New, true
	}
	return nil, false
}

// pwriCipher is the CBC cipher of a password recipient's key wrap: the content cipher
// when it is CBC, else the CBC mode of the same block cipher and key length.
func pwriCipher(c contentAlg) contentAlg {
	if !c.gcm {
		return c
	}
	switch {
	case c.oid.Equal(cms.OIDSM4GCM):
		a, _ := contentAlgFor(SM4CBC)
		return a
	case c.keyLen == 16:
		a, _ := contentAlgFor(AES128CBC)
		return a
	}
	a, _ := contentAlgFor(AES256CBC)
	return a
}

// passwordRecipient makes the PasswordRecipientInfo for cek: PBKDF2 with
// HMAC-SHA-256 and a random salt, then the RFC 3211 key wrap in the CBC cipher c.
// HMAC-SHA-256 also for SM4 ciphers: HMAC-SM3 is read, but OpenSSL 3.0 has no PBKDF2
// with it.
func passwordRecipient(rand io.Reader, password []byte, iterations int, c contentAlg, cek []byte) (*cms.PasswordRecipientInfo, error) {
	if len(password) == 0 {
		return nil, fmt.Errorf("%w: empty password", ErrInvalidOptions)
	}
	salt := make([]byte, pbkdf2SaltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, err
	}
	prf, prfOID := crypto.SHA256.New, cms.OIDHMACWithSHA256
	kek, err := pbkdf2.Key(prf, string(password), salt, iterations, c.keyLen)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	block, err := c.newBlock(kek)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, block.BlockSize())
	if _, err := io.ReadFull(rand, iv); err != nil {
		return nil, err
	}
	ek, err := pwriWrap(rand, block, iv, cek)
	if err != nil {
		return nil, err
	}
	kdfParams, err := cms.PBKDF2Params{Salt: salt, Iterations: iterations, PRF: cms.AlgorithmIdentifier{Algorithm: prfOID, Parameters: cms.NullParameters}}.Marshal()
	if err != nil {
		return nil, err
	}
	ivParams, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	kekAlg, err := cms.AlgorithmIdentifier{Algorithm: c.oid, Parameters: ivParams}.Marshal()
	if err != nil {
		return nil, err
	}
	return &cms.PasswordRecipientInfo{
		Version:                0,
		KeyDerivationAlgorithm: &cms.AlgorithmIdentifier{Algorithm: cms.OIDPBKDF2, Parameters: kdfParams},
		KeyEncryptionAlgorithm: cms.AlgorithmIdentifier{Algorithm: cms.OIDPWRIKEK, Parameters: kekAlg},
		EncryptedKey:           ek,
	}, nil
}

// pwriWrap is the RFC 3211 §2.3.1 key wrap: a length byte, three check bytes (the
// complement of the key's first three), the key and random padding to at least two
// blocks, encrypted twice in CBC mode (the second pass chained on the first).
func pwriWrap(rand io.Reader, block cipher.Block, iv, key []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(key) < 3 || len(key) > 255 {
		return nil, errors.New("envelope: content key length unfit for the password key wrap")
	}
	n := (len(key) + 4 + bs - 1) / bs * bs
	n = max(n, 2*bs)
	buf := make([]byte, n)
	buf[0] = byte(len(key))
	buf[1], buf[2], buf[3] = ^key[0], ^key[1], ^key[2]
	copy(buf[4:], key)
	if _, err := io.ReadFull(rand, buf[4+len(key):]); err != nil {
		return nil, err
	}
	enc := cipher.NewCBCEncrypter(block, iv)
	enc.CryptBlocks(buf, buf)
	enc.CryptBlocks(buf, buf)
	return buf, nil
}

// pwriUnwrap reverses pwriWrap. It returns the key and ok = 1, or ok = 0 when the
// check bytes or the length do not hold; the checks do not branch on the secret.
func pwriUnwrap(block cipher.Block, iv, wrapped []byte, keyLen int) ([]byte, int) {
	bs := block.BlockSize()
	n := len(wrapped)
	if n < 2*bs || n%bs != 0 || len(iv) != bs {
		return nil, 0
	}
	tmp := make([]byte, n)
	// The last block, decrypted with the one before it as IV, is the last block of
	// the inner encryption: the IV of the outer one.
	cipher.NewCBCDecrypter(block, wrapped[n-2*bs:n-bs]).CryptBlocks(tmp[n-bs:], wrapped[n-bs:])
	cipher.NewCBCDecrypter(block, tmp[n-bs:]).CryptBlocks(tmp[:n-bs], wrapped[:n-bs])
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(tmp, tmp)
	ok := subtle.ConstantTimeByteEq(tmp[0], byte(keyLen)) &
		subtle.ConstantTimeByteEq(tmp[1]^tmp[4], 0xff) &
		subtle.ConstantTimeByteEq(tmp[2]^tmp[5], 0xff) &
		subtle.ConstantTimeByteEq(tmp[3]^tmp[6], 0xff)
	if 4+keyLen > n {
		clear(tmp)
		return nil, 0
	}
	key := make([]byte, keyLen)
	copy(key, tmp[4:4+keyLen])
	clear(tmp)
	return key, ok
}

// pwriAttempt is one password recipient, checked and ready to derive.
type pwriAttempt struct {
	params cms.PBKDF2Params
	prf    func() hash.Hash
	alg    contentAlg
	iv     []byte
	ek     []byte
}

// checkPassword reads what a PasswordRecipientInfo says in the clear: PBKDF2 with a
// known PRF, id-alg-PWRI-KEK over a CBC cipher, a key length that fits.
func checkPassword(p *cms.PasswordRecipientInfo) (pwriAttempt, error) {
	var a pwriAttempt
	kda := p.KeyDerivationAlgorithm
	if kda == nil || !kda.Algorithm.Equal(cms.OIDPBKDF2) {
		return a, unsupported("password recipient without PBKDF2")
	}
	params, err := cms.ParsePBKDF2Params(kda.Parameters)
	if err != nil {
		return a, err
	}
	prf, ok := prfByOID(params.PRF.Algorithm)
	if !ok {
		return a, unsupported("PBKDF2 PRF %s", params.PRF.Algorithm)
	}
	if !p.KeyEncryptionAlgorithm.Algorithm.Equal(cms.OIDPWRIKEK) {
		return a, unsupported("password key encryption %s", p.KeyEncryptionAlgorithm.Algorithm)
	}
	kekAlg, err := cms.ParseAlgorithmIdentifier(p.KeyEncryptionAlgorithm.Parameters)
	if err != nil {
		return a, err
	}
	alg, ok := contentAlgByOID(kekAlg.Algorithm)
	if !ok || alg.gcm || alg.legacy {
		return a, unsupported("password key wrap cipher %s", kekAlg.Algorithm)
	}
	iv, err := cms.ParseIVParameters(kekAlg.Parameters)
	if err != nil {
		return a, err
	}
	if params.KeyLength != 0 && params.KeyLength != alg.keyLen {
		return a, unsupported("PBKDF2 key length %d for %s", params.KeyLength, alg.name)
	}
	return pwriAttempt{params: params, prf: prf, alg: alg, iv: iv, ek: p.EncryptedKey}, nil
}

// unwrapPassword recovers the content key with a password: every password recipient
// is tried in order and the first whose check bytes hold gives the key (a wrong
// password passes the check with probability 2^-24, and then fails the content
// decryption like any wrong key). The iterations of all of them together must stay
// within maxIter, checked before any is derived.
func (m *message) unwrapPassword(rand io.Reader, password Password, keyLen, maxIter int) ([]byte, int, error) {
	if len(password) == 0 {
		return nil, 0, ErrKeyType
	}
	var tries []pwriAttempt
	total := 0
	for i := range m.ris {
		p := m.ris[i].Password
		if p == nil {
			continue
		}
		a, err := checkPassword(p)
		if err != nil {
			return nil, 0, err
		}
		total += a.params.Iterations
		if total > maxIter {
			return nil, 0, fmt.Errorf("%w: %w: the message asks for %d or more PBKDF2 iterations, over the limit of %d", cms.ErrUnsupported, ErrTooCostly, total, maxIter)
		}
		tries = append(tries, a)
	}
	if len(tries) == 0 {
		return nil, 0, ErrNoRecipient
	}
	out, err := randomKey(rand, keyLen)
	if err != nil {
		return nil, 0, err
	}
	found := 0
	for _, a := range tries {
		kek, err := pbkdf2.Key(a.prf, string(password), a.params.Salt, a.params.Iterations, a.alg.keyLen)
		if err != nil {
			continue
		}
		block, err := a.alg.newBlock(kek)
		clear(kek)
		if err != nil {
			continue
		}
		key, ok := pwriUnwrap(block, a.iv, a.ek, keyLen)
		take := ok &^ found
		if key != nil {
			subtle.ConstantTimeCopy(take, out, key)
			clear(key)
		}
		found |= ok
	}
	return out, found, nil
}
