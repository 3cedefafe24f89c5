package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"encoding/asn1"
	"io"

	"github.com/emmansun/gmsm/sm4"

	"signsvr.dev/signsvr/pkg/cms"
)

// contentAlg is a content-encryption algorithm: block cipher, mode and key length.
type contentAlg struct {
	oid    asn1.ObjectIdentifier
	keyLen int
	gcm    bool
	// legacy algorithms are read only with AllowLegacy and never written.
	legacy   bool
	newBlock func(key []byte) (cipher.Block, error)
	name     string
}

func newAES(key []byte) (cipher.Block, error) { return aes.NewCipher(key) }

func contentAlgFor(c Cipher) (contentAlg, bool) {
	switch c {
	case AES128CBC:
		return contentAlg{oid: cms.OIDAES128CBC, keyLen: 16, newBlock: newAES, name: "AES-128-CBC"}, true
	case AES256CBC:
		return contentAlg{oid: cms.OIDAES256CBC, keyLen: 32, newBlock: newAES, name: "AES-256-CBC"}, true
	case AES128GCM:
		return contentAlg{oid: cms.OIDAES128GCM, keyLen: 16, gcm: true, newBlock: newAES, name: "AES-128-GCM"}, true
	case AES256GCM:
		return contentAlg{oid: cms.OIDAES256GCM, keyLen: 32, gcm: true, newBlock: newAES, name: "AES-256-GCM"}, true
	case SM4CBC:
		return contentAlg{oid: cms.OIDSM4CBC, keyLen: 16, newBlock: sm4.NewCipher, name: "SM4-CBC"}, true
	case SM4GCM:
		return contentAlg{oid: cms.OIDSM4GCM, keyLen: 16, gcm: true, newBlock: sm4.NewCipher, name: "SM4-GCM"}, true
	}
	return contentAlg{}, false
}

// contentAlgByOID finds the algorithm a message names, including those only read:
// AES-192, the bare SM4 OID some GM/T 0010 peers write for SM4-CBC, and 3DES (legacy).
func contentAlgByOID(oid asn1.ObjectIdentifier) (contentAlg, bool) {
	for _, c := range []Cipher{AES128CBC, AES256CBC, AES128GCM, AES256GCM, SM4CBC, SM4GCM} {
		if a, _ := contentAlgFor(c); a.oid.Equal(oid) {
			return a, true
		}
	}
	switch {
	case oid.Equal(cms.OIDAES192CBC):
		return contentAlg{oid: oid, keyLen: 24, newBlock: newAES, name: "AES-192-CBC"}, true
	case oid.Equal(cms.OIDAES192GCM):
		return contentAlg{oid: oid, keyLen: 24, gcm: true, newBlock: newAES, name: "AES-192-GCM"}, true
	case oid.Equal(cms.OIDSM4):
		return contentAlg{oid: oid, keyLen: 16, newBlock: sm4.NewCipher, name: "SM4-CBC"}, true
	case oid.Equal(cms.OIDDESEDE3CBC):
		return contentAlg{oid: oid, keyLen: 24, legacy: true, newBlock: des.NewTripleDESCipher, name: "DES-EDE3-CBC"}, true
	}
	return contentAlg{}, false
}

const (
	gcmNonceLen = 12
	gcmTagLen   = 16
)

// sealed is encrypted content: the algorithm identifier to write, the ciphertext and,
// for GCM, the tag.
type sealed struct {
	alg cms.AlgorithmIdentifier
	ct  []byte
	tag []byte
}

