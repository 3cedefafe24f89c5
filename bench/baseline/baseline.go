// Package baseline runs the bare primitives behind each signsvr operation in-process,
// with no CMS and no gRPC, and measures their CPU cost per operation.
//
// The efficiency the harness reports is baseline CPU per operation divided by server
// CPU per request, both measured on the same core in the same run. What counts as "the
// same primitive" for each operation:
//
//   - sign: the digest of the data, then the signature (RSA PKCS#1 v1.5 SHA-256, ECDSA
//     P-256 SHA-256, SM2 with SM3 and the Z value of the default user ID). For 1 KiB this
//     is "sign over 1 KiB"; for 64 KiB it is "primitive + hashing".
//   - verify: the digest of the data, then the signature check.
//   - encrypt (Envelope): a fresh content key, its key transport to the recipient
//     (RSA-OAEP SHA-256; ephemeral-static ECDH P-256 with the X9.63 SHA-256 KDF and
//     AES-256 key wrap; SM2 encryption) and the content encryption (AES-256-GCM, or
//     SM4-CBC for SM2), as pkg/envelope does by default.
//   - decrypt: the reverse: key transport decryption (or ECDH and unwrap), then the
//     content decryption.
//
// The keys are the development PKI's (internal/devpki), the same keys the server uses.
// Each Result also gives the two parts apart: the hash (or symmetric) cost over the
// data, and the public-key operation alone.
package baseline

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
)

// Op is a primitive operation.
type Op string

// The primitive operations.
const (
	OpSign    Op = "sign"
	OpVerify  Op = "verify"
	OpEncrypt Op = "encrypt"
	OpDecrypt Op = "decrypt"
)

// Alg is a key family of the development PKI.
type Alg string

// The key families.
const (
	RSA   Alg = "rsa"
	ECDSA Alg = "ecdsa"
	SM2   Alg = "sm2"
)

// Keys are the development keys, parsed.
type Keys struct {
	sign map[Alg]crypto.Signer
	enc  map[Alg]crypto.PrivateKey
	// encPub are the public keys of the encryption certificates.
	encPub map[Alg]crypto.PublicKey
}

// LoadKeys reads the development PKI in dataDir (creating it if it does not exist,
// as the server would).
func LoadKeys(dataDir string) (*Keys, error) {
	pki, err := devpki.Ensure(dataDir, time.Now)
	if err != nil {
		return nil, err
	}
	k := &Keys{sign: map[Alg]crypto.Signer{}, enc: map[Alg]crypto.PrivateKey{}, encPub: map[Alg]crypto.PublicKey{}}
	for _, kf := range pki.Keys {
		var alg Alg
		switch kf.Name {
		case "rsa-sign", "rsa-enc":
			alg = RSA
		case "ecdsa-sign", "ecdsa-enc":
			alg = ECDSA
		case "sm2-sign", "sm2-enc":
			alg = SM2
		default:
			continue
		}
		usage := kf.Name[len(alg)+1:]
		priv, err := readKey(kf.KeyPath)
		if err != nil {
			return nil, err
		}
		switch usage {
		case "sign":
			s, ok := priv.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("baseline: %s is not a signer", kf.Name)
			}
			k.sign[alg] = s
		case "enc":
			k.enc[alg] = priv
			certs, err := devpki.ReadCertsPEM(kf.CertPath)
			if err != nil {
				return nil, err
			}
			k.encPub[alg] = certs[0].PublicKey
		}
	}
	for _, a := range []Alg{RSA, ECDSA, SM2} {
		if k.sign[a] == nil || k.enc[a] == nil {
			return nil, fmt.Errorf("baseline: development PKI in %s lacks %s keys", dataDir, a)
		}
	}
	return k, nil
}

func readKey(path string) (crypto.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("baseline: %s: no PEM block", path)
	}
	return smx509.ParsePKCS8PrivateKey(blk.Bytes)
}

// Spec names one measurement.
type Spec struct {
	Op   Op
	Alg  Alg
	Size int
}

