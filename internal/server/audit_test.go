package server_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/cli/auditcmd"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// loadKeyFile reads a development key and its certificate.
func loadKeyFile(t testing.TB, kf devpki.KeyFile) (crypto.Signer, []*smx509.Certificate) {
	t.Helper()
	b, err := os.ReadFile(kf.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	k, err := smx509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := devpki.ReadCertsPEM(kf.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer), chain
}

type auditedServer struct {
	*testServer
	dir  string
	log  *audit.Log
	cert *smx509.Certificate
	ts   signsvrv1.TimestampServiceClient
}

// startAuditedServer starts a development server whose audit log is in a fresh
// directory, with the development TSA key in a store of its own.
func startAuditedServer(t testing.TB, tweak func(*audit.Config), opts ...serverOption) *auditedServer {
	t.Helper()
	key, chain := loadKeyFile(t, pki.Audit)
	cfg := audit.Config{Dir: filepath.Join(t.TempDir(), "audit"), ReplicaID: "test-0"}
	if tweak != nil {
		tweak(&cfg)
	}
	l, err := audit.New(cfg, key, chain[0], time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tsaStore, err := soft.New([]soft.KeyConfig{{Name: "tsa", KeyFile: pki.TSA.KeyPath, CertFile: pki.TSA.CertPath, Usages: []string{"sign"}}})
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]serverOption{func(o *server.Options) {
		o.Auditor = server.NewAuditLog(l)
		o.Timestamps = &server.TimestampOptions{Key: "tsa", Store: tsaStore, Accuracy: tsaAccuracy}
	}}, opts...)
	as := &auditedServer{testServer: startServer(t, opts...), dir: cfg.Dir, log: l, cert: chain[0]}
	as.ts = signsvrv1.NewTimestampServiceClient(as.conn)
	t.Cleanup(func() { l.Close() })
	return as
}

// stopAndRead stops the server, closes the log, and returns its operation records.
func (as *auditedServer) stopAndRead(t *testing.T) []map[string]any {
	t.Helper()
	as.conn.Close()
	as.stop()
	<-as.done
	as.done <- nil // for the cleanup of startServer
	if err := as.log.Close(); err != nil {
		t.Fatal(err)
	}
	files := as.files(t)
	var recs []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("%s: %v: %s", f, err, line)
			}
			if m["type"] == "op" {
				recs = append(recs, m)
			}
		}
	}
	return recs
}

