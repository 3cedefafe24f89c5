package audit

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/dirlock"
)

// SyncPolicy says when the log calls fsync.
type SyncPolicy int

const (
	// SyncCheckpoint writes every record to the operating system at once (one write
	// call, so a crashed process loses nothing the kernel has) and fsyncs after each
	// checkpoint. A machine crash loses at most the records since the last checkpoint.
	SyncCheckpoint SyncPolicy = iota
	// SyncRecord fsyncs after every record before Append returns.
	SyncRecord
)

// Config configures a Log. Zero values take the defaults named below.
type Config struct {
	// Dir holds the files. It is created (0750) if missing.
	Dir string
	// ReplicaID names this writer; it goes in every record and every file name.
	// Letters, digits, '.', '_' and '-' only.
	ReplicaID string
	// Hash is the chain hash and the digest of inputs and outputs: SHA256 (default) or SM3.
	Hash HashAlg
	// MaxFileBytes rotates to a new file once a file would grow past it (default 64 MiB).
	MaxFileBytes int64
	// CheckpointEvery triggers a checkpoint once this many records wait (default
	// 1000). Checkpoints are signed in the background: under load, records keep
	// coming while one is signed, and the next checkpoint covers them all.
	CheckpointEvery int
	// CheckpointInterval writes a checkpoint this often when records are waiting (default 10s).
	CheckpointInterval time.Duration
	// Sync is the fsync policy (default SyncCheckpoint).
	Sync SyncPolicy
	// FailOpen makes Append log a write failure and return nil. The default is to fail
	// closed: Append returns an error wrapping ErrUnavailable and the server refuses
	// the operation.
	FailOpen bool
	// Logger receives write and checkpoint failures (default slog.Default()).
	Logger *slog.Logger
	// Observer, when set, learns of every append and every write (metrics).
	Observer Observer
	// Ticker starts the checkpoint ticker; nil uses time.NewTicker. Tests pass a
	// channel they drive by hand. stop is called on Close.
	Ticker func(d time.Duration) (c <-chan time.Time, stop func())

	// openFile creates a log file; nil uses os.OpenFile. Tests wrap the file to make
	// its writes, fsyncs or close fail.
	openFile func(path string) (segmentFile, error)
}

// Observer learns what a Log writes, for metrics. Its methods are called on the
// write path (Wrote with the log's mutex held) and must be quick and safe for
// concurrent use.
type Observer interface {
	// Appended follows each Append and AppendBatch: the records it was given, how
	// long it took (the wait for a group commit included), and its error, before a
	// fail-open log turns it into nil (nil: written).
	Appended(records int, took time.Duration, err error)
	// Wrote follows each write to a log file: n bytes reached the operating system
	// (records, file headers and checkpoints alike).
	Wrote(n int)
}

// segmentFile is what the writer needs of an open log file.
type segmentFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

func openSegmentFile(path string) (segmentFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
}

var (
	// ErrUnavailable is wrapped by Append's errors when a record could not be written;
	// the server answers codes.Unavailable.
	ErrUnavailable = errors.New("audit: log unavailable")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log closed")
)

