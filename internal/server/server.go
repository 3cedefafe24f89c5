// Package server is the signsvr gRPC server: seven services over a keystore, with
// health checking, reflection and graceful stop. One file per service:
//
//   - SignService (sign.go, raw.go): CMS SignedData, verification, raw signatures;
//   - EnvelopeService (envelope.go): EnvelopedData and its opening, sign-and-envelope;
//   - KeyService (keys.go): the keys a caller may use, with their certificates;
//   - CertificateService (certificate.go): certificate validation and description;
//   - AuthService (auth.go): certificate login, challenge and token;
//   - TimestampService (timestamp.go): RFC 3161 timestamps and signature timestamps;
//   - RawCryptService (rawcrypt.go): public-key encryption without CMS;
//   - PipelineService (pipeline.go): one stream carrying many Sign, Verify, SignRaw,
//     VerifyRaw, Envelope and Decrypt items, each run as the unary call it names.
//
// Around them: caller identity from the TLS client certificate (tls.go),
// authorization (policy.go), the audit record of every call (audit.go), errors and
// their mapping to gRPC statuses (errors.go, middleware.go), and the transport tuning
// (transport.go).
//
// It is thin on purpose. The CMS work is pkg/sign and pkg/envelope, which know only
// crypto.Signer / crypto.Decrypter; keys come from pkg/keystore. This package turns
// requests into engine options, picks the key, asks the certificate validator for the
// trust verdict, and maps every failure to a gRPC status in one place (errors.go,
// middleware.go): handlers return *Error values that keep the client message apart
// from the internal cause, and the middleware logs the cause under a request id.
//
// Layers of one call, outermost first: the method wrapper (request id, panic recovery,
// decoding, error mapping, log line, audit seam), then the grpc interceptor chain
// (Options.Interceptors: where identity and authorization policies plug in), then
// the handler. Key-level authorization happens when a handler takes a key (useKey),
// since only then is the key name known.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
)

// Defaults for Options.
const (
	DefaultMaxMessageBytes = 64 << 20
	DefaultMaxBatchItems   = 1024
	DefaultShutdownTimeout = 30 * time.Second
)

// healthPollInterval is how often the parts that can be down on their own (an HSM,
// the audit log) are asked for their health. A variable for tests.
var healthPollInterval = 5 * time.Second

