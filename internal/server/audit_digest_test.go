package server_test

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/emmansun/gmsm/sm3"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/streamclient"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/cms"
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

// signerInfosOf is the DER of the signerInfos SET of DER SignedData der, read with
// encoding/asn1 (not the server's walker): what a record's "out" of a Sign and "in"
// of a Verify digest.
func signerInfosOf(t testing.TB, der []byte) []byte {
	t.Helper()
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatalf("ContentInfo: %v", err)
	}
	var sd struct {
		Version      int
		DigestAlgs   asn1.RawValue
		Encap        asn1.RawValue
		Certificates asn1.RawValue `asn1:"optional,tag:0"`
		CRLs         asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos  asn1.RawValue
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatalf("SignedData: %v", err)
	}
	if sd.SignerInfos.Tag != asn1.TagSet {
		t.Fatalf("signerInfos tag %d", sd.SignerInfos.Tag)
	}
	return sd.SignerInfos.FullBytes
}

// verifyOut is the deterministic encoding of a Verify response without its content:
// what a record's "out" of a Verify digests.
func verifyOut(t testing.TB, v *signsvrv1.VerifyResponse) []byte {
	t.Helper()
	c := proto.Clone(v).(*signsvrv1.VerifyResponse)
	c.Content = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuditHashesEachInputOnce: the records of a 64 KiB Sign and Verify, unary,
// batched and pipelined, cost the log a digest of a few hundred bytes each, never a
// second pass over the content or the signed message (Log.DigestedBytes counts what
// Append hashed); their values are the signerInfos and response digests computed
// here independently.
func TestAuditHashesEachInputOnce(t *testing.T) {
	as := startAuditedServer(t, nil)
	ctx := ctxT(t)
	data := bytes.Repeat([]byte("sixty-four KiB "), 64<<10/15)
	const bound = 8 << 10 // far below one pass over data
	cost := func(what string, n int, f func()) {
		t.Helper()
		before := as.log.DigestedBytes()
		f()
		if d := as.log.DigestedBytes() - before; d > uint64(n*bound) {
			t.Errorf("%s: the audit log hashed %d bytes for %d record(s) of a %d-byte content", what, d, n, len(data))
		}
	}
	var s *signsvrv1.SignResponse
	cost("Sign", 1, func() {
		var err error
		if s, err = as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data}); err != nil {
			t.Fatal(err)
		}
	})
	var v *signsvrv1.VerifyResponse
	cost("Verify", 1, func() {
		var err error
		if v, err = as.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms()}); err != nil || !v.GetVerified() || len(v.GetContent()) != len(data) {
			t.Fatal(err, v.GetVerified())
		}
	})
	var sb *signsvrv1.SignBatchResponse
	cost("SignBatch", 2, func() {
		var err error
		items := []*signsvrv1.SignRequest{{Key: "ecdsa-sign", Data: data}, {Key: "ecdsa-sign", Data: data}}
		if sb, err = as.sign.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: items}); err != nil {
			t.Fatal(err)
		}
	})
	var vb *signsvrv1.VerifyBatchResponse
	cost("VerifyBatch", 2, func() {
		var err error
		items := []*signsvrv1.VerifyRequest{{Cms: sb.GetResults()[0].GetCms()}, {Cms: []byte("not a CMS message")}}
		if vb, err = as.sign.VerifyBatch(ctx, &signsvrv1.VerifyBatchRequest{Items: items}); err != nil {
			t.Fatal(err)
		}
	})
	var ps, pv *signsvrv1.PipelineResponse
	cost("Pipeline", 2, func() {
		p := openPipe(t, ctx, as.conn)
		p.send(&signsvrv1.PipelineRequest{Id: 1, Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data}}})
		ps = p.recv()
		p.send(&signsvrv1.PipelineRequest{Id: 2, Request: &signsvrv1.PipelineRequest_Verify{Verify: &signsvrv1.VerifyRequest{Cms: ps.GetSign().GetCms()}}})
		pv = p.recv()
		p.closeOK()
	})

	recs := as.stopAndRead(t)
	want := [][2]string{
		{sha(data), sha(signerInfosOf(t, s.GetCms()))},
		{sha(signerInfosOf(t, s.GetCms())), sha(verifyOut(t, v))},
		{sha(data), sha(signerInfosOf(t, sb.GetResults()[0].GetCms()))},
		{sha(data), sha(signerInfosOf(t, sb.GetResults()[1].GetCms()))},
		{sha(signerInfosOf(t, sb.GetResults()[0].GetCms())), sha(verifyOut(t, vb.GetResults()[0].GetResult()))},
		{sha([]byte("not a CMS message")), ""},
		{sha(data), sha(signerInfosOf(t, ps.GetSign().GetCms()))},
		{sha(signerInfosOf(t, ps.GetSign().GetCms())), sha(verifyOut(t, pv.GetVerify()))},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if r["in"] != want[i][0] || r["out"] != want[i][1] {
			t.Errorf("record %d (%v %v): in %v out %v\nwant in %v out %v", i, r["op"], r["code"], r["in"], r["out"], want[i][0], want[i][1])
		}
	}
	if recs[5]["code"] != "InvalidArgument" || recs[4]["code"] != "OK" {
		t.Errorf("VerifyBatch items: codes %v %v", recs[4]["code"], recs[5]["code"])
	}
}

// TestStreamAuditSignerInfos: an attached SignStream (streamed BER output) and the
// VerifyStream of its output record the content's digest and the signerInfos (of
// the SET normalised to DER), as their unary forms do.
func TestStreamAuditSignerInfos(t *testing.T) {
	as := startAuditedServer(t, nil)
	sc := as.streams()
	ctx := ctxT(t)
	data := bytes.Repeat([]byte("streamed "), 300_000/9)
	var sig bytes.Buffer
	if _, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: "ecdsa-sign"}, bytes.NewReader(data), &sig, nil); err != nil {
		t.Fatal(err)
	}
	res, err := streamclient.Verify(ctx, sc, nil, nil, bytes.NewReader(sig.Bytes()), nil)
	if err != nil || !res.GetVerified() {
		t.Fatal(err, res.GetVerified())
	}
	si, err := cms.SignerInfosDER(sig.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sig.Bytes()[1:], []byte{0x80}) {
		t.Fatalf("the streamed signature is not in the indefinite-length form")
	}
	recs := as.stopAndRead(t)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	if recs[0]["in"] != sha(data) || recs[0]["out"] != sha(si) {
		t.Errorf("SignStream: in %v out %v, want %v %v", recs[0]["in"], recs[0]["out"], sha(data), sha(si))
	}
	if recs[1]["op"] != "verify" || recs[1]["in"] != sha(si) {
		t.Errorf("VerifyStream: %v in %v, want %v", recs[1]["op"], recs[1]["in"], sha(si))
	}
}
