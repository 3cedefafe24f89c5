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
	"reflect"
	"strings"
	"time"

	"google.golang.org/grpc"

	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/metrics"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/generation"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
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
	// Reloads, when set, asks for a reload of the configuration at every receive,
	// instead of SIGHUP (tests that run several servers in one process).
	Reloads <-chan struct{}
	// OnReload, when set, learns the outcome of every reload: nil when the new
	// configuration serves, the reason it was refused otherwise (the old one keeps
	// serving). It runs on the reloading goroutine; metrics count reloads here.
	OnReload func(err error)
}

// servePlan is everything a run needs, from the development default or a config file.
type servePlan struct {
	opts   server.Options
	listen string
	drain  time.Duration
	// close releases what outlives the states (audit log, tracing, data directory
	// lock); opts.Release the first state's parts.
	close func()
	ops   opsPlan
	// metrics is nil without an operations listener to serve them.
	metrics *metrics.Metrics
	// reload reads the configuration again and builds the next state (nil: the
	// development default, which does not reload).
	reload func() (server.Options, error)
}

// Server is a server built from Options, ready to Run. Close releases what it
// opened (key stores, trust validators, the audit log), after Run has returned.
type Server struct {
	plan                   *servePlan
	cpuProfile, memProfile string
	reloads                <-chan struct{}
	onReload               func(error)
	srv                    *server.Server // set by Run
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
	return &Server{plan: plan, cpuProfile: o.CPUProfile, memProfile: o.MemProfile, reloads: o.Reloads, onReload: o.OnReload}, nil
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

// Close releases what New opened and what reloads opened since.
func (s *Server) Close() {
	switch {
	case s.srv != nil:
		s.srv.Close()
	case s.plan.opts.Release != nil:
		s.plan.opts.Release()
	}
	s.plan.close()
}

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
	s.srv = srv
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
	stopReloads := s.watchReloads(ctx, srv, log) // reload.go
	defer stopReloads()
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
// keys and trust anchors. Its state (productionState) is rebuilt on every reload; the
// audit log, the TSA settings, tracing and metrics are set up once.
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
	st, err := productionState(context.Background(), cfg, log, m)
	if err != nil {
		return nil, err
	}
	if len(cfg.Authorization.Rules) == 0 {
		log.Warn("authorization has no rules: every call will be refused")
	}
	nr, err := productionNonRepudiation(cfg, st.store, log, m) // nonrepudiation.go
	if err != nil {
		st.closeAll()
		return nil, err
	}
	tr, err := productionTracing(cfg) // ops.go
	if err != nil {
		nr.close()
		st.closeAll()
		return nil, err
	}
	// fixed are the settings every state shares: the audit log, the TSA, the
	// transport's limits, and the interceptors and options of metrics and tracing
	// (instrument adds those to the first state; later states copy them).
	var callInterceptors []grpc.UnaryServerInterceptor
	fixed := func(o server.Options) server.Options {
		o.Logger, o.Auditor, o.Timestamps, o.ReservedKeys = log, nr.auditor, nr.timestamps, nr.reserved
		o.MaxMessageBytes, o.MaxBatchItems = cfg.MaxMessageBytes, cfg.MaxBatchItems
		o.Reflection, o.Limits = cfg.Reflection, server.Limits(cfg.Limits)
		o.Encryption = server.EncryptionLimits(cfg.Encryption)
		o.Streams = server.StreamLimits(cfg.Streams)
		o.CallInterceptors = callInterceptors
		return o
	}
	closeStore := func() {}
	opts := fixed(st.opts)
	if cfg.Audit != nil {
		// The audit log signs its checkpoints with a key of the first store for as
		// long as it runs: that store stays open until the server stops.
		opts.Release = st.closeTrust
		closeStore = func() { st.store.Close() }
	} else {
		opts.Release = st.closeAll
	}
	plan := &servePlan{
		opts:    opts,
		listen:  cfg.Listen,
		drain:   cfg.ShutdownTimeout,
		close:   func() { nr.close(); closeStore(); tr.Close() },
		ops:     op,
		metrics: m,
		reload: func() (server.Options, error) {
			next, err := config.Load(path)
			if err != nil {
				return server.Options{}, err
			}
			if err := next.CheckSecretFiles(); err != nil {
				return server.Options{}, err
			}
			for _, what := range restartOnly(cfg, next) {
				log.Warn("configuration reload: this setting changes at the next restart only", slog.String("setting", what))
			}
			nst, err := productionState(context.Background(), next, log, m)
			if err != nil {
				return server.Options{}, err
			}
			o := fixed(nst.opts)
			o.Release = nst.closeAll
			return o, nil
		},
	}
	plan.opts.ServerOptions = append(plan.opts.ServerOptions, tr.ServerOptions()...)
	var pools metrics.PoolStats
	if st.hsm != nil {
		pools = st.hsm
	}
	if err := instrument(plan, pools, nr.log); err != nil {
		plan.opts.Release()
		plan.close()
		return nil, err
	}
	callInterceptors = plan.opts.CallInterceptors
	if cfg.Tracing.OTLPEndpoint != "" {
		log.Info("tracing", slog.String("otlp_endpoint", cfg.Tracing.OTLPEndpoint), slog.Float64("sample_ratio", cfg.Tracing.Ratio()))
	}
	return plan, nil
}

