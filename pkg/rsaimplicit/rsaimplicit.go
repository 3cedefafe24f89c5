// Package rsaimplicit is RSAES-PKCS1-v1_5 decryption with implicit rejection, as
// draft-irtf-cfrg-rsa-guidance (and the RFC 8017 errata it answers) specify and
// OpenSSL 3.2 implements: a ciphertext whose padding is wrong does not fail, it
// decrypts to a synthetic message derived from the private key and the ciphertext.
//
// Why: an error, or anything else that tells a good padding from a bad one, is
// Bleichenbacher's oracle, which recovers any plaintext with enough queries. With
// implicit rejection every ciphertext has an answer, the same one each time it is
// asked, of a length that looks like any message's; only the protocol above (which
// finds the message meaningless) notices.
//
// The synthetic message (draft §7.2):
//
//	KDK    = HMAC-SHA256(key = SHA256(d as k big-endian bytes), ciphertext left-padded to k bytes)
//	PRF(label, bits) = HMAC-SHA256(KDK, i || label || bits) for i = 0, 1, ... (i and bits 2 bytes each)
//	message = the last L bytes of PRF("message", 8k), L the last of the 128 16-bit
//	          values of PRF("length", 2048), masked to the bit length of k-10, that
//	          is smaller than k-10.
//
// The answers are OpenSSL's to the byte: a test replays vectors recorded from
// OpenSSL 4.0 (testdata).
//
// It needs the private exponent, so it takes an *rsa.PrivateKey: a key inside an HSM
// cannot serve it (its PKCS#1 v1.5 decryption answers a bad padding with an error,
// which is an oracle), and the server refuses raw PKCS#1 v1.5 decryption with one.
package rsaimplicit

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// ErrSize is returned for a ciphertext whose length is not the modulus' (public:
// nothing about the padding).
var ErrSize = errors.New("rsaimplicit: ciphertext length is not the modulus length")

const maxLenTries = 128

// Decrypt decrypts ct with RSAES-PKCS1-v1_5 and implicit rejection.
func Decrypt(priv *rsa.PrivateKey, ct []byte) ([]byte, error) {
	k := priv.Size()
	if len(ct) != k || k < 11+2 {
		return nil, ErrSize
	}
	synthetic := Synthetic(priv, ct)
	//lint:ignore SA1019 the padding result is replaced by the synthetic message without telling, below.
	msg, err := rsa.DecryptPKCS1v15(nil, priv, ct)
	good := 0
	if err == nil {
		good = 1
	}
	// Both are computed whatever the padding; the choice is one select.
	out := make([]byte, subtle.ConstantTimeSelect(good, len(msg), len(synthetic)))
	if good == 1 {
		copy(out, msg)
	} else {
		copy(out, synthetic)
	}
	clear(msg)
	return out, nil
}

// Synthetic is the message Decrypt answers a bad padding with.
func Synthetic(priv *rsa.PrivateKey, ct []byte) []byte {
	k := priv.Size()
	d := priv.D.FillBytes(make([]byte, k))
	dHash := sha256.Sum256(d)
	clear(d)
	mac := hmac.New(sha256.New, dHash[:])
	padded := make([]byte, k)
	copy(padded[k-len(ct):], ct)
	mac.Write(padded)
	kdk := mac.Sum(nil)

	msg := prf(kdk, "message", k, 8*k)
	lengths := prf(kdk, "length", 2*maxLenTries, 2*maxLenTries*8)
	maxSep := k - 2 - 8
	mask := maxSep
	for _, sh := range []int{1, 2, 4, 8} {
		mask |= mask >> sh
	}
	n := 0
	for i := 0; i < len(lengths); i += 2 {
		c := int(binary.BigEndian.Uint16(lengths[i:])) & mask
		n = subtle.ConstantTimeSelect(lessThan(c, maxSep), c, n)
	}
	return msg[k-n:]
}

func lessThan(a, b int) int { return 1 &^ subtle.ConstantTimeLessOrEq(b, a) }

// prf is the draft's PRF: n bytes of HMAC-SHA256(kdk, i || label || bits).
func prf(kdk []byte, label string, n, bits int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	mac := hmac.New(sha256.New, kdk)
	var b [2]byte
	for i := 0; len(out) < n; i++ {
		mac.Reset()
		binary.BigEndian.PutUint16(b[:], uint16(i))
		mac.Write(b[:])
		mac.Write([]byte(label))
		binary.BigEndian.PutUint16(b[:], uint16(bits))
		mac.Write(b[:])
		out = mac.Sum(out)
	}
	return out[:n]
}
