package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
)

// Admin manages keys in one token: it generates key pairs, makes certificate requests
// signed by token keys and stores issued certificates next to them. It is what the
// `signsvr keys` subcommands use; the server never needs it.
type Admin struct {
	tok *token
	mod module
}

// OpenAdmin opens the token tc names and logs in.
func OpenAdmin(tc TokenConfig) (*Admin, error) { return openAdmin(tc, openModule, time.Now) }

func openAdmin(tc TokenConfig, open opener, now func() time.Time) (*Admin, error) {
	if tc.Module == "" {
		return nil, fmt.Errorf("pkcs11: token %q: no module path given", tc.Label)
	}
	mod, err := open(tc.Module)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: module %s: %w", tc.Module, err)
	}
	if tc.PoolSize <= 0 {
		tc.PoolSize = 1
	}
	t, err := newToken(tc, mod, now)
	if err != nil {
		mod.Close()
		return nil, fmt.Errorf("pkcs11: token %q (module %s): %w", tc.Label, tc.Module, err)
	}
	a := &Admin{tok: t, mod: mod}
	// Log in now, so a wrong PIN is reported here and not at the first operation.
	if err := t.do(context.Background(), func(sessionHandle, uint64) error { return nil }); err != nil {
		a.Close()
		return nil, fmt.Errorf("pkcs11: token %q: %w", tc.Label, err)
	}
	return a, nil
}

// Close logs out and releases the library.
func (a *Admin) Close() error {
	a.tok.close()
	return a.mod.Close()
}

// KeySpec describes a key pair to generate.
type KeySpec struct {
	// Label is the CKA_LABEL of both halves; it must not name an existing private key.
	Label string
	// ID is the CKA_ID of both halves (and later of the certificate); 16 random bytes
	// when empty.
	ID []byte
	// Algorithm is "RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384" or
	// "SM2" (the token's sm2 configuration gives the vendor mechanism).
	Algorithm string
	// Usages restricts the private key: CKA_SIGN for sign; CKA_DECRYPT (RSA, SM2) or
	// CKA_DERIVE (ECDH) for decrypt. Zero means both.
	Usages keystore.Usage
}

