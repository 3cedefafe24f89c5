package soft

import (
	"crypto"
	"io"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
)

// sm2Signer is an SM2 private key whose Z value for the default user ID is computed
// once, when the key is loaded: Z depends only on the public key and the user ID, yet
// gmsm's Sign recomputes it (an SM3 over about 210 bytes and a point conversion, a few
// µs) on every call made with the whole message. It keeps gmsm's conventions exactly:
//
//   - opts == sm2.DefaultSM2SignerOpts (forceGMSign with the default user ID, which
//     pkg/sign passes for the default ID): digest is the whole message; the signature
//     is over e = SM3(Z || digest) with the cached Z;
//   - any other *sm2.SM2SignerOption, or anything else: handed to gmsm unchanged
//     (another user ID, or a precomputed e with forceGMSign false).
//
// gmsm's option fields are unexported, so only the package's own default option value
// can be recognised; a caller passing NewSM2SignerOption(true, nil) gets the same
// signature through the slower path.
type sm2Signer struct {
	*sm2.PrivateKey
	z []byte // Z for the default user ID
}

var (
	_ crypto.Signer        = (*sm2Signer)(nil)
	_ crypto.MessageSigner = (*sm2Signer)(nil)
	_ crypto.Decrypter     = (*sm2Signer)(nil)
)

func newSM2Signer(priv *sm2.PrivateKey) (*sm2Signer, error) {
	z, err := sm2.CalculateZA(&priv.PublicKey, nil) // nil: the default user ID
	if err != nil {
		return nil, err
	}
	return &sm2Signer{PrivateKey: priv, z: z}, nil
}

// Sign implements crypto.Signer with gmsm's conventions (see the type).
func (s *sm2Signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*sm2.SM2SignerOption); !ok || o != sm2.DefaultSM2SignerOpts || rand == nil {
		return s.PrivateKey.Sign(rand, digest, opts)
	}
	h := sm3.New()
	h.Write(s.z)
	h.Write(digest)
	var e [sm3.Size]byte
	return sm2.SignASN1(rand, s.PrivateKey, h.Sum(e[:0]), nil)
}

// SignMessage implements crypto.MessageSigner: msg is the whole message, the user ID
// comes from opts (*sm2.SM2SignerOption) or is the default.
func (s *sm2Signer) SignMessage(rand io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*sm2.SM2SignerOption); ok && o != sm2.DefaultSM2SignerOpts {
		return s.PrivateKey.SignMessage(rand, msg, opts)
	}
	return s.Sign(rand, msg, sm2.DefaultSM2SignerOpts)
}
