// Package dirlock keeps two processes from writing the same directory at once.
//
// Two servers started on one data directory (a second one that then fails to bind its
// port is enough) would both continue the audit chain from the same last record, and
// the fork shows as reordered records in every later verification. A lock taken when
// the directory is opened makes the second process fail at start-up instead, with an
// error that says which directory another process uses.
//
// The lock is flock(2) on a lock file, taken without waiting: exclusive per open file,
// so a second Acquire in the same process conflicts too, and released by the kernel
// when the process exits, however it exits, so a crash leaves no stale lock. The lock
// file itself stays; it is empty and is reused by the next Acquire. On systems
// without flock(2) (Windows, AIX, Plan 9) Acquire takes no lock.
package dirlock

import (
	"errors"
	"os"
)

// ErrLocked is wrapped by Acquire's error when another open file holds the lock.
var ErrLocked = errors.New("held by another process")

// Lock is a held lock; Release gives it up.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes the exclusive lock on the file path, creating the file if missing.
// It does not wait: when the lock is held elsewhere, in this process or another, it
// returns an error wrapping ErrLocked that names path.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lock(f); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: path, Err: err}
	}
	return &Lock{f: f, path: path}, nil
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// Release gives up the lock. Releasing a nil or released Lock does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor of the open file drops its flock
	l.f = nil
	return err
}
