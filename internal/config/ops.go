package config

import (
	"net"
	"net/url"
	"strings"
)

// DefaultDevelopmentOpsListen is where the development server puts its operations
// listener when that port is free (a clash is a warning there, not a failure: the
// development server is a demonstration, and 9090 is a popular port).
const DefaultDevelopmentOpsListen = "127.0.0.1:9090"

// Ops configures the operations listener: one plaintext port, apart from the
// mutual-TLS API port, that serves gRPC health (grpc.health.v1, what Kubernetes gRPC
// probes call: they send no client certificate) and HTTP/1.1 GET /metrics
// (Prometheus), /healthz, /readyz and, when enabled, /debug/pprof/.
//
// It is plaintext and unauthenticated on purpose: probes and scrapers reach it
// inside the cluster. It carries no key operation and no request data; restrict who
// reaches it (a NetworkPolicy), and keep pprof off where that cannot be done, since a
// profile shows the program's internals.
type Ops struct {
	// Listen is the host:port of the operations listener; "" (the default) is off.
	Listen string `yaml:"listen"`
	// PProf serves net/http/pprof under /debug/pprof/ on the operations listener.
	PProf bool `yaml:"pprof"`
}

// Tracing configures OpenTelemetry tracing of the API's calls, exported over OTLP
// gRPC. Off unless OTLPEndpoint is set: then no tracing code runs on a call's path.
type Tracing struct {
	// OTLPEndpoint is the host:port of an OTLP gRPC collector (e.g. an OpenTelemetry
	// Collector's 4317).
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Insecure sends to the collector without TLS (a collector beside the pod).
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of calls traced when the caller sent no sampling
	// decision (a traceparent header's decision is followed); default 1 (all),
	// 0 < ratio <= 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Ratio is the configured sample ratio, 1 when none is.
func (t Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

func (c *Config) opsValidate(fail func(string, ...any)) {
	if c.Ops.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Ops.Listen); err != nil {
			fail("ops.listen: %v", err)
		} else if c.Ops.Listen == c.Listen && port != "0" {
			fail("ops.listen: %s is the API's listen address; the operations listener needs a port of its own", c.Ops.Listen)
		}
	} else if c.Ops.PProf {
		fail("ops.pprof: needs ops.listen (pprof is served on the operations listener)")
	}
	t := c.Tracing
	if t.OTLPEndpoint != "" {
		if strings.Contains(t.OTLPEndpoint, "://") {
			if u, err := url.Parse(t.OTLPEndpoint); err != nil || u.Host == "" {
				fail("tracing.otlp_endpoint: %q is not host:port", t.OTLPEndpoint)
			} else {
				fail("tracing.otlp_endpoint: give host:port (%s), not a URL; tracing.insecure chooses plaintext", u.Host)
			}
		} else if _, _, err := net.SplitHostPort(t.OTLPEndpoint); err != nil {
			fail("tracing.otlp_endpoint: %v", err)
		}
	} else if t.Insecure || t.SampleRatio != nil {
		fail("tracing: insecure and sample_ratio need tracing.otlp_endpoint")
	}
	if r := t.Ratio(); !(r > 0 && r <= 1) {
		fail("tracing.sample_ratio: %v is not in (0, 1]", r)
	}
}
