package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/sign"
)

// key is a keystore key with what the handlers need, worked out once: its family in
// the algorithm table (which decides the request options that apply: digest, RSA
// scheme, SM2 dialect and user ID; algorithm.Unsupported for a key outside the table,
// ECDSA on P-521, say), leaf certificate and the KeyInfo ListKeys returns.
type key struct {
	k      keystore.Key
	family algorithm.Family
	pub    crypto.PublicKey
	leaf   *smx509.Certificate
	chain  []*smx509.Certificate
	info   *signsvrv1.KeyInfo
	// goNative: the key says its signatures are computed by Go's own code
	// (keystore.GoNativeKey), so pkg/sign need not verify them (Options.SkipSelfCheck).
	// Never decided from the concrete type of the key or its signer.
	goNative bool
	// check is the self-check policy of a key that is not goNative: its backend's
	// (keystore.SelfCheckedKey), or nil, which checks every signature.
	check *keystore.SelfCheck
}

// checkNext reports whether the signature about to be made with k must be verified
// before it is handed out.
func (k *key) checkNext() bool { return !k.goNative && k.check.Next() }

// signed takes note of a signing error: a signature that failed its self-check makes
// every later signature of the key checked, and is logged (the device misbehaves).
func (s *Server) signed(ctx context.Context, k *key, err error) {
	if errors.Is(err, sign.ErrSelfCheck) {
		k.check.Failed()
		s.log.LogAttrs(ctx, slog.LevelError, "the key's device returned a signature that does not verify; every signature of this key is checked from now on",
			slog.String("key", k.k.Name()), slog.String("err", err.Error()))
	}
}

// keyCache maps a key name to its prepared key. An entry is reused while the store
// hands out the same keystore.Key, and rebuilt when the store replaced it.
type keyCache struct {
	m sync.Map // string -> *key
}

func (s *Server) prepared(k keystore.Key) *key {
	if v, ok := s.keys.m.Load(k.Name()); ok {
		if pk := v.(*key); pk.k == k {
			return pk
		}
	}
	pk := &key{k: k, pub: k.Public(), chain: k.Chain()}
	pk.family = algorithm.Of(pk.pub)
	pk.goNative = keystore.IsGoNative(k)
	if sc, ok := k.(keystore.SelfCheckedKey); ok && !pk.goNative {
		pk.check = sc.SelfCheck()
	}
	if len(pk.chain) > 0 {
		pk.leaf = pk.chain[0]
	}
	backend := s.backend
	if bs, ok := s.store.(backendNamer); ok {
		if b := bs.Backend(k.Name()); b != "" {
			backend = b
		}
	}
	pk.info = keyInfo(pk, backend)
	pk.info.ClientDigests = s.clientDigestList(k.Name()) // digest.go
	s.keys.m.Store(k.Name(), pk)
	return pk
}

// backendNamer is a store that combines backends and names the one holding a key.
type backendNamer interface {
	Backend(keyName string) string
}

// lookupKey finds a key by name, without any authorization (for recipients, whose
// certificates are public).
func (s *Server) lookupKey(ctx context.Context, name string) (*key, error) {
	if name == "" {
		return nil, invalidRequest("no key name given")
	}
	k, err := s.store.Key(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.prepared(k), nil
}

// useKey finds a key the caller will operate with: the authorizer must allow the
// caller, and the key must exist and be configured for op. Authorization comes first,
// so a caller who may not use a key cannot learn from NotFound whether it exists.
func (s *Server) useKey(ctx context.Context, name string, op Operation) (*key, error) {
	noteKey(ctx, name)
	if s.reserved[name] {
		return nil, newError(codes.PermissionDenied, signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			"key "+name+" is reserved for the server's own use",
			fmt.Errorf("a request asked to %s with the reserved key %q", op, name))
	}
	if err := s.authorizer.Authorize(ctx, IdentityFrom(ctx), op, name); err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, name)
	if err != nil {
		return nil, err
	}
	need := keystore.UsageSign
	if op == OpDecrypt {
		need = keystore.UsageDecrypt
	}
	if !k.k.Usages().Has(need) {
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_KEY_USAGE_NOT_ALLOWED,
			"key "+name+" is not configured to "+string(op), nil)
	}
	return k, nil
}