func (s Spec) String() string { return fmt.Sprintf("%s/%s/%d", s.Op, s.Alg, s.Size) }

// Funcs are the closures to measure for a Spec: Full is the whole primitive over the
// data; Data is only the part that grows with the data (hash or content cipher); Key
// is only the public-key part (over a digest, or of a content key).
type Funcs struct {
	Full, Data, Key func() error
}

// Prepare builds the closures for spec. Inputs (signatures, ciphertexts) that the
// closures check or open are made here, outside the measurement.
func (k *Keys) Prepare(spec Spec) (*Funcs, error) {
	data := make([]byte, spec.Size)
	if _, err := rand.Read(data); err != nil {
		return nil, err
	}
	switch spec.Op {
	case OpSign:
		return k.prepareSign(spec.Alg, data)
	case OpVerify:
		return k.prepareVerify(spec.Alg, data)
	case OpEncrypt:
		return k.prepareEncrypt(spec.Alg, data)
	case OpDecrypt:
		return k.prepareDecrypt(spec.Alg, data)
	}
	return nil, fmt.Errorf("baseline: unknown operation %q", spec.Op)
}

func sha256Sum(data []byte) []byte { h := sha256.Sum256(data); return h[:] }

func (k *Keys) prepareSign(alg Alg, data []byte) (*Funcs, error) {
	s := k.sign[alg]
	digest := sha256Sum(data)
	switch alg {
	case RSA:
		priv := s.(*rsa.PrivateKey)
		return &Funcs{
			Full: func() error { _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sha256Sum(data)); return err },
			Data: func() error { sha256Sum(data); return nil },
			Key:  func() error { _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest); return err },
		}, nil
	case ECDSA:
		priv := s.(*ecdsa.PrivateKey)
		return &Funcs{
			Full: func() error { _, err := ecdsa.SignASN1(rand.Reader, priv, sha256Sum(data)); return err },
			Data: func() error { sha256Sum(data); return nil },
			Key:  func() error { _, err := ecdsa.SignASN1(rand.Reader, priv, digest); return err },
		}, nil
	case SM2:
		priv := s.(*sm2.PrivateKey)
		// With DefaultSM2SignerOpts the input is the message: gmsm computes
		// SM3(Z || message), Z from the default user ID, then signs.
		return &Funcs{
			Full: func() error { _, err := sm2.SignASN1(rand.Reader, priv, data, sm2.DefaultSM2SignerOpts); return err },
			Data: func() error { sm3.Sum(data); return nil },
			Key:  func() error { _, err := sm2.SignASN1(rand.Reader, priv, digest, nil); return err },
		}, nil
	}
	return nil, fmt.Errorf("baseline: unknown algorithm %q", alg)
}

func (k *Keys) prepareVerify(alg Alg, data []byte) (*Funcs, error) {
	s := k.sign[alg]
	digest := sha256Sum(data)
	bad := errors.New("baseline: signature does not verify")
	switch alg {
	case RSA:
		pub := &s.(*rsa.PrivateKey).PublicKey
		sig, err := rsa.SignPKCS1v15(nil, s.(*rsa.PrivateKey), crypto.SHA256, digest)
		if err != nil {
			return nil, err
		}
		return &Funcs{
			Full: func() error { return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sha256Sum(data), sig) },
			Data: func() error { sha256Sum(data); return nil },
			Key:  func() error { return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) },
		}, nil
	case ECDSA:
		priv := s.(*ecdsa.PrivateKey)
		pub := &priv.PublicKey
		sig, err := ecdsa.SignASN1(rand.Reader, priv, digest)
		if err != nil {
			return nil, err
		}
		return &Funcs{
			Full: func() error { return check(ecdsa.VerifyASN1(pub, sha256Sum(data), sig), bad) },
			Data: func() error { sha256Sum(data); return nil },
			Key:  func() error { return check(ecdsa.VerifyASN1(pub, digest, sig), bad) },
		}, nil
	case SM2:
		priv := s.(*sm2.PrivateKey)
		pub := &priv.PublicKey
		sig, err := sm2.SignASN1(rand.Reader, priv, data, sm2.DefaultSM2SignerOpts)
		if err != nil {
			return nil, err
		}
		dsig, err := sm2.SignASN1(rand.Reader, priv, digest, nil)
		if err != nil {
			return nil, err
		}
		return &Funcs{
			Full: func() error { return check(sm2.VerifyASN1WithSM2(pub, nil, data, sig), bad) },
			Data: func() error { sm3.Sum(data); return nil },
			Key:  func() error { return check(sm2.VerifyASN1(pub, digest, dsig), bad) },
		}, nil
	}
	return nil, fmt.Errorf("baseline: unknown algorithm %q", alg)
}

