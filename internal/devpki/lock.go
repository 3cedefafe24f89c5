package devpki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"signsvr.dev/signsvr/pkg/dirlock"
)

// Lock locks the data directory dir against a second process, for as long as the
// caller holds the returned lock (a server, for its whole life; the kernel drops it
// when the process exits). Call it before Ensure. When another process, or another
// Lock in this one, holds it, Lock fails at once with an error that names dir and
// wraps dirlock.ErrLocked.
//
// The lock file is beside dir, not in it (dir.lock for dir): Ensure makes a new
// development PKI in a temporary directory that it renames to dir, and a lock file
// inside would lock only the directory that was replaced. So the lock can be taken
// before dir exists; its parent must be writable the first time.
func Lock(dir string) (*dirlock.Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	parent := filepath.Dir(abs)
	if parent == abs {
		return nil, fmt.Errorf("devpki: the data directory cannot be %s", abs)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	l, err := dirlock.Acquire(LockPath(abs))
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("devpki: data directory %s is in use by another process (another signsvr serve on the same --data-dir?): %w", dir, err)
	} else if err != nil {
		return nil, fmt.Errorf("devpki: locking the data directory: %w", err)
	}
	return l, nil
}

// LockPath is the lock file Lock uses for dir.
func LockPath(dir string) string { return filepath.Clean(dir) + ".lock" }
