package envelope

import (
	"crypto/rand"
	"encoding/asn1"
	"fmt"
	"io"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// plan is what Envelope resolved from the recipients and the options.
type plan struct {
	alg    contentAlg
	gmt    bool // GM/T 0010 OIDs and versions
	kinds  []recipientKind
	allSM2 bool
	rand   io.Reader
	opts   Options
}

// newPlan checks the recipients and settles cipher and dialect. cbcDefault picks the
// default for SignedAndEnvelopedData, which has no authenticated form.
func newPlan(recipients []*smx509.Certificate, opts *Options, cbcDefault bool) (*plan, error) {
	p := &plan{rand: rand.Reader, allSM2: true}
	if opts != nil {
		p.opts = *opts
		if opts.Rand != nil {
			p.rand = opts.Rand
		}
	}
	symmetric := len(p.opts.KEKRecipients) + len(p.opts.Passwords)
	if len(recipients)+symmetric == 0 {
		return nil, fmt.Errorf("%w: no recipients", ErrInvalidOptions)
	}
	if symmetric > 0 {
		// GM/T 0010 knows neither choice, and an SM2-only default of SM4-CBC would be
		// a guess about the symmetric peer: the defaults are those of mixed recipients.
		p.allSM2 = false
	}
	switch it := p.opts.PBKDF2Iterations; {
	case it == 0:
		p.opts.PBKDF2Iterations = DefaultPBKDF2Iterations
	case it < minPBKDF2Iterations:
		return nil, fmt.Errorf("%w: %d PBKDF2 iterations are fewer than the least of %d", ErrInvalidOptions, it, minPBKDF2Iterations)
	}
	p.kinds = make([]recipientKind, len(recipients))
	for i, c := range recipients {
		if c == nil {
			return nil, fmt.Errorf("%w: nil recipient certificate", ErrInvalidOptions)
		}
		k, err := kindOf(c)
		if err != nil {
			return nil, err
		}
		if !p.opts.IgnoreKeyUsage {
			if err := checkRecipientUsage(c, k); err != nil {
				return nil, err
			}
		}
		p.kinds[i] = k
		if k != kindSM2 {
			p.allSM2 = false
		}
	}
	c := p.opts.Cipher
	if c == CipherDefault {
		switch {
		case p.allSM2:
			c = SM4CBC
		case cbcDefault:
			c = AES256CBC
		default:
			c = AES256GCM
		}
	}
	alg, ok := contentAlgFor(c)
	if !ok {
		return nil, fmt.Errorf("%w: unknown cipher %d", ErrInvalidOptions, c)
	}
	p.alg = alg
	switch p.opts.Dialect {
	case DialectAuto:
		p.gmt = p.allSM2 && !alg.gcm
	case DialectPKCS7:
	case DialectGMT0010:
		if !p.allSM2 {
			return nil, fmt.Errorf("%w: the GM/T 0010 dialect needs every recipient to be SM2", ErrInvalidOptions)
		}
		if alg.gcm {
			return nil, fmt.Errorf("%w: GM/T 0010 has no authenticated envelope; use SM4-CBC or the PKCS#7 dialect for SM4-GCM", ErrInvalidOptions)
		}
		p.gmt = true
	default:
		return nil, fmt.Errorf("%w: unknown dialect %d", ErrInvalidOptions, p.opts.Dialect)
	}
	return p, nil
}

func (p *plan) dataType() asn1.ObjectIdentifier {
	if p.gmt {
		return cms.OIDSM2Data
	}
	return cms.OIDData
}

// recipientInfos encrypts cek to every recipient. keyTransOnly refuses EC recipients
// (PKCS#7 SignedAndEnvelopedData knows only key transport).
func (p *plan) recipientInfos(recipients []*smx509.Certificate, cek []byte, keyTransOnly bool) ([]cms.RecipientInfo, error) {
	ris := make([]cms.RecipientInfo, len(recipients))
	for i, cert := range recipients {
		rid, err := ridFor(cert, p.opts.RecipientID)
		if err != nil {
			return nil, err
		}
		switch k := p.kinds[i]; k {
		case kindEC:
			if keyTransOnly {
				return nil, fmt.Errorf("%w: recipient %q has an EC key: SignedAndEnvelopedData allows only RSA and SM2 recipients", ErrInvalidOptions, cert.Subject.CommonName)
			}
			kari, err := keyAgree(p.rand, cert, cek, rid, p.opts.ECDHCofactor)
			if err != nil {
				return nil, fmt.Errorf("envelope: key agreement for %q: %w", cert.Subject.CommonName, err)
			}
			ris[i].KeyAgree = kari
		default:
			alg, ek, err := keyTransport(p.rand, cert, k, cek, p.opts.RSA)
			if err != nil {
				return nil, fmt.Errorf("envelope: key transport for %q: %w", cert.Subject.CommonName, err)
			}
			version := 0
			switch {
			case rid.SubjectKeyID != nil:
				version = 2
			case p.gmt:
				version = 1 // GM/T 0010 and GmSSL: version 1 with issuerAndSerialNumber
			}
			ris[i].KeyTrans = &cms.KeyTransRecipientInfo{Version: version, RID: rid, KeyEncryptionAlgorithm: alg, EncryptedKey: ek}
		}
	}
	for _, r := range p.opts.KEKRecipients {
		if keyTransOnly {
			return nil, fmt.Errorf("%w: SignedAndEnvelopedData allows only RSA and SM2 recipients", ErrInvalidOptions)
		}
		kekri, err := kekRecipient(r, cek)
		if err != nil {
			return nil, err
		}
		ris = append(ris, cms.RecipientInfo{KEK: kekri})
	}
	for _, pw := range p.opts.Passwords {
		if keyTransOnly {
			return nil, fmt.Errorf("%w: SignedAndEnvelopedData allows only RSA and SM2 recipients", ErrInvalidOptions)
		}
		pwri, err := passwordRecipient(p.rand, pw, p.opts.PBKDF2Iterations, pwriCipher(p.alg), cek)
		if err != nil {
			return nil, err
		}
		ris = append(ris, cms.RecipientInfo{Password: pwri})
	}
	return ris, nil
}

// newContentKey returns a fresh content-encryption key; the caller clears it.
func (p *plan) newContentKey() ([]byte, error) {
	cek := make([]byte, p.alg.keyLen)
	if _, err := io.ReadFull(p.rand, cek); err != nil {
		return nil, err
	}
	return cek, nil
}

func envelope(content []byte, recipients []*smx509.Certificate, opts *Options) ([]byte, error) {
	p, err := newPlan(recipients, opts, false)
	if err != nil {
		return nil, err
	}
	cek, err := p.newContentKey()
	if err != nil {
		return nil, err
	}
	defer clear(cek)
	ris, err := p.recipientInfos(recipients, cek, false)
	if err != nil {
		return nil, err
	}
	s, err := p.alg.seal(p.rand, cek, content, nil)
	if err != nil {
		return nil, err
	}
	eci := cms.EncryptedContentInfo{ContentType: p.dataType(), ContentEncryptionAlgorithm: s.alg, EncryptedContent: s.ct}
	if p.alg.gcm {
		ad := &cms.AuthEnvelopedData{Version: 0, RecipientInfos: ris, AuthEncryptedContentInfo: eci, MAC: s.tag}
		return ad.MarshalContentInfo()
	}
	ed := &cms.EnvelopedData{RecipientInfos: ris, EncryptedContentInfo: eci}
	if p.gmt {
		ed.Version = 1
		return ed.MarshalContentInfo(cms.OIDSM2EnvelopedData)
	}
	ed.Version = ed.StandardVersion()
	return ed.MarshalContentInfo(cms.OIDEnvelopedData)
}