// Log is one replica's audit log writer. It is safe for concurrent use.
type Log struct {
	cfg     Config
	alg     HashAlg
	clock   func() time.Time
	signer  crypto.Signer
	sigAlg  string
	certFP  string
	pub     crypto.PublicKey
	logger  *slog.Logger
	replica string
	fields  sync.Pool // *[]byte, encoded fields of a record before locking
	// digested counts the bytes of Record.Input and Output hashed (DigestedBytes).
	digested atomic.Uint64
	group    committer // group commit of concurrent Appends (group.go)
	lock     *dirlock.Lock

	mu      sync.Mutex
	seg     *segment
	index   uint64 // highest file index used
	seq     uint64
	head    []byte // "alg:hex" of the last record written
	line    []byte // line buffer, reused under mu
	marks   []int  // per line of a write: end, hash start, hash end (under mu)
	sinceCP int    // records since the last checkpoint capture
	broken  error  // last write failure; the next Append starts a new file
	torn    *tornInfo
	closed  bool
	health  error

	syncMu sync.Mutex // serialises fsync with closing a rotated file

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

type segment struct {
	f        segmentFile
	name     string
	size     int64
	records  int  // lines written, header included
	appended int  // lines written by appendLine (not the header or recovered record)
	closed   bool // written with mu and syncMu held, read with either
}

// New opens the replica's log in cfg.Dir and locks it (the lock file
// audit-<replica>.lock, held until Close): a second New of the same replica and
// directory, in this process or another, fails at once with an error wrapping
// dirlock.ErrLocked. It continues the chain from the last good record on disk,
// always in a new file (existing files are never modified), writes a recovered
// record when the previous run ended in the middle of a record or without closing,
// and signs a first checkpoint so a broken audit key shows at start-up.
// signer is the audit key; cert is its certificate, named in every checkpoint.
func New(cfg Config, signer crypto.Signer, cert *smx509.Certificate, clock func() time.Time) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit: Config.Dir is required")
	}
	if !validReplica(cfg.ReplicaID) {
		return nil, fmt.Errorf("audit: replica id %q must be letters, digits, '.', '_' or '-'", cfg.ReplicaID)
	}
	if signer == nil || cert == nil {
		return nil, errors.New("audit: an audit key and its certificate are required")
	}
	if clock == nil {
		return nil, errors.New("audit: a clock is required")
	}
	if cfg.Hash == "" {
		cfg.Hash = SHA256
	}
	if !cfg.Hash.valid() {
		return nil, fmt.Errorf("audit: unknown hash %q", cfg.Hash)
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 64 << 20
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 1000
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.openFile == nil {
		cfg.openFile = openSegmentFile
	}
	if cfg.Ticker == nil {
		cfg.Ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	sigAlg, err := sigAlgFor(signer.Public())
	if err != nil {
		return nil, err
	}
	if pk, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(signer.Public()) {
		return nil, errors.New("audit: the audit certificate does not match the audit key")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	// Two writers of one replica's log would both continue the chain from the same
	// record, a fork no later verification gets past: the second fails here instead.
	lock, err := dirlock.Acquire(filepath.Join(cfg.Dir, lockFileName(cfg.ReplicaID)))
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("audit: directory %s is in use by another process (the log of replica %s): %w", cfg.Dir, cfg.ReplicaID, err)
	} else if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	opened := false
	defer func() {
		if !opened {
			lock.Release()
		}
	}()
	st, err := recoverChain(cfg.Dir, cfg.ReplicaID, cfg.Hash)
	if err != nil {
		return nil, fmt.Errorf("audit: reading the existing log: %w", err)
	}
	l := &Log{
		cfg: cfg, alg: cfg.Hash, clock: clock, signer: signer, sigAlg: sigAlg,
		certFP: CertFingerprint(cert), pub: cert.PublicKey, logger: cfg.Logger,
		replica: cfg.ReplicaID, lock: lock,
		index: st.index, seq: st.seq, head: []byte(st.head),
		line: make([]byte, 0, 1024),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	l.fields.New = func() any { b := make([]byte, 0, 512); return &b }
	l.group.cond.L = &l.group.mu
	prevFile := st.file
	l.mu.Lock()
	if st.torn != nil {
		l.torn = st.torn
	} else if st.seq > 0 && !st.closed {
		l.torn = &tornInfo{file: st.file, offset: -1, cause: "previous run ended without closing the log"}
	}
	for _, name := range st.setAside {
		l.logger.Error("audit: file held no usable record and was set aside", "file", name)
	}
	err = l.openFileLocked(prevFile, st.setAside)
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := l.checkpoint(false); err != nil {
		l.mu.Lock()
		l.closed = true
		l.closeSegLocked()
		l.mu.Unlock()
		return nil, err
	}
	tick, stopTick := cfg.Ticker(cfg.CheckpointInterval)
	go l.run(tick, stopTick)
	opened = true
	return l, nil
}

// Digest hashes data with the log's digest algorithm, for Record.InputDigest and
// Record.OutputDigest when the caller hashes as it streams.
func (l *Log) Digest(data []byte) []byte {
	s := l.alg.sum(data)
	return s[:]
}

// DigestedBytes is how many bytes of records' Input and Output Append has hashed
// since the log was opened (digests given ready-made and the chain not counted):
// what the records cost beyond their own lines, which tests bound.
func (l *Log) DigestedBytes() uint64 { return l.digested.Load() }

// HashAlg is the log's chain and digest hash.
func (l *Log) HashAlg() HashAlg { return l.alg }

// Append writes one operation record. The record reaches the operating system before
// Append returns (and the disk, with SyncRecord). On a write failure it returns an
// error wrapping ErrUnavailable, or nil after logging when Config.FailOpen is set. ctx
// is not used to abandon the write: a refusal caused by a deadline is audited too.
func (l *Log) Append(ctx context.Context, r Record) error {
	return l.AppendBatch(ctx, []Record{r})
}

// AppendBatch writes several operation records, in order and with consecutive
// sequence numbers, with one write call: the server records each item of a batch
// request this way (a write call per record was a tenth of a batch's CPU). The
// guarantees are Append's, for the batch as a whole: every record reaches the
// operating system before AppendBatch returns, or it returns an error. After a write
// that failed part-way, the records written whole stay in the chain (an auditor sees
// them, and the call was refused) and the rest are described by a recovered record,
// as for Append.
func (l *Log) AppendBatch(ctx context.Context, rs []Record) error {
	if len(rs) == 0 {
		return nil
	}
	var start time.Time
	if l.cfg.Observer != nil {
		start = time.Now()
	}
	bp := l.fields.Get().(*[]byte)
	fields := (*bp)[:0]
	var endsBuf [1]int
	ends := endsBuf[:0]
	if len(rs) > 1 {
		ends = make([]int, 0, len(rs))
	}
	var err error
	var digested int
	for i := range rs {
		if fields, err = appendOpFields(fields, l.alg, l.replica, &rs[i]); err != nil {
			break
		}
		ends = append(ends, len(fields))
		digested += len(rs[i].Input) + len(rs[i].Output)
	}
	l.digested.Add(uint64(digested))
	if err == nil {
		err = l.commit(fields, ends)
	} else {
		err = fmt.Errorf("%w (nothing written)", err) // a programming error in the caller: never fail open on it
	}
	if cap(fields) <= maxPooledFields {
		*bp = fields
		l.fields.Put(bp)
	}
	if o := l.cfg.Observer; o != nil {
		o.Appended(len(rs), time.Since(start), err)
	}
	if err != nil && l.cfg.FailOpen && errors.Is(err, ErrUnavailable) {
		l.logger.Error("audit: record not written (fail-open)", "op", string(rs[0].Op), "request_id", rs[0].RequestID, "records", len(rs), "err", err)
		return nil
	}
	return err
}

// maxPooledFields bounds the field buffers kept for reuse (a large batch's is dropped).
const maxPooledFields = 256 << 10

// FailsOpen reports whether a record that cannot be written lets its operation
// through (Config.FailOpen).
func (l *Log) FailsOpen() bool { return l.cfg.FailOpen }

// Health is nil while the log writes and checkpoints; otherwise the last failure.
func (l *Log) Health() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.health
}

// appendLine writes one record whose type-specific fields are given, under the mutex.
// It returns the segment written to (for a later fsync).
func (l *Log) appendLine(fields []byte, checkpoint, whileClosing bool) (*segment, error) {
	seg, _, err := l.appendLines(fields, []int{len(fields)}, checkpoint, whileClosing)
	return seg, err
}

// appendLines writes the records whose type-specific fields are fields[ends[i-1]:ends[i]],
// with one write call, under the mutex. It returns how many records are committed:
// written whole (they stay in the chain even when it returns an error) and, with
// SyncRecord, synced.
func (l *Log) appendLines(fields []byte, ends []int, checkpoint, whileClosing bool) (*segment, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed && !whileClosing {
		return nil, 0, ErrClosed
	}
	if l.broken != nil || l.seg.closed {
		if err := l.openFileLocked(l.seg.name, nil); err != nil {
			return nil, 0, l.failLocked(err)
		}
	}
	// A checkpoint never starts a file: it goes right after the records it covers, so
	// the final checkpoint of Close cannot leave a new file's header unsigned.
	if !checkpoint && l.seg.appended > 0 && l.seg.size+int64(len(fields))+256*int64(len(ends)) > l.cfg.MaxFileBytes {
		if err := l.openFileLocked(l.seg.name, nil); err != nil {
			return nil, 0, l.failLocked(err)
		}
	}
	written, err := l.writeLinesLocked(fields, ends)
	l.seg.appended += written
	if !checkpoint {
		l.sinceCP += written
	}
	if err != nil {
		return nil, written, l.failLocked(err)
	}
	if l.cfg.Sync == SyncRecord {
		if err := l.seg.f.Sync(); err != nil {
			return nil, 0, l.failLocked(l.syncFailedLocked(l.seg.name, fmt.Errorf("fsync failed: %w", err)))
		}
	}
	if !checkpoint && l.sinceCP >= l.cfg.CheckpointEvery {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return l.seg, written, nil
}

func (l *Log) failLocked(err error) error {
	l.health = err
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// syncFailedLocked handles a failed fsync or close of the file name, wherever it
// happens (after a record with SyncRecord, after a checkpoint, when a full file is
// closed at rotation): the records written to it since its last good fsync may not be
// on disk, and a later fsync that succeeds does not say they are (the kernel may have
// dropped the pages it could not write). It is a failed write: the caller refuses its
// call through failLocked (health turns bad), and the next write starts a new file
// whose recovered record names this one and gives err as the cause. It returns err
// with the file's name.
func (l *Log) syncFailedLocked(name string, err error) error {
	if l.torn == nil || l.torn.file != name { // else the first failure stands, with any torn bytes
		l.torn = &tornInfo{file: name, offset: -1, cause: err.Error()}
	}
	l.broken = err
	return fmt.Errorf("%s: %w", name, err)
}

// writeLocked encodes and writes one line: seq, time, the given fields, prev, hash.
func (l *Log) writeLocked(fields []byte) error {
	_, err := l.writeLinesLocked(fields, []int{len(fields)})
	return err
}

// writeLinesLocked encodes one line per record (seq, time, its fields, prev, hash) into
// one buffer and writes it with one call. It returns how many lines were written whole:
// they are in the chain even when the write failed after them; the bytes of a line cut
// by a failed write become l.torn.
func (l *Log) writeLinesLocked(fields []byte, ends []int) (int, error) {
	b := l.line[:0]
	marks := l.marks[:0] // per line: end of line, start and end of its hash value
	now := l.clock().UTC()
	head := l.head
	start := 0
	for i, end := range ends {
		lineStart := len(b)
		b = append(b, `{"seq":`...)
		b = appendUint(b, l.seq+uint64(i)+1)
		b = append(b, `,"time":"`...)
		b = now.AppendFormat(b, timeLayout)
		b = append(b, `",`...)
		b = append(b, fields[start:end]...)
		b = append(b, `,"prev":"`...)
		b = append(b, head...)
		b = append(b, '"')
		sum := l.alg.sum(b[lineStart:])
		b = append(b, hashMember...)
		hashStart := len(b)
		b = appendDigest(b, l.alg, sum[:])
		hashEnd := len(b)
		b = append(b, '"', '}', '\n')
		marks = append(marks, len(b), hashStart, hashEnd)
		head = b[hashStart:hashEnd]
		start = end
	}
	if cap(b) <= maxPooledFields*2 {
		l.line = b
	}
	l.marks = marks
	n, err := l.seg.f.Write(b)
	l.seg.size += int64(n)
	if o := l.cfg.Observer; o != nil && n > 0 {
		o.Wrote(n)
	}
	whole, wholeEnd := 0, 0
	for whole < len(ends) && marks[3*whole] <= n {
		wholeEnd = marks[3*whole]
		whole++
	}
	if whole > 0 {
		m := marks[3*(whole-1):]
		l.seq += uint64(whole)
		l.head = append(l.head[:0], b[m[1]:m[2]]...)
		l.seg.records += whole
		l.health = nil
	}
	if err != nil {
		l.broken = err
		cut := int64(n - wholeEnd)
		t := &tornInfo{file: l.seg.name, offset: l.seg.size - cut, bytes: cut, cause: "write failed: " + err.Error()}
		if cut > 0 {
			s := l.alg.sum(b[wholeEnd:n])
			t.hash = string(appendDigest(nil, l.alg, s[:]))
		}
		l.torn = t
		return whole, err
	}
	return whole, nil
}

// openFileLocked closes the current file (fsync first) and starts the next one with
// its header, and a recovered record when l.torn says the chain was interrupted. When
// the current file does not close cleanly, no file is started: the error goes to the
// caller like a failed write, and the next write starts the new file.
func (l *Log) openFileLocked(prevFile string, setAside []string) error {
	if err := l.closeSegLocked(); err != nil {
		return l.syncFailedLocked(l.seg.name, err)
	}
	index := l.index + 1
	name := fileName(l.replica, index, l.clock())
	path := filepath.Join(l.cfg.Dir, name)
	f, err := l.cfg.openFile(path)
	if err != nil {
		l.broken = err
		return err
	}
	// On failure below, the chain state goes back to what it was: the new file is
	// removed, so the records written into it never existed.
	oldSeg, oldSeq, oldHead, oldTorn := l.seg, l.seq, string(l.head), l.torn
	seg := &segment{f: f, name: name}
	l.seg = seg
	fields := make([]byte, 0, 256)
	fields = append(fields, `"type":"file","replica":`...)
	fields = appendString(fields, l.replica)
	fields = append(fields, `,"format":"`+formatName+`","file":`...)
	fields = appendString(fields, name)
	fields = append(fields, `,"file_index":`...)
	fields = appendUint(fields, index)
	fields = append(fields, `,"prev_file":`...)
	fields = appendString(fields, prevFile)
	err = l.writeLocked(fields)
	if err == nil && (oldTorn != nil || len(setAside) > 0) {
		t := tornInfo{offset: -1}
		if oldTorn != nil {
			t = *oldTorn
		}
		if len(setAside) > 0 {
			t.cause += fmt.Sprintf("; files with no usable record set aside: %v", setAside)
		}
		fields = append(fields[:0], `"type":"recovered","replica":`...)
		fields = appendString(fields, l.replica)
		fields = append(fields, `,"torn_file":`...)
		fields = appendString(fields, t.file)
		if t.offset >= 0 {
			fields = append(fields, `,"torn_offset":`...)
			fields = appendUint(fields, uint64(t.offset))
			fields = append(fields, `,"torn_bytes":`...)
			fields = appendUint(fields, uint64(t.bytes))
		}
		if t.hash != "" {
			fields = append(fields, `,"torn_hash":`...)
			fields = appendString(fields, t.hash)
		}
		fields = append(fields, `,"after_seq":`...)
		fields = appendUint(fields, oldSeq)
		fields = append(fields, `,"cause":`...)
		fields = appendString(fields, t.cause)
		err = l.writeLocked(fields)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(l.cfg.Dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		l.seg, l.seq, l.head, l.torn = oldSeg, oldSeq, append(l.head[:0], oldHead...), oldTorn
		l.broken = err
		return err
	}
	l.index = index
	l.torn = nil
	l.broken = nil
	l.sinceCP += seg.records
	return nil
}

// closeSegLocked fsyncs and closes the current file, if open. The file counts as
// closed even when either fails: it is not written again.
func (l *Log) closeSegLocked() error {
	old := l.seg
	if old == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if old.closed {
		return nil
	}
	old.closed = true
	err := old.f.Sync()
	if err != nil {
		err = fmt.Errorf("fsync failed: %w", err)
	}
	if e := old.f.Close(); e != nil && err == nil {
		err = fmt.Errorf("close failed: %w", e)
	}
	return err
}

// run is the checkpoint goroutine: a checkpoint every CheckpointEvery records (kick)
// or every CheckpointInterval while records wait.
func (l *Log) run(tick <-chan time.Time, stopTick func()) {
	defer close(l.done)
	defer stopTick()
	for {
		select {
		case <-l.stop:
			return
		case <-tick:
		case <-l.kick:
		}
		if err := l.checkpoint(false); err != nil && !errors.Is(err, ErrClosed) {
			l.logger.Error("audit: checkpoint failed", "err", err)
		}
	}
}

// checkpoint signs the current chain head and appends the checkpoint record. Signing
// runs outside the mutex: records appended meanwhile follow the head it covers and
// are covered by the next checkpoint.
func (l *Log) checkpoint(final bool) error {
	l.mu.Lock()
	// A log whose last write failed checkpoints at every tick even with nothing new to
	// cover: the checkpoint is what finds the disk writable again and clears Health,
	// when no call comes to write a record (a server reported unhealthy gets none).
	if (l.closed && !final) || (l.sinceCP == 0 && l.health == nil && !final) || l.seq == 0 {
		l.mu.Unlock()
		return nil
	}
	count, head := l.seq, string(l.head)
	waiting := l.sinceCP
	l.sinceCP = 0
	l.mu.Unlock()

	fail := func(err error) error {
		l.mu.Lock()
		l.sinceCP += waiting // try again at the next tick
		l.health = err
		l.mu.Unlock()
		return fmt.Errorf("%w: checkpoint: %v", ErrUnavailable, err)
	}
	msg := checkpointMessage(l.replica, count, head)
	sig, err := signCheckpoint(l.signer, l.sigAlg, msg)
	if err != nil {
		return fail(err)
	}
	// Check our own signature, as crypto/x509 does: a misbehaving signer (a wrong
	// HSM key, a raw r||s instead of DER) must not leave unverifiable checkpoints.
	if err := verifyCheckpoint(l.pub, l.sigAlg, msg, sig); err != nil {
		return fail(fmt.Errorf("audit key produced a bad signature: %w", err))
	}
	fields := make([]byte, 0, 256+base64.StdEncoding.EncodedLen(len(sig)))
	fields = append(fields, `"type":"checkpoint","replica":`...)
	fields = appendString(fields, l.replica)
	fields = append(fields, `,"count":`...)
	fields = appendUint(fields, count)
	fields = append(fields, `,"head":`...)
	fields = appendString(fields, head)
	fields = append(fields, `,"sig_alg":`...)
	fields = appendString(fields, l.sigAlg)
	fields = append(fields, `,"sig":"`...)
	fields = base64.StdEncoding.AppendEncode(fields, sig)
	fields = append(fields, `","cert_sha256":`...)
	fields = appendString(fields, l.certFP)
	if final {
		fields = append(fields, `,"final":true`...)
	}
	seg, err := l.appendLine(fields, true, final)
	if err != nil {
		return fail(err)
	}
	if l.cfg.Sync == SyncCheckpoint {
		l.syncMu.Lock()
		if !seg.closed {
			err = seg.f.Sync()
		}
		l.syncMu.Unlock()
		if err != nil {
			l.mu.Lock()
			err = l.failLocked(l.syncFailedLocked(seg.name, fmt.Errorf("fsync failed: %w", err)))
			l.mu.Unlock()
			return err
		}
	}
	return nil
}

// Close stops the checkpoint ticker, writes a final checkpoint covering every record,
// closes the file and releases the replica's lock on the directory. Append fails with
// ErrClosed afterwards.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case <-l.done:
	default:
		close(l.stop)
		<-l.done
	}
	err := l.checkpoint(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.closeSegLocked(); err == nil {
		err = e
	}
	if e := l.lock.Release(); err == nil {
		err = e
	}
	return err
}
