package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"signsvr.dev/signsvr/bench/procstat"
	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
)

// TestMemoryUnderLargeAndStalledRequests attacks a development server in a process
// of its own, with the default limits, the way one careless or hostile client could:
// large Sign requests on several connections at once, and connections that send the
// length prefix and part of a large message, as fast as the server lets them, then
// stop. The server refuses what does not fit in its budget of request bytes in flight
// with RESOURCE_EXHAUSTED, its peak resident size stays under what the budget allows,
// and a client sending small requests meanwhile is served every time.
func TestMemoryUnderLargeAndStalledRequests(t *testing.T) {
	const (
		large    = 6        // concurrent large requests
		largeLen = 24 << 20 // bytes of content each
		stalled  = 24       // connections that stop mid-message
		declared = 32 << 20 // the message length they announce
		sent     = 16 << 20 // what they send of it, if the server lets them
	)
	srv := startChildServer(t)
	probe := dialSignClient(t, srv.addr)
	sign := func(ctx context.Context, c signsvrv1.SignServiceClient, data []byte) error {
		_, err := c.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data, Detached: true})
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := sign(ctx, probe, []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	idle := srv.memory(t)

	// The probe runs for the whole attack; every call must succeed.
	stopProbe := make(chan struct{})
	var probeOK atomic.Int64
	probeErr := make(chan error, 1)
	go func() {
		defer close(probeErr)
		for {
			select {
			case <-stopProbe:
				return
			default:
			}
			if err := sign(ctx, probe, []byte("small request")); err != nil {
				probeErr <- err
				return
			}
			probeOK.Add(1)
		}
	}()

	var stalls []*stallingClient
	for range stalled {
		stalls = append(stalls, startStall(t, srv.addr, declared, sent))
	}
	codesSeen := make(chan codes.Code, large)
	var wg sync.WaitGroup
	content := make([]byte, largeLen)
	for range large {
		c := dialSignClient(t, srv.addr)
		wg.Go(func() { codesSeen <- status.Code(sign(ctx, c, content)) })
	}
	wg.Wait()
	close(codesSeen)
	// Every stalled client has either been refused or sent all the server let it,
	// and the probe is still served with everything in place.
	before := probeOK.Load()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	deadline := time.Now().Add(time.Minute)
	for !allSettled(stalls) || probeOK.Load() < before+5 {
		select {
		case err := <-probeErr:
			t.Fatalf("the small-request probe failed during the attack: %v", err)
		case <-poll.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: stalled clients settled %v, probe calls %d", allSettled(stalls), probeOK.Load()-before)
		}
	}
	peak := srv.memory(t)
	close(stopProbe)
	if err := <-probeErr; err != nil {
		t.Fatalf("the small-request probe failed during the attack: %v", err)
	}

	count := map[codes.Code]int{}
	for c := range codesSeen {
		count[c]++
	}
	refusedStalls, heldStalls := 0, int64(0)
	for _, s := range stalls {
		if s.refused.Load() {
			refusedStalls++
		} else {
			heldStalls += s.sentBytes()
		}
	}
	t.Logf("large requests: %v; stalled clients refused %d of %d, the rest hold %d MiB sent; probe calls %d; "+
		"RSS idle %d MiB, peak (VmHWM) %d MiB, now %d MiB",
		count, refusedStalls, stalled, heldStalls>>20, probeOK.Load(), idle.HWM>>20, peak.HWM>>20, peak.RSS>>20)
	if count[codes.OK]+count[codes.ResourceExhausted] != large || count[codes.ResourceExhausted] == 0 {
		t.Errorf("large requests ended %v, want OK or RESOURCE_EXHAUSTED only, and some RESOURCE_EXHAUSTED", count)
	}
	if refusedStalls == 0 {
		t.Errorf("no stalled client was refused: the budget did not fill")
	}
	// Requests cost up to three times what they hold of the budget; the connections
	// of the attack, well under a MiB each.
	bound := idle.HWM + 3*server.DefaultMaxInflightBytes + int64(stalled+large+1)<<20
	if peak.HWM > bound {
		t.Errorf("peak resident size %d MiB, over the budget's bound of %d MiB", peak.HWM>>20, bound>>20)
	}

	// Once the stalled clients are gone, their share comes back: a large request is
	// served again.
	for _, s := range stalls {
		s.conn.Close()
	}
	c := dialSignClient(t, srv.addr)
	deadline = time.Now().Add(time.Minute)
	for {
		err := sign(ctx, c, content)
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("a large request after the attack: %v", err)
		}
		<-poll.C
	}
}

