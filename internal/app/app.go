package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/metrics"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
)

// Options are what `signsvr serve` was given.
type Options struct {
	// ConfigPath is the production configuration file (YAML); without it the
	// development default runs.
	ConfigPath string
	// DataDir is where the development default keeps its development PKI.
	DataDir string
	// Listen, when set, is the address to listen on instead of the default
	// (127.0.0.1:50051) or the configuration's listen.
	Listen string
	// OpsListen, when set, is the address of the operations listener instead of
	// the configuration's ops.listen (or the development default, 127.0.0.1:9090 when
	// free); "off" turns it off.
	OpsListen string
	// LogLevel, when set, is debug, info, warn or error and overrides the configuration.
	LogLevel string
	// GCPercent and MemoryLimit set the garbage collector unless GOGC and GOMEMLIMIT
	// do (see DefaultGCPercent).
	GCPercent   int
	MemoryLimit string
	// CPUProfile and MemProfile, when set, are files for pprof profiles of the
	// whole run (performance work).
	CPUProfile, MemProfile string
	// Log receives the server's log (the process's stderr).
	Log io.Writer
}

// servePlan is everything a run needs, from the development default or a config file.
type servePlan struct {
	opts   server.Options
	listen string
	drain  time.Duration
	close  func()
	ops    opsPlan
	// metrics is nil without an operations listener to serve them.
	metrics *metrics.Metrics
}

// Server is a server built from Options, ready to Run. Close releases what it
// opened (key stores, trust validators, the audit log), after Run has returned.
type Server struct {
	plan                   *servePlan
	cpuProfile, memProfile string
}

// New builds the server o describes: the development default (creating its PKI on
// first start) or the production configuration, and applies the garbage collector
// settings. Its error is for the operator, to print as it is.
func New(o Options) (*Server, error) {
	var (
		plan *servePlan
		err  error
	)
	if o.ConfigPath != "" {
		plan, err = productionPlan(o.ConfigPath, o.LogLevel, o.OpsListen, o.Log)
	} else {
		if err := developmentListen("--listen", o.Listen); err != nil {
			return nil, err
		}
		if o.OpsListen != "off" {
			if err := developmentListen("--ops-listen", o.OpsListen); err != nil {
				return nil, err
			}
		}
		plan, err = developmentPlan(o.DataDir, o.LogLevel, o.OpsListen, o.Log)
	}
	if err != nil {
		return nil, err
	}
	if o.Listen != "" {
		plan.listen = o.Listen
	}
	if err := gcSettings(o.GCPercent, o.MemoryLimit, os.Getenv, plan.opts.Logger); err != nil {
		plan.close()
		return nil, err
	}
	return &Server{plan: plan, cpuProfile: o.CPUProfile, memProfile: o.MemProfile}, nil
}

// developmentListen refuses to serve the development default beyond this machine:
// it is plaintext, with no client authentication and throw-away keys. listen "" is
// the default address, which is loopback.
func developmentListen(flag, listen string) error {
	if listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s %s: the development server listens on loopback only (127.0.0.1, ::1 or localhost): "+
		"it serves plaintext, without client authentication, with throw-away keys; serve --config FILE for anything else", flag, listen)
}

// Close releases what New opened.
func (s *Server) Close() { s.plan.close() }

// Run serves until ctx ends, then stops gracefully. onListen, when set (tests),
// learns the bound address. A failure is written to the server's log before Run
// returns it.
func (s *Server) Run(ctx context.Context, onListen func(net.Addr)) error {
	log := s.plan.opts.Logger
	srv, err := server.New(s.plan.opts)
	if err != nil {
		log.Error("cannot build the server", slog.String("error", err.Error()))
		return err
	}
	lis, err := net.Listen("tcp", s.plan.listen)
	if err != nil {
		log.Error("cannot listen", slog.String("listen", s.plan.listen), slog.String("error", err.Error()))
		return err
	}
	opsSrv, err := s.startOps(srv, log) // ops.go
	if err != nil {
		lis.Close()
		log.Error("cannot listen", slog.String("ops_listen", s.plan.ops.listen), slog.String("error", err.Error()))
		return err
	}
	if opsSrv != nil {
		// After the API server has stopped: probes see NOT_SERVING while it drains.
		defer opsSrv.Stop()
	}
	stopProfiles, err := startProfiles(s.cpuProfile, s.memProfile)
	if err != nil {
		log.Error("cannot profile", slog.String("error", err.Error()))
		return err
	}
	defer stopProfiles(log)
	log.Info("serving", slog.String("listen", lis.Addr().String()), slog.Bool("tls", s.plan.opts.TLS != nil))
	if onListen != nil {
		onListen(lis.Addr())
	}
	if err := srv.Run(ctx, lis, s.plan.drain); err != nil {
		log.Error("serving failed", slog.String("error", err.Error()))
		return err
	}
	log.Info("stopped")
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %v", level, err)
	}
	ho := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return slog.New(slog.NewTextHandler(w, ho)), nil
}

