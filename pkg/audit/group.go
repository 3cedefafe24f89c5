package audit

import (
	"runtime"
	"sync"
)

// Group commit: the records of calls that finish at about the same time go to the
// file with one write call instead of one each.
//
// Why: the write of a record is the largest part of auditing a call (a system call
// per record, next to a few hashes), and on a busy server other calls are ready to be recorded at that moment. The first caller
// to arrive leads: it yields the processor once (runtime.Gosched), so the handlers
// already runnable reach Append and queue their records behind it, then writes every
// queued record with one appendLines call and wakes the others. A caller still returns
// only once its own records are written (and synced, with SyncRecord), so the
// guarantee of Append is unchanged; an idle server pays one yield that returns at once.
// With SyncRecord the fsync is shared the same way.

// commitReq is one AppendBatch waiting for its records to be written.
type commitReq struct {
	fields []byte
	ends   []int
	err    error
	done   bool
}

type committer struct {
	mu      sync.Mutex
	cond    sync.Cond // waits for done, or for the leader to leave
	queue   []*commitReq
	spare   []*commitReq
	leading bool
	buf     []byte // the group's fields, reused by leaders (under leading)
	ends    []int
}

var commitReqs = sync.Pool{New: func() any { return new(commitReq) }}

// commit writes the records fields[ends[i-1]:ends[i]] (ends relative to fields) in
// one group with the records of concurrent callers, and returns the error that
// applies to them: nil once all are committed.
func (l *Log) commit(fields []byte, ends []int) error {
	c := &l.group
	req := commitReqs.Get().(*commitReq)
	*req = commitReq{fields: fields, ends: ends}
	defer func() { *req = commitReq{}; commitReqs.Put(req) }()

	c.mu.Lock()
	c.queue = append(c.queue, req)
	for c.leading && !req.done {
		c.cond.Wait()
	}
	if req.done {
		c.mu.Unlock()
		return req.err
	}
	c.leading = true
	c.mu.Unlock()

	// Let the calls that are ready finish and queue their records.
	runtime.Gosched()

	c.mu.Lock()
	batch := c.queue
	c.queue = c.spare[:0]
	c.mu.Unlock()

	l.writeGroup(c, batch)

	c.mu.Lock()
	for _, r := range batch {
		r.done = true
	}
	clear(batch)
	c.spare = batch[:0]
	c.leading = false
	c.cond.Broadcast()
	c.mu.Unlock()
	return req.err
}

// writeGroup writes the batch's records with one appendLines call and sets each
// request's error: nil when all its records are committed.
func (l *Log) writeGroup(c *committer, batch []*commitReq) {
	if len(batch) == 1 {
		r := batch[0]
		_, _, r.err = l.appendLines(r.fields, r.ends, false, false)
		return
	}
	buf, ends := c.buf[:0], c.ends[:0]
	for _, r := range batch {
		base := len(buf)
		buf = append(buf, r.fields...)
		for _, e := range r.ends {
			ends = append(ends, base+e)
		}
	}
	_, committed, err := l.appendLines(buf, ends, false, false)
	end := 0 // the group's index past the request's last record
	for _, r := range batch {
		end += len(r.ends)
		if err != nil && end > committed {
			r.err = err
		}
	}
	if cap(buf) <= maxPooledFields {
		c.buf = buf
	}
	c.ends = ends
}
