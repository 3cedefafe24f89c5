//go:build !cgo

package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPKCS11NeedsCgo: a binary built with CGO_ENABLED=0 has no PKCS#11; given a
// pkcs11 section it refuses to start and says why, at the section's line. (Run with
// CGO_ENABLED=0 go test ./cmd/signsvr; the race-detector run needs cgo.)
func TestPKCS11NeedsCgo(t *testing.T) {
	dir := t.TempDir()
	tlsFiles(t, dir, "tls")
	os.WriteFile(filepath.Join(dir, "pin"), []byte("1234\n"), 0o600)
	cfg := `listen: 127.0.0.1:0
tls: {cert_file: tls-server.pem, key_file: tls-server.key, client_ca_files: [tls-ca.pem]}
trust: {anchors: [tls-ca.pem]}
keystore:
  pkcs11:
    tokens:
      - module: libsofthsm2.so
        label: t
        pin_file: pin
    keys:
      - {name: k, uri: "pkcs11:token=t;object=k", usages: [sign]}
`
	path := filepath.Join(dir, "signsvr.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var stderr lockedBuffer
	code := runServe(ctx, []string{"--config", path}, &stderr, func(net.Addr) { stop() })
	if code != exitFailure || !strings.Contains(stderr.String(), path+":5: keystore.pkcs11") ||
		!strings.Contains(stderr.String(), "PKCS#11 support needs a cgo build") {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
}
