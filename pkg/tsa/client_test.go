package tsa

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/devpki"
)

// OpenSSLTSAServer serves RFC 3161 over HTTP on loopback by running
// `openssl ts -reply -config tsa.cnf -queryfile ...` in dir for every request: OpenSSL
// acting as a real external TSA.
func openSSLTSAServer(t testing.TB, dir string) *httptest.Server {
	t.Helper()
	bin := opensslPath(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != ContentTypeQuery {
			http.Error(w, "want POST application/timestamp-query", http.StatusBadRequest)
			return
		}
		q, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, err := os.CreateTemp(dir, "q-*.tsq")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		f.Write(q)
		f.Close()
		defer os.Remove(f.Name())
		cmd := exec.CommandContext(r.Context(), bin, "ts", "-reply", "-config", "tsa.cnf", "-queryfile", filepath.Base(f.Name()))
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			http.Error(w, "openssl ts -reply failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentTypeReply)
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientAgainstOpenSSL(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	dir := t.TempDir()
	writeOpenSSLTSA(t, dir, p, "sha256")
	srv := openSSLTSAServer(t, dir)
	c := &Client{URL: srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	data := []byte("a signature value")
	der, tok, err := c.Stamp(ctx, oidSHA256, data)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Info.Nonce == nil || !tok.Certificate.Equal(p.cert) {
		t.Fatalf("token %+v", tok.Info)
	}
	if _, err := VerifyToken(der, &VerifyOptions{Data: data}); err != nil {
		t.Fatal(err)
	}
	// openssl refuses SM3 (not in its digests list): a rejection, not unavailability.
	_, _, err = c.Stamp(ctx, oidSM3, data)
	var rej *RejectError
	if !errors.As(err, &rej) || rej.FailInfo&FailBadAlg == 0 {
		t.Fatalf("SM3 at openssl: err = %v, want a badAlg rejection", err)
	}
	// A policy the TSA does not have.
	c2 := &Client{URL: srv.URL, Policy: []int{1, 2, 3, 9}}
	if _, _, err := c2.Stamp(ctx, oidSHA256, data); !errors.As(err, &rej) {
		t.Fatalf("unknown policy: err = %v, want a rejection", err)
	}
}

func TestClientFailures(t *testing.T) {
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/type":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>"))
		case "/garbage":
			w.Header().Set("Content-Type", ContentTypeReply)
			w.Write([]byte{0x30, 0x01})
		case "/huge":
			w.Header().Set("Content-Type", ContentTypeReply)
			w.Write(make([]byte, 4096))
		case "/slow":
			io.Copy(io.Discard, r.Body) // so the server notices the client going away
			select {
			case <-slow:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close) // after close(slow): cleanups run last-in first-out
	for _, path := range []string{"/500", "/type", "/garbage", "/huge", "/slow"} {
		c := &Client{URL: srv.URL + path, MaxResponseBytes: 1024}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, _, err := c.Stamp(ctx, oidSHA256, []byte("x"))
		cancel()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", path, err)
		}
	}
}
