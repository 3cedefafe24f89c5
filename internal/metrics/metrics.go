// Package metrics is the server's Prometheus metrics: the conventional gRPC server
// series (grpc_server_handled_total, grpc_server_handling_seconds, from
// go-grpc-middleware's prometheus provider) and signsvr's own, named signsvr_*.
//
// The packages under pkg/ know nothing of Prometheus: they expose counters (the HSM
// pool's Stats) and small observer interfaces (trust.Observer, audit.Observer), and
// this package adapts them to collectors. Values that a part already keeps (pool
// sessions, certificate expiry, readiness) are read when Prometheus scrapes, so the
// call path pays nothing for them; events (fetches, audit writes, calls) are counted
// as they happen.
//
// Every label has a bounded set of values, taken from the configuration or the API,
// never from a request: a key name a client sent that the server does not hold is
// counted as key="unknown". The metrics live in a registry of their own (with the Go
// and process collectors), never in Prometheus' global default one.
package metrics

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
	"signsvr.dev/signsvr/pkg/trust"
)

// Label values for keys that are not one of the server's.
const (
	// UnknownKey stands for a key name the server does not hold.
	UnknownKey = "unknown"
)

// Buckets.
var (
	// callBuckets: a soft-key signature takes about a millisecond, an HSM's a few,
	// a large document or a slow revocation source seconds.
	callBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// fetchBuckets: a CRL or OCSP fetch over a network, bounded by its 5s default timeout.
	fetchBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// auditBuckets: one write system call, or an fsync with fsync: record.
	auditBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
)

// Metrics holds the server's collectors in a registry of its own.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	operations *prometheus.CounterVec

	keysMu sync.RWMutex
	keys   map[string]string // key name -> algorithm label

	fetchSeconds  *prometheus.HistogramVec
	fetchFailures *prometheus.CounterVec
	verdictCache  *prometheus.CounterVec

	auditSeconds  prometheus.Histogram
	auditFailures prometheus.Counter
	auditRecords  prometheus.Counter
	auditBytes    prometheus.Counter

	reloads *prometheus.CounterVec
}

// New makes the metrics and registers them, with the Go runtime and process
// collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(callBuckets))),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signsvr_operations_total",
			Help: "API calls by operation (the RPC's method), key named (\"\" for none, \"unknown\" for a key the server does not hold), the key's algorithm and the result (the gRPC status code).",
		}, []string{"operation", "key", "algorithm", "result"}),
		keys: map[string]string{},
		fetchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signsvr_revocation_fetch_seconds",
			Help:    "Time of CRL and OCSP fetches, from request to checked answer, by validator (signers, clients, tsa) and source (crl, ocsp).",
			Buckets: fetchBuckets,
		}, []string{"validator", "source"}),
		fetchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signsvr_revocation_fetch_failures_total",
			Help: "CRL and OCSP fetches that gave no usable answer (unreachable, HTTP error, bad signature, stale), by validator and source.",
		}, []string{"validator", "source"}),
		verdictCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signsvr_trust_verdict_cache_lookups_total",
			Help: "Certificate verdict cache lookups by validator and result (hit, miss).",
		}, []string{"validator", "result"}),
		auditSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signsvr_audit_append_seconds",
			Help:    "Time to append a call's audit records, the wait for a group commit included.",
			Buckets: auditBuckets,
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signsvr_audit_append_failures_total",
			Help: "Audit appends that could not be written (the call was refused unless the log fails open).",
		}),
		auditRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signsvr_audit_records_total",
			Help: "Audit records given to the log (written or failed).",
		}),
		auditBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signsvr_audit_written_bytes_total",
			Help: "Bytes written to audit log files (records, file headers, checkpoints).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signsvr_config_reloads_total",
			Help: "Configuration reloads by result (success, failure).",
		}, []string{"result"}),
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	m.auditFailures.Add(0)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc, m.operations, m.fetchSeconds, m.fetchFailures, m.verdictCache, m.reloads,
	)
	return m
}

// Registry is the registry the metrics are in (tests, and collectors of parts this
// package does not know).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// CallInterceptor goes in server.Options.CallInterceptors: it counts each API call
// in grpc_server_* and signsvr_operations_total with the status its client got.
func (m *Metrics) CallInterceptor() grpc.UnaryServerInterceptor {
	inner := m.grpc.UnaryServerInterceptor()
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := inner(ctx, req, info, h)
		m.operation(info.FullMethod, server.CallKey(ctx), status.Code(err).String())
		return resp, err
	}
}

