package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/keystore"
)

// pollBound bounds every wait for the server to reach a state; the polls look on a
// ticker and assume nothing about how soon it comes.
const pollBound = time.Minute

// poll calls cond on a ticker until it holds, failing the test after pollBound.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(pollBound)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s", what, pollBound)
		case <-tick.C:
		}
	}
}

// serverProcess is `signsvr serve` in a process of its own.
type serverProcess struct {
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{}
	waitErr error
	// addr and opsAddr are the API's and the operations listener's addresses.
	addr, opsAddr string
}

var (
	apiServingRE = regexp.MustCompile(`"msg":"serving","listen":"([^"]+)"`)
	opsRE        = regexp.MustCompile(`"msg":"operations listener","listen":"([^"]+)"`)
)

// startProcess runs the test binary as `signsvr serve args...` (JSON logs) and waits
// until both listeners are up.
func startProcess(t *testing.T, args ...string) *serverProcess {
	t.Helper()
	p := &serverProcess{stderr: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	poll(t, "the server listens", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("the server exited before listening: %v\n%s", p.waitErr, p.stderr.String())
		default:
		}
		log := p.stderr.String()
		a, o := apiServingRE.FindStringSubmatch(log), opsRE.FindStringSubmatch(log)
		if a == nil || o == nil {
			return false
		}
		p.addr, p.opsAddr = a[1], o[1]
		return true
	})
	return p
}

// httpGet answers the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), pollBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads the server's metrics.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, opsAddr string) scrape {
	t.Helper()
	code, body := httpGet(t, "http://"+opsAddr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return mfs
}

