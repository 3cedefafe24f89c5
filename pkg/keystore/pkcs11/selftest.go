package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm2"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
)

var errSelfTestMismatch = errors.New("self-test result does not verify with the certificate's key")

// selfTest runs each allowed operation once and checks the result with the
// certificate's public key: it proves the certificate matches the key (for EC and SM2
// keys whose public point the private object does not carry) and that the configured
// mechanisms work, at startup rather than on the first request.
func (k *Key) selfTest(ctx context.Context) error {
	msg := []byte("signsvr pkcs11 startup self-test")
	if k.usages.Has(keystore.UsageSign) {
		s := k.Signer(ctx)
		var ok bool
		switch k.kind {
		case kindRSA:
			d := sha256.Sum256(msg)
			sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
			if err != nil {
				return fmt.Errorf("self-test sign: %w", err)
			}
			ok = rsa.VerifyPKCS1v15(k.pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
		case kindEC:
			d := sha256.Sum256(msg)
			sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
			if err != nil {
				return fmt.Errorf("self-test sign: %w", err)
			}
			ok = ecdsa.VerifyASN1(k.pub.(*ecdsa.PublicKey), d[:], sig)
		case kindSM2:
			sig, err := s.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
			if err != nil {
				return fmt.Errorf("self-test sign: %w", err)
			}
			ok = sm2.VerifyASN1WithSM2(k.pub.(*ecdsa.PublicKey), nil, msg, sig)
		}
		if !ok {
			return errSelfTestMismatch
		}
	}
	if k.usages.Has(keystore.UsageDecrypt) {
		secret := make([]byte, 32)
		rand.Read(secret)
		var (
			got []byte
			err error
		)
		switch k.kind {
		case kindRSA:
			var ct []byte
			//lint:ignore SA1019 the self-test checks the key transport CMS peers use, RSA PKCS#1 v1.5.
			if ct, err = rsa.EncryptPKCS1v15(rand.Reader, k.pub.(*rsa.PublicKey), secret); err != nil {
				return err
			}
			got, err = k.Decrypter(ctx).Decrypt(rand.Reader, ct, nil)
		case kindSM2:
			var ct []byte
			if ct, err = sm2.EncryptASN1(rand.Reader, k.pub.(*ecdsa.PublicKey), secret); err != nil {
				return err
			}
			got, err = k.Decrypter(ctx).Decrypt(rand.Reader, ct, sm2.ASN1DecrypterOpts)
		case kindEC:
			pub, _ := k.pub.(*ecdsa.PublicKey).ECDH()
			eph, e := algorithm.Of(k.pub).ECDH().GenerateKey(rand.Reader)
			if e != nil {
				return e
			}
			if secret, err = eph.ECDH(pub); err != nil {
				return err
			}
			got, err = k.KeyAgreer(ctx).ECDH(eph.PublicKey())
		}
		if err != nil {
			var de errDecrypt
			if errors.As(err, &de) {
				err = de.cause // startup errors are for the operator: show the cause
			}
			return fmt.Errorf("self-test decrypt: %w", err)
		}
		if !bytes.Equal(got, secret) {
			return errSelfTestMismatch
		}
	}
	return nil
}