func check(ok bool, err error) error {
	if ok {
		return nil
	}
	return err
}

// sealer encrypts content under a content key: AES-256-GCM, or SM4-CBC with PKCS#7
// padding for SM2 recipients (pkg/envelope's defaults).
type sealer struct {
	alg    Alg
	keyLen int
}

func newSealer(alg Alg) sealer {
	if alg == SM2 {
		return sealer{alg: alg, keyLen: 16}
	}
	return sealer{alg: alg, keyLen: 32}
}

func (s sealer) seal(cek, data []byte) ([]byte, []byte, error) {
	if s.alg == SM2 {
		b, err := sm4.NewCipher(cek)
		if err != nil {
			return nil, nil, err
		}
		iv := make([]byte, 16)
		if _, err := rand.Read(iv); err != nil {
			return nil, nil, err
		}
		pad := 16 - len(data)%16
		out := make([]byte, len(data)+pad)
		copy(out, data)
		for i := len(data); i < len(out); i++ {
			out[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, out)
		return iv, out, nil
	}
	b, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, g.Seal(nil, nonce, data, nil), nil
}

func (s sealer) open(cek, iv, ct []byte) ([]byte, error) {
	if s.alg == SM2 {
		b, err := sm4.NewCipher(cek)
		if err != nil {
			return nil, err
		}
		if len(ct) == 0 || len(ct)%16 != 0 {
			return nil, errors.New("baseline: bad CBC length")
		}
		out := make([]byte, len(ct))
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ct)
		pad := int(out[len(out)-1])
		if pad == 0 || pad > 16 {
			return nil, errors.New("baseline: bad padding")
		}
		return out[:len(out)-pad], nil
	}
	b, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return g.Open(nil, iv, ct, nil)
}

// transport is the key-transport half of an envelope for one recipient.
type transport struct {
	wrap   func(cek []byte) ([]byte, error)
	unwrap func(wrapped []byte) ([]byte, error)
}

func (k *Keys) transport(alg Alg) (transport, error) {
	switch alg {
	case RSA:
		pub := k.encPub[RSA].(*rsa.PublicKey)
		priv := k.enc[RSA].(*rsa.PrivateKey)
		return transport{
			wrap: func(cek []byte) ([]byte, error) { return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil) },
			unwrap: func(w []byte) ([]byte, error) {
				return rsa.DecryptOAEP(sha256.New(), nil, priv, w, nil)
			},
		}, nil
	case ECDSA:
		pub, err := k.encPub[ECDSA].(*ecdsa.PublicKey).ECDH()
		if err != nil {
			return transport{}, err
		}
		priv, err := k.enc[ECDSA].(*ecdsa.PrivateKey).ECDH()
		if err != nil {
			return transport{}, err
		}
		// wrapped = ephemeral public point || AES key wrap of the content key.
		return transport{
			wrap: func(cek []byte) ([]byte, error) {
				eph, err := ecdh.P256().GenerateKey(rand.Reader)
				if err != nil {
					return nil, err
				}
				z, err := eph.ECDH(pub)
				if err != nil {
					return nil, err
				}
				w, err := aesWrap(x963KDF(z, len(cek)), cek)
				if err != nil {
					return nil, err
				}
				return append(eph.PublicKey().Bytes(), w...), nil
			},
			unwrap: func(w []byte) ([]byte, error) {
				if len(w) < 65 {
					return nil, errors.New("baseline: short ECDH transport")
				}
				eph, err := ecdh.P256().NewPublicKey(w[:65])
				if err != nil {
					return nil, err
				}
				z, err := priv.ECDH(eph)
				if err != nil {
					return nil, err
				}
				return aesUnwrap(x963KDF(z, len(w)-65-8), w[65:])
			},
		}, nil
	case SM2:
		pub := k.encPub[SM2].(*ecdsa.PublicKey)
		priv := k.enc[SM2].(*sm2.PrivateKey)
		return transport{
			wrap:   func(cek []byte) ([]byte, error) { return sm2.EncryptASN1(rand.Reader, pub, cek) },
			unwrap: func(w []byte) ([]byte, error) { return priv.Decrypt(nil, w, sm2.ASN1DecrypterOpts) },
		}, nil
	}
	return transport{}, fmt.Errorf("baseline: unknown algorithm %q", alg)
}