// seal encrypts content under key. For CBC it pads (PKCS#7) with a random IV; for GCM
// it uses a random 96-bit nonce and a 128-bit tag, with aad as additional data.
func (a contentAlg) seal(rand io.Reader, key, content, aad []byte) (sealed, error) {
	block, err := a.newBlock(key)
	if err != nil {
		return sealed{}, err
	}
	if a.gcm {
		nonce := make([]byte, gcmNonceLen)
		if _, err := io.ReadFull(rand, nonce); err != nil {
			return sealed{}, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return sealed{}, err
		}
		params, err := cms.GCMParameters{Nonce: nonce, ICVLen: gcmTagLen}.Marshal()
		if err != nil {
			return sealed{}, err
		}
		out := aead.Seal(make([]byte, 0, len(content)+gcmTagLen), nonce, content, aad)
		n := len(out) - gcmTagLen
		return sealed{alg: cms.AlgorithmIdentifier{Algorithm: a.oid, Parameters: params}, ct: out[:n:n], tag: out[n:]}, nil
	}
	bs := block.BlockSize()
	// One allocation holds the IV parameters (04 len iv) and the ciphertext.
	padLen := bs - len(content)%bs
	buf := make([]byte, 2+bs+len(content)+padLen)
	buf[0], buf[1] = 0x04, byte(bs)
	iv := buf[2 : 2+bs]
	if _, err := io.ReadFull(rand, iv); err != nil {
		return sealed{}, err
	}
	ct := buf[2+bs:]
	copy(ct, content)
	for i := len(content); i < len(ct); i++ {
		ct[i] = byte(padLen)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	return sealed{alg: cms.AlgorithmIdentifier{Algorithm: a.oid, Parameters: buf[: 2+bs : 2+bs]}, ct: ct}, nil
}

// open decrypts. It returns ok = 0 (and no plaintext) on any failure: bad parameters,
// bad tag, bad padding. For GCM, tag is the AuthEnvelopedData mac, or nil when the
// tag is appended to ct (the non-standard GCM-in-EnvelopedData some libraries write).
// The CBC padding check runs in constant time.
func (a contentAlg) open(key, params, ct, tag, aad []byte) ([]byte, int) {
	block, err := a.newBlock(key)
	if err != nil {
		return nil, 0
	}
	if a.gcm {
		p, err := cms.ParseGCMParameters(params)
		if err != nil {
			return nil, 0
		}
		var aead cipher.AEAD
		switch {
		case len(p.Nonce) == gcmNonceLen:
			aead, err = cipher.NewGCMWithTagSize(block, p.ICVLen)
		case p.ICVLen == gcmTagLen:
			aead, err = cipher.NewGCMWithNonceSize(block, len(p.Nonce))
		default:
			return nil, 0
		}
		if err != nil {
			return nil, 0
		}
		var buf []byte
		if tag == nil {
			buf = make([]byte, len(ct))
			copy(buf, ct)
		} else {
			if len(tag) != p.ICVLen {
				return nil, 0
			}
			buf = make([]byte, len(ct)+len(tag))
			copy(buf, ct)
			copy(buf[len(ct):], tag)
		}
		if len(buf) < p.ICVLen {
			return nil, 0
		}
		pt, err := aead.Open(buf[:0], p.Nonce, buf, aad)
		if err != nil {
			return nil, 0
		}
		return pt, 1
	}
	bs := block.BlockSize()
	iv, err := cms.ParseIVParameters(params)
	if err != nil || len(iv) != bs || len(ct) == 0 || len(ct)%bs != 0 || tag != nil {
		return nil, 0
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	n, ok := unpadConstantTime(pt, bs)
	if ok == 0 {
		clear(pt)
		return nil, 0
	}
	return pt[:n], 1
}

// unpadConstantTime checks PKCS#7 padding without branching on the plaintext and
// returns the unpadded length and ok = 1, or ok = 0.
func unpadConstantTime(pt []byte, bs int) (int, int) {
	last := int(pt[len(pt)-1])
	ok := subtle.ConstantTimeLessOrEq(1, last) & subtle.ConstantTimeLessOrEq(last, bs)
	// Every one of the last bs bytes at distance < last from the end must equal last.
	tail := pt[len(pt)-bs:]
	for i := 0; i < bs; i++ {
		inPad := subtle.ConstantTimeLessOrEq(bs-i, last) // position counted from the end: bs-i
		eq := subtle.ConstantTimeByteEq(tail[i], byte(last))
		ok &= subtle.ConstantTimeSelect(inPad, eq, 1)
	}
	n := subtle.ConstantTimeSelect(ok, len(pt)-last, 0)
	return n, ok
}
