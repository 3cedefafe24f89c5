package devpki

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signsvr.dev/signsvr/pkg/dirlock"
)

// TestLock: while the data directory is locked, a second Lock fails at once, in this
// process (flock belongs to the open lock file) and in another (the test binary run
// again), with an error naming the directory; Ensure works under the lock, including
// the first start that renames a new PKI into place; after Release it locks again.
func TestLock(t *testing.T) {
	if dir := os.Getenv("DEVPKI_LOCK_CHILD"); dir != "" {
		l, err := Lock(dir)
		if errors.Is(err, dirlock.ErrLocked) {
			os.Stdout.WriteString(err.Error())
			os.Exit(10)
		}
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		l.Release()
		os.Exit(0)
	}
	child := func(dir string) (int, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLock$", "-test.count=1")
		cmd.Env = append(os.Environ(), "DEVPKI_LOCK_CHILD="+dir)
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}

	dir := filepath.Join(t.TempDir(), "data")
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir)
	if !errors.Is(err, dirlock.ErrLocked) || !strings.Contains(err.Error(), "data directory "+dir+" is in use by another process") {
		t.Fatalf("second Lock in this process: %v", err)
	}
	if code, out := child(dir); code != 10 || !strings.Contains(out, "data directory "+dir+" is in use by another process") {
		t.Fatalf("Lock in another process: exit %d: %s", code, out)
	}
	if _, err := Ensure(dir, func() time.Time { return fixedNow }); err != nil {
		t.Fatalf("Ensure under the lock: %v", err)
	}
	if code, out := child(dir); code != 10 {
		t.Fatalf("Lock in another process after the first start: exit %d: %s", code, out)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if code, out := child(dir); code != 0 {
		t.Fatalf("Lock in another process after Release: exit %d: %s", code, out)
	}
	l, err = Lock(dir)
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	l.Release()
}
