package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"syscall"

	"signsvr.dev/signsvr/internal/config"
	"signsvr.dev/signsvr/internal/metrics"
	"signsvr.dev/signsvr/internal/ops"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/tracing"
	"signsvr.dev/signsvr/pkg/audit"
)

// opsPlan is the operations listener of a run (internal/ops).
type opsPlan struct {
	listen string // "": none
	pprof  bool
	// optional: the address is a default, and a clash with another program is a
	// warning (the development server), not a failure.
	optional bool
}

// metrics are the run's metrics: nil without a listener to serve them, so that a
// server without one pays nothing for them.
func (p opsPlan) metrics() *metrics.Metrics {
	if p.listen == "" {
		return nil
	}
	return metrics.New()
}

// developmentOps: the --ops-listen flag, else 127.0.0.1:9090 when that port is free.
func developmentOps(flag string) opsPlan {
	switch flag {
	case "off":
		return opsPlan{}
	case "":
		return opsPlan{listen: config.DefaultDevelopmentOpsListen, optional: true}
	}
	return opsPlan{listen: flag}
}

// productionOps: the --ops-listen flag, else the configuration's ops.listen ("" is off).
func productionOps(c config.Ops, flag string) opsPlan {
	p := opsPlan{listen: c.Listen, pprof: c.PProf}
	switch flag {
	case "off":
		p.listen = ""
	case "":
	default:
		p.listen = flag
	}
	return p
}

// productionTracing is the configured tracing (off without tracing.otlp_endpoint).
func productionTracing(cfg *config.Config) (*tracing.Tracing, error) {
	t := cfg.Tracing
	instance := ""
	if cfg.Audit != nil {
		instance = cfg.Audit.ResolvedReplicaID()
	} else if h, err := os.Hostname(); err == nil {
		instance = h
	}
	return tracing.New(tracing.Config{Endpoint: t.OTLPEndpoint, Insecure: t.Insecure, SampleRatio: t.Ratio(),
		ServiceName: "signsvr", InstanceID: instance})
}

// instrument connects the plan's metrics, when it has them, to the server's calls,
// its keys, the HSM pools (pools, or nil) and the audit log (al, or nil).
func instrument(plan *servePlan, pools metrics.PoolStats, al *audit.Log) error {
	m := plan.metrics
	if m == nil {
		return nil
	}
	o := &plan.opts
	o.CallInterceptors = append(o.CallInterceptors, m.CallInterceptor())
	o.ServerOptions = append(o.ServerOptions, m.ServerOptions()...)
	if err := m.WatchKeys(context.Background(), o.Store); err != nil {
		return err
	}
	if pools != nil {
		if err := m.WatchHSM(pools); err != nil {
			return err
		}
	}
	if al != nil {
		return m.WatchAudit(al.Health)
	}
	return nil
}

// startOps starts the operations listener for srv, or nothing when the plan has
// none (or, for a default address, when another program holds it).
func (s *Server) startOps(srv *server.Server, log *slog.Logger) (*ops.Server, error) {
	p := s.plan.ops
	if p.listen == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", p.listen)
	if err != nil {
		if p.optional && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("operations listener not started: its port is in use (give --ops-listen ADDR, or off)",
				slog.String("ops_listen", p.listen))
			return nil, nil
		}
		return nil, err
	}
	m := s.plan.metrics
	o := ops.Options{Health: srv.HealthServer(), Ready: srv.Readiness, PProf: p.pprof, Logger: log}
	if m != nil {
		if err := m.WatchReadiness(func() bool { r, _ := srv.Readiness(); return r }); err != nil {
			lis.Close()
			return nil, err
		}
		o.Metrics = m.Handler()
	}
	o2 := ops.Start(lis, o)
	log.Info("operations listener", slog.String("listen", lis.Addr().String()), slog.Bool("pprof", p.pprof))
	return o2, nil
}