// value is the value of the series name{labels} (a counter's, gauge's or, for
// histograms, the count of observations), and whether it exists.
func (s scrape) value(name string, labels map[string]string) (float64, bool) {
	mf := s[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// want fails the test unless name{labels} exists and satisfies ok.
func (s scrape) want(t *testing.T, name string, labels map[string]string, c check) {
	t.Helper()
	v, found := s.value(name, labels)
	if !found {
		var have []string
		if mf := s[name]; mf != nil {
			for _, m := range mf.GetMetric() {
				have = append(have, m.String())
			}
		}
		t.Errorf("no series %s%v (have %v)", name, labels, have)
		return
	}
	if !c.ok(v) {
		t.Errorf("%s%v = %v, want %s", name, labels, v, c.what)
	}
}

// check is what a series' value must be.
type check struct {
	what string
	ok   func(float64) bool
}

func is(want float64) check {
	return check{fmt.Sprint(want), func(v float64) bool { return v == want }}
}

func positive() check { return check{"> 0", func(v float64) bool { return v > 0 }} }

func nonNegative() check { return check{">= 0", func(v float64) bool { return v >= 0 }} }

// opsConfig is a production configuration over the shared development PKI's keys,
// with an audit log, an operations listener on a free port and a drain long enough
// that only the test ends it.
func opsConfig(t *testing.T, dir string) string {
	t.Helper()
	tlsFiles(t, dir, "ops")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
shutdown_timeout: 10m
log:
  level: info
  format: json
ops:
  listen: 127.0.0.1:0
tls:
  cert_file: ops-server.pem
  key_file: ops-server.key
  client_ca_files: [ops-ca.pem]
trust:
  anchors: [%s]
keystore:
  soft:
    keys:
      - name: customs-ecdsa-sign
        key_file: %s
        cert_file: %s
        usages: [sign]
      - name: audit-key
        key_file: %s
        cert_file: %s
        usages: [sign]
audit:
  dir: audit
  replica_id: ops-test
  key: audit-key
authorization:
  rules:
    - subjects: ["CN=ops client,O=signsvr development"]
      issuer: "CN=ops tls ca,O=signsvr development"
      keys: [customs-ecdsa-sign]
      operations: [sign, verify]
`, devFile("roots.pem"), devFile("keys", "ecdsa-sign.key.pem"), devFile("keys", "ecdsa-sign.chain.pem"),
		devFile("keys", "audit.key.pem"), devFile("keys", "audit.chain.pem"))
	p := filepath.Join(dir, "signsvr.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func dialMTLS(t *testing.T, dir, prefix, addr string) *grpc.ClientConn {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, prefix+"-client.pem"), filepath.Join(dir, prefix+"-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, prefix+"-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func dialPlain(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func healthOf(t *testing.T, hc healthpb.HealthClient, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), pollBound)
	defer cancel()
	r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health check %q: %v", service, err)
	}
	return r.GetStatus()
}

// TestOpsListener runs a production server as a process: after real Sign and Verify
// calls over mutual TLS, /metrics on the plaintext operations port shows the gRPC
// and signsvr series with their labels and values; gRPC health there answers SERVING
// without TLS, as a Kubernetes probe asks. On SIGTERM with a call in flight (a health
// Watch stream on the API port, which the drain waits for), /readyz turns 503 and the
// operations port's health NOT_SERVING while /healthz stays 200; the server exits 0
// once the call ends.
func TestOpsListener(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, "--config", opsConfig(t, dir))
	t.Logf("server pid %d, api %s, ops %s", p.cmd.Process.Pid, p.addr, p.opsAddr)
	api := dialMTLS(t, dir, "ops", p.addr)
	sc := signsvrv1.NewSignServiceClient(api)
	ctx, cancel := context.WithTimeout(t.Context(), pollBound)
	defer cancel()

	signed, err := sc.Sign(ctx, &signsvrv1.SignRequest{Key: "customs-ecdsa-sign", Data: []byte("metrics")})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sc.Verify(ctx, &signsvrv1.VerifyRequest{Cms: signed.GetCms()})
	if err != nil || !v.GetVerified() {
		t.Fatalf("verify: %v %v", v, err)
	}
	_, err = sc.Sign(ctx, &signsvrv1.SignRequest{Key: "no-such-key", Data: []byte("metrics")})
	refused := status.Code(err)
	if refused == codes.OK {
		t.Fatal("a sign with a key the server does not hold succeeded")
	}
	if _, err := sc.Verify(ctx, &signsvrv1.VerifyRequest{Cms: []byte("not cms")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("verify of junk: %v", err)
	}

	m := scrapeMetrics(t, p.opsAddr)
	grpcLabels := func(method, code string) map[string]string {
		l := map[string]string{"grpc_type": "unary", "grpc_service": "signsvr.v1.SignService", "grpc_method": method}
		if code != "" {
			l["grpc_code"] = code
		}
		return l
	}
	m.want(t, "grpc_server_handled_total", grpcLabels("Sign", "OK"), is(1))
	m.want(t, "grpc_server_handled_total", grpcLabels("Sign", refused.String()), is(1))
	m.want(t, "grpc_server_handled_total", grpcLabels("Verify", "OK"), is(1))
	m.want(t, "grpc_server_handled_total", grpcLabels("Verify", "InvalidArgument"), is(1))
	m.want(t, "grpc_server_handling_seconds", grpcLabels("Sign", ""), is(2))
	m.want(t, "grpc_server_handling_seconds", grpcLabels("Verify", ""), is(2))
	op := func(operation, key, alg, result string) map[string]string {
		return map[string]string{"operation": operation, "key": key, "algorithm": alg, "result": result}
	}
	m.want(t, "signsvr_operations_total", op("Sign", "customs-ecdsa-sign", "ECDSA-P256", "OK"), is(1))
	m.want(t, "signsvr_operations_total", op("Sign", "unknown", "", refused.String()), is(1))
	m.want(t, "signsvr_operations_total", op("Verify", "", "", "OK"), is(1))
	m.want(t, "signsvr_operations_total", op("Verify", "", "", "InvalidArgument"), is(1))
	signCert, err := os.ReadFile(devFile("keys", "ecdsa-sign.chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	notAfter := leafNotAfter(t, signCert)
	m.want(t, "signsvr_key_certificate_not_after_seconds", map[string]string{"key": "customs-ecdsa-sign", "algorithm": "ECDSA-P256"}, is(float64(notAfter.Unix())))
	m.want(t, "signsvr_audit_records_total", nil, is(4))
	m.want(t, "signsvr_audit_append_seconds", nil, is(4))
	m.want(t, "signsvr_audit_append_failures_total", nil, is(0))
	m.want(t, "signsvr_audit_written_bytes_total", nil, positive())
	m.want(t, "signsvr_audit_up", nil, is(1))
	m.want(t, "signsvr_trust_verdict_cache_lookups_total", map[string]string{"validator": "signers", "result": "miss"}, positive())
	m.want(t, "signsvr_trust_verdict_cache_lookups_total", map[string]string{"validator": "clients", "result": "miss"}, positive())
	m.want(t, "signsvr_config_reloads_total", map[string]string{"result": "success"}, is(0))
	m.want(t, "signsvr_config_reloads_total", map[string]string{"result": "failure"}, is(0))
	m.want(t, "signsvr_ready", nil, is(1))
	m.want(t, "go_goroutines", nil, positive())
	m.want(t, "process_cpu_seconds_total", nil, nonNegative())
	if _, ok := m["signsvr_hsm_token_up"]; ok {
		t.Error("a server without HSM tokens exports HSM series")
	}

	// Health on the operations port: plaintext, no client certificate.
	opsHealth := healthpb.NewHealthClient(dialPlain(t, p.opsAddr))
	for _, svc := range []string{"", "signsvr.v1.SignService"} {
		if st := healthOf(t, opsHealth, svc); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("operations port health %q: %v", svc, st)
		}
	}
	base := "http://" + p.opsAddr
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz before the drain: %d %s", code, body)
	}
	if code, _ := httpGet(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof is served without ops.pprof: %d", code)
	}

	// A call in flight: a Watch on the API port, which the graceful stop waits for.
	wctx, endWatch := context.WithCancel(t.Context())
	defer endWatch()
	watch, err := healthpb.NewHealthClient(api).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("the in-flight watch after SIGTERM: %v %v", r, err)
	}
	var body string
	poll(t, "/readyz turns 503 during the drain", func() bool {
		var code int
		code, body = httpGet(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "draining") {
		t.Errorf("/readyz during the drain says %q", body)
	}
	if st := healthOf(t, opsHealth, ""); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("operations port health during the drain: %v", st)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the drain: %d (the process still serves)", code)
	}
	scrapeMetrics(t, p.opsAddr).want(t, "signsvr_ready", nil, is(0))
	select {
	case <-p.exited:
		t.Fatalf("the server exited with a call in flight: %v", p.waitErr)
	default:
	}

	endWatch()
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("the server exited with %v:\n%s", p.waitErr, p.stderr.String())
		}
	case <-time.After(pollBound):
		t.Fatalf("the server did not stop once its last call ended:\n%s", p.stderr.String())
	}
}

// leafNotAfter is the notAfter of the first certificate of a PEM chain.
func leafNotAfter(t *testing.T, chainPEM []byte) time.Time {
	t.Helper()
	certs, err := keystore.ParseCertificatesPEM(chainPEM)
	if err != nil || len(certs) == 0 {
		t.Fatalf("chain: %v", err)
	}
	return certs[0].NotAfter
}
