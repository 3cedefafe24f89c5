package server

import (
	"context"
	"errors"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/keystore"
)

// Key generations
//
// A key name may have generations (keystore.GenerationalKey): the store hands out the
// active one, which signs and receives new envelopes, and lists the older ones. An
// envelope made to an older generation's certificate names that certificate in its
// RecipientInfo, so opening it with the active key finds no recipient
// (envelope.ErrNoRecipient, which says nothing secret: the recipient identifiers are
// public). Only then are the decrypt-only generations tried, in their configured
// order, until one is named; retired generations are never used. The caller was
// authorized for the name before, once: every generation is the same logical key.

// generationOpener is a decrypt-only generation ready to open an envelope.
type generationOpener struct {
	priv any
	leaf *smx509.Certificate
}

// olderGenerations are the decrypt-only generations of the named key to try after
// opening with its active one (whose certificate is active) failed with err. It is
// empty unless err is ErrNoRecipient for a certificate key with generations.
func (s *Server) olderGenerations(ctx context.Context, name string, active *smx509.Certificate, err error) []generationOpener {
	if active == nil || !errors.Is(err, envelope.ErrNoRecipient) {
		return nil
	}
	k, kerr := s.store.Key(ctx, name)
	if kerr != nil {
		return nil
	}
	gk, ok := k.(keystore.GenerationalKey)
	if !ok {
		return nil
	}
	var out []generationOpener
	for _, g := range gk.Generations() {
		if g.State != keystore.DecryptOnly {
			continue
		}
		chain := g.Key.Chain()
		if len(chain) == 0 {
			continue
		}
		var priv any
		if d := g.Key.Decrypter(ctx); d != nil {
			priv = d
		} else if a := g.Key.KeyAgreer(ctx); a != nil {
			priv = a
		} else {
			continue
		}
		out = append(out, generationOpener{priv: priv, leaf: chain[0]})
	}
	return out
}
