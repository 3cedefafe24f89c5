package server_test

import (
	"encoding/hex"
	"testing"

	"github.com/emmansun/gmsm/sm3"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/audit"
)

// The audit record of a Sign reuses the content digest pkg/sign computed when the
// algorithms agree (SHA-256 keys with a SHA-256 log, SM2 with an SM3 log), and hashes
// the data itself otherwise: either way "in" is the digest of the data with the log's
// algorithm.
func TestAuditInputDigestReuse(t *testing.T) {
	sm3hex := func(b []byte) string { s := sm3.Sum(b); return "sm3:" + hex.EncodeToString(s[:]) }
	for _, tc := range []struct {
		name   string
		alg    audit.HashAlg
		digest func([]byte) string
	}{{"sha256-log", audit.SHA256, sha}, {"sm3-log", audit.SM3, sm3hex}} {
		t.Run(tc.name, func(t *testing.T) {
			as := startAuditedServer(t, func(c *audit.Config) { c.Hash = tc.alg })
			ctx := ctxT(t)
			var want []string
			for i, key := range []string{"ecdsa-sign", "sm2-sign", "rsa-sign"} {
				data := []byte{byte(i), 'd', 'a', 't', 'a'}
				if _, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: key, Data: data}); err != nil {
					t.Fatal(err)
				}
				want = append(want, tc.digest(data))
			}
			items := []*signsvrv1.SignRequest{
				{Key: "sm2-sign", Data: []byte("item 0")},
				{Key: "no-such-key", Data: []byte("item 1")},
				{Key: "ecdsa-sign", Data: []byte("item 2")},
			}
			if _, err := as.sign.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: items}); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				want = append(want, tc.digest(it.GetData()))
			}
			recs := as.stopAndRead(t)
			if len(recs) != len(want) {
				t.Fatalf("%d records, want %d", len(recs), len(want))
			}
			for i, r := range recs {
				if r["in"] != want[i] {
					t.Errorf("record %d (%v %v): in %v, want %v", i, r["op"], r["key"], r["in"], want[i])
				}
			}
		})
	}
}