// childServer is `signsvr serve` (the development default) in a process of its own.
type childServer struct {
	cmd  *exec.Cmd
	addr string
}

func startChildServer(t *testing.T) *childServer {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", "--", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--listen", "127.0.0.1:0", "--log-level", "error")
	cmd.Env = append(os.Environ(), childServeEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cs := &childServer{cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("server process: %v", err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the server process printed no address: %v", err)
	}
	cs.addr = line[:len(line)-1]
	return cs
}

func (cs *childServer) memory(t *testing.T) procstat.Memory {
	t.Helper()
	m, err := procstat.ReadMemory(cs.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func dialSignClient(t *testing.T, addr string) signsvrv1.SignServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return signsvrv1.NewSignServiceClient(conn)
}

// stallingClient speaks HTTP/2 itself: one Sign call whose message announces
// declared bytes, of which it sends up to sent, as fast as flow control allows, and
// then nothing. It stops early when the server ends the stream (refused).
type stallingClient struct {
	conn    net.Conn
	sent    atomic.Int64
	target  int64
	refused atomic.Bool
	blocked atomic.Bool // waiting for window the server does not grant
}

func allSettled(ss []*stallingClient) bool {
	for _, s := range ss {
		if !s.settled() {
			return false
		}
	}
	return true
}

func (s *stallingClient) sentBytes() int64 { return s.sent.Load() }

func (s *stallingClient) settled() bool {
	return s.refused.Load() || s.blocked.Load() || s.sent.Load() >= s.target
}

func startStall(t *testing.T, addr string, declared, sent int) *stallingClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &stallingClient{conn: c, target: int64(sent)}
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var mu sync.Mutex // the framer's writes
	cond := sync.NewCond(&mu)
	streamWin, connWin := int64(65535), int64(65535)
	mu.Lock()
	fr.WriteSettings()
	var hb []byte
	enc := hpack.NewEncoder(appendWriter{&hb})
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/signsvr.v1.SignService/Sign"},
		{":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb, EndHeaders: true})
	mu.Unlock()

	go func() { // reader: windows, settings, the end of the stream
		for {
			f, err := fr.ReadFrame()
			mu.Lock()
			if err != nil {
				s.refused.Store(s.refused.Load() || s.sent.Load() < s.target)
				cond.Broadcast()
				mu.Unlock()
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
						streamWin += int64(v) - 65535
					}
					fr.WriteSettingsAck()
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else {
					streamWin += int64(f.Increment)
				}
				s.blocked.Store(false)
			case *http2.PingFrame:
				if !f.IsAck() {
					fr.WritePing(true, f.Data)
				}
			case *http2.RSTStreamFrame, *http2.MetaHeadersFrame:
				s.refused.Store(true)
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}()
	go func() { // writer: the prefix, then data as the windows allow
		msg := make([]byte, 5+sent)
		binary.BigEndian.PutUint32(msg[1:5], uint32(declared))
		off := 0
		mu.Lock()
		defer mu.Unlock()
		for off < len(msg) && !s.refused.Load() {
			n := min(int64(len(msg)-off), 16384, streamWin, connWin)
			if n <= 0 {
				s.blocked.Store(true)
				cond.Wait()
				continue
			}
			if err := fr.WriteData(1, false, msg[off:off+int(n)]); err != nil {
				s.refused.Store(true)
				return
			}
			streamWin -= n
			connWin -= n
			off += int(n)
			s.sent.Store(int64(max(0, off-5)))
		}
	}()
	return s
}

type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }
