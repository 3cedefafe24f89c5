package audit

import (
	"bufio"
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
)

// The subprocess tests re-run the test binary with AUDIT_CHILD set; the child runs
// childMain instead of the test and exits.
const childEnv = "AUDIT_CHILD"

func startChild(t *testing.T, test, mode, dir string, k auditKey) *exec.Cmd {
	t.Helper()
	keyPath := filepath.Join(t.TempDir(), "audit.key")
	certPath := keyPath + ".pem"
	if err := devpki.WriteKeyPEM(keyPath, k.signer); err != nil {
		t.Fatal(err)
	}
	if err := devpki.WriteCertsPEM(certPath, k.cert); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "AUDIT_DIR="+dir, "AUDIT_KEY="+keyPath, "AUDIT_CERT="+certPath)
	cmd.Stderr = os.Stderr
	return cmd
}

// childLog opens the log the parent described, with the real clock and ticker.
func childLog(cfg Config) (*Log, error) {
	keyPEM, err := os.ReadFile(os.Getenv("AUDIT_KEY"))
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(keyPEM)
	key, err := smx509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	certs, err := devpki.ReadCertsPEM(os.Getenv("AUDIT_CERT"))
	if err != nil {
		return nil, err
	}
	cfg.Dir, cfg.ReplicaID = os.Getenv("AUDIT_DIR"), "r1"
	return New(cfg, key.(crypto.Signer), certs[0], time.Now)
}

func childFail(err error) {
	fmt.Fprintln(os.Stderr, "child:", err)
	os.Exit(3)
}