// ServerOptions go in server.Options.ServerOptions: grpc_server_* for the calls
// that are not the API's unary calls (health, reflection, streams), which
// CallInterceptor does not see.
func (m *Metrics) ServerOptions() []grpc.ServerOption {
	unary := m.grpc.UnaryServerInterceptor()
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if server.IsAPICall(ctx) {
				return h(ctx, req) // counted by CallInterceptor
			}
			return unary(ctx, req, info, h)
		}),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor()),
	}
}

func (m *Metrics) operation(fullMethod, key, result string) {
	op := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	alg := ""
	if key != "" {
		m.keysMu.RLock()
		a, ok := m.keys[key]
		m.keysMu.RUnlock()
		if ok {
			alg = a
		} else {
			key = UnknownKey
		}
	}
	m.operations.WithLabelValues(op, key, alg, result).Inc()
}

// WatchKeys makes the keys of store known (their names become label values) and
// exports signsvr_key_certificate_not_after_seconds for each. It reads the keys once:
// a later reload calls it again with the new store.
func (m *Metrics) WatchKeys(ctx context.Context, store keystore.Store) error {
	keys, err := store.Keys(ctx)
	if err != nil {
		return err
	}
	known := make(map[string]string, len(keys))
	for _, k := range keys {
		known[k.Name()] = algorithm.KeyName(k.Public())
	}
	m.keysMu.Lock()
	m.keys = known
	m.keysMu.Unlock()
	m.reg.Unregister(keyCollector{})
	return m.reg.Register(keyCollector{keys: keys})
}

var notAfterDesc = prometheus.NewDesc("signsvr_key_certificate_not_after_seconds",
	"The notAfter of each key's certificate (its leaf), in Unix seconds.", []string{"key", "algorithm"}, nil)

type keyCollector struct{ keys []keystore.Key }

func (keyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- notAfterDesc }

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range c.keys {
		na := keystore.NotAfter(k)
		if na.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(notAfterDesc, prometheus.GaugeValue, float64(na.Unix()), k.Name(), algorithm.KeyName(k.Public()))
	}
}

// PoolStats is what the HSM metrics read: pkg/keystore/pkcs11's Store has it.
type PoolStats interface {
	Stats() []pkcs11.Stats
}

// WatchHSM exports the session pools and circuit breakers of the tokens of p, read
// at each scrape.
func (m *Metrics) WatchHSM(p PoolStats) error { return m.reg.Register(hsmCollector{p}) }

var (
	hsmLabels    = []string{"token"}
	hsmUp        = prometheus.NewDesc("signsvr_hsm_token_up", "1 while the HSM token serves, 0 while it is down (its breaker open or its PIN refused).", hsmLabels, nil)
	hsmBreaker   = prometheus.NewDesc("signsvr_hsm_breaker_state", "The token's circuit breaker: 0 closed, 1 open, 2 half-open (probing).", hsmLabels, nil)
	hsmPoolSize  = prometheus.NewDesc("signsvr_hsm_pool_sessions", "Sessions the token's pool may hold (pool_size).", hsmLabels, nil)
	hsmInUse     = prometheus.NewDesc("signsvr_hsm_sessions_in_use", "Sessions held by operations now.", hsmLabels, nil)
	hsmIdle      = prometheus.NewDesc("signsvr_hsm_sessions_idle", "Open sessions waiting in the pool.", hsmLabels, nil)
	hsmWaits     = prometheus.NewDesc("signsvr_hsm_session_waits_total", "Operations that found every session busy and waited.", hsmLabels, nil)
	hsmTimeouts  = prometheus.NewDesc("signsvr_hsm_session_wait_timeouts_total", "Operations that gave up waiting for a session (RESOURCE_EXHAUSTED).", hsmLabels, nil)
	hsmTrips     = prometheus.NewDesc("signsvr_hsm_breaker_trips_total", "Failures that took the token down or kept it down.", hsmLabels, nil)
	hsmOpened    = prometheus.NewDesc("signsvr_hsm_sessions_opened_total", "Sessions opened.", hsmLabels, nil)
	hsmDiscarded = prometheus.NewDesc("signsvr_hsm_sessions_discarded_total", "Sessions closed because they or the token failed.", hsmLabels, nil)
	hsmLogins    = prometheus.NewDesc("signsvr_hsm_logins_total", "Logins to the token (one at start, one after each loss of the login state).", hsmLabels, nil)
	hsmRetries   = prometheus.NewDesc("signsvr_hsm_retries_total", "Operations retried on a fresh session.", hsmLabels, nil)
	hsmReinits   = prometheus.NewDesc("signsvr_hsm_library_reinits_total", "Re-initialisations of the PKCS#11 library to recover the token.", hsmLabels, nil)
	hsmDescs     = []*prometheus.Desc{hsmUp, hsmBreaker, hsmPoolSize, hsmInUse, hsmIdle, hsmWaits, hsmTimeouts, hsmTrips, hsmOpened, hsmDiscarded, hsmLogins, hsmRetries, hsmReinits}
)