// Options configure a Server. Store is required; everything else has a default.
type Options struct {
	// Store holds the keys requests name.
	Store keystore.Store
	// Backend names the store in ListKeys ("soft", "pkcs11"). A store with a method
	// Backend(keyName string) string (pkg/keystore/multi) names each key's own.
	Backend string
	// ExpiryWarning is how close to its notAfter a key's certificate may come before
	// ListKeys flags it expires_soon; 0 means keystore.DefaultExpiryThreshold.
	ExpiryWarning time.Duration
	// Validator gives the certificate verdicts. Required.
	Validator CertValidator
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxMessageBytes bounds a request (and a response); 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxBatchItems bounds the items of a batch; 0 means DefaultMaxBatchItems.
	MaxBatchItems int
	// Verify bounds what one message to verify may cost (signers, certificates, the
	// size of a certificate, the parsed-certificate cache); zero fields take defaults.
	Verify VerifyLimits
	// AllowSM2WithoutZ is the default of VerifyOptions.allow_sm2_without_z for
	// requests that leave it unset: also accept SM2 signatures made without the Z
	// value, as GmSSL 3.x writes SignedData. A request may turn it off or on.
	AllowSM2WithoutZ bool
	// TLS, when set, serves TLS (with client certificates when it asks for them).
	TLS *tls.Config
	// Development marks the embedded default: callers get the development identity.
	Development bool
	// Authorizer decides key use per caller; nil refuses every use of a key (AllowAll
	// lets every caller use every key).
	Authorizer Authorizer
	// Auditor receives an event per call; nil records nothing.
	Auditor Auditor
	// Interceptors run inside the server's own outer layer, in order (after the
	// authentication and authorization interceptors of tls.go and auth.go).
	Interceptors []grpc.UnaryServerInterceptor
	// ClientValidator validates the TLS client certificate of every call and gives
	// the caller's identity (tls.go). It requires TLS built with ServerTLS.
	ClientValidator CertValidator
	// Login enables AuthService (certificate login, auth.go); nil leaves it
	// answering UNIMPLEMENTED.
	Login *LoginOptions
	// Timestamps enables TimestampService and signature timestamps (timestamp.go).
	Timestamps *TimestampOptions
	// ReservedKeys are keys the server uses for itself (the audit key); no client
	// request may sign or decrypt with them. The login token key and the TSA key (when
	// they live in Store) are reserved without being listed: a client signing with
	// them could forge login tokens or timestamps.
	ReservedKeys []string
	// StockTransport serves with grpc-go's own buffer pool and plain connections,
	// without the transport tuning of transport.go: the baseline its benchmarks
	// compare against, and a way to rule the tuning out when diagnosing.
	StockTransport bool
	// Limits bound connections, streams and slow requests; zero fields take their
	// defaults.
	Limits Limits
	// Reflection serves the gRPC reflection service (what grpcurl and ghz use to
	// learn the API).
	Reflection bool
	// Release, when set, frees what this state's parts hold (key stores, validators).
	// The server calls it once no call uses them any more: after Reload replaced them
	// and the last call that began before finished, or at Close.
	Release func()
	// Streams bound the streaming calls (StreamService, stream.go); zero fields take
	// their defaults.
	Streams StreamLimits
	// ClientDigests lists, by key name, the digest algorithms a key accepts from
	// clients in place of the content (digest.go); a key not listed accepts none.
	ClientDigests map[string][]algorithm.Digest
	// SecretKeys holds the symmetric key-encryption keys of KEK recipients, by name
	// (names apart from Store's); nil serves none.
	SecretKeys keystore.SecretStore
	// Encryption bounds password envelopes and raw encryption; zero fields take their
	// defaults.
	Encryption EncryptionLimits
	// CallInterceptors run around each unary call of the API as a whole, outermost
	// first (metrics, ops.go): outside the method wrapper, so the error they see is
	// the status the client gets, decoding failures and refusals included. Their req
	// is nil (the request is not decoded yet); CallKey gives the key the call named.
	CallInterceptors []grpc.UnaryServerInterceptor
	// ServerOptions are added to the gRPC server's own (a stats handler for
	// tracing, stream interceptors for metrics).
	ServerOptions []grpc.ServerOption
}

// Server is a configured signsvr gRPC server.
type Server struct {
	grpc       *grpc.Server
	health     *health.Server
	store      keystore.Store
	backend    string
	expiryWarn time.Duration
	validator  CertValidator
	log        *slog.Logger
	now        func() time.Time
	maxMsg     int
	maxBatch   int
	dev        bool
	authorizer Authorizer
	auditor    Auditor
	instance   string
	seq        *atomic.Uint64 // shared by every state of a server: request ids stay unique

	keys         keyCache
	certs        certCache
	verifyLimits VerifyLimits
	// allowSM2WithoutZ is Options.AllowSM2WithoutZ.
	allowSM2WithoutZ bool

	clientValidator     CertValidator
	clientVerifyTimeout time.Duration
	peers               peerCache
	login               *loginService
	timestamps          *timestamper
	reserved            map[string]bool
	stockTransport      bool
	codec               *requestCodec
	limits              Limits
	budget              *byteBudget // of request bytes in flight (limits.go)
	reflection          bool
	serving             atomic.Bool   // what health reports
	recheck             chan struct{} // cap 1: the health poll looks now
	healthInterval      time.Duration
	// unary are the full names of the API's unary methods ("/signsvr.v1.SignService/Sign").
	unary map[string]bool

	stateFields
	// streams bound StreamService's calls.
	streams StreamLimits
	// clientDigests are Options.ClientDigests.
	clientDigests map[string][]algorithm.Digest
	secrets       keystore.SecretStore
	encLimits     EncryptionLimits
	// outer is Options.CallInterceptors, chained (nil: none).
	outer grpc.UnaryServerInterceptor
	// pipeline serves PipelineService (the root's).
	pipeline *pipelineService
}