// GenerateKey makes a key pair inside the token (private half sensitive and not
// extractable) and returns the URI that names it and its public key.
func (a *Admin) GenerateKey(ctx context.Context, spec KeySpec) (string, crypto.PublicKey, error) {
	if spec.Label == "" {
		return "", nil, errors.New("pkcs11: a new key needs a label")
	}
	if spec.Usages == 0 {
		spec.Usages = keystore.UsageSign | keystore.UsageDecrypt
	}
	if len(spec.ID) == 0 {
		spec.ID = make([]byte, 16)
		if _, err := rand.Read(spec.ID); err != nil {
			return "", nil, err
		}
	}
	sign, dec := spec.Usages.Has(keystore.UsageSign), spec.Usages.Has(keystore.UsageDecrypt)
	common := func(private bool) []attribute {
		return []attribute{
			boolAttr(ckaToken, true), boolAttr(ckaPrivate, private),
			{ckaLabel, []byte(spec.Label)}, {ckaID, spec.ID},
		}
	}
	pub, priv := common(false), common(true)
	priv = append(priv, boolAttr(ckaSensitive, true), boolAttr(ckaExtractable, false), boolAttr(ckaSign, sign))
	pub = append(pub, boolAttr(ckaVerify, sign))
	var m mechanism
	alg := strings.ToUpper(spec.Algorithm)
	rsaBits := map[string]uint{"RSA-2048": 2048, "RSA-3072": 3072, "RSA-4096": 4096}
	switch f := algorithm.ByKeyName(alg); {
	case rsaBits[alg] != 0:
		bits := rsaBits[alg]
		m = mechanism{Type: ckmRSAPKCSKeyPairGen}
		pub = append(pub, ulongAttr(ckaModulusBits, bits), attribute{ckaPublicExponent, []byte{1, 0, 1}}, boolAttr(ckaEncrypt, dec))
		priv = append(priv, boolAttr(ckaDecrypt, dec))
	case f.IsECDSA():
		params, _ := curveParams(f)
		m = mechanism{Type: ckmECKeyPairGen}
		pub = append(pub, attribute{ckaECParams, params})
		priv = append(priv, boolAttr(ckaDerive, dec))
	case f == algorithm.SM2:
		cfg := a.tok.sm2
		if cfg == nil || cfg.KeyGen == 0 {
			return "", nil, errors.New("pkcs11: the token has no sm2 keygen_mechanism configured")
		}
		params, _ := curveParams(algorithm.SM2)
		m = mechanism{Type: cfg.KeyGen}
		pub = append(pub, ulongAttr(ckaKeyType, cfg.KeyType), attribute{ckaECParams, params}, boolAttr(ckaEncrypt, dec))
		priv = append(priv, ulongAttr(ckaKeyType, cfg.KeyType), boolAttr(ckaDecrypt, dec))
	default:
		return "", nil, fmt.Errorf("pkcs11: unsupported algorithm %q (RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384, SM2)", spec.Algorithm)
	}
	u := &URI{Token: a.tok.cfg.Label, Object: spec.Label, ID: spec.ID, Type: "private",
		present: map[string]bool{"token": true, "object": true, "id": true, "type": true}}
	var pk crypto.PublicKey
	err := a.tok.do(ctx, func(h sessionHandle, _ uint64) error {
		existing, err := a.mod.FindObjects(h, []attribute{ulongAttr(ckaClass, ckoPrivateKey), {ckaLabel, []byte(spec.Label)}})
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return fmt.Errorf("pkcs11: token %q already has a private key labelled %q", a.tok.cfg.Label, spec.Label)
		}
		pubH, privH, err := a.mod.GenerateKeyPair(h, m, pub, priv)
		if err != nil {
			return fmt.Errorf("generate key pair: %w", err)
		}
		pk, _, err = publicKeyOf(a.mod, h, privH, pubH, a.tok.sm2)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return u.String(), pk, nil
}

// publicKeyOf reads the public key of a private key: RSA from the private object's
// modulus and exponent, EC and SM2 from the public object with the same CKA_ID (pubH if
// known) since private EC objects need not carry the point.
func publicKeyOf(mod module, h sessionHandle, privH, pubH objectHandle, sm2cfg *SM2Config) (crypto.PublicKey, keyKind, error) {
	a, err := mod.Attributes(h, privH, []uint{ckaKeyType, ckaID, ckaLabel})
	if err != nil {
		return nil, 0, fmt.Errorf("read key attributes: %w", err)
	}
	kt, _ := decodeULong(a[ckaKeyType])
	if kt == ckkRSA {
		b, err := mod.Attributes(h, privH, []uint{ckaModulus, ckaPublicExponent})
		if err != nil {
			return nil, 0, fmt.Errorf("read RSA public key: %w", err)
		}
		e := new(big.Int).SetBytes(b[ckaPublicExponent])
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return nil, 0, errors.New("bad RSA public exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(b[ckaModulus]), E: int(e.Int64())}, kindRSA, nil
	}
	isSM2Type := sm2cfg != nil && kt == sm2cfg.KeyType
	if kt != ckkEC && !isSM2Type {
		return nil, 0, fmt.Errorf("unsupported key type 0x%X", kt)
	}
	if pubH == 0 {
		tmpl := []attribute{ulongAttr(ckaClass, ckoPublicKey)}
		if len(a[ckaID]) > 0 {
			tmpl = append(tmpl, attribute{ckaID, a[ckaID]})
		} else {
			tmpl = append(tmpl, attribute{ckaLabel, a[ckaLabel]})
		}
		objs, err := mod.FindObjects(h, tmpl)
		if err != nil {
			return nil, 0, err
		}
		if len(objs) != 1 {
			return nil, 0, fmt.Errorf("found %d public key objects for the key; need exactly one to read its public key", len(objs))
		}
		pubH = objs[0]
	}
	b, err := mod.Attributes(h, pubH, []uint{ckaECPoint})
	if err != nil {
		return nil, 0, fmt.Errorf("read EC point: %w", err)
	}
	curve := algorithm.SM2.Curve()
	if !isSM2Type {
		p, err := mod.Attributes(h, pubH, []uint{ckaECParams})
		if err != nil {
			return nil, 0, fmt.Errorf("read EC params: %w", err)
		}
		if curve, err = curveFromParams(p[ckaECParams]); err != nil {
			return nil, 0, err
		}
	}
	pk, err := parseECPoint(curve, b[ckaECPoint])
	if err != nil {
		return nil, 0, err
	}
	if algorithm.OfCurve(curve) == algorithm.SM2 {
		return pk, kindSM2, nil
	}
	return pk, kindEC, nil
}

// Signer returns a signer for the key uri names, with its public key read from the
// token (no certificate needed): for certificate requests, before there is a
// certificate. It is bound to ctx.
func (a *Admin) Signer(ctx context.Context, uri string) (crypto.Signer, error) {
	k, err := a.key(ctx, uri)
	if err != nil {
		return nil, err
	}
	return k.Signer(ctx), nil
}

func (a *Admin) key(ctx context.Context, uri string) (*Key, error) {
	u, err := keyURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Token != a.tok.cfg.Label {
		return nil, fmt.Errorf("pkcs11: the URI names token %q, this is %q", u.Token, a.tok.cfg.Label)
	}
	k := &Key{name: u.Object, tok: a.tok, uri: u, usages: keystore.UsageSign | keystore.UsageDecrypt}
	err = a.tok.do(ctx, func(h sessionHandle, gen uint64) error {
		oh, err := k.privateHandle(h, gen)
		if err != nil {
			return err
		}
		k.pub, k.kind, err = publicKeyOf(a.mod, h, oh, 0, a.tok.sm2)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch p := k.pub.(type) {
	case *rsa.PublicKey:
		k.size = p.Size()
	case *ecdsa.PublicKey:
		k.size = (p.Curve.Params().BitSize + 7) / 8
	}
	if k.kind == kindSM2 && a.tok.sm2 == nil {
		return nil, errors.New("pkcs11: an SM2 key, but the token has no sm2 mechanism configuration")
	}
	return k, nil
}

// CreateCSR makes a DER PKCS#10 request for the key uri names, signed inside the token
// (SHA-256 for RSA and ECDSA, SM2 with SM3 for SM2). The request's signature is checked
// before it is returned.
func (a *Admin) CreateCSR(ctx context.Context, uri string, tmpl *smx509.CertificateRequest) ([]byte, error) {
	s, err := a.Signer(ctx, uri)
	if err != nil {
		return nil, err
	}
	der, err := smx509.CreateCertificateRequest(rand.Reader, tmpl, s)
	if rvOf(err) == ckrKeyFunctionNotPermitted {
		return nil, fmt.Errorf("pkcs11: the key %s may not sign (generated for decryption only), so it cannot sign its own request: have the CA certify its public key", uri)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: create certificate request: %w", err)
	}
	csr, err := smx509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pkcs11: the token's signature on the request does not verify: %w", err)
	}
	return der, nil
}

// ImportCertificates stores chain (leaf first) in the token as X.509 certificate
// objects: the leaf with the key's CKA_ID and CKA_LABEL, replacing an older certificate
// of the key (renewal); issuers by subject, unless the token already holds them. The
// leaf must be for the key.
func (a *Admin) ImportCertificates(ctx context.Context, uri string, chain []*smx509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("pkcs11: no certificate to import")
	}
	k, err := a.key(ctx, uri)
	if err != nil {
		return err
	}
	eq, ok := k.pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(chain[0].PublicKey) {
		return fmt.Errorf("pkcs11: certificate %q is not for the key %s", chain[0].Subject.String(), uri)
	}
	return a.tok.do(ctx, func(h sessionHandle, gen uint64) error {
		oh, err := k.privateHandle(h, gen)
		if err != nil {
			return err
		}
		ka, err := a.mod.Attributes(h, oh, []uint{ckaID, ckaLabel})
		if err != nil {
			return err
		}
		if len(ka[ckaID]) > 0 {
			old, err := a.mod.FindObjects(h, []attribute{ulongAttr(ckaClass, ckoCertificate), {ckaID, ka[ckaID]}})
			if err != nil {
				return err
			}
			for _, o := range old {
				if err := a.mod.DestroyObject(h, o); err != nil {
					return fmt.Errorf("remove the old certificate: %w", err)
				}
			}
		}
		if _, err := a.mod.CreateObject(h, certTemplate(chain[0], ka[ckaID], ka[ckaLabel])); err != nil {
			return fmt.Errorf("store the certificate: %w", err)
		}
		for _, c := range chain[1:] {
			have, err := a.mod.FindObjects(h, []attribute{ulongAttr(ckaClass, ckoCertificate), {ckaSubject, c.RawSubject}})
			if err != nil {
				return err
			}
			dup := false
			for _, o := range have {
				v, err := a.mod.Attributes(h, o, []uint{ckaValue})
				if err == nil && bytes.Equal(v[ckaValue], c.Raw) {
					dup = true
				}
			}
			if dup {
				continue
			}
			if _, err := a.mod.CreateObject(h, certTemplate(c, nil, []byte(c.Subject.CommonName))); err != nil {
				return fmt.Errorf("store issuer certificate %q: %w", c.Subject.String(), err)
			}
		}
		return nil
	})
}

func certTemplate(c *smx509.Certificate, id, label []byte) []attribute {
	serial, _ := asn1.Marshal(c.SerialNumber)
	t := []attribute{
		ulongAttr(ckaClass, ckoCertificate), ulongAttr(ckaCertificateType, ckcX509),
		boolAttr(ckaToken, true), boolAttr(ckaPrivate, false),
		{ckaSubject, c.RawSubject}, {ckaIssuer, c.RawIssuer}, {ckaSerialNumber, serial},
		{ckaValue, c.Raw}, {ckaLabel, label},
	}
	if len(id) > 0 {
		t = append(t, attribute{ckaID, id})
	}
	return t
}