// x963KDF is ANSI X9.63 KDF with SHA-256 over the shared secret and a SharedInfo of
// the size RFC 5753 writes (the DER ECC-CMS-SharedInfo, about 30 bytes).
func x963KDF(z []byte, n int) []byte {
	var shared [32]byte
	var out []byte
	for c := uint32(1); len(out) < n; c++ {
		h := sha256.New()
		h.Write(z)
		var ctr [4]byte
		binary.BigEndian.PutUint32(ctr[:], c)
		h.Write(ctr[:])
		h.Write(shared[:])
		out = h.Sum(out)
	}
	return out[:n]
}

var wrapIV = []byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// aesWrap is RFC 3394 AES key wrap.
func aesWrap(kek, key []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	copy(out, wrapIV)
	copy(out[8:], key)
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[:8], out[:8])
			copy(buf[8:], out[8*i:8*i+8])
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[8*i:], buf[8:])
		}
	}
	return out, nil
}

// aesUnwrap is RFC 3394 AES key unwrap.
func aesUnwrap(kek, wrapped []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped)%8 != 0 || len(wrapped) < 24 {
		return nil, errors.New("baseline: bad wrapped key length")
	}
	n := len(wrapped)/8 - 1
	out := make([]byte, len(wrapped))
	copy(out, wrapped)
	var buf [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(out[:8])^t)
			copy(buf[8:], out[8*i:8*i+8])
			b.Decrypt(buf[:], buf[:])
			copy(out[:8], buf[:8])
			copy(out[8*i:], buf[8:])
		}
	}
	if !bytes.Equal(out[:8], wrapIV) {
		return nil, errors.New("baseline: key unwrap failed")
	}
	return out[8:], nil
}

func (k *Keys) prepareEncrypt(alg Alg, data []byte) (*Funcs, error) {
	tr, err := k.transport(alg)
	if err != nil {
		return nil, err
	}
	s := newSealer(alg)
	fixed := make([]byte, s.keyLen)
	return &Funcs{
		Full: func() error {
			cek := make([]byte, s.keyLen)
			if _, err := rand.Read(cek); err != nil {
				return err
			}
			if _, err := tr.wrap(cek); err != nil {
				return err
			}
			_, _, err := s.seal(cek, data)
			return err
		},
		Data: func() error { _, _, err := s.seal(fixed, data); return err },
		Key:  func() error { _, err := tr.wrap(fixed); return err },
	}, nil
}