// New builds a server; it does not listen yet. What o describes is the server's first
// state; Reload replaces it while the server runs (reload.go).
func New(o Options) (*Server, error) {
	s, err := newState(o, nil)
	if err != nil {
		return nil, err
	}
	s.root = s
	s.hasTLS = o.TLS != nil
	s.refs.Store(1)
	s.cur.Store(s)

	opts := []grpc.ServerOption{
		// A pool of long-lived stream workers instead of a new goroutine per call: a
		// call's goroutine grows its stack to ~32 KiB in the crypto code, and a fresh
		// goroutine pays for that growth (runtime.copystack, ~7% of a 1 KiB ECDSA Sign
		// or Verify) every time. Calls in flight, not cores, decide how many are
		// needed, so the pool is sized for typical client concurrency. When every
		// worker is busy grpc starts a goroutine, so a slow call (an HSM wait) never
		// holds up another.
		grpc.NumStreamWorkers(streamWorkers()),
		// The server's own interceptors (audit, authentication, authorization,
		// Options.Interceptors) belong to its state and run from wrapService, so a
		// reload swaps them with the keys they guard.
	}
	opts = append(opts, wireOptions(s.maxMsg, s.codec)...) // transport.go
	opts = append(opts, s.limitOptions()...)
	opts = append(opts, s.transportOptions()...)
	opts = append(opts, o.ServerOptions...)
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.reloadableTLS())))
	}
	s.grpc = grpc.NewServer(opts...)
	s.grpc.RegisterService(s.wrapService(&signsvrv1.SignService_ServiceDesc), signService{Server: s})
	s.grpc.RegisterService(s.wrapService(&signsvrv1.EnvelopeService_ServiceDesc), envelopeService{Server: s})
	s.grpc.RegisterService(s.wrapService(&signsvrv1.KeyService_ServiceDesc), keyService{Server: s})
	s.grpc.RegisterService(s.wrapService(&signsvrv1.CertificateService_ServiceDesc), certificateService{Server: s})
	s.grpc.RegisterService(s.wrapService(&signsvrv1.AuthService_ServiceDesc), authService{Server: s})
	s.grpc.RegisterService(s.wrapService(&signsvrv1.TimestampService_ServiceDesc), timestampService{Server: s})
	s.grpc.RegisterService(s.wrapService(&signsvrv1.RawCryptService_ServiceDesc), rawCryptService{Server: s})
	s.grpc.RegisterService(s.wrapService(&signsvrv1.StreamService_ServiceDesc), streamService{Server: s})
	// Not wrapped: each item takes the state it runs with, not the stream (pipeline.go).
	s.pipeline = s.newPipelineService()
	s.grpc.RegisterService(&signsvrv1.PipelineService_ServiceDesc, s.pipeline)

	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if s.reflection {
		reflection.Register(s.grpc)
	}
	s.setServing(true)
	return s, nil
}

