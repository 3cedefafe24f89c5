package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"signsvr.dev/signsvr/internal/devpki"
)

func verifyDir(t *testing.T, dir string, k auditKey) *Report {
	t.Helper()
	rep, err := Verify(logFiles(t, dir), k.cert)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRecordContent(t *testing.T) {
	for _, alg := range []HashAlg{SHA256, SM3} {
		t.Run(string(alg), func(t *testing.T) {
			k := newAuditKey(t, devpki.ECDSAP256)
			cfg := testLogConfig(t)
			cfg.Hash = alg
			l := openLog(t, cfg, k)
			secret := []byte("TOP SECRET plaintext of the customs declaration")
			rec := Record{
				RequestID:  "req-\"1\"\n",
				Caller:     CallerFromCert(k.cert),
				Op:         OpDecrypt,
				Key:        "customs-sm2-enc",
				Algorithms: []string{"SM2", "SM4-GCM"},
				Input:      secret,
				Output:     []byte("result"),
				Code:       "PermissionDenied",
				Reason:     "KEY_NOT_ALLOWED",
			}
			if err := l.Append(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			dev := Record{Caller: DevCaller("development"), Op: OpLogin, InputDigest: l.Digest(secret), Code: "OK"}
			if err := l.Append(t.Context(), dev); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(t.Context(), Record{Op: OpSign, Input: []byte("x"), InputDigest: l.Digest([]byte("x"))}); err == nil {
				t.Fatal("Append took both data and digest")
			}
			if err := l.Append(t.Context(), Record{Op: OpSign, InputDigest: []byte{1, 2}}); err == nil {
				t.Fatal("Append took a digest of the wrong length")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(t.Context(), rec); !errors.Is(err, ErrClosed) {
				t.Fatalf("Append after Close: %v", err)
			}
			files := logFiles(t, cfg.Dir)
			data, _ := os.ReadFile(files[0])
			if bytes.Contains(data, secret) || bytes.Contains(data, []byte("TOP SECRET")) {
				t.Fatal("plaintext in the audit log")
			}
			lines := readLines(t, files[0])
			// header, start checkpoint, two records, final checkpoint
			if len(lines) != 5 {
				t.Fatalf("%d lines:\n%s", len(lines), data)
			}
			e, err := ParseLine(bytes.TrimSuffix(lines[2], []byte("\n")))
			if err != nil || !e.HashOK {
				t.Fatalf("%v %+v", err, e)
			}
			var wantIn string
			if alg == SM3 {
				s := sm3.Sum(secret)
				wantIn = "sm3:" + hex.EncodeToString(s[:])
			} else {
				s := sha256.Sum256(secret)
				wantIn = "sha256:" + hex.EncodeToString(s[:])
			}
			if e.Seq != 3 || e.Type != "op" || e.Op != "decrypt" || e.Key != "customs-sm2-enc" || e.RequestID != "req-\"1\"\n" ||
				e.In != wantIn || e.Code != "PermissionDenied" || e.Reason != "KEY_NOT_ALLOWED" ||
				strings.Join(e.Algs, ",") != "SM2,SM4-GCM" || e.Caller.Kind != "cert" ||
				e.Caller.CertSHA256 != CertFingerprint(k.cert) || e.Caller.Subject != k.cert.Subject.String() ||
				e.Caller.Serial != k.cert.SerialNumber.Text(16) {
				t.Fatalf("record read back wrong: %+v %+v", e, e.Caller)
			}
			if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil || !strings.HasSuffix(e.Time, "Z") || len(e.Time) != len("2006-01-02T15:04:05.000000000Z") {
				t.Fatalf("time %q", e.Time)
			}
			e2, _ := ParseLine(bytes.TrimSuffix(lines[3], []byte("\n")))
			if e2.Caller.Kind != "dev" || e2.Caller.Subject != "development" || e2.In != wantIn || e2.Out != "" || e2.Prev != e.Hash {
				t.Fatalf("dev record %+v", e2)
			}
			if rep := verifyDir(t, cfg.Dir, k); !rep.OK() || rep.Records != 5 || rep.Checkpoints != 2 || !rep.Closed {
				t.Fatalf("%+v %v", rep, rep.Problem)
			}
		})
	}
}

func TestCheckpointAlgorithms(t *testing.T) {
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.ECDSAP384, devpki.SM2} {
		t.Run(string(alg), func(t *testing.T) {
			k := newAuditKey(t, alg)
			cfg := testLogConfig(t)
			cfg.CheckpointEvery = 4
			l := openLog(t, cfg, k)
			appendN(t, l, 0, 10)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep := verifyDir(t, cfg.Dir, k)
			if !rep.OK() || rep.Checkpoints < 2 {
				t.Fatalf("%+v %v", rep, rep.Problem)
			}
			e, _ := ParseLine(bytes.TrimSuffix(readLines(t, logFiles(t, cfg.Dir)[0])[1], []byte("\n")))
			want, _ := sigAlgFor(k.cert.PublicKey)
			if e.Type != "checkpoint" || e.SigAlg != want {
				t.Fatalf("checkpoint %+v", e)
			}
			// Any other audit certificate must not verify it.
			other := newAuditKey(t, map[devpki.Algorithm]devpki.Algorithm{devpki.RSA2048: devpki.SM2, devpki.SM2: devpki.RSA2048, devpki.ECDSAP256: devpki.ECDSAP384, devpki.ECDSAP384: devpki.ECDSAP256}[alg])
			rep, err := Verify(logFiles(t, cfg.Dir), other.cert)
			if err != nil || rep.Problem == nil || rep.Problem.Kind != ProblemBadCheckpoint {
				t.Fatalf("verified with another certificate: %v %+v", err, rep)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	other := newAuditKey(t, devpki.SM2)
	file := filepath.Join(t.TempDir(), "regular")
	os.WriteFile(file, []byte("x"), 0o600)
	clock := (&fakeClock{t: testNow}).now
	tests := []struct {
		name string
		cfg  func(*Config)
		key  auditKey
	}{
		{"directory under a regular file", func(c *Config) { c.Dir = filepath.Join(file, "audit") }, k},
		{"bad replica id", func(c *Config) { c.ReplicaID = "../x" }, k},
		{"unknown hash", func(c *Config) { c.Hash = "md5" }, k},
		{"certificate of another key", func(c *Config) {}, auditKey{k.signer, other.cert}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testLogConfig(t)
			tc.cfg(&cfg)
			if l, err := New(cfg, tc.key.signer, tc.key.cert, clock); err == nil {
				l.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestRestartContinuesChain(t *testing.T) {
	k := newAuditKey(t, devpki.SM2)
	cfg := testLogConfig(t)
	cfg.Hash = SM3
	for run := 0; run < 3; run++ {
		l := openLog(t, cfg, k)
		appendN(t, l, run*10, 10)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep := verifyDir(t, cfg.Dir, k)
	if !rep.OK() || rep.Files != 3 || len(rep.Recoveries) != 0 {
		t.Fatalf("%+v %v", rep, rep.Problem)
	}
}

// TestCrashRecovery cuts the last file at random bytes, as a crash mid-write would
// leave it, and checks that the verifier reports it, that the restarted writer seals
// it with a recovered record, and that the verifier then accepts the whole log.
func TestCrashRecovery(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 8; i++ {
		t.Run("", func(t *testing.T) {
			cfg := testLogConfig(t)
			cfg.CheckpointEvery = 7
			l := openLog(t, cfg, k)
			appendN(t, l, 0, 20)
			// Simulate the crash: no Close, and the file cut at a random byte.
			l.mu.Lock()
			l.closeSegLocked()
			l.closed = true
			l.mu.Unlock()
			close(l.stop)
			<-l.done
			l.lock.Release() // the kernel drops the lock of a process that dies
			files := logFiles(t, cfg.Dir)
			data, _ := os.ReadFile(files[0])
			cut := 1 + rng.IntN(len(data)-1)
			os.WriteFile(files[0], data[:cut], 0o640)
			wholeLines := bytes.Count(data[:cut], []byte("\n"))
			torn := data[:cut][bytes.LastIndexByte(data[:cut], '\n')+1:]

			rep := verifyDir(t, cfg.Dir, k)
			if len(torn) > 0 {
				if rep.Problem == nil || rep.Problem.Kind != ProblemTruncated || rep.Problem.Line != wholeLines+1 {
					t.Fatalf("cut at %d: %+v %v", cut, rep, rep.Problem)
				}
			} else if rep.Problem != nil || rep.Closed {
				t.Fatalf("cut at %d (line end): %+v %v", cut, rep, rep.Problem)
			}

			l = openLog(t, cfg, k)
			appendN(t, l, 100, 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep = verifyDir(t, cfg.Dir, k)
			if wholeLines == 0 {
				// Not even the header survived: the file was set aside.
				if _, err := os.Stat(files[0] + tornSuffix); err != nil {
					t.Fatalf("unusable file not set aside: %v", err)
				}
				if !rep.OK() || len(rep.Recoveries) != 1 || !strings.Contains(rep.Recoveries[0].Cause, "set aside") {
					t.Fatalf("cut at %d: %+v %v", cut, rep, rep.Problem)
				}
				return
			}
			if !rep.OK() || len(rep.Recoveries) != 1 {
				t.Fatalf("cut at %d: %+v %v", cut, rep, rep.Problem)
			}
			rc := rep.Recoveries[0]
			if rc.TornBytes != int64(len(torn)) || rc.TornOffset != int64(cut-len(torn)) {
				t.Fatalf("recovery %+v, torn %d bytes", rc, len(torn))
			}
			if after, _ := os.ReadFile(files[0]); !bytes.Equal(after, data[:cut]) {
				t.Fatal("the writer changed an existing file")
			}
			// The torn bytes are evidence: removing them now is caught.
			if len(torn) > 0 {
				os.WriteFile(files[0], data[:cut-len(torn)], 0o640)
				rep = verifyDir(t, cfg.Dir, k)
				if rep.Problem == nil || rep.Problem.Kind != ProblemTruncated {
					t.Fatalf("removed torn bytes not caught: %+v", rep)
				}
			}
		})
	}
}

func TestTickerCheckpoints(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	cfg := testLogConfig(t)
	tick := newManualTicker()
	cfg.Ticker = tick.start
	l := openLog(t, cfg, k)
	countCheckpoints := func() int {
		n := 0
		for _, f := range logFiles(t, cfg.Dir) {
			for _, line := range readLines(t, f) {
				if bytes.Contains(line, []byte(`"type":"checkpoint"`)) {
					n++
				}
			}
		}
		return n
	}
	waitFor := func(want int) {
		t.Helper()
		// The checkpoint is written by the log's goroutine after it took the tick:
		// poll the files, with a bound only there to fail instead of hanging.
		deadline := time.Now().Add(time.Minute)
		poll := time.NewTicker(time.Millisecond)
		defer poll.Stop()
		for countCheckpoints() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d checkpoints, want %d", countCheckpoints(), want)
			}
			<-poll.C
		}
	}
	waitFor(1) // start-up
	// An unbuffered send returns once the goroutine took the tick; a second send
	// returns once it is done with the first.
	tick.c <- time.Time{}
	tick.c <- time.Time{}
	if n := countCheckpoints(); n != 1 {
		t.Fatalf("%d checkpoints after idle ticks", n)
	}
	appendN(t, l, 0, 2)
	tick.c <- time.Time{} // records waiting: a checkpoint
	waitFor(2)
	tick.c <- time.Time{} // nothing waiting: none
	tick.c <- time.Time{}
	if n := countCheckpoints(); n != 2 {
		t.Fatalf("%d checkpoints after idle ticks", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tick.stopped:
	default:
		t.Fatal("ticker not stopped by Close")
	}
	if rep := verifyDir(t, cfg.Dir, k); !rep.OK() || rep.Checkpoints != 3 {
		t.Fatalf("%+v", rep)
	}
}

func TestConcurrentAppend(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	cfg := testLogConfig(t)
	cfg.CheckpointEvery = 50
	cfg.MaxFileBytes = 64 << 10
	l := openLog(t, cfg, k)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if err := l.Append(t.Context(), sampleRecord(g*1000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Checkpoints coalesce while the goroutines hammer the log: at least the start-up
	// one, one triggered by the count, and the final one.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, cfg.Dir, k)
	ops := 0
	for _, f := range logFiles(t, cfg.Dir) {
		ops += bytes.Count(bytes.Join(readLines(t, f), nil), []byte(`"type":"op"`))
	}
	if !rep.OK() || ops != 1600 || rep.Files < 2 || rep.Checkpoints < 3 {
		t.Fatalf("ops %d, %+v %v", ops, rep, rep.Problem)
	}
}

// TestUnwritableDirectory makes the directory unusable under a running writer (it is
// replaced by a regular file, which stops root too) and forces a new file.
func TestUnwritableDirectory(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	for _, failOpen := range []bool{false, true} {
		name := "fail-closed"
		if failOpen {
			name = "fail-open"
		}
		t.Run(name, func(t *testing.T) {
			cfg := testLogConfig(t)
			cfg.MaxFileBytes = 4000
			cfg.FailOpen = failOpen
			var logged bytes.Buffer
			var logMu sync.Mutex
			cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logged}, nil))
			l := openLog(t, cfg, k)
			appendN(t, l, 0, 2)
			moved := cfg.Dir + ".moved"
			if err := os.Rename(cfg.Dir, moved); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(cfg.Dir, []byte("not a directory"), 0o600)
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				err = l.Append(t.Context(), sampleRecord(i))
			}
			if failOpen {
				if err != nil {
					t.Fatalf("fail-open Append: %v", err)
				}
				logMu.Lock()
				defer logMu.Unlock()
				if !strings.Contains(logged.String(), "record not written") {
					t.Fatalf("failure not logged: %s", logged.String())
				}
			} else {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("fail-closed Append: %v", err)
				}
				if l.Health() == nil {
					t.Fatal("Health is nil after a failure")
				}
				// It keeps failing while the directory is gone...
				if err := l.Append(t.Context(), sampleRecord(99)); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("second Append: %v", err)
				}
			}
			// ...and recovers when it is back.
			os.Remove(cfg.Dir)
			os.Rename(moved, cfg.Dir)
			if err := l.Append(t.Context(), sampleRecord(100)); err != nil {
				t.Fatalf("Append after the directory came back: %v", err)
			}
			if l.Health() != nil {
				t.Fatalf("Health after recovery: %v", l.Health())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if rep := verifyDir(t, cfg.Dir, k); !rep.OK() {
				t.Fatalf("%+v %v", rep, rep.Problem)
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestAppendBatch: a batch's records follow each other with consecutive sequence
// numbers, each chained to the one before, among single records, across rotation
// (a batch larger than the rest of the file starts a new one), with SyncRecord; a bad
// record writes nothing of its batch.
func TestAppendBatch(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	cfg := testLogConfig(t)
	cfg.MaxFileBytes = 4000
	cfg.Sync = SyncRecord
	l := openLog(t, cfg, k)
	appendN(t, l, 0, 1)
	batch := []Record{sampleRecord(1), sampleRecord(2), sampleRecord(3), sampleRecord(4), sampleRecord(5)}
	if err := l.AppendBatch(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendBatch(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	bad := []Record{sampleRecord(6), {Op: OpSign, InputDigest: []byte{1}}}
	if err := l.AppendBatch(t.Context(), bad); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("a batch with a malformed record: %v", err)
	}
	for i := 0; i < 4; i++ {
		if err := l.AppendBatch(t.Context(), []Record{sampleRecord(10 + 2*i), sampleRecord(11 + 2*i)}); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, l, 20, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	var prevSeq uint64
	for _, f := range logFiles(t, cfg.Dir) {
		for _, line := range readLines(t, f) {
			e, err := ParseLine(bytes.TrimSuffix(line, []byte("\n")))
			if err != nil || !e.HashOK {
				t.Fatalf("%v %+v", err, e)
			}
			if e.Seq != prevSeq+1 {
				t.Fatalf("seq %d after %d", e.Seq, prevSeq)
			}
			prevSeq = e.Seq
			if e.Type == "op" {
				ids = append(ids, e.RequestID)
			}
		}
	}
	want := "req-0 req-1 req-2 req-3 req-4 req-5 req-10 req-11 req-12 req-13 req-14 req-15 req-16 req-17 req-20"
	if got := strings.Join(ids, " "); got != want {
		t.Fatalf("records\n got %s\nwant %s", got, want)
	}
	rep := verifyDir(t, cfg.Dir, k)
	if !rep.OK() || rep.Files < 2 || !rep.Closed {
		t.Fatalf("%+v %v", rep, rep.Problem)
	}
}