// TestKilledWriter kills a writer with SIGKILL while it appends as fast as it can.
// Every record whose Append returned must be in the file (each is one write call),
// the verifier must report the records after the last checkpoint as an unsigned
// tail, and a restarted writer must seal the log with a recovered record.
func TestKilledWriter(t *testing.T) {
	if os.Getenv(childEnv) == "kill" {
		l, err := childLog(Config{CheckpointEvery: 500, CheckpointInterval: 20 * time.Millisecond})
		if err != nil {
			childFail(err)
		}
		out := bufio.NewWriter(os.Stdout)
		for i := 0; ; i++ {
			if err := l.Append(t.Context(), sampleRecord(i)); err != nil {
				childFail(err)
			}
			if i%50 == 0 {
				fmt.Fprintf(out, "acked %d\n", i+1)
				out.Flush()
			}
		}
	}
	k := newAuditKey(t, devpki.ECDSAP256)
	dir := t.TempDir()
	cmd := startChild(t, "TestKilledWriter", "kill", dir, k)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	acked := 0
	for sc.Scan() {
		acked, _ = strconv.Atoi(strings.TrimPrefix(sc.Text(), "acked "))
		if acked > 3000 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	if acked <= 3000 {
		t.Fatalf("child stopped after %d records", acked)
	}

	rep := verifyDir(t, dir, k)
	ops := 0
	for _, f := range logFiles(t, dir) {
		for _, line := range readLines(t, f) {
			if strings.Contains(string(line), `"type":"op"`) {
				ops++
			}
		}
	}
	if ops < acked {
		t.Fatalf("%d acknowledged records, %d in the log", acked, ops)
	}
	switch {
	case rep.Problem != nil && rep.Problem.Kind == ProblemTruncated:
		// Killed inside a write call: possible, rare.
	case rep.Problem != nil:
		t.Fatalf("problem after SIGKILL: %v", rep.Problem)
	case rep.Closed:
		t.Fatalf("report after SIGKILL: %+v", rep)
	}
	t.Logf("killed after %d acknowledged records; %d in the log; report %+v", acked, ops, rep)

	cfg := testLogConfig(t)
	cfg.Dir = dir
	l := openLog(t, cfg, k)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep = verifyDir(t, dir, k)
	if !rep.OK() || len(rep.Recoveries) != 1 {
		t.Fatalf("after restart: %+v %v", rep, rep.Problem)
	}
}

// childGroupWrite writes the records of three callers as one group commit (3 records
// each), and checks that a failed write fails exactly the callers whose records were
// not all committed: the failures are a suffix of the group, and their error is the
// write's.
func childGroupWrite(l *Log, n int) error {
	batch := make([]*commitReq, 3)
	for i := range batch {
		r := &commitReq{}
		for j := 0; j < 3; j++ {
			rec := sampleRecord(9*n + 3*i + j)
			var err error
			if r.fields, err = appendOpFields(r.fields, l.alg, l.replica, &rec); err != nil {
				return err
			}
			r.ends = append(r.ends, len(r.fields))
		}
		batch[i] = r
	}
	l.writeGroup(&l.group, batch)
	var first error
	for i, r := range batch {
		if first != nil && r.err == nil {
			childFail(fmt.Errorf("group: caller %d succeeded after a failed caller", i))
		}
		if first == nil {
			first = r.err
		}
	}
	return first
}

// TestWriteFailureMidRecord makes a write fail for real in a child process: the file
// size limit (RLIMIT_FSIZE, which binds root too) cuts a record in the middle. Append
// (and AppendBatch, whose one write holds several records) must fail closed; once the
// limit is lifted the writer continues in a new file whose recovered record accounts
// for the partial line, and the whole log verifies. A batch cut part-way keeps the
// records it wrote whole: the recovered record covers less than one record. A group
// commit cut part-way fails the callers whose records were not all written.
func TestWriteFailureMidRecord(t *testing.T) {
	if mode := os.Getenv(childEnv); mode == "fsize" || mode == "fsize-batch" || mode == "fsize-group" {
		signal.Ignore(syscall.SIGXFSZ)
		l, err := childLog(Config{CheckpointInterval: time.Hour})
		if err != nil {
			childFail(err)
		}
		var old syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			childFail(err)
		}
		limited := old
		limited.Cur = 10000
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
			childFail(err)
		}
		n := 0
		for ; n < 100; n++ {
			if mode == "fsize" {
				err = l.Append(t.Context(), sampleRecord(n))
			} else if mode == "fsize-group" {
				err = childGroupWrite(l, n)
			} else {
				err = l.AppendBatch(t.Context(), []Record{sampleRecord(3 * n), sampleRecord(3*n + 1), sampleRecord(3*n + 2)})
			}
			if err != nil {
				break
			}
		}
		if !errors.Is(err, ErrUnavailable) {
			childFail(fmt.Errorf("Append past the size limit: %v", err))
		}
		if l.Health() == nil {
			childFail(errors.New("Health nil after a failed write"))
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			childFail(err)
		}
		if err := l.Append(t.Context(), sampleRecord(1000)); err != nil {
			childFail(fmt.Errorf("Append after the limit was lifted: %v", err))
		}
		if err := l.Close(); err != nil {
			childFail(err)
		}
		fmt.Printf("failed after %d writes: %v\n", n, err)
		os.Exit(0)
	}
	for _, mode := range []string{"fsize", "fsize-batch", "fsize-group"} {
		t.Run(mode, func(t *testing.T) {
			k := newAuditKey(t, devpki.SM2)
			dir := t.TempDir()
			cmd := startChild(t, "TestWriteFailureMidRecord", mode, dir, k)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			t.Logf("child: %s", out)
			rep := verifyDir(t, dir, k)
			if !rep.OK() || rep.Files != 2 || len(rep.Recoveries) != 1 || rep.Recoveries[0].TornBytes == 0 {
				t.Fatalf("%+v %v", rep, rep.Problem)
			}
			if !strings.Contains(rep.Recoveries[0].Cause, "write failed") {
				t.Fatalf("recovery cause %q", rep.Recoveries[0].Cause)
			}
			// A record line is ~550 bytes: the torn part is what is left of one.
			if rep.Recoveries[0].TornBytes >= 700 {
				t.Fatalf("recovered record covers %d bytes: whole records of the cut write were not kept", rep.Recoveries[0].TornBytes)
			}
		})
	}
}
