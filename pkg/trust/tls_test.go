package trust

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/testca"
)

// TestVerifyClientConnection runs real TLS 1.3 handshakes with client certificates.
func TestVerifyClientConnection(t *testing.T) {
	p := testca.New(t, testca.Options{Algo: testca.ECDSA})
	v := newValidator(t, Config{Anchors: p.Anchors(), Revocation: RevocationConfig{HardFail: true, CRLs: [][]byte{p.CRL}}})
	server := p.Issue("server", testca.Profile{KeyUsage: "critical,digitalSignature", ExtKeyUsage: "serverAuth"})
	other := testca.New(t, testca.Options{Algo: testca.ECDSA, Name: "Other"})
	pair := func(c *testca.Cert) tls.Certificate {
		crt, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return crt
	}
	inter := func(c *testca.Cert) *smx509.Certificate {
		if c == other.Good {
			return other.Intermediate.Cert
		}
		return p.Intermediate.Cert
	}
	handshake := func(client *testca.Cert) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		srvErr := make(chan error, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				srvErr <- err
				return
			}
			defer conn.Close()
			s := tls.Server(conn, &tls.Config{
				Certificates: []tls.Certificate{pair(server)}, MinVersion: tls.VersionTLS12,
				ClientAuth: tls.RequireAnyClientCert, VerifyConnection: v.VerifyClientConnection(2 * time.Second),
			})
			srvErr <- s.Handshake()
		}()
		// The client does not check the server here: this test is about the server's check.
		cfg := &tls.Config{InsecureSkipVerify: true}
		if client != nil {
			c := pair(client)
			c.Certificate = append(c.Certificate, inter(client).Raw) // the client sends its intermediate
			cfg.Certificates = []tls.Certificate{c}
		}
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the client's handshake
			conn.Close()
		}
		return <-srvErr
	}
	if err := handshake(p.Good); err != nil {
		t.Fatalf("good client refused: %v", err)
	}
	var ve *VerdictError
	if err := handshake(p.Revoked); !errors.As(err, &ve) || ve.Verdict.Status != StatusRevoked {
		t.Fatalf("revoked client: %v", err)
	}
	if err := handshake(p.WrongUsage); !errors.As(err, &ve) || ve.Verdict.Status != StatusWrongUsage {
		t.Fatalf("wrong-usage client: %v", err)
	}
	if err := handshake(other.Good); !errors.As(err, &ve) || ve.Verdict.Status != StatusUntrusted {
		t.Fatalf("untrusted client: %v", err)
	}
	if err := handshake(nil); err == nil {
		t.Fatal("client without certificate accepted")
	}
}
