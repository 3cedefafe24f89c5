package audit

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"signsvr.dev/signsvr/internal/devpki"
)

// writeCalls is this process's count of write system calls (/proc/self/io syscw).
func writeCalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("reading /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("/proc/self/io has no syscw")
	return 0
}

// TestGroupCommit: Appends that are runnable together (calls finishing at the same
// time) reach the file with a few write calls, not one each, every caller returns
// only after its record is in the chain, and the chain verifies in order.
func TestGroupCommit(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	k := newAuditKey(t, devpki.ECDSAP256)
	cfg := testLogConfig(t)
	l := openLog(t, cfg, k)
	const callers = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = l.Append(t.Context(), sampleRecord(i))
		}()
	}
	runtime.Gosched() // every caller waits on start
	before := writeCalls(t)
	close(start)
	wg.Wait()
	writes := writeCalls(t) - before
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	// One write per record without grouping; the scheduler's fairness check (every
	// 61st schedule takes the global queue) may split the group once or twice.
	if writes > 4 {
		t.Errorf("%d concurrent Appends took %d write calls, want a few", callers, writes)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, cfg.Dir, k)
	if !rep.OK() || rep.Records < callers {
		t.Fatalf("%+v %v", rep, rep.Problem)
	}
}
