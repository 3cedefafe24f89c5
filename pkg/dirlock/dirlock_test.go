//go:build unix && !aix

package dirlock

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestAcquire: a second Acquire of the same file fails at once, in the same process
// too (flock locks belong to the open file, not the process), and succeeds after
// Release.
func TestAcquire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l1, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Acquire while held: %v, want ErrLocked naming %s", err, path)
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l1.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

func TestAcquireMissingDirectory(t *testing.T) {
	_, err := Acquire(filepath.Join(t.TempDir(), "gone", "x.lock"))
	if err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("Acquire in a missing directory: %v", err)
	}
}