// newState builds what the calls of a server use: keys, validators, policy, login,
// timestamps, interceptors. root is the running server a reload builds it for (nil
// for the first state, which is the server itself): the transport (codec, request
// ids, health) stays root's.
func newState(o Options, root *Server) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("server: no key store")
	}
	if o.Validator == nil {
		return nil, errors.New("server: no certificate validator")
	}
	s := &Server{
		store:      o.Store,
		backend:    o.Backend,
		expiryWarn: o.ExpiryWarning,
		validator:  o.Validator,
		log:        o.Logger,
		now:        o.Now,
		maxMsg:     o.MaxMessageBytes,
		maxBatch:   o.MaxBatchItems,

		certs:            certCache{maxBytes: o.Verify.CertCacheBytes, maxCert: o.Verify.MaxCertificateBytes},
		verifyLimits:     o.Verify,
		allowSM2WithoutZ: o.AllowSM2WithoutZ,
		dev:              o.Development,
		authorizer:       o.Authorizer,
		auditor:          o.Auditor,

		stockTransport: o.StockTransport,
		limits:         o.Limits.withDefaults(),
		recheck:        make(chan struct{}, 1),
		healthInterval: healthPollInterval,
		reflection:     o.Reflection,
		outer:          chainCall(o.CallInterceptors),

		clientValidator:     o.ClientValidator,
		clientVerifyTimeout: DefaultClientVerifyTimeout,
		reserved:            reservedKeys(o),
		seq:                 new(atomic.Uint64),
		streams:             o.Streams.withDefaults(),
		clientDigests:       o.ClientDigests,
		secrets:             o.SecretKeys,
		encLimits:           o.Encryption.withDefaults(),
	}
	s.release, s.tlsConfig = o.Release, o.TLS
	if o.ClientValidator != nil && o.TLS == nil {
		return nil, errors.New("server: a client certificate validator needs TLS")
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.authorizer == nil {
		s.authorizer = denyAll{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxMsg <= 0 {
		s.maxMsg = DefaultMaxMessageBytes
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatchItems
	}
	if err := s.limits.check(s.maxMsg); err != nil {
		return nil, err
	}
	if root == nil {
		s.budget = newByteBudget(s.limits.MaxInflightBytes)
		var inst [4]byte
		if _, err := rand.Read(inst[:]); err != nil {
			return nil, err
		}
		s.instance = hex.EncodeToString(inst[:])
		api := unaryMethods(serviceNames...)
		s.unary = make(map[string]bool, len(api))
		for _, m := range api {
			s.unary["/"+string(m.Parent().FullName())+"/"+string(m.Name())] = true
		}
		s.codec = newRequestCodec(api)
	} else {
		s.root = root
		// The transport's: request ids, decoding, the health poll's wake-up and the
		// budget of request bytes in flight are the server's, not a state's.
		s.instance, s.unary, s.codec, s.seq, s.recheck = root.instance, root.unary, root.codec, root.seq, root.recheck
		s.budget = root.budget
	}
	if o.Login != nil {
		var err error
		if s.login, err = s.newLoginService(o.Login); err != nil {
			return nil, err
		}
	}
	if o.Timestamps != nil {
		var err error
		if s.timestamps, err = s.newTimestamper(o.Timestamps); err != nil {
			return nil, err
		}
	}
	if s.login != nil && !s.dev {
		if err := s.refreshHeldKeys(context.Background()); err != nil {
			return nil, err
		}
	}
	s.chain = chainUnary(s.auditInterceptors(s.securityInterceptors(o.Interceptors)))
	s.impls = map[string]any{
		signsvrv1.SignService_ServiceDesc.ServiceName:        signService{Server: s},
		signsvrv1.EnvelopeService_ServiceDesc.ServiceName:    envelopeService{Server: s},
		signsvrv1.KeyService_ServiceDesc.ServiceName:         keyService{Server: s},
		signsvrv1.CertificateService_ServiceDesc.ServiceName: certificateService{Server: s},
		signsvrv1.AuthService_ServiceDesc.ServiceName:        authService{Server: s},
		signsvrv1.TimestampService_ServiceDesc.ServiceName:   timestampService{Server: s},
		signsvrv1.RawCryptService_ServiceDesc.ServiceName:    rawCryptService{Server: s},
		signsvrv1.StreamService_ServiceDesc.ServiceName:      streamService{Server: s},
	}
	return s, nil
}

// streamWorkers is the size of grpc's stream worker pool: 64, or 16 per core on
// bigger machines. An idle worker costs its stack (a few KiB to 32 KiB).
func streamWorkers() uint32 {
	return uint32(max(64, 16*runtime.GOMAXPROCS(0)))
}

// serviceNames are the names the health service answers for, besides "".
var serviceNames = []string{
	signsvrv1.SignService_ServiceDesc.ServiceName,
	signsvrv1.EnvelopeService_ServiceDesc.ServiceName,
	signsvrv1.KeyService_ServiceDesc.ServiceName,
	signsvrv1.CertificateService_ServiceDesc.ServiceName,
	signsvrv1.AuthService_ServiceDesc.ServiceName,
	signsvrv1.TimestampService_ServiceDesc.ServiceName,
	signsvrv1.StreamService_ServiceDesc.ServiceName,
	signsvrv1.RawCryptService_ServiceDesc.ServiceName,
	signsvrv1.PipelineService_ServiceDesc.ServiceName,
}

func (s *Server) setServing(ok bool) {
	s.serving.Store(ok)
	st := healthpb.HealthCheckResponse_SERVING
	if !ok {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus("", st)
	for _, n := range serviceNames {
		s.health.SetServingStatus(n, st)
	}
}

// Run serves on lis until ctx ends, then stops gracefully: health reports NOT_SERVING,
// in-flight calls drain for up to drain, and what is left is cut off. It returns nil
// after a stop caused by ctx, or the error that ended serving.
func (s *Server) Run(ctx context.Context, lis net.Listener, drain time.Duration) error {
	if drain <= 0 {
		drain = DefaultShutdownTimeout
	}
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(s.listener(s.limitListener(lis))) }()

	// The health poll ends before Run returns: nothing of the server is left running
	// when its caller closes the key store and the audit log the poll asks.
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	defer func() {
		stopPoll()
		<-polled
	}()
	go func() {
		defer close(polled)
		s.pollHealth(pollCtx)
	}()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining in-flight calls", slog.Duration("timeout", drain))
	s.Stop(drain)
	<-served
	return nil
}

// Stop marks the server NOT_SERVING, waits up to drain for in-flight calls, then
// closes every connection.
func (s *Server) Stop(drain time.Duration) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("drain timeout passed: closing remaining connections")
		s.grpc.Stop()
		<-done
	}
}

