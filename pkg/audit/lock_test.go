package audit

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/dirlock"
)

// TestSecondWriterRefused: while a replica's log is open, a second New of the same
// replica and directory fails at once, in the same process too (the lock belongs to
// the open lock file, so a second open conflicts even here), with an error naming
// the directory; another replica shares the directory; after Close, or after a New
// that failed, the replica opens again.
func TestSecondWriterRefused(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	cfg := testLogConfig(t)
	l := openLog(t, cfg, k)
	appendN(t, l, 0, 3)

	_, err := New(cfg, k.signer, k.cert, (&fakeClock{t: testNow}).now)
	if !errors.Is(err, dirlock.ErrLocked) || !strings.Contains(err.Error(), cfg.Dir) || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second New while the log is open: %v, want ErrLocked naming %s", err, cfg.Dir)
	}
	other := cfg
	other.ReplicaID = "r2"
	l2 := openLog(t, other, k)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}

	appendN(t, l, 3, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	broken := cfg
	broken.openFile = func(string) (segmentFile, error) { return nil, errInjected }
	if _, err := New(broken, k.signer, k.cert, (&fakeClock{t: testNow}).now); err == nil || !strings.Contains(err.Error(), errInjected.Error()) {
		t.Fatalf("New with a failing file: %v", err)
	}
	l = openLog(t, cfg, k)
	appendN(t, l, 5, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The first writer's records are one chain with the later writer's; the lock
	// file is not taken for a log file.
	files, err := filepath.Glob(filepath.Join(cfg.Dir, "audit-r1-*"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(files, k.cert)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Files != 2 || len(rep.Recoveries) != 0 {
		t.Fatalf("%+v %v", rep, rep.Problem)
	}
}

// TestSecondProcessRefused: a writer in another process (the test binary run again)
// cannot open a log this process holds open, and can once it is closed.
func TestSecondProcessRefused(t *testing.T) {
	if os.Getenv(childEnv) == "open" {
		l, err := childLog(Config{})
		if errors.Is(err, dirlock.ErrLocked) {
			os.Stdout.WriteString(err.Error())
			os.Exit(10)
		}
		if err != nil {
			childFail(err)
		}
		if err := l.Append(t.Context(), sampleRecord(1000)); err != nil {
			childFail(err)
		}
		if err := l.Close(); err != nil {
			childFail(err)
		}
		os.Exit(0)
	}
	k := newAuditKey(t, devpki.ECDSAP256)
	cfg := testLogConfig(t)
	l := openLog(t, cfg, k)
	appendN(t, l, 0, 3)

	out, err := startChild(t, "TestSecondProcessRefused", "open", cfg.Dir, k).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 10 {
		t.Fatalf("second process while the log is open: %v, %s; want it refused", err, out)
	}
	if !strings.Contains(string(out), "directory "+cfg.Dir+" is in use by another process") {
		t.Fatalf("second process's error: %s", out)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := startChild(t, "TestSecondProcessRefused", "open", cfg.Dir, k).Output(); err != nil {
		t.Fatalf("second process after Close: %v, %s", err, out)
	}
	rep := verifyDir(t, cfg.Dir, k)
	if !rep.OK() || rep.Files != 2 || len(rep.Recoveries) != 0 {
		t.Fatalf("%+v %v", rep, rep.Problem)
	}
}