func (as *auditedServer) files(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(as.dir, "audit-test-0-*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no audit files: %v", err)
	}
	sort.Strings(files)
	return files
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestAuditEveryRPC: every call, success or refusal, leaves one record with the
// right fields; the log verifies with `signsvr audit verify`.
func TestAuditEveryRPC(t *testing.T) {
	as := startAuditedServer(t, nil)
	ctx := ctxT(t)
	data := []byte("customs declaration 42")

	type want struct {
		op, key, code, reason string
		in, out               string
		algs                  []string
	}
	var wants []want

	s, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"sign", "ecdsa-sign", "OK", "", sha(data), sha(signerInfosOf(t, s.GetCms())), []string{"ECDSA", "SHA-256"}})

	_, err = as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "no-such-key", Data: data})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	wants = append(wants, want{"sign", "no-such-key", "NotFound", "KEY_NOT_FOUND", sha(data), "", nil})

	_, err = as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "sm2-sign", Data: data, Options: &signsvrv1.SignOptions{Digest: signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256}})
	wantStatus(t, err, codes.InvalidArgument, "UNSUPPORTED")
	wants = append(wants, want{"sign", "sm2-sign", "InvalidArgument", "UNSUPPORTED", sha(data), "", []string{"SM2", "SM3"}})

	_, err = as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "rsa-enc", Data: data})
	wantStatus(t, err, codes.FailedPrecondition, "KEY_USAGE_NOT_ALLOWED")
	wants = append(wants, want{"sign", "rsa-enc", "FailedPrecondition", "KEY_USAGE_NOT_ALLOWED", sha(data), "", nil})

	raw, err := as.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "rsa-sign", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"sign_raw", "rsa-sign", "OK", "", sha(data), sha(raw.GetSignature()), []string{"RSA", "SHA-256"}})

	v, err := as.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: s.GetCms()})
	if err != nil || !v.GetVerified() {
		t.Fatal(err, v)
	}
	wants = append(wants, want{"verify", "", "OK", "", sha(signerInfosOf(t, s.GetCms())), sha(verifyOut(t, v)), nil})

	e, err := as.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"sm2-enc"}})
	if err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"envelope", "", "OK", "", sha(data), sha(e.GetCms()), nil})

	d, err := as.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "sm2-enc", Cms: e.GetCms()})
	if err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"decrypt", "sm2-enc", "OK", "", sha(e.GetCms()), sha(d.GetData()), []string{"SM2"}})

	_, err = as.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: e.GetCms()})
	wantStatus(t, err, codes.InvalidArgument, "DECRYPTION_FAILED")
	wants = append(wants, want{"decrypt", "rsa-enc", "InvalidArgument", "DECRYPTION_FAILED", sha(e.GetCms()), "", []string{"RSA"}})

	b, err := as.sign.SignBatch(ctx, &signsvrv1.SignBatchRequest{Items: []*signsvrv1.SignRequest{
		{Key: "sm2-sign", Data: []byte("item 1")}, {Key: "nope", Data: []byte("item 2")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	wants = append(wants,
		want{"sign", "sm2-sign", "OK", "", sha([]byte("item 1")), sha(signerInfosOf(t, b.GetResults()[0].GetCms())), []string{"SM2", "SM3"}},
		want{"sign", "nope", "NotFound", "KEY_NOT_FOUND", sha([]byte("item 2")), "", nil})

	tr, err := as.ts.Timestamp(ctx, &signsvrv1.TimestampRequest{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"timestamp", "tsa", "OK", "", sha(data), sha(tr.GetToken()), []string{"ECDSA", "SHA-256"}})

	_, err = as.ts.Timestamp(ctx, &signsvrv1.TimestampRequest{Digest: []byte("short")})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_REQUEST")
	tsReq, _ := protoDeterministic(t, &signsvrv1.TimestampRequest{Digest: []byte("short")})
	wants = append(wants, want{"timestamp", "tsa", "InvalidArgument", "INVALID_REQUEST", sha(tsReq), "", []string{"ECDSA", "SHA-256"}})

	// A request that cannot be decoded reaches only the method wrapper's seam.
	// (grpc-go 1.85 sends its own decode status to the client whatever the handler
	// returns, so only the record shows the server's classification.)
	if err = as.conn.Invoke(ctx, "/signsvr.v1.SignService/Sign", rawBytes{0xff, 0xff}, new(rawBytes), forceRaw); err == nil {
		t.Fatal("an undecodable request succeeded")
	}
	wants = append(wants, want{"sign", "", "InvalidArgument", "MALFORMED_INPUT", "", "", nil})

	recs := as.stopAndRead(t)
	if len(recs) != len(wants) {
		for _, r := range recs {
			t.Logf("%v", r)
		}
		t.Fatalf("%d records, want %d", len(recs), len(wants))
	}
	ids := map[string]bool{}
	for i, w := range wants {
		r := recs[i]
		caller := r["caller"].(map[string]any)
		if r["op"] != w.op || r["key"] != w.key || r["code"] != w.code || r["reason"] != w.reason || r["in"] != w.in || r["out"] != w.out {
			t.Errorf("record %d = op %v key %v code %v reason %v in %v out %v\nwant %+v", i, r["op"], r["key"], r["code"], r["reason"], r["in"], r["out"], w)
		}
		if caller["kind"] != "dev" || !strings.Contains(caller["subject"].(string), "development") {
			t.Errorf("record %d caller %v, want the development identity", i, caller)
		}
		if w.algs != nil {
			got, _ := json.Marshal(r["algs"])
			wantAlgs, _ := json.Marshal(w.algs)
			if string(got) != string(wantAlgs) {
				t.Errorf("record %d algs %s, want %s", i, got, wantAlgs)
			}
		}
		id, _ := r["request_id"].(string)
		if id == "" {
			t.Errorf("record %d has no request id", i)
		}
		ids[id] = true
	}
	if len(ids) != len(wants)-1 { // the two batch items share their call's id
		t.Errorf("%d distinct request ids, want %d", len(ids), len(wants)-1)
	}
	// Never the plaintext.
	for _, f := range as.files(t) {
		if b, _ := os.ReadFile(f); bytes.Contains(b, data) || bytes.Contains(b, []byte("item 1")) {
			t.Fatal("the audit log holds request data")
		}
	}

	// The auditor's tool says OK.
	certPath := filepath.Join(t.TempDir(), "audit.pem")
	if err := devpki.WriteCertsPEM(certPath, as.cert); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args := append([]string{"verify", "--cert", certPath}, as.files(t)...)
	if code := auditcmd.Run(args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("signsvr audit verify: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// TestAuditFailClosed: when the audit directory becomes unusable, key operations
// fail with UNAVAILABLE and no signature leaves the server, and health reports
// NOT_SERVING until the log writes again (its checkpoint ticks find the disk back
// without any call); a fail-open log lets the operations through.
func TestAuditFailClosed(t *testing.T) {
	server.ShortHealthInterval(t, 10*time.Millisecond)
	for _, failOpen := range []bool{false, true} {
		name := "fail-closed"
		if failOpen {
			name = "fail-open"
		}
		t.Run(name, func(t *testing.T) {
			as := startAuditedServer(t, func(c *audit.Config) {
				c.MaxFileBytes = 4000 // rotate often, so a new file must be created
				c.FailOpen = failOpen
				c.CheckpointInterval = 20 * time.Millisecond
				c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			})
			ctx := ctxT(t)
			if _, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("before")}); err != nil {
				t.Fatal(err)
			}
			// Make the directory unusable, for root too: replace it with a file.
			moved := as.dir + ".moved"
			if err := os.Rename(as.dir, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(as.dir, []byte("not a directory"), 0o600); err != nil {
				t.Fatal(err)
			}
			var lastErr error
			signed := 0
			for i := 0; i < 40; i++ {
				s, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("during")})
				if err != nil {
					lastErr = err
					if len(s.GetCms()) != 0 {
						t.Fatal("a signature came with the error")
					}
					break
				}
				signed++
			}
			if failOpen {
				if lastErr != nil {
					t.Fatalf("fail-open: %v", lastErr)
				}
				as.assertServing(t)
			} else {
				wantStatus(t, lastErr, codes.Unavailable, "UNAVAILABLE")
				// Refusals keep failing closed too, while the directory is gone.
				_, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "no-such-key", Data: []byte("x")})
				wantStatus(t, err, codes.Unavailable, "UNAVAILABLE")
				_, err = as.ts.Timestamp(ctx, &signsvrv1.TimestampRequest{Data: []byte("x")})
				wantStatus(t, err, codes.Unavailable, "UNAVAILABLE")
				as.waitHealth(t, healthpb.HealthCheckResponse_NOT_SERVING)
			}
			// Back: health recovers with no call made, operations work again, and the
			// log still verifies.
			os.Remove(as.dir)
			if err := os.Rename(moved, as.dir); err != nil {
				t.Fatal(err)
			}
			as.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
			if _, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("after")}); err != nil {
				t.Fatal(err)
			}
			as.stopAndRead(t)
			rep, err := audit.Verify(as.files(t), as.cert)
			if err != nil || !rep.OK() {
				t.Fatalf("verify after recovery: %v %+v", err, rep)
			}
		})
	}
}

func protoDeterministic(t *testing.T, m proto.Message) ([]byte, error) {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b, nil
}

// rawBytes is a message sent as given, to make a request the server cannot decode.
type rawBytes []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case rawBytes:
		return m, nil
	case *rawBytes:
		return *m, nil
	}
	return nil, fmt.Errorf("rawCodec: %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*rawBytes) = append((*v.(*rawBytes))[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

var forceRaw = grpc.ForceCodec(rawCodec{})
