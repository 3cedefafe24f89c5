package pkcs11

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"os"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
)

// loadKey finds a configured key, loads its chain and checks that they belong together.
func (s *Store) loadKey(ctx context.Context, kc KeyConfig) (*Key, error) {
	k, err := s.configuredKey(kc)
	if err != nil {
		return nil, err
	}
	tk, err := k.readTokenKey(ctx, kc.CertFile == "")
	if err != nil {
		return nil, err
	}
	chain := tk.chain
	if kc.CertFile != "" {
		if chain, err = chainFromFile(kc.CertFile); err != nil {
			return nil, err
		}
	}
	k.adoptChain(chain)
	if err := k.matchCertificate(tk); err != nil {
		return nil, err
	}
	if err := k.selfTest(ctx); err != nil {
		if errors.Is(err, errSelfTestMismatch) {
			return nil, k.mismatch()
		}
		return nil, err
	}
	return k, nil
}

// configuredKey is the key kc describes, before anything is read from its token.
func (s *Store) configuredKey(kc KeyConfig) (*Key, error) {
	u, err := keyURI(kc.URI)
	if err != nil {
		return nil, err
	}
	usages, err := parseUsages(kc.Usages)
	if err != nil {
		return nil, err
	}
	t, err := s.tokenFor(u)
	if err != nil {
		return nil, err
	}
	return &Key{name: kc.Name, tok: t, uri: u, usages: usages}, nil
}

// tokenKey is what the token says about a key: its CKA_KEY_TYPE, the attributes that
// describe its public half (CKA_MODULUS and CKA_PUBLIC_EXPONENT for RSA, CKA_EC_PARAMS
// for EC, besides CKA_ID and CKA_LABEL), and the certificate chain stored with it.
type tokenKey struct {
	keyType uint
	attrs   map[uint][]byte
	chain   []*smx509.Certificate
}

// readTokenKey finds the private key object and reads its attributes, and with
// withChain its certificate chain from the token, all on one session.
func (k *Key) readTokenKey(ctx context.Context, withChain bool) (tokenKey, error) {
	var tk tokenKey
	mod := k.tok.mod
	err := k.tok.do(ctx, func(h sessionHandle, gen uint64) error {
		oh, err := k.privateHandle(h, gen)
		if err != nil {
			return err
		}
		if tk.keyType, tk.attrs, err = keyAttributes(mod, h, oh); err != nil {
			return err
		}
		if withChain {
			tk.chain, err = chainFromToken(mod, h, tk.attrs[ckaID], tk.attrs[ckaLabel])
		}
		return err
	})
	return tk, err
}

// keyAttributes reads the key type of the private key object oh and the attributes
// matchCertificate needs for that type.
func keyAttributes(mod module, h sessionHandle, oh objectHandle) (uint, map[uint][]byte, error) {
	a, err := mod.Attributes(h, oh, []uint{ckaKeyType, ckaID, ckaLabel})
	if err != nil {
		return 0, nil, fmt.Errorf("read key attributes: %w", err)
	}
	kt, ok := decodeULong(a[ckaKeyType])
	if !ok {
		return 0, nil, errors.New("bad CKA_KEY_TYPE")
	}
	var more []uint
	switch kt {
	case ckkRSA:
		more = []uint{ckaModulus, ckaPublicExponent}
	case ckkEC:
		more = []uint{ckaECParams}
	}
	if len(more) > 0 {
		b, err := mod.Attributes(h, oh, more)
		if err != nil {
			return 0, nil, fmt.Errorf("read key attributes: %w", err)
		}
		for typ, v := range b {
			a[typ] = v
		}
	}
	return kt, a, nil
}

// chainFromFile reads the key's cert_file.
func chainFromFile(path string) ([]*smx509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cert_file: %v", err)
	}
	chain, err := keystore.ParseCertificatesPEM(b)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s: %v", path, err)
	}
	return chain, nil
}

// adoptChain makes chain the key's: its leaf gives the public key (and so the
// self-check policy's key).
func (k *Key) adoptChain(chain []*smx509.Certificate) {
	k.chain = chain
	k.pub = chain[0].PublicKey
	k.check = keystore.NewSelfCheck(k.tok.selfCheck, k.pub)
}

// mismatch is the error for a certificate that is not for the key in the token.
func (k *Key) mismatch() error {
	return fmt.Errorf("the certificate %q does not match the key in the token", k.chain[0].Subject.String())
}

// matchCertificate checks that the certificate's public key is of the token key's
// type, and for RSA that it is the token key's, and sets the key's kind and size. The
// self-test proves the match for EC and SM2 keys, whose private objects need not carry
// the public point.
func (k *Key) matchCertificate(tk tokenKey) error {
	sm2cfg := k.tok.sm2
	switch {
	case tk.keyType == ckkRSA:
		return k.matchRSA(tk.attrs)
	case tk.keyType == ckkEC:
		return k.matchEC(tk.attrs)
	case sm2cfg != nil && tk.keyType == sm2cfg.KeyType:
		if algorithm.Of(k.pub) != algorithm.SM2 {
			return errors.New("the token key is SM2 but the certificate is not")
		}
		k.kind, k.size = kindSM2, 32
		return nil
	}
	return fmt.Errorf("unsupported key type 0x%X (for SM2 keys configure the token's sm2 mechanisms)", tk.keyType)
}

// matchRSA compares the token key's modulus and exponent with the certificate's.
func (k *Key) matchRSA(attrs map[uint][]byte) error {
	pub, ok := k.pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("the token key is RSA but the certificate holds a %T", k.pub)
	}
	n := new(big.Int).SetBytes(attrs[ckaModulus])
	e := new(big.Int).SetBytes(attrs[ckaPublicExponent])
	if n.Cmp(pub.N) != 0 || !e.IsInt64() || e.Int64() != int64(pub.E) {
		return k.mismatch()
	}
	if err := keystore.CheckRSABits(pub.N.BitLen()); err != nil {
		return err
	}
	k.kind, k.size = kindRSA, pub.Size()
	return nil
}

// matchEC checks that the certificate's key is on the token key's curve; an SM2 key
// stored as CKK_EC on the SM2 curve needs the token's sm2 mechanisms.
func (k *Key) matchEC(attrs map[uint][]byte) error {
	curve, err := curveFromParams(attrs[ckaECParams])
	if err != nil {
		return err
	}
	pub, ok := k.pub.(*ecdsa.PublicKey)
	if !ok || pub.Curve != curve {
		return fmt.Errorf("the token key is on %s but the certificate holds another key type", curve.Params().Name)
	}
	if algorithm.OfCurve(curve) == algorithm.SM2 {
		if k.tok.sm2 == nil {
			return errors.New("an SM2 key, but the token has no sm2 mechanism configuration")
		}
		k.kind = kindSM2
	} else {
		k.kind = kindEC
	}
	k.size = (curve.Params().BitSize + 7) / 8
	return nil
}
