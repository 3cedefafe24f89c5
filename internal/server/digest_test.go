package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/algorithm"
)

func withClientDigests(o *server.Options) {
	o.ClientDigests = map[string][]algorithm.Digest{
		"rsa-sign": {algorithm.SHA256}, "ecdsa-sign": {algorithm.SHA256}, "sm2-sign": {algorithm.SM3},
	}
}

const (
	sha256Alg = signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256
	sm3Alg    = signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3
)

// TestSignFromClientDigest: a detached signature made from the content's digest
// verifies with `openssl cms -verify -content` (RSA, ECDSA), with Verify given the
// content or its digest, and gmsm-style SM2 as well; the key's allow-list decides.
func TestSignFromClientDigest(t *testing.T) {
	ts := startServer(t, withClientDigests)
	ctx := ctxT(t)
	data := streamContent(50_000)
	dataFile := writeFile(t, "data", data)
	s256 := sha256.Sum256(data)
	s3 := sm3.Sum(data)
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			digest, alg := s256[:], sha256Alg
			if fam == "sm2" {
				digest, alg = s3[:], sm3Alg
			}
			s, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: fam + "-sign", Detached: true, ContentDigest: digest})
			if err != nil {
				t.Fatal(err)
			}
			if fam != "sm2" {
				args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", writeFile(t, "sig.der", s.GetCms()), "-content", dataFile, "-CAfile", pki.RootsPath}
				if out := openssl(t, nil, args...); !bytes.Equal(out, data) {
					t.Fatal("openssl does not verify the signature made from a digest")
				}
			}
			v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms(), Data: data})
			if err != nil {
				t.Fatal(err)
			}
			wantVerified(t, v.GetVerified(), v.GetSigners(), v.GetContent(), data)
			v, err = ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms(), ContentDigest: digest, ContentDigestAlgorithm: alg})
			if err != nil || !v.GetVerified() {
				t.Fatalf("Verify with the content's digest: %v %v", err, v.GetSigners())
			}
			bad := bytes.Clone(digest)
			bad[0] ^= 1
			v, err = ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms(), ContentDigest: bad, ContentDigestAlgorithm: alg})
			if err != nil || v.GetVerified() {
				t.Fatalf("Verify with another digest: %v %v", err, v.GetVerified())
			}
		})
	}
	// Refusals: an algorithm the key does not accept, an attached signature, a
	// wrong length, and data beside the digest.
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-sign", Detached: true, ContentDigest: make([]byte, 48),
		Options: &signsvrv1.SignOptions{Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384}})
	wantStatus(t, err, codes.FailedPrecondition, "KEY_USAGE_NOT_ALLOWED")
	_, err = ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-sign", ContentDigest: s256[:]})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	_, err = ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-sign", Detached: true, ContentDigest: s256[:20]})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	_, err = ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "rsa-sign", Data: data, DataDigest: s256[:]})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")

	// Off by default.
	plain := startServer(t)
	_, err = plain.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-sign", Detached: true, ContentDigest: s256[:]})
	wantStatus(t, err, codes.FailedPrecondition, "KEY_USAGE_NOT_ALLOWED")
}

// TestSignRawFromClientDigest: SignRaw from a digest; for SM2 the client computes
// SM3(Z || data) from what ListKeys gives (public key, user ID). VerifyRaw checks
// the signature over the data.
func TestSignRawFromClientDigest(t *testing.T) {
	ts := startServer(t, withClientDigests)
	ctx := ctxT(t)
	data := streamContent(20_000)
	keys, err := ts.keys.ListKeys(ctx, &signsvrv1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	infos := map[string]*signsvrv1.KeyInfo{}
	for _, k := range keys.GetKeys() {
		infos[k.GetName()] = k
	}
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			info := infos[fam+"-sign"]
			var e []byte
			if fam == "sm2" {
				if fmt.Sprint(info.GetClientDigests()) != fmt.Sprint([]signsvrv1.DigestAlgorithm{sm3Alg}) {
					t.Fatalf("client digests %v", info.GetClientDigests())
				}
				pub, err := smx509.ParsePKIXPublicKey(info.GetPublicKey())
				if err != nil {
					t.Fatal(err)
				}
				za, err := sm2.CalculateZA(pub.(*ecdsa.PublicKey), info.GetSm2UserId())
				if err != nil {
					t.Fatal(err)
				}
				h := sm3.New()
				h.Write(za)
				h.Write(data)
				e = h.Sum(nil)
			} else {
				s := sha256.Sum256(data)
				e = s[:]
			}
			r, err := ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: fam + "-sign", DataDigest: e})
			if err != nil {
				t.Fatal(err)
			}
			v, err := ts.sign.VerifyRaw(ctx, &signsvrv1.VerifyRawRequest{Key: fam + "-sign", Data: data, Signature: r.GetSignature()})
			if err != nil || !v.GetSignature().GetValid() {
				t.Fatalf("VerifyRaw: %v %v", err, v.GetSignature())
			}
		})
	}
}

// TestClientDigestAudited: the audit record of a signature from a client digest
// says so.
func TestClientDigestAudited(t *testing.T) {
	as := startAuditedServer(t, nil, withClientDigests)
	s := sha256.Sum256([]byte("x"))
	if _, err := as.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Detached: true, ContentDigest: s[:]}); err != nil {
		t.Fatal(err)
	}
	recs := as.stopAndRead(t)
	if len(recs) != 1 || fmt.Sprint(recs[0]["algs"]) != "[ECDSA SHA-256 client-digest]" {
		t.Fatalf("records %v", recs)
	}
}
