//go:build cgo

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/login"
)

// These tests run signsvr as operators run many replicas: several server processes
// with one configuration, sharing nothing but the configuration's files and one
// SoftHSM2 token, each writing its own audit chain into its own directory under its
// own replica id. The configuration is the same bytes in every replica's directory
// (as a ConfigMap mounted into every pod of a StatefulSet): the shared files are
// named by absolute paths, the audit directory relative to the file (each pod's own
// volume), and the replica id comes from the environment (the pod name).

// replicaProcess is one `signsvr serve` process, the test binary run as the command.
type replicaProcess struct {
	id     string
	cfg    string
	addr   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

var servingRE = regexp.MustCompile(`"msg":"serving","listen":"([^"]+)"`)

// startReplica starts a server process with the configuration file cfg and the
// replica id id, and waits until it listens.
func startReplica(t *testing.T, id, cfg string) *replicaProcess {
	t.Helper()
	r := &replicaProcess{id: id, cfg: cfg, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], "serve", "--config", cfg)
	r.cmd.Env = append(os.Environ(), runMainEnv+"=1", "SIGNSVR_REPLICA_ID="+id)
	r.cmd.Stdout, r.cmd.Stderr = r.stderr, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() { r.terminate(t) })
	eventually(t, func() bool {
		if m := servingRE.FindStringSubmatch(r.stderr.String()); m != nil {
			r.addr = m[1]
			return true
		}
		select {
		case <-r.exited:
			t.Fatalf("replica %s exited before listening: %v\n%s", id, r.err, r.stderr.String())
		default:
		}
		return false
	}, func() string { return fmt.Sprintf("replica %s did not start:\n%s", id, r.stderr.String()) })
	return r
}

func (r *replicaProcess) done() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// wait waits for the process to end, bounded by waitTimeout.
func (r *replicaProcess) wait(t *testing.T) {
	t.Helper()
	eventually(t, r.done, func() string { return fmt.Sprintf("replica %s did not exit:\n%s", r.id, r.stderr.String()) })
}

// terminate stops the process as Kubernetes does (SIGTERM, drain, exit 0) unless it
// has ended already; a process that does not stop is killed, and the test fails.
func (r *replicaProcess) terminate(t *testing.T) {
	t.Helper()
	if r.done() {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	defer func() {
		if !r.done() {
			r.cmd.Process.Kill()
			<-r.exited
		}
	}()
	r.wait(t)
	if r.err != nil {
		t.Errorf("replica %s: %v after SIGTERM\n%s", r.id, r.err, r.stderr.String())
	}
}

// kill ends the process with SIGKILL and waits until it is reaped.
func (r *replicaProcess) kill(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
}

// replicaConfig is the configuration every replica runs: mutual TLS, the signing key
// and the audit key in the shared SoftHSM2 token, certificate login with challenge
// keys every replica reads from the same file, audit on.
func replicaConfig(e *hsmEnv) string {
	return fmt.Sprintf(`# one configuration for every replica
listen: 127.0.0.1:0
shutdown_timeout: 20s
log:
  level: info
  format: json
tls:
  cert_file: %[1]s/tls-server.pem
  key_file: %[1]s/tls-server.key
  client_ca_files: [%[1]s/tls-ca.pem]
trust:
  anchors: [%[1]s/ca.pem, %[1]s/tls-ca.pem]
  revocation:
    disabled: true
keystore:
  soft:
    keys:
      - name: login-token
        key_file: %[1]s/soft-p256-sign.key
        cert_file: %[1]s/soft-p256-sign.pem
        usages: [sign]
  pkcs11:
    tokens:
      - module: %[2]s
        label: %[3]s
        pin_file: %[1]s/pin
        pool_size: 2
        wait_timeout: 30s
    keys:
      - name: hsm-p256-sign
        uri: "%[4]s"
        usages: [sign]
      - name: hsm-audit
        uri: "%[5]s"
        usages: [sign]
authorization:
  rules:
    - subjects: ["CN=tls client,O=signsvr development"]
      issuer: "CN=tls tls ca,O=signsvr development"
      keys: [hsm-p256-sign]
      operations: [sign, verify, login]
login:
  audience: replicas-test
  challenge_key_files: [%[1]s/login-challenge.key]
  token_key: login-token
audit:
  dir: audit
  replica_id: "${SIGNSVR_REPLICA_ID}"
  key: hsm-audit
`, e.dir, softhsmModule, e.label, e.uris["hsm-p256-sign"], e.uris["hsm-rsa-sign"])
}

// attemptCounter counts the client's RPC attempts: one per call plus one per retry
// the service config's retry policy made.
type attemptCounter struct{ attempts atomic.Int64 }

func (a *attemptCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (a *attemptCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	if b, ok := s.(*stats.Begin); ok && b.IsClient() {
		a.attempts.Add(1)
	}
}
func (a *attemptCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (a *attemptCounter) HandleConn(context.Context, stats.ConnStats) {}

// replicasServiceConfig balances round_robin over every address and retries the
// SignService calls (all idempotent: signing again gives another valid signature of
// the same data) that fail with UNAVAILABLE, as a replica going away makes them fail.
const replicasServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "signsvr.v1.SignService"}],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.01s",
      "maxBackoff": "0.2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// dialReplicas is a client of all the addresses at once, as a client of a headless
// Service is: a static resolver, round_robin, the retry policy.
func dialReplicas(t *testing.T, e *hsmEnv, addrs []string, sh stats.Handler) *grpc.ClientConn {
	t.Helper()
	r := manual.NewBuilderWithScheme("signsvr-replicas")
	st := resolver.State{}
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(st)
	conn, err := grpc.NewClient(r.Scheme()+":///signsvr", grpc.WithResolvers(r), grpc.WithTransportCredentials(e.clientCreds(t)),
		grpc.WithDefaultServiceConfig(replicasServiceConfig), grpc.WithStatsHandler(sh))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func digestHex(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// auditFiles are the audit log files of a directory.
func auditFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no audit files in %s (%v)", dir, err)
	}
	return files
}

// auditOps reads every operation record of the files; a torn last line (a process
// killed inside a write) is not a record and is left to the verifier.
func auditOps(t *testing.T, files []string) []*audit.Entry {
	t.Helper()
	var ops []*audit.Entry
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			e, err := audit.ParseLine(line)
			if err == nil && e.HashOK && e.Type == "op" {
				ops = append(ops, e)
			}
		}
	}
	return ops
}

