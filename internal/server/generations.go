package server

import (
	"context"
	"errors"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"

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
	id   string
	priv any
	leaf *smx509.Certificate
}

// keyUse names this generation of the key name.
func (g generationOpener) keyUse(name string) *signsvrv1.KeyUse {
	return &signsvrv1.KeyUse{Key: name, Generation: g.id, CertificateSerial: g.leaf.SerialNumber.Text(16)}
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
		out = append(out, generationOpener{id: g.ID, priv: priv, leaf: chain[0]})
	}
	return out
}

// openWithGenerations runs open with the named key's active generation (priv and
// leaf, as openerFor gave them) and, while open finds no recipient, with each
// decrypt-only generation in turn (olderGenerations). It returns the generation of
// the last try (nil for a password or a KEK) and that try's error. open must leave
// its input as it was when it finds no recipient: pkg/envelope's Open and
// OpenAndVerify, or a StreamEnvelope's Open, which reads nothing before the
// recipient matched.
func (s *Server) openWithGenerations(ctx context.Context, name string, priv any, leaf *smx509.Certificate,
	open func(priv any, leaf *smx509.Certificate) error) (*signsvrv1.KeyUse, error) {
	err := open(priv, leaf)
	var used *signsvrv1.KeyUse
	if leaf != nil {
		used = s.keyUsed(ctx, name)
	}
	for _, g := range s.olderGenerations(ctx, name, leaf, err) {
		if err = open(g.priv, g.leaf); !errors.Is(err, envelope.ErrNoRecipient) {
			used = g.keyUse(name)
			break
		}
	}
	return used, err
}

// keyUsed names the generation of the named key that signs and receives envelopes now
// (its active one), with its certificate's serial; nil for a name the store does not
// hold (a password, a KEK).
func (s *Server) keyUsed(ctx context.Context, name string) *signsvrv1.KeyUse {
	if name == "" {
		return nil
	}
	k, err := s.store.Key(ctx, name)
	if err != nil {
		return nil
	}
	u := &signsvrv1.KeyUse{Key: name}
	if gk, ok := k.(keystore.GenerationalKey); ok {
		u.Generation = gk.Generations()[0].ID
	}
	if c := k.Chain(); len(c) > 0 {
		u.CertificateSerial = c[0].SerialNumber.Text(16)
	}
	return u
}

// keysUsed is keyUsed of each name.
func (s *Server) keysUsed(ctx context.Context, names []string) []*signsvrv1.KeyUse {
	var out []*signsvrv1.KeyUse
	for _, n := range names {
		if u := s.keyUsed(ctx, n); u != nil {
			out = append(out, u)
		}
	}
	return out
}

// generationInfos lists the generations of a key for ListKeys (nil without any).
func generationInfos(k keystore.Key) []*signsvrv1.KeyGeneration {
	gk, ok := k.(keystore.GenerationalKey)
	if !ok {
		return nil
	}
	var out []*signsvrv1.KeyGeneration
	for _, g := range gk.Generations() {
		info := &signsvrv1.KeyGeneration{Id: g.ID, State: generationState(g.State)}
		if c := g.Key.Chain(); len(c) > 0 {
			info.CertificateSerial = c[0].SerialNumber.Text(16)
			info.NotAfter = timestamppb.New(c[0].NotAfter)
			info.Certificate = c[0].Raw
		}
		out = append(out, info)
	}
	return out
}

func generationState(st keystore.GenerationState) signsvrv1.KeyGenerationState {
	switch st {
	case keystore.Active:
		return signsvrv1.KeyGenerationState_KEY_GENERATION_STATE_ACTIVE
	case keystore.DecryptOnly:
		return signsvrv1.KeyGenerationState_KEY_GENERATION_STATE_DECRYPT_ONLY
	case keystore.Retired:
		return signsvrv1.KeyGenerationState_KEY_GENERATION_STATE_RETIRED
	}
	return signsvrv1.KeyGenerationState_KEY_GENERATION_STATE_UNSPECIFIED
}