type hsmCollector struct{ p PoolStats }

func (hsmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range hsmDescs {
		ch <- d
	}
}

func (c hsmCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.p.Stats() {
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.Token)
		}
		n := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), s.Token)
		}
		up := 1.0
		if s.Down {
			up = 0
		}
		g(hsmUp, up)
		g(hsmBreaker, float64(s.Breaker))
		g(hsmPoolSize, float64(s.PoolSize))
		g(hsmInUse, float64(s.InUse))
		g(hsmIdle, float64(s.Idle))
		n(hsmWaits, s.Waits)
		n(hsmTimeouts, s.WaitTimeouts)
		n(hsmTrips, s.BreakerTrips)
		n(hsmOpened, s.Opened)
		n(hsmDiscarded, s.Discarded)
		n(hsmLogins, s.Logins)
		n(hsmRetries, s.Retries)
		n(hsmReinits, s.Reinits)
	}
}

// TrustObserver is the trust.Observer of the validator named validator ("signers",
// "clients", "tsa"); nil for nil Metrics.
func (m *Metrics) TrustObserver(validator string) trust.Observer {
	if m == nil {
		return nil
	}
	return trustObserver{m, validator}
}

type trustObserver struct {
	m    *Metrics
	name string
}

func (o trustObserver) Fetched(source string, took time.Duration, err error) {
	o.m.fetchSeconds.WithLabelValues(o.name, source).Observe(took.Seconds())
	if err != nil {
		o.m.fetchFailures.WithLabelValues(o.name, source).Inc()
	}
}

func (o trustObserver) CacheLookup(hit bool) {
	r := "miss"
	if hit {
		r = "hit"
	}
	o.m.verdictCache.WithLabelValues(o.name, r).Inc()
}

// AuditObserver is the audit.Observer of the server's audit log; nil for nil
// Metrics. It registers the audit series, so a server without an audit log has
// none.
func (m *Metrics) AuditObserver() audit.Observer {
	if m == nil {
		return nil
	}
	m.reg.MustRegister(m.auditSeconds, m.auditFailures, m.auditRecords, m.auditBytes)
	return auditObserver{m}
}

type auditObserver struct{ m *Metrics }

func (o auditObserver) Appended(records int, took time.Duration, err error) {
	o.m.auditSeconds.Observe(took.Seconds())
	o.m.auditRecords.Add(float64(records))
	if err != nil {
		o.m.auditFailures.Inc()
	}
}

func (o auditObserver) Wrote(n int) { o.m.auditBytes.Add(float64(n)) }

// WatchAudit exports signsvr_audit_up from the log's health, read at each scrape.
func (m *Metrics) WatchAudit(health func() error) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "signsvr_audit_up",
		Help: "1 while the audit log writes and checkpoints, 0 while its last write or checkpoint failed.",
	}, func() float64 {
		if health() != nil {
			return 0
		}
		return 1
	}))
}

// WatchReadiness exports signsvr_ready from ready, read at each scrape.
func (m *Metrics) WatchReadiness(ready func() bool) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "signsvr_ready",
		Help: "1 while the server is ready for calls (as /readyz), 0 while a part it needs is down or it drains.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	}))
}

// ConfigReloaded counts a configuration reload in signsvr_config_reloads_total: ok
// for one that took effect, not ok for one refused (the old configuration serves on).
func (m *Metrics) ConfigReloaded(ok bool) {
	r := "failure"
	if ok {
		r = "success"
	}
	m.reloads.WithLabelValues(r).Inc()
}