func (k *Keys) prepareDecrypt(alg Alg, data []byte) (*Funcs, error) {
	tr, err := k.transport(alg)
	if err != nil {
		return nil, err
	}
	s := newSealer(alg)
	cek := make([]byte, s.keyLen)
	if _, err := rand.Read(cek); err != nil {
		return nil, err
	}
	wrapped, err := tr.wrap(cek)
	if err != nil {
		return nil, err
	}
	iv, ct, err := s.seal(cek, data)
	if err != nil {
		return nil, err
	}
	// Check once that the round trip works, so a broken baseline cannot pass as fast.
	got, err := tr.unwrap(wrapped)
	if err != nil {
		return nil, err
	}
	pt, err := s.open(got, iv, ct)
	if err != nil || !bytes.Equal(pt, data) {
		return nil, fmt.Errorf("baseline: %s envelope round trip failed: %v", alg, err)
	}
	return &Funcs{
		Full: func() error {
			c, err := tr.unwrap(wrapped)
			if err != nil {
				return err
			}
			_, err = s.open(c, iv, ct)
			return err
		},
		Data: func() error { _, err := s.open(cek, iv, ct); return err },
		Key:  func() error { _, err := tr.unwrap(wrapped); return err },
	}, nil
}

// Cost is the measured cost of one closure.
type Cost struct {
	// CPU is process CPU time (user+system, all threads, so GC included) per operation:
	// the median of the rounds.
	CPU time.Duration `json:"cpu_ns"`
	// Wall is elapsed time per operation, median of the rounds.
	Wall time.Duration `json:"wall_ns"`
	// Ops is how many operations ran in all rounds.
	Ops int `json:"ops"`
}

// Measure runs fn for about d in total, split into rounds, and returns the median per
// operation. It measures CPU time rather than elapsed time, so that other processes
// on a shared machine count less; pin the process to one core to compare it with the
// server.
func Measure(fn func() error, d time.Duration, rounds int) (Cost, error) {
	if rounds < 1 {
		rounds = 1
	}
	// One warm-up call, so lazy initialisation (tables, pools) is not measured.
	if err := fn(); err != nil {
		return Cost{}, err
	}
	runtime.GC()
	per := d / time.Duration(rounds)
	cpus := make([]time.Duration, 0, rounds)
	walls := make([]time.Duration, 0, rounds)
	total := 0
	for r := 0; r < rounds; r++ {
		c0, err := cpuTime()
		if err != nil {
			return Cost{}, err
		}
		t0 := time.Now()
		n := 0
		for {
			if err := fn(); err != nil {
				return Cost{}, err
			}
			n++
			if el := time.Since(t0); el >= per {
				break
			}
		}
		wall := time.Since(t0)
		c1, err := cpuTime()
		if err != nil {
			return Cost{}, err
		}
		cpus = append(cpus, (c1-c0)/time.Duration(n))
		walls = append(walls, wall/time.Duration(n))
		total += n
	}
	return Cost{CPU: median(cpus), Wall: median(walls), Ops: total}, nil
}

func median(v []time.Duration) time.Duration {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Result is the baseline of one Spec.
type Result struct {
	Op   Op  `json:"op"`
	Alg  Alg `json:"alg"`
	Size int `json:"size"`
	// Full is the primitive over the data, hashing or content cipher included.
	Full Cost `json:"full"`
	// Data is the hashing (sign, verify) or content cipher (encrypt, decrypt) alone.
	Data Cost `json:"data"`
	// Key is the public-key operation alone.
	Key Cost `json:"key"`
}

// Run measures spec: d is spent on Full, and d/4 each on Data and Key.
func (k *Keys) Run(spec Spec, d time.Duration, rounds int) (*Result, error) {
	f, err := k.Prepare(spec)
	if err != nil {
		return nil, err
	}
	r := &Result{Op: spec.Op, Alg: spec.Alg, Size: spec.Size}
	if r.Full, err = Measure(f.Full, d, rounds); err != nil {
		return nil, fmt.Errorf("%s full: %w", spec, err)
	}
	if r.Data, err = Measure(f.Data, d/4, rounds); err != nil {
		return nil, fmt.Errorf("%s data: %w", spec, err)
	}
	if r.Key, err = Measure(f.Key, d/4, rounds); err != nil {
		return nil, fmt.Errorf("%s key: %w", spec, err)
	}
	return r, nil
}
