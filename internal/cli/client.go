package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// clientMaxMessage matches the server's default limit, with room for a response that
// is a little larger than its request.
const clientMaxMessage = 64<<20 + 1<<20

// clientFlags are the flags every client command shares.
type clientFlags struct {
	addr       string
	tlsCA      string
	tlsCert    string
	tlsKey     string
	serverName string
	timeout    time.Duration
	in, out    string
}

func (c *clientFlags) register(fs *flag.FlagSet, io bool) {
	def := os.Getenv("SIGNSVR_ADDR")
	if def == "" {
		def = "127.0.0.1:50051"
	}
	fs.StringVar(&c.addr, "addr", def, "server address (default $SIGNSVR_ADDR or 127.0.0.1:50051)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM CA file to verify a TLS server with (enables TLS)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM client key for mutual TLS")
	fs.StringVar(&c.serverName, "tls-server-name", "", "server name to verify, if not the host of --addr")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline for the call")
	if io {
		fs.StringVar(&c.in, "in", "", "input file (default stdin)")
		fs.StringVar(&c.out, "out", "", "output file (default stdout)")
	}
}

// dial connects to the server. Without --tls-ca the connection is plaintext, which
// only the development server accepts.
func (c *clientFlags) dial() (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if c.tlsCA != "" || c.tlsCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
		if c.tlsCA != "" {
			b, err := os.ReadFile(c.tlsCA)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", c.tlsCA)
			}
			tc.RootCAs = pool
		}
		if c.tlsCert != "" || c.tlsKey != "" {
			cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
			if err != nil {
				return nil, fmt.Errorf("--tls-cert / --tls-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	}
	return grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(clientMaxMessage), grpc.MaxCallSendMsgSize(clientMaxMessage)))
}

// call runs f with a connection and the --timeout deadline.
func (c *clientFlags) call(ctx context.Context, f func(ctx context.Context, cc *grpc.ClientConn) error) error {
	cc, err := c.dial()
	if err != nil {
		return &localError{err}
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return f(ctx, cc)
}

func (c *clientFlags) readInput(stdin io.Reader) ([]byte, error) {
	return readFileOr(c.in, stdin)
}

func readFileOr(path string, stdin io.Reader) ([]byte, error) {
	if path == "" || path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}

func (c *clientFlags) writeOutput(stdout io.Writer, b []byte) error {
	if c.out == "" || c.out == "-" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(c.out, b, 0o600)
}

// pemOrDER returns the DER inside the first PEM block of b, or b itself when b is not
// PEM. Any block type is accepted ("CMS", "PKCS7", "CERTIFICATE").
func pemOrDER(b []byte) []byte {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return b
	}
	if block, _ := pem.Decode(trimmed); block != nil {
		return block.Bytes
	}
	return b
}

// certsFromFile reads every certificate of a PEM file, or one DER certificate.
func certsFromFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return [][]byte{b}, nil
	}
	var out [][]byte
	rest := trimmed
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			out = append(out, block.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no CERTIFICATE PEM block", path)
	}
	return out, nil
}

func cmsPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: der})
}

// describeError formats an error from a call: the status code, the ErrorInfo reason
// and the request id the server logged it under.
func describeError(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(st.Code().String())
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			b.WriteString(" (" + info.GetReason() + ")")
			b.WriteString(": " + st.Message())
			if id := info.GetMetadata()["request_id"]; id != "" {
				b.WriteString(" [request " + id + "]")
			}
			return b.String()
		}
	}
	b.WriteString(": " + st.Message())
	return b.String()
}

// fail reports a failed call and returns its exit code: ExitUsage when the server
// refused the input as invalid, ExitServer for every other answer and for no answer.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "signsvr %s: %s\n", cmd, describeError(err))
	return callExitCode(err)
}

func callExitCode(err error) int {
	var le *localError
	if errors.As(err, &le) {
		return ExitUsage
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
		return ExitUsage
	}
	return ExitServer
}

// localError is a call that failed before reaching for the server: the client's
// own settings (a --tls-ca file that cannot be read) are wrong.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// inputError reports a local problem with the command's input or output (a file
// that cannot be read, a value that does not parse) and returns ExitUsage.
func inputError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "signsvr %s: %v\n", cmd, err)
	return ExitUsage
}

// parseFlags parses and refuses stray arguments.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "signsvr %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	return true
}
