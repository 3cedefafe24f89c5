package trust

import (
	"bytes"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

var (
	oidExtCRLNumber = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidExtAKI       = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtReason    = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidExtInvalDate = asn1.ObjectIdentifier{2, 5, 29, 24}
)

// crlEntry is a parsed, indexed CRL. Its signature is checked against each issuer
// it is used for (once per issuer).
type crlEntry struct {
	src     string
	raw     []byte
	list    *smx509.RevocationList
	revoked map[string]revokedEntry
	expires time.Time // nextUpdate, or fetch time + default TTL
	static  bool      // from config: never fetched

	mu       sync.Mutex
	verified map[string]error // issuer DER -> signature check result
}

type revokedEntry struct {
	at     time.Time
	reason CRLReason
}

func serialKey(n *big.Int) string {
	if n == nil {
		return ""
	}
	if n.Sign() < 0 {
		return "-" + string(n.Bytes())
	}
	return string(n.Bytes())
}

// parseCRL parses a DER or PEM CRL. Delta CRLs, indirect CRLs and CRLs with
// other critical extensions (issuing distribution point) are refused: this
// package reads complete, direct CRLs only.
func parseCRL(b []byte, src string, now time.Time, ttl time.Duration) (*crlEntry, error) {
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q is not an X509 CRL", blk.Type)
		}
		der = blk.Bytes
	}
	list, err := smx509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	for _, ext := range list.Extensions {
		if ext.Critical && !ext.Id.Equal(oidExtCRLNumber) && !ext.Id.Equal(oidExtAKI) {
			return nil, fmt.Errorf("unsupported critical CRL extension %v (delta, partitioned and indirect CRLs are not supported)", ext.Id)
		}
	}
	e := &crlEntry{src: src, raw: der, list: list, revoked: make(map[string]revokedEntry, len(list.RevokedCertificateEntries))}
	for _, r := range list.RevokedCertificateEntries {
		for _, ext := range r.Extensions {
			if ext.Critical && !ext.Id.Equal(oidExtReason) && !ext.Id.Equal(oidExtInvalDate) {
				return nil, fmt.Errorf("unsupported critical CRL entry extension %v", ext.Id)
			}
		}
		e.revoked[serialKey(r.SerialNumber)] = revokedEntry{at: r.RevocationTime, reason: CRLReason(r.ReasonCode)}
	}
	e.expires = list.NextUpdate
	if e.expires.IsZero() {
		e.expires = now.Add(ttl)
	}
	return e, nil
}

// fresh: thisUpdate not in the future, and now before nextUpdate (both with skew).
// A configured CRL without nextUpdate is fresh forever.
func (e *crlEntry) fresh(now time.Time, skew time.Duration) bool {
	if e.list.ThisUpdate.After(now.Add(skew)) {
		return false
	}
	if e.list.NextUpdate.IsZero() && e.static {
		return true
	}
	return now.Before(e.expires.Add(skew))
}

// nearExpiry: within a tenth of the CRL's lifetime, or two refresh intervals,
// of its nextUpdate.
func (e *crlEntry) nearExpiry(now time.Time, interval time.Duration) bool {
	if e.static {
		return false
	}
	margin := e.expires.Sub(e.list.ThisUpdate) / 10
	if m := 2 * interval; m > margin {
		margin = m
	}
	return e.expires.Sub(now) <= margin
}

// issuedBy checks that e is issuer's CRL: same name, matching key identifier when
// both are present, and a signature that verifies with issuer's key.
func (e *crlEntry) issuedBy(issuer *smx509.Certificate) error {
	if !bytes.Equal(e.list.RawIssuer, issuer.RawSubject) {
		return errors.New("CRL issued by another CA")
	}
	if len(e.list.AuthorityKeyId) > 0 && len(issuer.SubjectKeyId) > 0 && !bytes.Equal(e.list.AuthorityKeyId, issuer.SubjectKeyId) {
		return errors.New("CRL signed by another key of the CA")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err, ok := e.verified[string(issuer.Raw)]; ok {
		return err
	}
	err := e.list.CheckSignatureFrom(issuer)
	if err != nil {
		err = fmt.Errorf("CRL signature: %w", err)
	}
	if e.verified == nil {
		e.verified = map[string]error{}
	}
	if len(e.verified) < 16 {
		e.verified[string(issuer.Raw)] = err
	}
	return err
}

// answer looks c up in e (already checked to be its issuer's CRL).
func (e *crlEntry) answer(c *smx509.Certificate, now time.Time) revAnswer {
	a := revAnswer{
		status:  revGood,
		check:   RevocationCheck{Method: RevocationCRL, Source: e.src, ThisUpdate: e.list.ThisUpdate, NextUpdate: e.list.NextUpdate},
		expires: e.list.NextUpdate,
	}
	if r, ok := e.revoked[serialKey(c.SerialNumber)]; ok && r.reason != ReasonCodeRemoveFromCRL {
		a.status, a.revokedAt, a.reason = revRevoked, r.at, r.reason
	}
	return a
}