func keyInfo(k *key, backend string) *signsvrv1.KeyInfo {
	info := &signsvrv1.KeyInfo{Name: k.k.Name(), Backend: backend}
	switch {
	case k.family == algorithm.RSA:
		info.Algorithm = signsvrv1.KeyAlgorithm_KEY_ALGORITHM_RSA
		info.KeyBits = uint32(k.pub.(*rsa.PublicKey).N.BitLen())
	case k.family.IsECDSA():
		params := k.pub.(*ecdsa.PublicKey).Curve.Params()
		info.Algorithm = signsvrv1.KeyAlgorithm_KEY_ALGORITHM_EC
		info.KeyBits = uint32(params.BitSize)
		info.Curve = params.Name
	case k.family == algorithm.SM2:
		info.Algorithm = signsvrv1.KeyAlgorithm_KEY_ALGORITHM_SM2
		info.KeyBits = uint32(k.pub.(*ecdsa.PublicKey).Curve.Params().BitSize)
		info.Curve = "SM2"
	}
	u := k.k.Usages()
	if u.Has(keystore.UsageSign) {
		info.Usages = append(info.Usages, signsvrv1.KeyUsage_KEY_USAGE_SIGN)
	}
	if u.Has(keystore.UsageDecrypt) {
		info.Usages = append(info.Usages, signsvrv1.KeyUsage_KEY_USAGE_DECRYPT)
	}
	for _, c := range k.chain {
		info.CertificateChain = append(info.CertificateChain, c.Raw)
	}
	// What a client needs for an SM2 Z value: the public key and the default ID.
	if spki, err := smx509.MarshalPKIXPublicKey(k.pub); err == nil {
		info.PublicKey = spki
	}
	if k.family == algorithm.SM2 {
		info.Sm2UserId = []byte("1234567812345678")
	}
	if k.leaf != nil {
		info.Subject = k.leaf.Subject.String()
		info.NotAfter = timestamppb.New(k.leaf.NotAfter)
	}
	info.Generations = generationInfos(k.k)
	return info
}

type keyService struct {
	*Server
	signsvrv1.UnimplementedKeyServiceServer
}

// ListKeys implements signsvrv1.KeyServiceServer.
func (s keyService) ListKeys(ctx context.Context, req *signsvrv1.ListKeysRequest) (*signsvrv1.ListKeysResponse, error) {
	var want keystore.Usage
	switch req.GetUsage() {
	case signsvrv1.KeyUsage_KEY_USAGE_UNSPECIFIED:
	case signsvrv1.KeyUsage_KEY_USAGE_SIGN:
		want = keystore.UsageSign
	case signsvrv1.KeyUsage_KEY_USAGE_DECRYPT:
		want = keystore.UsageDecrypt
	default:
		return nil, invalidRequest("unknown usage %d", req.GetUsage())
	}
	keys, err := s.store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	resp := &signsvrv1.ListKeysResponse{Keys: make([]*signsvrv1.KeyInfo, 0, len(keys))}
	for _, k := range keys {
		if want != 0 && !k.Usages().Has(want) {
			continue
		}
		info := s.prepared(k).info
		if keystore.ExpiresSoon(k, s.now(), s.expiryWarn) {
			// The cached info is shared by every call; the flag depends on the clock.
			info = proto.CloneOf(info)
			info.ExpiresSoon = true
		}
		resp.Keys = append(resp.Keys, info)
	}
	return resp, nil
}

// signerOf is the key's signer bound to ctx, or FailedPrecondition when the key cannot
// sign; it also ends here when the request already has.
func signerOf(ctx context.Context, k *key) (crypto.Signer, error) {
	signer := k.k.Signer(ctx)
	if signer == nil {
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_KEY_USAGE_NOT_ALLOWED,
			"key "+k.k.Name()+" cannot sign", nil)
	}
	return signer, ctx.Err()
}
