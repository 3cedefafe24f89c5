package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// File names: audit-<replica>-<index, 8 digits>-<UTC creation time>.jsonl. The index
// orders the files of one replica; lexical order of the names is the same order.
const (
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
	// tornSuffix is appended to a file that held no usable record at start-up (a
	// crash while its header was written); it is kept as evidence, never deleted.
	tornSuffix = ".torn"
)

// lockFileName is the replica's lock file in the directory. Its name does not end in
// .jsonl, so neither the writer's nor the verifier's file lists ever include it.
func lockFileName(replica string) string { return filePrefix + replica + ".lock" }

func fileName(replica string, index uint64, t time.Time) string {
	return fmt.Sprintf("%s%s-%08d-%s%s", filePrefix, replica, index, t.UTC().Format("20060102T150405Z"), fileSuffix)
}

// validReplica keeps replica ids usable in file names.
func validReplica(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return s != "." && s != ".."
}

type logFile struct {
	name  string
	index uint64
}

// listFiles finds the replica's audit files in dir, in index order. Set-aside
// (.torn) files count for the next index but are not returned.
func listFiles(dir, replica string) (files []logFile, maxIndex uint64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	prefix := filePrefix + replica + "-"
	for _, de := range ents {
		name := de.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		rest := name[len(prefix):]
		torn := strings.HasSuffix(rest, fileSuffix+tornSuffix)
		if !torn && !strings.HasSuffix(rest, fileSuffix) {
			continue
		}
		idx, _, ok := strings.Cut(rest, "-")
		if !ok || len(idx) != 8 {
			continue
		}
		n, err := strconv.ParseUint(idx, 10, 64)
		if err != nil || n == 0 {
			continue
		}
		maxIndex = max(maxIndex, n)
		if !torn {
			files = append(files, logFile{name: name, index: n})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].index < files[j].index })
	return files, maxIndex, nil
}

// chainState is where the chain stands on disk when a writer starts.
type chainState struct {
	seq      uint64
	head     string // hash of the last good record; "" for a new log
	file     string // name of the file holding it
	index    uint64 // highest file index in use
	closed   bool   // the last good record is a final checkpoint
	torn     *tornInfo
	setAside []string // files renamed to *.torn because they held no record
}

// tornInfo describes bytes after the last good record of a file.
type tornInfo struct {
	file   string
	offset int64
	bytes  int64
	hash   string // "alg:hex" of the torn bytes, "" when none
	cause  string
}

// tailWindow is how much of a file's end is read first to find its last record.
const tailWindow = 256 << 10

// recoverChain finds the last good record of the replica's log in dir. A file whose
// end is torn (a crash mid-write) is left as it is: the bytes after its last good
// record are described in tornInfo for the recovered record. A file with no good
// record at all is renamed to *.torn and the previous file is used.
func recoverChain(dir, replica string, alg HashAlg) (*chainState, error) {
	files, maxIndex, err := listFiles(dir, replica)
	if err != nil {
		return nil, err
	}
	st := &chainState{index: maxIndex}
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		path := filepath.Join(dir, f.name)
		e, goodEnd, size, err := lastGoodRecord(path, replica)
		if err != nil {
			return nil, err
		}
		if e == nil {
			if err := os.Rename(path, path+tornSuffix); err != nil {
				return nil, fmt.Errorf("audit: setting aside unusable file: %w", err)
			}
			st.setAside = append(st.setAside, f.name+tornSuffix)
			continue
		}
		st.seq, st.head, st.file = e.Seq, e.Hash, f.name
		st.closed = e.Type == typeCheckpoint && e.Final
		if goodEnd < size {
			t := &tornInfo{file: f.name, offset: goodEnd, bytes: size - goodEnd, cause: "crash: incomplete record at the end of the file"}
			if h, err := hashFileRange(path, goodEnd, alg); err == nil {
				t.hash = h
			}
			st.torn = t
		}
		return st, nil
	}
	return st, nil
}

// lastGoodRecord returns the last line of the file that parses, carries the replica
// id and whose hash matches, and the offset just after it.
func lastGoodRecord(path, replica string) (*Entry, int64, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, 0, err
	}
	size := fi.Size()
	for window := int64(tailWindow); ; window *= 4 {
		start := max(size-window, 0)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, 0, err
		}
		end := bytes.LastIndexByte(buf, '\n') // only newline-terminated lines are whole
		for end >= 0 {
			lineStart := bytes.LastIndexByte(buf[:end], '\n') + 1
			if lineStart == 0 && start > 0 {
				break // the line may begin before the window
			}
			if e, err := ParseLine(buf[lineStart:end]); err == nil && e.HashOK && e.Replica == replica {
				return e, start + int64(end) + 1, size, nil
			}
			end = lineStart - 1
		}
		if start == 0 {
			return nil, 0, size, nil
		}
	}
}

func hashFileRange(path string, off int64, alg HashAlg) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, off, 1<<30))
	if err != nil {
		return "", err
	}
	s := alg.sum(b)
	return string(appendDigest(nil, alg, s[:])), nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