// developmentPlan is the embedded default: a development PKI in dataDir (made on first
// start, reused after), its keys in the soft store, its roots as the only trust
// anchors, no revocation checks, plaintext on loopback.
func developmentPlan(dataDir, logLevel, opsListen string, stderr io.Writer) (_ *servePlan, err error) {
	if logLevel == "" {
		logLevel = "info"
	}
	log, err := newLogger(stderr, logLevel, "text")
	if err != nil {
		return nil, err
	}
	// One server per data directory, for as long as it runs: a second one would write
	// a second audit chain into the same files.
	lock, err := devpki.Lock(dataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	created := false
	if _, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	pki, err := devpki.Ensure(dataDir, time.Now)
	if err != nil {
		return nil, err
	}
	keys := make([]soft.KeyConfig, 0, len(pki.Keys))
	names := make([]string, 0, len(pki.Keys))
	for _, k := range pki.Keys {
		keys = append(keys, soft.KeyConfig{
			Name: k.Name, KeyFile: k.KeyPath, CertFile: k.CertPath,
			Usages: strings.Split(k.Usage.String(), ","),
		})
		names = append(names, k.Name)
	}
	store, err := soft.New(keys)
	if err != nil {
		return nil, err
	}
	op := developmentOps(opsListen)
	m := op.metrics()
	v, err := trust.New(trust.Config{Anchors: pki.Roots, Revocation: trust.RevocationConfig{Disabled: true},
		Observer: m.TrustObserver("signers")})
	if err != nil {
		return nil, err
	}
	what := "reusing the development PKI"
	if created {
		what = "created a new development PKI"
	}
	banner := strings.Repeat("!", 78)
	log.Warn(banner)
	log.Warn("DEVELOPMENT SETUP: NOT FOR PRODUCTION. No TLS, no client authentication, " +
		"throw-away keys in plain files. Start with --config FILE for production.")
	log.Warn("development PKI", slog.String("action", what), slog.String("data_dir", pki.Dir),
		slog.String("trust_anchors", pki.RootsPath), slog.String("keys", strings.Join(names, ",")))
	log.Warn("development authorization: every caller may use every key for every operation")
	log.Warn(banner)
	loginOpts, err := developmentLogin(pki.Dir)
	if err != nil {
		v.Close()
		store.Close()
		return nil, err
	}
	nr, err := developmentNonRepudiation(pki, log, m) // nonrepudiation.go
	if err != nil {
		v.Close()
		store.Close()
		return nil, err
	}
	loginOpts.Store = nr.own // the login token key lives beside the audit and TSA keys
	plan := &servePlan{
		opts: server.Options{
			Store: store, Backend: "soft", Validator: v, Logger: log, Development: true, Reflection: true,
			Authorizer: server.AllowAll, Login: loginOpts, Auditor: nr.auditor, Timestamps: nr.timestamps, ReservedKeys: nr.reserved,
			ClientDigests: developmentClientDigests,
		},
		listen:  config.DefaultListen,
		drain:   5 * time.Second,
		close:   func() { nr.close(); v.Close(); store.Close(); lock.Release() },
		ops:     op,
		metrics: m,
	}
	if err := instrument(plan, nil, nr.log); err != nil {
		plan.close()
		return nil, err
	}
	return plan, nil
}

// developmentClientDigests let the development signing keys sign digests computed
// by clients (`signsvr sign --digest-only`), each with its family's digests; a
// production key accepts none unless its configuration says so.
var developmentClientDigests = map[string][]algorithm.Digest{
	"rsa-sign":   {algorithm.SHA256, algorithm.SHA384, algorithm.SHA512},
	"ecdsa-sign": {algorithm.SHA256, algorithm.SHA384},
	"sm2-sign":   {algorithm.SM3},
}

// productionPlan reads the config file: TLS with client certificates, the configured
// keys and trust anchors.
func productionPlan(path, logLevel, opsListen string, stderr io.Writer) (*servePlan, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckSecretFiles(); err != nil {
		return nil, err
	}
	if logLevel == "" {
		logLevel = cfg.Log.Level
	}
	log, err := newLogger(stderr, logLevel, cfg.Log.Format)
	if err != nil {
		return nil, err
	}
	op := productionOps(cfg.Ops, opsListen)
	m := op.metrics()
	tc, err := cfg.Trust.Config()
	if err != nil {
		return nil, err
	}
	tc.Observer = m.TrustObserver("signers")
	v, err := trust.New(tc)
	if err != nil {
		return nil, err
	}
	// Client certificates have their own anchors (tls.client_ca_files) and are
	// validated by the trust package in the handshake and on every call.
	cft := cfg.ClientTrust()
	ctc, err := cft.Config()
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("tls client trust: %w", err)
	}
	ctc.Observer = m.TrustObserver("clients")
	cv, err := trust.New(ctc)
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("tls client trust: %w", err)
	}
	closeTrust := func() { v.Close(); cv.Close() }
	tlsCfg, err := serverTLS(cfg.TLS, cv, ctc.Revocation.FetchTimeout, log)
	if err != nil {
		closeTrust()
		return nil, err
	}
	loginOpts, err := productionLogin(cfg.Login, os.Getenv)
	if err != nil {
		closeTrust()
		return nil, err
	}
	rules := make([]server.PolicyRule, 0, len(cfg.Authorization.Rules))
	for _, r := range cfg.Authorization.Rules {
		pr := server.PolicyRule{Subjects: r.Subjects, Issuer: r.Issuer, Fingerprints: r.Fingerprints, Keys: r.Keys}
		for _, op := range r.Operations {
			pr.Operations = append(pr.Operations, server.Operation(op))
		}
		rules = append(rules, pr)
	}
	policy, err := server.NewPolicy(rules)
	if err != nil {
		closeTrust()
		return nil, err
	}
	if len(rules) == 0 {
		log.Warn("authorization has no rules: every call will be refused")
	}
	store, backend, hsm, err := openKeystore(context.Background(), cfg, log, time.Now())
	if err != nil {
		closeTrust()
		return nil, err
	}
	secrets, err := openSecretKeys(context.Background(), cfg, store)
	if err != nil {
		closeTrust()
		store.Close()
		return nil, err
	}
	nr, err := productionNonRepudiation(cfg, store, log, m) // nonrepudiation.go
	if err != nil {
		closeTrust()
		store.Close()
		return nil, err
	}
	tr, err := productionTracing(cfg) // ops.go
	if err != nil {
		nr.close()
		closeTrust()
		store.Close()
		return nil, err
	}
	plan := &servePlan{
		opts: server.Options{
			Store: store, Backend: backend, Validator: v, Logger: log, TLS: tlsCfg, Authorizer: policy,
			ClientValidator: cv, Login: loginOpts, Auditor: nr.auditor, Timestamps: nr.timestamps, ReservedKeys: nr.reserved,
			MaxMessageBytes: cfg.MaxMessageBytes, MaxBatchItems: cfg.MaxBatchItems,
			ExpiryWarning:    cfg.Keystore.ExpiryWarning,
			Reflection:       cfg.Reflection,
			Limits:           server.Limits(cfg.Limits),
			Streams:          server.StreamLimits(cfg.Streams),
			ClientDigests:    cfg.ClientDigestAlgorithms(),
			SecretKeys:       secrets,
			Encryption:       server.EncryptionLimits(cfg.Encryption),
			AllowSM2WithoutZ: cfg.Verify.AllowSM2WithoutZ,
		},
		listen:  cfg.Listen,
		drain:   cfg.ShutdownTimeout,
		close:   func() { nr.close(); closeTrust(); store.Close(); tr.Close() },
		ops:     op,
		metrics: m,
	}
	plan.opts.ServerOptions = append(plan.opts.ServerOptions, tr.ServerOptions()...)
	var pools metrics.PoolStats
	if hsm != nil {
		pools = hsm
	}
	if err := instrument(plan, pools, nr.log); err != nil {
		plan.close()
		return nil, err
	}
	if cfg.Tracing.OTLPEndpoint != "" {
		log.Info("tracing", slog.String("otlp_endpoint", cfg.Tracing.OTLPEndpoint), slog.Float64("sample_ratio", cfg.Tracing.Ratio()))
	}
	return plan, nil
}

// serverTLS builds the TLS configuration: TLS 1.2 or later (1.3 preferred), a client
// certificate required and validated by the trust package against the client anchors
// (chain, validity, clientAuth usage, revocation). crypto/tls cannot use SM2 client
// certificates (see internal/server/tls.go).
func serverTLS(c config.TLS, clients *trust.Validator, verifyTimeout time.Duration, log *slog.Logger) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	minVersion := uint16(tls.VersionTLS12)
	if c.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	return server.ServerTLS(server.ServerTLSConfig{
		Certificates: []tls.Certificate{cert}, MinVersion: minVersion,
		ClientValidator: clients, VerifyTimeout: verifyTimeout, Logger: log,
	})
}
