package audit

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"signsvr.dev/signsvr/internal/devpki"
)

// faultyDisk is a Config.openFile whose files fail Sync or Close when armed: once,
// as Linux reports a failed write-back once to the file's next fsync or close, or
// until disarmed, as a disk that is gone. It remembers the first failure.
type faultyDisk struct {
	mu        sync.Mutex
	syncFails int // how many Syncs fail from now on; -1: all
	closeFail int // the same for Close (the file is closed all the same)
	failedOp  string
	failedOn  string
	failures  int
	openFiles []string
}

var errInjected = errors.New("injected I/O error")

func (d *faultyDisk) open(path string) (segmentFile, error) {
	f, err := openSegmentFile(path)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.openFiles = append(d.openFiles, filepath.Base(path))
	d.mu.Unlock()
	return &faultyFile{segmentFile: f, disk: d, name: filepath.Base(path)}, nil
}

func (d *faultyDisk) arm(syncFails, closeFails int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncFails, d.closeFail = syncFails, closeFails
}

// fail says whether this call of op on the file name fails, counting it down.
func (d *faultyDisk) fail(op, name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := &d.syncFails
	if op == "close" {
		n = &d.closeFail
	}
	if *n == 0 {
		return false
	}
	if *n > 0 {
		*n--
	}
	if d.failures == 0 {
		d.failedOp, d.failedOn = op, name
	}
	d.failures++
	return true
}

type faultyFile struct {
	segmentFile
	disk *faultyDisk
	name string
}

func (f *faultyFile) Sync() error {
	if f.disk.fail("sync", f.name) {
		return errInjected
	}
	return f.segmentFile.Sync()
}

func (f *faultyFile) Close() error {
	err := f.segmentFile.Close()
	if f.disk.fail("close", f.name) {
		return errInjected
	}
	return err
}

// TestSyncFailure makes the fsync or the close of a log file fail: when a full file
// is closed at rotation, after a checkpoint (SyncCheckpoint) and after a record
// (SyncRecord). Each is a failed write, handled the same way: the call that hit it is
// refused with ErrUnavailable, Health reports it, appends stay refused while the disk
// keeps failing, and once it works the log continues in a new file whose recovered
// record names the file whose records may be lost. The verifier reports that
// recovery, as it does for every failed write.
func TestSyncFailure(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	for _, tc := range []struct {
		name     string
		sync     SyncPolicy
		closeErr bool // Close fails instead of Sync
		diskDown bool // every Sync fails until the test disarms the fault
		// hit does what meets the failure; it returns the error that reports it.
		hit   func(t *testing.T, l *Log) error
		cause string
	}{
		{name: "rotation-fsync", hit: appendUntilRotation, cause: "fsync failed: " + errInjected.Error()},
		{name: "rotation-fsync-disk-down", diskDown: true, hit: appendUntilRotation, cause: "fsync failed: " + errInjected.Error()},
		{name: "rotation-close", closeErr: true, hit: appendUntilRotation, cause: "close failed: " + errInjected.Error()},
		{name: "checkpoint-fsync", hit: func(t *testing.T, l *Log) error {
			appendN(t, l, 0, 1)
			return l.checkpoint(false)
		}, cause: "fsync failed: " + errInjected.Error()},
		{name: "record-fsync", sync: SyncRecord, hit: func(t *testing.T, l *Log) error {
			return l.Append(t.Context(), sampleRecord(0))
		}, cause: "fsync failed: " + errInjected.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := &faultyDisk{}
			cfg := testLogConfig(t)
			cfg.MaxFileBytes = 4000
			cfg.Sync = tc.sync
			cfg.openFile = disk.open
			l := openLog(t, cfg, k)
			appendN(t, l, 100, 2)
			first := disk.openFiles[0]
			switch {
			case tc.closeErr:
				disk.arm(0, 1)
			case tc.diskDown:
				disk.arm(-1, 0)
			default:
				disk.arm(1, 0)
			}

			err := tc.hit(t, l)
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), errInjected.Error()) {
				t.Fatalf("the call that met the failure: %v, want ErrUnavailable with the cause", err)
			}
			if disk.failedOn != first {
				t.Fatalf("first failure: %s of %s, want of %s", disk.failedOp, disk.failedOn, first)
			}
			if h := l.Health(); h == nil || !strings.Contains(h.Error(), first) {
				t.Fatalf("Health after the failure: %v, want the failure naming %s", h, first)
			}
			// While the disk fails, later appends are refused: the new file that would
			// carry the recovered record cannot be made durable.
			if tc.diskDown {
				for i := 0; i < 3; i++ {
					if err := l.Append(t.Context(), sampleRecord(200+i)); !errors.Is(err, ErrUnavailable) {
						t.Fatalf("Append %d while the disk fails: %v", i, err)
					}
					if l.Health() == nil {
						t.Fatal("Health nil while the disk fails")
					}
				}
			}

			disk.arm(0, 0)
			appendN(t, l, 300, 2)
			if h := l.Health(); h != nil {
				t.Fatalf("Health after the disk recovered: %v", h)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			rep := verifyDir(t, cfg.Dir, k)
			if !rep.OK() || len(rep.Recoveries) != 1 {
				t.Fatalf("report %+v, problem %v", rep, rep.Problem)
			}
			rc := rep.Recoveries[0]
			if rc.TornFile != first || rc.TornBytes != 0 || rc.Cause != tc.cause {
				t.Fatalf("recovery %+v, want one naming %s with cause %q", rc, first, tc.cause)
			}
			var text strings.Builder
			rep.WriteText(&text)
			if !strings.Contains(text.String(), ": OK: ") || !strings.Contains(text.String(), "recovery at ") || !strings.Contains(text.String(), tc.cause) {
				t.Fatalf("verify says:\n%s", text.String())
			}
		})
	}
}

// appendUntilRotation appends until an Append fails, which must be the one that found
// the first file full and closed it (with SyncCheckpoint and no checkpoint due, that
// is the only fsync or close), and returns its error.
func appendUntilRotation(t *testing.T, l *Log) error {
	t.Helper()
	for i := 0; i < 100; i++ {
		err := l.Append(t.Context(), sampleRecord(i))
		l.mu.Lock()
		rotated := l.seg.closed || l.index != 1
		l.mu.Unlock()
		if err != nil {
			if !rotated {
				t.Fatalf("Append %d failed before the file was full: %v", i, err)
			}
			return err
		}
		if rotated {
			t.Fatalf("Append %d rotated to a new file despite the failure", i)
		}
	}
	t.Fatal("the file never filled up")
	return nil
}