func pemCert(t *testing.T, path string) *smx509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := smx509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReplicas runs three replicas on loopback with one configuration and one
// SoftHSM2 token, and proves that they share the work: a signature made by one
// verifies on the others, a login challenge one issued logs in on the others, and
// when one is killed with SIGKILL under load through a round_robin client, the
// client's calls go on succeeding through the other two; every call the client saw
// acknowledged is in exactly one replica's audit log, and every log verifies, the
// killed one's too.
//
// Phases follow what the client observed (acknowledged calls counted per replica),
// each bounded by waitTimeout; nothing depends on how fast the machine is.
func TestReplicas(t *testing.T) {
	e := newHSMEnv(t)
	ck := make([]byte, 32)
	rand.Read(ck)
	e.write(t, "login-challenge.key", base64.StdEncoding.EncodeToString(ck)+"\n")
	cfgText := replicaConfig(e)
	var reps []*replicaProcess
	for i := range 3 {
		dir := e.path(fmt.Sprintf("replica-%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "signsvr.yaml")
		if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, startReplica(t, fmt.Sprintf("signsvr-%d", i), cfg))
	}
	direct := make([]*hsmClient, len(reps))
	for i, r := range reps {
		direct[i] = dialHSMServer(t, e, r.addr)
	}

	t.Run("SignatureVerifiesOnAnother", func(t *testing.T) {
		for i := range reps {
			data := []byte(fmt.Sprintf("signed by replica %d", i))
			s, err := direct[i].sign.Sign(callCtx(t), &signsvrv1.SignRequest{Key: "hsm-p256-sign", Data: data})
			if err != nil {
				t.Fatalf("Sign on replica %d: %v", i, err)
			}
			for j := range reps {
				if j == i {
					continue
				}
				v, err := direct[j].sign.Verify(callCtx(t), &signsvrv1.VerifyRequest{Cms: s.GetCms()})
				if err != nil || !v.GetVerified() || !bytes.Equal(v.GetContent(), data) {
					t.Errorf("replica %d's signature on replica %d: %v %v", i, j, err, v)
				}
			}
		}
	})

	t.Run("ChallengeAcceptedByAnother", func(t *testing.T) {
		key, err := login.ParseSignerPEM([]byte(e.read(t, e.path("tls-client.key"))))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode([]byte(e.read(t, e.path("tls-client.pem"))))
		for i := range reps {
			auth := signsvrv1.NewAuthServiceClient(direct[i].conn)
			ch, err := auth.CreateChallenge(callCtx(t), &signsvrv1.CreateChallengeRequest{})
			if err != nil {
				t.Fatalf("CreateChallenge on replica %d: %v", i, err)
			}
			sig, err := login.SignChallenge(key, []byte(ch.GetChallenge()))
			if err != nil {
				t.Fatal(err)
			}
			j, k := (i+1)%len(reps), (i+2)%len(reps)
			resp, err := signsvrv1.NewAuthServiceClient(direct[j].conn).Login(callCtx(t),
				&signsvrv1.LoginRequest{Challenge: ch.GetChallenge(), Signature: sig, Certificate: blk.Bytes})
			if err != nil || !resp.GetAuthenticated() {
				t.Fatalf("replica %d's challenge on replica %d: %v %s %s", i, j, err, resp.GetRefusalReason(), resp.GetRefusalMessage())
			}
			// The token verifies with the token key a third replica publishes.
			tk, err := signsvrv1.NewAuthServiceClient(direct[k].conn).GetTokenKey(callCtx(t), &signsvrv1.GetTokenKeyRequest{})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := smx509.ParsePKIXPublicKey(tk.GetPublicKey())
			if err != nil {
				t.Fatal(err)
			}
			claims, err := login.VerifyToken(resp.GetToken(), pub, login.VerifyOptions{Audience: "replicas-test", Issuer: tk.GetIssuer(), Now: time.Now()})
			if err != nil || claims.Subject != "CN=tls client,O=signsvr development" {
				t.Errorf("replica %d's token with replica %d's token key: %v %+v", j, k, err, claims)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("KilledUnderLoad", func(t *testing.T) { replicaKilledUnderLoad(t, e, reps) })
}

// ack is a call the client saw succeed.
type ack struct {
	id        string // its x-request-id
	replica   int    // the replica that answered
	in, out   string // digests of the data and of the answer's signerInfos, as the audit log writes them
	afterKill bool   // the call began after the killed replica was gone
}

func replicaKilledUnderLoad(t *testing.T, e *hsmEnv, reps []*replicaProcess) {
	index := map[string]int{}
	var addrs []string
	for i, r := range reps {
		index[r.addr] = i
		addrs = append(addrs, r.addr)
	}
	var counter attemptCounter
	client := signsvrv1.NewSignServiceClient(dialReplicas(t, e, addrs, &counter))

	var (
		mu           sync.Mutex
		acks         []ack
		served       [3]atomic.Int64 // acknowledged calls per replica
		servedAfter  [3]atomic.Int64 // ... of calls that began after the kill
		killed       atomic.Bool
		calls        atomic.Int64          // Sign invocations (each may make several attempts)
		outerRetries atomic.Int64          // invocations that failed UNAVAILABLE after the policy's retries
		failure      atomic.Pointer[error] // the first call that failed
		stop         = make(chan struct{})
		wg           sync.WaitGroup
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("load-%d-%d", g, i)
				data := []byte(id + " signed under load")
				after := killed.Load()
				ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
				ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", id)
				var (
					p    peer.Peer
					resp *signsvrv1.SignResponse
					err  error
				)
				// The same call again while the answer is UNAVAILABLE: the retry
				// policy gives up after maxAttempts, this loop only at the deadline.
				for {
					calls.Add(1)
					resp, err = client.Sign(ctx, &signsvrv1.SignRequest{Key: "hsm-p256-sign", Data: data}, grpc.Peer(&p))
					if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
						break
					}
					outerRetries.Add(1)
				}
				cancel()
				if err != nil {
					err = fmt.Errorf("call %s: %w", id, err)
					failure.CompareAndSwap(nil, &err)
					return
				}
				r, ok := index[p.Addr.String()]
				if !ok {
					err := fmt.Errorf("call %s answered by %v, not a replica", id, p.Addr)
					failure.CompareAndSwap(nil, &err)
					return
				}
				si, err := cms.SignerInfosDER(resp.GetCms())
				if err != nil {
					err = fmt.Errorf("call %s: the answer's signerInfos: %w", id, err)
					failure.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				acks = append(acks, ack{id: id, replica: r, in: digestHex(data), out: digestHex(si), afterKill: after})
				mu.Unlock()
				served[r].Add(1)
				if after {
					servedAfter[r].Add(1)
				}
			}
		}()
	}
	var stopOnce sync.Once
	stopLoad := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(stopLoad)
	waitAcks := func(what string, counts *[3]atomic.Int64, each int64, who ...int) {
		t.Helper()
		eventually(t, func() bool {
			if failure.Load() != nil {
				return true
			}
			for _, r := range who {
				if counts[r].Load() < each {
					return false
				}
			}
			return true
		}, func() string {
			return fmt.Sprintf("%s: acknowledged calls per replica %d/%d/%d, after the kill %d/%d/%d", what,
				served[0].Load(), served[1].Load(), served[2].Load(), servedAfter[0].Load(), servedAfter[1].Load(), servedAfter[2].Load())
		})
		if v := failure.Load(); v != nil {
			t.Fatalf("%s: %v", what, *v)
		}
	}

	// Every replica serves its share; then the first one is killed.
	waitAcks("warm-up", &served, 30, 0, 1, 2)
	victim := reps[0]
	victim.kill(t)
	killed.Store(true)
	atKill := [3]int64{served[0].Load(), served[1].Load(), served[2].Load()}

	// Right after the kill, the victim's log verifies up to its last durable record:
	// the only problem allowed is the documented one, a record torn at the very end
	// of its last file by the kill.
	cert := pemCert(t, e.certs["hsm-rsa-sign"])
	victimDir := filepath.Join(filepath.Dir(victim.cfg), "audit")
	rep, err := audit.Verify(auditFiles(t, victimDir), cert)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Problem; p != nil && !(p.Kind == audit.ProblemTruncated && p.Line == rep.LastLine+1 && p.File == rep.LastFile) {
		t.Errorf("the killed replica's log: %v", p)
	}
	if rep.Closed || rep.LastSeq == 0 {
		t.Errorf("the killed replica's log: closed %v, last seq %d", rep.Closed, rep.LastSeq)
	}
	t.Logf("killed replica's log after SIGKILL: %d records, signed through %d, unsigned tail %d, torn tail %v",
		rep.Records, rep.SignedThrough, rep.UnsignedTail, rep.Problem != nil)

	// The other two carry the load.
	waitAcks("after the kill", &servedAfter, 50, 1, 2)
	stopLoad()
	if v := failure.Load(); v != nil {
		t.Fatal(*v)
	}
	if n := servedAfter[0].Load(); n != 0 {
		t.Errorf("%d calls begun after the kill were answered by the killed replica", n)
	}
	t.Logf("acknowledged per replica %d/%d/%d (at the kill %d/%d/%d); %d Sign invocations, %d attempts, %d invocations repeated after UNAVAILABLE",
		served[0].Load(), served[1].Load(), served[2].Load(), atKill[0], atKill[1], atKill[2],
		calls.Load(), counter.attempts.Load(), outerRetries.Load())

	// The survivors stop as under a rolling update; the killed one restarts on its
	// volume (its audit directory) and stops, so its chain is signed through again.
	for _, r := range reps[1:] {
		r.terminate(t)
	}
	again := startReplica(t, victim.id, victim.cfg)
	if _, err := dialHSMServer(t, e, again.addr).sign.Sign(callCtx(t), &signsvrv1.SignRequest{Key: "hsm-p256-sign", Data: []byte("back")}); err != nil {
		t.Fatalf("Sign on the restarted replica: %v", err)
	}
	again.terminate(t)

	// Every acknowledged call is in exactly one log: the log of the replica that
	// answered, recorded as OK with the client's request id and the digests of what
	// it sent and received. The same request id may also be in the killed replica's
	// log, as OK, when it signed a call whose answer the kill cut off (the client
	// retried it elsewhere); in a survivor's log every load call is an acknowledged one.
	byOut := map[string][]*audit.Entry{}
	unacked := map[string]int{}
	var dirs []string
	for i, r := range reps {
		dir := filepath.Join(filepath.Dir(r.cfg), "audit")
		dirs = append(dirs, dir)
		files := auditFiles(t, dir)
		rep, err := audit.Verify(files, cert)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || !rep.Closed || rep.Replica != r.id {
			t.Errorf("replica %s's log does not verify: %+v (problem %v)", r.id, rep, rep.Problem)
		}
		if i == 0 && len(rep.Recoveries) == 0 {
			t.Errorf("the killed replica's log has no recovered record: %+v", rep)
		}
		for _, op := range auditOps(t, files) {
			if op.Replica != r.id {
				t.Errorf("replica %s's log has a record of %s", r.id, op.Replica)
			}
			if strings.HasPrefix(op.RequestID, "load-") && op.Code == "OK" {
				byOut[op.Out] = append(byOut[op.Out], op)
				unacked[op.Replica]++
			}
		}
	}
	for _, a := range acks {
		recs := byOut[a.out]
		if len(recs) != 1 {
			t.Errorf("acknowledged call %s is in %d audit records", a.id, len(recs))
			continue
		}
		op := recs[0]
		if op.Replica != reps[a.replica].id || op.RequestID != a.id || op.Op != "sign" || op.Key != "hsm-p256-sign" || op.In != a.in ||
			op.Caller == nil || op.Caller.Subject != "CN=tls client,O=signsvr development" {
			t.Errorf("acknowledged call %s (answered by %s) has the record %+v", a.id, reps[a.replica].id, op)
		}
		unacked[op.Replica]--
	}
	for _, r := range reps[1:] {
		if n := unacked[r.id]; n != 0 {
			t.Errorf("%s's log has %d successful load calls the client did not see", r.id, n)
		}
	}
	t.Logf("%d acknowledged calls, each in one log; %d signed by the killed replica with the answer lost", len(acks), unacked[victim.id])

	// The auditor's command agrees: every replica's chain whole and signed through.
	var stdout, stderr bytes.Buffer
	args := append([]string{"audit", "verify", "--cert", e.certs["hsm-rsa-sign"]}, dirs...)
	if code := run(t.Context(), args, nil, &stdout, &stderr); code != exitOK {
		t.Errorf("signsvr audit verify: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}
