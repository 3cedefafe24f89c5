package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"signsvr.dev/signsvr/bench/loadgen"
	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// serverProc is a running signsvr, pinned with taskset.
type serverProc struct {
	cmd  *exec.Cmd
	addr string
	log  *lockedBuffer
	done chan error
	// clientArgs are the load generator's flags to reach this server (TLS files).
	clientArgs []string
}

// lockedBuffer collects the server's log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// maxLog bounds the kept log: past it, the older half is dropped (a failing scenario
// logs a line per call).
const maxLog = 4 << 20

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxLog {
		keep := b.buf.Bytes()[b.buf.Len()/2:]
		nb := bytes.NewBuffer(make([]byte, 0, maxLog))
		nb.WriteString("[... older log dropped ...]\n")
		nb.Write(keep)
		b.buf = *nb
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail is the last n bytes of the log, for error messages.
func (b *lockedBuffer) tail(n int) string {
	s := b.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs `taskset -c cpus signsvr serve --data-dir dataDir --listen
// 127.0.0.1:PORT` (the development default: plaintext) and waits until its health
// service says SERVING. The command taskset runs is exec'ed in place, so the process
// id is the server's.
func startServer(ctx context.Context, taskset, bin, dataDir, cpus string, env []string) (*serverProc, error) {
	return launch(ctx, taskset, bin, []string{"--data-dir", dataDir}, cpus, env, nil)
}

// startConfiguredServer runs `signsvr serve --config config` the same way; the
// configuration serves mutual TLS with the client files of tlsFiles.
func startConfiguredServer(ctx context.Context, taskset, bin, config, cpus string, env []string, tlsFiles *hsmEnv) (*serverProc, error) {
	return launch(ctx, taskset, bin, []string{"--config", config}, cpus, env, tlsFiles)
}

func launch(ctx context.Context, taskset, bin string, serveArgs []string, cpus string, env []string, tlsFiles *hsmEnv) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := append(append([]string{"-c", cpus, bin, "serve"}, serveArgs...), "--listen", addr)
	cmd := exec.Command(taskset, args...)
	cmd.Env = append(os.Environ(), env...)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	creds := insecure.NewCredentials()
	s := &serverProc{cmd: cmd, addr: addr, log: log, done: make(chan error, 1)}
	if tlsFiles != nil {
		if creds, err = loadgen.ClientTLS(tlsFiles.tlsCA, tlsFiles.tlsCert, tlsFiles.tlsKey); err != nil {
			return nil, err
		}
		s.clientArgs = tlsFiles.clientArgs()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	go func() { s.done <- cmd.Wait() }()
	// The first start makes the development PKI (RSA key generation): allow time.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.waitServing(wctx, creds); err != nil {
		s.stop()
		return nil, fmt.Errorf("server at %s did not become SERVING: %w\nserver log:\n%s", addr, err, log.tail(3000))
	}
	return s, nil
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

func (s *serverProc) waitServing(ctx context.Context, creds credentials.TransportCredentials) error {
	cc, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer cc.Close()
	h := healthpb.NewHealthClient(cc)
	var last error
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("the server exited: %v", err)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := h.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			// The keys must be there too.
			kctx, kcancel := context.WithTimeout(ctx, 5*time.Second)
			defer kcancel()
			keys, err := signsvrv1.NewKeyServiceClient(cc).ListKeys(kctx, &signsvrv1.ListKeysRequest{})
			if err != nil {
				return fmt.Errorf("ListKeys: %w", err)
			}
			if len(keys.GetKeys()) == 0 {
				return errors.New("ListKeys: the server holds no keys")
			}
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("health status %v", r.GetStatus())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// alive reports whether the server is still running.
func (s *serverProc) alive() error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("the server exited (%v); log:\n%s", err, s.log.tail(3000))
	default:
		return nil
	}
}

// stop sends SIGTERM (graceful stop), then SIGKILL after 15 s.
func (s *serverProc) stop() error {
	if s.alive() != nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return nil
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return errors.New("the server did not stop within 15 s of SIGTERM and was killed")
	}
}

// saveLog writes the server's log to dir/name.
func (s *serverProc) saveLog(dir, name string) {
	os.WriteFile(filepath.Join(dir, name), []byte(s.log.String()), 0o644)
}