// healthCheck is a part of the server that can fail on its own: the key backend (an
// HSM) or the audit log.
type healthCheck struct {
	what string
	hc   keystore.HealthChecker
}

func (s *Server) healthChecks() []healthCheck {
	var checks []healthCheck
	if hc, ok := s.store.(keystore.HealthChecker); ok {
		checks = append(checks, healthCheck{"key backend", hc})
	}
	if hc, ok := s.auditor.(keystore.HealthChecker); ok {
		checks = append(checks, healthCheck{"audit log", hc})
	}
	return checks
}

// recheckHealth asks the health poll to look now rather than at its next tick (a
// part just failed).
func (s *Server) recheckHealth() {
	select {
	case s.recheck <- struct{}{}:
	default:
	}
}

// pollHealth asks every part of the current state at each tick, and when
// recheckHealth asks: the server is SERVING while all of them are healthy. A state
// without such parts is not polled until a reload brings one.
func (s *Server) pollHealth(ctx context.Context) {
	t := time.NewTicker(s.healthInterval)
	defer t.Stop()
	down := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.recheck:
		}
		st := s.acquire()
		if st == nil {
			return
		}
		checks := st.healthChecks()
		anyDown, back := false, []string(nil)
		for _, c := range checks {
			cctx, cancel := context.WithTimeout(ctx, s.healthInterval)
			err := c.hc.Health(cctx)
			cancel()
			if ctx.Err() != nil {
				st.unref()
				return
			}
			if (err != nil) != down[c.what] {
				down[c.what] = err != nil
				if err == nil {
					back = append(back, c.what)
				} else {
					s.log.Error(c.what+" is down: NOT_SERVING", slog.String("cause", err.Error()))
				}
			}
			anyDown = anyDown || down[c.what]
		}
		st.unref()
		if len(checks) == 0 {
			clear(down)
		}
		for _, what := range back {
			if anyDown {
				s.log.Info(what + " is back; another part is still down")
			} else {
				s.log.Info(what + " is back: SERVING")
			}
		}
		if anyDown == s.serving.Load() {
			s.setServing(!anyDown)
		}
	}
}

// reservedKeys are the names useKey refuses: the server's own keys in the shared store.
func reservedKeys(o Options) map[string]bool {
	r := map[string]bool{}
	for _, k := range o.ReservedKeys {
		r[k] = true
	}
	if o.Login != nil && o.Login.TokenKey != "" && (o.Login.Store == nil || o.Login.Store == o.Store) {
		r[o.Login.TokenKey] = true
	}
	if t := o.Timestamps; t != nil && t.Key != "" && (t.Store == nil || t.Store == o.Store) {
		r[t.Key] = true
	}
	return r
}
