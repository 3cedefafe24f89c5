package pkcs11

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"os"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
)

// loadKey finds a configured key, loads its chain and checks that they belong together.
func (s *Store) loadKey(ctx context.Context, kc KeyConfig) (*Key, error) {
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
	k := &Key{name: kc.Name, tok: t, uri: u, usages: usages}

	var (
		keyType uint
		attrs   map[uint][]byte
		chain   []*smx509.Certificate
	)
	err = t.do(ctx, func(h sessionHandle, gen uint64) error {
		oh, err := k.privateHandle(h, gen)
		if err != nil {
			return err
		}
		a, err := t.mod.Attributes(h, oh, []uint{ckaKeyType, ckaID, ckaLabel})
		if err != nil {
			return fmt.Errorf("read key attributes: %w", err)
		}
		kt, ok := decodeULong(a[ckaKeyType])
		if !ok {
			return errors.New("bad CKA_KEY_TYPE")
		}
		keyType = kt
		var more []uint
		switch {
		case kt == ckkRSA:
			more = []uint{ckaModulus, ckaPublicExponent}
		case kt == ckkEC:
			more = []uint{ckaECParams}
		}
		if len(more) > 0 {
			b, err := t.mod.Attributes(h, oh, more)
			if err != nil {
				return fmt.Errorf("read key attributes: %w", err)
			}
			for t, v := range b {
				a[t] = v
			}
		}
		attrs = a
		if kc.CertFile == "" {
			chain, err = chainFromToken(t.mod, h, a[ckaID], a[ckaLabel])
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if kc.CertFile != "" {
		b, err := os.ReadFile(kc.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %v", err)
		}
		if chain, err = keystore.ParseCertificatesPEM(b); err != nil {
			return nil, fmt.Errorf("cert_file %s: %v", kc.CertFile, err)
		}
	}
	k.chain = chain
	k.pub = chain[0].PublicKey
	k.check = keystore.NewSelfCheck(t.selfCheck, k.pub)

	// The certificate must be for this key.
	mismatch := fmt.Errorf("the certificate %q does not match the key in the token", chain[0].Subject.String())
	switch {
	case keyType == ckkRSA:
		pub, ok := k.pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("the token key is RSA but the certificate holds a %T", k.pub)
		}
		n := new(big.Int).SetBytes(attrs[ckaModulus])
		e := new(big.Int).SetBytes(attrs[ckaPublicExponent])
		if n.Cmp(pub.N) != 0 || !e.IsInt64() || e.Int64() != int64(pub.E) {
			return nil, mismatch
		}
		if err := keystore.CheckRSABits(pub.N.BitLen()); err != nil {
			return nil, err
		}
		k.kind, k.size = kindRSA, pub.Size()
	case keyType == ckkEC:
		curve, err := curveFromParams(attrs[ckaECParams])
		if err != nil {
			return nil, err
		}
		pub, ok := k.pub.(*ecdsa.PublicKey)
		if !ok || pub.Curve != curve {
			return nil, fmt.Errorf("the token key is on %s but the certificate holds another key type", curve.Params().Name)
		}
		if curve == sm2.P256() {
			if t.sm2 == nil {
				return nil, errors.New("an SM2 key, but the token has no sm2 mechanism configuration")
			}
			k.kind = kindSM2
		} else {
			k.kind = kindEC
		}
		k.size = (curve.Params().BitSize + 7) / 8
	case t.sm2 != nil && keyType == t.sm2.KeyType:
		if !sm2.IsSM2PublicKey(k.pub) {
			return nil, errors.New("the token key is SM2 but the certificate is not")
		}
		k.kind, k.size = kindSM2, 32
	default:
		return nil, fmt.Errorf("unsupported key type 0x%X (for SM2 keys configure the token's sm2 mechanisms)", keyType)
	}
	if err := k.selfTest(ctx); err != nil {
		if errors.Is(err, errSelfTestMismatch) {
			return nil, mismatch
		}
		return nil, err
	}
	return k, nil
}
