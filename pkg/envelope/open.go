package envelope

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"io"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// message is a parsed EnvelopedData, AuthEnvelopedData or SignedAndEnvelopedData,
// reduced to what opening needs.
type message struct {
	contentType asn1.ObjectIdentifier
	ris         []cms.RecipientInfo
	eci         *cms.EncryptedContentInfo
	auth        bool
	mac, aad    []byte
	sed         *cms.SignedAndEnvelopedData
}

// parseMessage reads a BER or DER ContentInfo holding one of the envelope types.
func parseMessage(der []byte) (*message, error) {
	ci, err := cms.ParseContentInfo(der)
	if err != nil {
		return nil, err
	}
	if ci.Content == nil {
		return nil, errors.Join(cms.ErrMalformed, errors.New("envelope: ContentInfo has no content"))
	}
	m := &message{contentType: ci.ContentType}
	switch ct := ci.ContentType; {
	case cms.ContentTypeIsEnveloped(ct):
		ed, err := cms.ParseEnvelopedData(ci.Content)
		if err != nil {
			return nil, err
		}
		m.ris, m.eci = ed.RecipientInfos, &ed.EncryptedContentInfo
	case ct.Equal(cms.OIDAuthEnvelopedData):
		ad, err := cms.ParseAuthEnvelopedData(ci.Content)
		if err != nil {
			return nil, err
		}
		if m.aad, err = ad.AAD(); err != nil {
			return nil, err
		}
		m.ris, m.eci, m.auth, m.mac = ad.RecipientInfos, &ad.AuthEncryptedContentInfo, true, ad.MAC
	case cms.ContentTypeIsSignedAndEnveloped(ct):
		sed, err := cms.ParseSignedAndEnvelopedData(ci.Content)
		if err != nil {
			return nil, err
		}
		m.ris, m.eci, m.sed = sed.RecipientInfos, &sed.EncryptedContentInfo, sed
	default:
		return nil, unsupported("content type %s is not an envelope", ct)
	}
	return m, nil
}

// asKeyAgreer accepts a KeyAgreer, or an *ecdsa.PrivateKey for convenience.
func asKeyAgreer(key any) (KeyAgreer, bool) {
	switch k := key.(type) {
	case KeyAgreer:
		return k, true
	case *ecdsa.PrivateKey:
		e, err := k.ECDH()
		if err != nil {
			return nil, false
		}
		return e, true
	}
	return nil, false
}

// open finds cert's RecipientInfo, recovers the content key with key and decrypts the
// content. It returns the plaintext and its content type.
//
// Errors before any secret is touched say what is wrong (malformed, unsupported,
// legacy not allowed, no recipient, wrong key type). After that every failure is the
// one ErrDecrypt, and the content decryption runs whether or not the key unwrap
// worked, so neither the error nor the work done tells which step failed.
func (m *message) open(key any, cert *smx509.Certificate, opts *OpenOptions) ([]byte, asn1.ObjectIdentifier, error) {
	cek, keyOK, alg, err := m.contentKey(key, cert, opts)
	if err != nil {
		return nil, nil, err
	}
	eci := m.eci
	var tag []byte
	if m.auth {
		tag = m.mac
	}
	pt, contentOK := alg.open(cek, eci.ContentEncryptionAlgorithm.Parameters, eci.EncryptedContent, tag, m.aad)
	clear(cek)
	if keyOK&contentOK != 1 {
		clear(pt)
		return nil, nil, ErrDecrypt
	}
	return pt, eci.ContentType, nil
}

