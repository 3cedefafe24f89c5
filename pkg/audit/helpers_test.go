package audit

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/identity"
	"signsvr.dev/signsvr/pkg/keystore"
)

var testNow = time.Date(2026, 11, 2, 15, 4, 5, 0, time.UTC)

// fakeClock advances by one millisecond per reading.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// auditKey is an audit signing key and certificate, issued by a development CA.
type auditKey struct {
	signer crypto.Signer
	cert   *smx509.Certificate
}

var (
	keyMu    sync.Mutex
	keyCache = map[devpki.Algorithm]auditKey{}
)

func newAuditKey(t testing.TB, alg devpki.Algorithm) auditKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[alg]; ok {
		return k
	}
	ca, err := devpki.NewCA(alg, "audit test CA", testNow)
	if err != nil {
		t.Fatal(err)
	}
	s, c, err := ca.Issue(alg, devpki.LeafOptions{CommonName: "audit " + string(alg), Usage: keystore.UsageSign, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	k := auditKey{s, c}
	keyCache[alg] = k
	return k
}

// manualTicker is a Config.Ticker the test drives.
type manualTicker struct {
	c       chan time.Time
	stopped chan struct{}
}

func newManualTicker() *manualTicker {
	return &manualTicker{c: make(chan time.Time), stopped: make(chan struct{})}
}

func (m *manualTicker) start(time.Duration) (<-chan time.Time, func()) {
	return m.c, func() { close(m.stopped) }
}

// testLogConfig is a small-file configuration in a new directory.
func testLogConfig(t testing.TB) Config {
	return Config{
		Dir:             filepath.Join(t.TempDir(), "audit"),
		ReplicaID:       "r1",
		CheckpointEvery: 1000,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ticker:          func(d time.Duration) (<-chan time.Time, func()) { return newManualTicker().start(d) },
	}
}

func openLog(t testing.TB, cfg Config, k auditKey) *Log {
	t.Helper()
	l, err := New(cfg, k.signer, k.cert, (&fakeClock{t: testNow}).now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func sampleRecord(i int) Record {
	return Record{
		RequestID:  fmt.Sprintf("req-%d", i),
		Caller:     Caller{Kind: CallerCert, Holder: identity.Holder{Subject: "CN=client " + strconv.Itoa(i%3) + ",O=Trader \"A\"", Issuer: "CN=issuing CA", Serial: "1f2e", FingerprintSHA256: "ab"}},
		Op:         OpSign,
		Key:        "customs-sm2-sign",
		Algorithms: []string{"SM2", "SM3"},
		Input:      []byte("plaintext document " + strconv.Itoa(i)),
		Output:     []byte("signature bytes"),
		Code:       "OK",
	}
}

func appendN(t testing.TB, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(t.Context(), sampleRecord(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// logFiles lists the audit files of dir in order.
func logFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o640); err != nil {
		t.Fatal(err)
	}
}

var (
	prevRe = regexp.MustCompile(`,"prev":"[^"]*"$`)
	headRe = regexp.MustCompile(`"count":(\d+),"head":"[^"]*"`)
)

// rechain recomputes every prev, hash and checkpoint head of the files, in order, as
// an attacker who edited a record would, leaving the signatures as they are. sign,
// when set, re-signs every checkpoint (sig and cert_sha256) as the attacker's key.
func rechain(t testing.TB, files []string, sign func(msg []byte) (sig []byte, fp string)) {
	t.Helper()
	prev := ""
	hashes := map[uint64]string{}
	for _, f := range files {
		lines := readLines(t, f)
		for i, line := range lines {
			line = bytes.TrimSuffix(line, []byte("\n"))
			body := line[:bytes.LastIndex(line, hashMember)]
			body = prevRe.ReplaceAll(body, []byte(`,"prev":"`+prev+`"`))
			if m := headRe.FindSubmatch(body); m != nil {
				count, _ := strconv.ParseUint(string(m[1]), 10, 64)
				head, ok := hashes[count]
				if !ok { // the record it covered is gone: leave the head as it was
					head = string(regexp.MustCompile(`"head":"([^"]*)"`).FindSubmatch(body)[1])
				}
				body = headRe.ReplaceAll(body, []byte(`"count":$1,"head":"`+head+`"`))
				if sign != nil {
					sig, fp := sign(checkpointMessage("r1", count, head))
					body = regexp.MustCompile(`"sig":"[^"]*"`).ReplaceAll(body, []byte(`"sig":"`+b64(sig)+`"`))
					body = regexp.MustCompile(`"cert_sha256":"[^"]*"`).ReplaceAll(body, []byte(`"cert_sha256":"`+fp+`"`))
				}
			}
			sum := sha256.Sum256(body)
			h := string(appendDigest(nil, SHA256, sum[:]))
			e, err := ParseLine(append(append(bytes.Clone(body), hashMember...), h+`"}`...))
			if err != nil {
				t.Fatalf("rechain: %v", err)
			}
			hashes[e.Seq] = h
			prev = h
			lines[i] = append(append(append(bytes.Clone(body), hashMember...), h+`"}`...), '\n')
		}
		writeLines(t, f, lines)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