// state is what a reload rebuilds: the key stores, the trust validators of signer and
// client certificates (anchors, intermediates, CRL files), the TLS certificate, the
// authorization policy and the login settings.
type state struct {
	opts  server.Options
	store keystore.Store
	hsm   *pkcs11.Store // nil without an HSM
	// closeTrust closes the validators; closeAll the stores too.
	closeTrust, closeAll func()
}

// productionState builds the reloadable part of a production server from cfg. Its
// errors name the file and line of the setting at fault. `config check` and every
// reload use it, so `config check` says what a reload would. m (nil: none) observes
// the validators.
func productionState(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*state, error) {
	tc, err := cfg.Trust.Config()
	if err != nil {
		return nil, fmt.Errorf("%s: trust: %w", cfg.Where("trust"), err)
	}
	tc.Observer = m.TrustObserver("signers")
	v, err := trust.New(tc)
	if err != nil {
		return nil, fmt.Errorf("%s: trust: %w", cfg.Where("trust"), err)
	}
	// Client certificates have their own anchors (tls.client_ca_files) and are
	// validated by the trust package in the handshake and on every call.
	cft := cfg.ClientTrust()
	ctc, err := cft.Config()
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("%s: tls client trust: %w", clientTrustWhere(cfg), err)
	}
	ctc.Observer = m.TrustObserver("clients")
	cv, err := trust.New(ctc)
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("%s: tls client trust: %w", clientTrustWhere(cfg), err)
	}
	closeTrust := func() { v.Close(); cv.Close() }
	tlsCfg, err := serverTLS(cfg.TLS, cv, ctc.Revocation.FetchTimeout, log)
	if err != nil {
		closeTrust()
		return nil, fmt.Errorf("%s: %w", cfg.Where("tls", "cert_file"), err)
	}
	loginOpts, err := productionLogin(cfg.Login, os.Getenv)
	if err != nil {
		closeTrust()
		return nil, fmt.Errorf("%s: %w", cfg.Where("login"), err)
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
		return nil, fmt.Errorf("%s: %w", cfg.Where("authorization"), err)
	}
	store, backend, hsm, err := openKeystore(ctx, cfg, log, time.Now())
	if err != nil {
		closeTrust()
		return nil, err
	}
	secrets, err := openSecretKeys(ctx, cfg, store)
	if err != nil {
		closeTrust()
		store.Close()
		return nil, err
	}
	var ks keystore.Store = store
	if specs := cfg.Generations(); len(specs) > 0 {
		g, err := generation.New(ctx, store, specs)
		if err != nil {
			closeTrust()
			store.Close()
			return nil, fmt.Errorf("%s: keystore: %w", cfg.Where("keystore"), err)
		}
		ks = g
	}
	return &state{
		opts: server.Options{
			Store: ks, Backend: backend, Validator: v, TLS: tlsCfg, Authorizer: policy,
			ClientValidator: cv, Login: loginOpts, ExpiryWarning: cfg.Keystore.ExpiryWarning,
			SecretKeys: secrets, AllowSM2WithoutZ: cfg.Verify.AllowSM2WithoutZ,
			ClientDigests: cfg.ClientDigestAlgorithms(),
		},
		store:      ks,
		hsm:        hsm,
		closeTrust: closeTrust,
		closeAll:   func() { closeTrust(); ks.Close() },
	}, nil
}

// clientTrustWhere is where the client certificates' trust is configured.
func clientTrustWhere(cfg *config.Config) string {
	if cfg.TLS.ClientTrust != nil {
		return cfg.Where("tls", "client_trust")
	}
	return cfg.Where("tls", "client_ca_files")
}

// restartOnly names the settings that differ between old and next but that a reload
// does not apply: they belong to the listener, the transport or the audit log.
func restartOnly(old, next *config.Config) []string {
	var out []string
	diff := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	diff("listen", old.Listen, next.Listen)
	diff("max_message_bytes", old.MaxMessageBytes, next.MaxMessageBytes)
	diff("max_batch_items", old.MaxBatchItems, next.MaxBatchItems)
	diff("shutdown_timeout", old.ShutdownTimeout, next.ShutdownTimeout)
	diff("limits", old.Limits, next.Limits)
	diff("reflection", old.Reflection, next.Reflection)
	diff("log", old.Log, next.Log)
	diff("audit", old.Audit, next.Audit)
	diff("tsa", old.TSA, next.TSA)
	diff("ops", old.Ops, next.Ops)
	diff("tracing", old.Tracing, next.Tracing)
	diff("encryption", old.Encryption, next.Encryption)
	diff("streams", old.Streams, next.Streams)
	return out
}

// CheckConfig validates the configuration file at path as `serve --config` and a
// reload would, without serving: it reads the file, checks its secret files, opens
// its key stores, trust anchors, CRL files and TLS certificate, builds the policy
// and login settings, and closes them again. The audit log is not opened (checking
// must not write a record); its key must be in the key store. The error names the
// file and line of the setting at fault.
func CheckConfig(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if err := cfg.CheckSecretFiles(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	st, err := productionState(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer st.closeAll()
	o := st.opts
	o.Logger = log
	if cfg.Audit != nil {
		if _, err := st.store.Key(ctx, cfg.Audit.Key); err != nil {
			return fmt.Errorf("%s: audit.key: %w", cfg.Where("audit", "key"), err)
		}
		o.ReservedKeys = []string{cfg.Audit.Key}
	}
	if t := cfg.TSA; t != nil {
		o.Timestamps = &server.TimestampOptions{Key: t.Key, ExternalURL: t.URL}
	}
	return server.Check(o)
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
