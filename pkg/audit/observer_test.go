package audit

import (
	"os"
	"sync"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/devpki"
)

// countingObserver adds up what a Log reports.
type countingObserver struct {
	mu               sync.Mutex
	appends, failed  int
	records          int
	bytes            int64
	negativeDuration bool
}

func (o *countingObserver) Appended(records int, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.appends++
	o.records += records
	if err != nil {
		o.failed++
	}
	o.negativeDuration = o.negativeDuration || took < 0
}

func (o *countingObserver) Wrote(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes += int64(n)
}

// TestObserver: every append is reported with its record count, a failed one with
// its error (also when the log fails open), and the bytes written add up to the
// files' sizes.
func TestObserver(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	o := &countingObserver{}
	disk := &faultyDisk{}
	cfg := testLogConfig(t)
	cfg.Observer = o
	cfg.Sync = SyncRecord
	cfg.FailOpen = true
	cfg.openFile = disk.open
	l := openLog(t, cfg, k)
	appendN(t, l, 0, 3)
	if err := l.AppendBatch(t.Context(), []Record{sampleRecord(3), sampleRecord(4)}); err != nil {
		t.Fatal(err)
	}
	disk.arm(1, 0)
	if err := l.Append(t.Context(), sampleRecord(5)); err != nil {
		t.Fatalf("a fail-open log answered %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.appends != 5 || o.records != 6 || o.failed != 1 || o.negativeDuration {
		t.Errorf("appends %d, records %d, failed %d (negative duration %v); want 5, 6, 1", o.appends, o.records, o.failed, o.negativeDuration)
	}
	var size int64
	for _, f := range logFiles(t, cfg.Dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	if o.bytes != size {
		t.Errorf("bytes reported %d, files hold %d", o.bytes, size)
	}
}
