package server

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
)

// TestRequestUse pins what a request's digest and RSA scheme get for each family: the
// use chosen, or the status, reason and message the client sees.
func TestRequestUse(t *testing.T) {
	const (
		unspec = signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED
		sha256 = signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256
		sha384 = signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384
		sha512 = signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512
		sm3    = signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3
		pkcs1  = signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PKCS1V15
		pss    = signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS
		nosch  = signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_UNSPECIFIED
	)
	var (
		unknownDigest = signsvrv1.DigestAlgorithm(99)
		unknownScheme = signsvrv1.RsaSignatureScheme(7)
	)
	const (
		unsup   = signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED
		invalid = signsvrv1.ErrorReason_ERROR_REASON_INVALID_REQUEST
	)
	use := func(s algorithm.Scheme, d algorithm.Digest) algorithm.Use { return algorithm.Use{Scheme: s, Digest: d} }
	for _, c := range []struct {
		f      algorithm.Family
		d      signsvrv1.DigestAlgorithm
		s      signsvrv1.RsaSignatureScheme
		sign   algorithm.Use // for SignCMS
		raw    algorithm.Use // for RawSignature
		reason signsvrv1.ErrorReason
		msg    string
	}{
		{f: algorithm.RSA, d: unspec, s: nosch, sign: use(algorithm.PKCS1v15, algorithm.SHA256), raw: use(algorithm.PKCS1v15, algorithm.SHA256)},
		{f: algorithm.RSA, d: sha512, s: pkcs1, sign: use(algorithm.PKCS1v15, algorithm.SHA512), raw: use(algorithm.PKCS1v15, algorithm.SHA512)},
		{f: algorithm.RSA, d: unspec, s: pss, sign: use(algorithm.PSS, algorithm.SHA256), raw: use(algorithm.PSS, algorithm.SHA256)},
		{f: algorithm.RSA, d: sha384, s: pss, sign: use(algorithm.PSS, algorithm.SHA384), raw: use(algorithm.PSS, algorithm.SHA384)},
		{f: algorithm.RSA, d: sm3, s: nosch, reason: unsup, msg: "SM3 is for SM2 keys only"},
		{f: algorithm.RSA, d: sm3, s: unknownScheme, reason: unsup, msg: "SM3 is for SM2 keys only"},
		{f: algorithm.RSA, d: unknownDigest, s: nosch, reason: invalid, msg: "unknown digest 99"},
		{f: algorithm.RSA, d: unspec, s: unknownScheme, reason: invalid, msg: "unknown RSA signature scheme 7"},
		{f: algorithm.ECDSAP256, d: unspec, s: nosch, sign: use(algorithm.ECDSA, algorithm.SHA256), raw: use(algorithm.ECDSA, algorithm.SHA256)},
		{f: algorithm.ECDSAP256, d: sha512, s: pkcs1, sign: use(algorithm.ECDSA, algorithm.SHA512), raw: use(algorithm.ECDSA, algorithm.SHA512)},
		{f: algorithm.ECDSAP256, d: unspec, s: pss, reason: unsup, msg: "PSS is for RSA keys only"},
		{f: algorithm.ECDSAP384, d: unspec, s: nosch, sign: use(algorithm.ECDSA, algorithm.SHA256), raw: use(algorithm.ECDSA, algorithm.SHA384)},
		{f: algorithm.ECDSAP384, d: sha256, s: nosch, sign: use(algorithm.ECDSA, algorithm.SHA256), raw: use(algorithm.ECDSA, algorithm.SHA256)},
		{f: algorithm.ECDSAP384, d: sm3, s: nosch, reason: unsup, msg: "SM3 is for SM2 keys only"},
		{f: algorithm.SM2, d: unspec, s: nosch, sign: use(algorithm.SM2WithSM3, algorithm.SM3), raw: use(algorithm.SM2WithSM3, algorithm.SM3)},
		{f: algorithm.SM2, d: sm3, s: pkcs1, sign: use(algorithm.SM2WithSM3, algorithm.SM3), raw: use(algorithm.SM2WithSM3, algorithm.SM3)},
		{f: algorithm.SM2, d: sha256, s: nosch, reason: unsup, msg: "SM2 keys sign with SM3 only"},
		{f: algorithm.SM2, d: unknownDigest, s: nosch, reason: unsup, msg: "SM2 keys sign with SM3 only"},
		{f: algorithm.SM2, d: unspec, s: pss, reason: unsup, msg: "PSS is for RSA keys only"},
		// A key outside the table is refused where it is used; only what belongs to
		// one family is refused here.
		{f: algorithm.Unsupported, d: sha384, s: pkcs1, sign: use(0, algorithm.SHA384), raw: use(0, algorithm.SHA384)},
		{f: algorithm.Unsupported, d: unspec, s: nosch},
		{f: algorithm.Unsupported, d: sm3, s: nosch, reason: unsup, msg: "SM3 is for SM2 keys only"},
		{f: algorithm.Unsupported, d: unspec, s: pss, reason: unsup, msg: "PSS is for RSA keys only"},
		{f: algorithm.Unsupported, d: unknownDigest, s: nosch, reason: invalid, msg: "unknown digest 99"},
	} {
		for p, want := range map[algorithm.Purpose]algorithm.Use{algorithm.SignCMS: c.sign, algorithm.RawSignature: c.raw} {
			u, err := requestUse(c.f, p, c.d, c.s)
			if c.msg == "" {
				if err != nil || u != want {
					t.Errorf("%s %s digest %v scheme %v: %v, %v; want %v", c.f, p, c.d, c.s, u, err, want)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != codes.InvalidArgument || e.Reason != c.reason || e.Msg != c.msg {
				t.Errorf("%s %s digest %v scheme %v: %v; want InvalidArgument %v %q", c.f, p, c.d, c.s, err, c.reason, c.msg)
			}
		}
	}
}

// TestAuditUse: an audit record names what the request asked of the key's family, and
// the family's default for what the family does not have.
func TestAuditUse(t *testing.T) {
	for _, c := range []struct {
		f    algorithm.Family
		d    signsvrv1.DigestAlgorithm
		s    signsvrv1.RsaSignatureScheme
		want []string
	}{
		{algorithm.RSA, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED, 0, []string{"RSA", "SHA-256"}},
		{algorithm.RSA, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3, signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS, []string{"RSA-PSS", "SHA-256"}},
		{algorithm.RSA, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512, signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PKCS1V15, []string{"RSA", "SHA-512"}},
		{algorithm.ECDSAP384, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED, signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS, []string{"ECDSA", "SHA-256"}},
		{algorithm.ECDSAP256, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384, 0, []string{"ECDSA", "SHA-384"}},
		{algorithm.SM2, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384, 0, []string{"SM2", "SM3"}},
		{algorithm.SM2, signsvrv1.DigestAlgorithm(99), 0, []string{"SM2", "SM3"}},
	} {
		u, ok := auditUse(c.f, algorithm.SignCMS, c.d, c.s)
		if got := []string{auditSchemeNames[u.Scheme], u.Digest.String()}; !ok || got[0] != c.want[0] || got[1] != c.want[1] {
			t.Errorf("%s digest %v scheme %v: %v, want %v", c.f, c.d, c.s, got, c.want)
		}
	}
	if _, ok := auditUse(algorithm.Unsupported, algorithm.SignCMS, 0, 0); ok {
		t.Error("a use for a key outside the table")
	}
}

// TestAuditAlgorithms: what the audit record of each kind of call names for a key.
func TestAuditAlgorithms(t *testing.T) {
	s := &Server{}
	for name, f := range map[string]algorithm.Family{"rsa": algorithm.RSA, "p384": algorithm.ECDSAP384, "sm2": algorithm.SM2, "p521": algorithm.Unsupported} {
		s.keys.m.Store(name, &key{family: f})
	}
	pss := &signsvrv1.SignOptions{RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS, Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512}
	for _, c := range []struct {
		key  string
		req  any
		want []string
	}{
		{"rsa", &signsvrv1.SignRequest{Options: pss}, []string{"RSA-PSS", "SHA-512"}},
		{"rsa", &signsvrv1.SignRawRequest{RsaScheme: signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS}, []string{"RSA-PSS", "SHA-256"}},
		{"rsa", &signsvrv1.SignAndEnvelopeRequest{SignOptions: pss}, []string{"RSA-PSS", "SHA-512"}},
		{"rsa", &signsvrv1.DecryptRequest{}, []string{"RSA"}},
		{"p384", &signsvrv1.SignRequest{}, []string{"ECDSA", "SHA-256"}},
		{"p384", &signsvrv1.SignRawRequest{}, []string{"ECDSA", "SHA-384"}},
		{"p384", &signsvrv1.TimestampRequest{}, []string{"ECDSA", "SHA-256"}},
		{"p384", &signsvrv1.DecryptRequest{}, []string{"ECDSA"}},
		{"sm2", &signsvrv1.SignRequest{Options: pss}, []string{"SM2", "SM3"}},
		{"sm2", &signsvrv1.DecryptRequest{}, []string{"SM2"}},
		{"p521", &signsvrv1.SignRequest{}, nil},
		{"unknown", &signsvrv1.SignRequest{}, nil},
		{"", &signsvrv1.SignRequest{}, nil},
	} {
		if got := s.auditAlgorithms(c.key, c.req); !slices.Equal(got, c.want) {
			t.Errorf("%s %T: %v, want %v", c.key, c.req, got, c.want)
		}
	}
}