// contentKey finds the RecipientInfo for key (and cert) and recovers the content key,
// for the content algorithm it returns. keyOK is 0 when the unwrap failed: cek is then
// a random key of the right length, so the content decryption runs all the same and
// fails as if the content were bad (the caller clears cek). The errors are those open
// returns before any secret is touched.
func (m *message) contentKey(key any, cert *smx509.Certificate, opts *OpenOptions) (cek []byte, keyOK int, alg contentAlg, err error) {
	var o OpenOptions
	if opts != nil {
		o = *opts
	}
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var unwrap func(keyLen int) ([]byte, int, error)
	switch k := key.(type) {
	case KEKRecipient:
		if cert != nil {
			return nil, 0, alg, errors.New("envelope: a KEK recipient takes no certificate")
		}
		if !m.has(func(ri *cms.RecipientInfo) bool { return ri.KEK != nil && bytes.Equal(ri.KEK.KeyID, k.ID) }) {
			return nil, 0, alg, ErrNoRecipient
		}
		unwrap = func(n int) ([]byte, int, error) { return m.unwrapKEK(rnd, k, n, o.BackendError) }
	case Password:
		if cert != nil {
			return nil, 0, alg, errors.New("envelope: a password takes no certificate")
		}
		if !m.has(func(ri *cms.RecipientInfo) bool { return ri.Password != nil }) {
			return nil, 0, alg, ErrNoRecipient
		}
		maxIter := o.MaxPBKDF2Iterations
		if maxIter <= 0 {
			maxIter = DefaultMaxPBKDF2Iterations
		}
		unwrap = func(n int) ([]byte, int, error) { return m.unwrapPassword(rnd, k, n, maxIter) }
	default:
		if unwrap, err = m.certRecipient(rnd, key, cert, o); err != nil {
			return nil, 0, alg, err
		}
	}

	eci := m.eci
	alg, ok := contentAlgByOID(eci.ContentEncryptionAlgorithm.Algorithm)
	if !ok {
		return nil, 0, alg, unsupported("content encryption %s", eci.ContentEncryptionAlgorithm.Algorithm)
	}
	if alg.legacy && !o.AllowLegacy {
		return nil, 0, alg, legacy(alg.name)
	}
	if m.auth != alg.gcm && (m.auth || m.sed != nil) {
		return nil, 0, alg, unsupported("%s in this content type", alg.name)
	}
	if eci.EncryptedContent == nil {
		return nil, 0, alg, unsupported("detached encrypted content")
	}

	cek, keyOK, err = unwrap(alg.keyLen)
	if err != nil {
		return nil, 0, alg, err
	}
	return cek, keyOK, alg, nil
}

// has reports whether some RecipientInfo satisfies f.
func (m *message) has(f func(*cms.RecipientInfo) bool) bool {
	for i := range m.ris {
		if f(&m.ris[i]) {
			return true
		}
	}
	return false
}

// certRecipient finds cert's RecipientInfo and returns how to recover the content key
// from it with key.
func (m *message) certRecipient(rnd io.Reader, key any, cert *smx509.Certificate, o OpenOptions) (func(int) ([]byte, int, error), error) {
	if cert == nil {
		return nil, errors.New("envelope: no recipient certificate given")
	}
	kind, err := kindOf(cert)
	if err != nil {
		return nil, err
	}
	rc := recipientCert(cert)
	var (
		ktri *cms.KeyTransRecipientInfo
		kari *cms.KeyAgreeRecipientInfo
		ek   []byte
	)
find:
	for i := range m.ris {
		ri := &m.ris[i]
		switch {
		case ri.KeyTrans != nil && ri.KeyTrans.RID.Matches(rc):
			ktri = ri.KeyTrans
			break find
		case ri.KeyAgree != nil:
			for j := range ri.KeyAgree.RecipientEncryptedKeys {
				if rek := &ri.KeyAgree.RecipientEncryptedKeys[j]; rek.RID.Matches(rc) {
					kari, ek = ri.KeyAgree, rek.EncryptedKey
					break find
				}
			}
		}
	}
	if ktri == nil && kari == nil {
		return nil, ErrNoRecipient
	}
	if (kind == kindEC) != (kari != nil) {
		return nil, unsupported("recipient info type does not fit the certificate's key")
	}
	if kari != nil {
		agreer, ok := asKeyAgreer(key)
		if !ok {
			return nil, ErrKeyType
		}
		return func(n int) ([]byte, int, error) {
			return unwrapKeyAgree(rnd, cert, kari, ek, agreer, n, o.BackendError)
		}, nil
	}
	dec, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, ErrKeyType
	}
	return func(n int) ([]byte, int, error) {
		return unwrapKeyTransport(rnd, kind, ktri, dec, n, o.BackendError)
	}, nil
}
