package pkcs11

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/smx509"
)

// chainFromToken reads the key's certificate (a CKO_CERTIFICATE with the key's CKA_ID,
// else its CKA_LABEL) and then each issuer by CKA_SUBJECT, up to a self-signed one.
func chainFromToken(mod module, h sessionHandle, id, label []byte) ([]*smx509.Certificate, error) {
	find := func(tmpl []attribute) (*smx509.Certificate, error) {
		tmpl = append([]attribute{ulongAttr(ckaClass, ckoCertificate)}, tmpl...)
		objs, err := mod.FindObjects(h, tmpl)
		if err != nil || len(objs) == 0 {
			return nil, err
		}
		a, err := mod.Attributes(h, objs[0], []uint{ckaValue})
		if err != nil {
			return nil, err
		}
		return smx509.ParseCertificate(a[ckaValue])
	}
	var leaf *smx509.Certificate
	var err error
	if len(id) > 0 {
		if leaf, err = find([]attribute{{ckaID, id}}); err != nil {
			return nil, fmt.Errorf("read certificate: %w", err)
		}
	}
	if leaf == nil && len(label) > 0 {
		if leaf, err = find([]attribute{{ckaLabel, label}}); err != nil {
			return nil, fmt.Errorf("read certificate: %w", err)
		}
	}
	if leaf == nil {
		return nil, errors.New("no cert_file given and no certificate in the token for this key (import one with `signsvr keys import-cert`)")
	}
	chain := []*smx509.Certificate{leaf}
	for c := leaf; len(chain) < 8 && !bytes.Equal(c.RawIssuer, c.RawSubject); {
		issuer, err := find([]attribute{{ckaSubject, c.RawIssuer}})
		if err != nil {
			return nil, fmt.Errorf("read issuer certificate: %w", err)
		}
		if issuer == nil {
			break
		}
		chain = append(chain, issuer)
		c = issuer
	}
	return chain, nil
}
