package config

import (
	"strings"
	"testing"
	"time"
)

func TestOpsAndTracing(t *testing.T) {
	c, err := Parse([]byte(good), "/etc/signsvr")
	if err != nil {
		t.Fatal(err)
	}
	if c.Ops.Listen != "" || c.Ops.PProf || c.Tracing.OTLPEndpoint != "" || c.Tracing.Ratio() != 1 {
		t.Errorf("defaults: ops %+v tracing %+v: both are off unless set", c.Ops, c.Tracing)
	}
	c, err = Parse([]byte(good+`ops:
  listen: 0.0.0.0:9090
  pprof: true
tracing:
  otlp_endpoint: collector:4317
  insecure: true
  sample_ratio: 0.25
limits:
  max_connection_age: 10m
  max_connection_age_grace: 1m
`), "/etc/signsvr")
	if err != nil {
		t.Fatal(err)
	}
	if c.Ops.Listen != "0.0.0.0:9090" || !c.Ops.PProf || c.Tracing.OTLPEndpoint != "collector:4317" || !c.Tracing.Insecure || c.Tracing.Ratio() != 0.25 {
		t.Errorf("parsed: ops %+v tracing %+v", c.Ops, c.Tracing)
	}
	if c.Limits.MaxConnectionAge != 10*time.Minute || c.Limits.MaxConnectionAgeGrace != time.Minute {
		t.Errorf("limits: %+v", c.Limits)
	}

	for name, tc := range map[string]struct{ yaml, want string }{
		"ops no port":        {"ops: {listen: localhost}", "ops.listen"},
		"ops on the api":     {"ops: {listen: '0.0.0.0:6000'}", "a port of its own"},
		"pprof without ops":  {"ops: {pprof: true}", "ops.pprof: needs ops.listen"},
		"otlp url":           {"tracing: {otlp_endpoint: 'http://collector:4317'}", "give host:port (collector:4317)"},
		"otlp no port":       {"tracing: {otlp_endpoint: collector}", "tracing.otlp_endpoint"},
		"ratio zero":         {"tracing: {otlp_endpoint: 'c:4317', sample_ratio: 0}", "sample_ratio"},
		"ratio above one":    {"tracing: {otlp_endpoint: 'c:4317', sample_ratio: 2}", "sample_ratio"},
		"tracing options":    {"tracing: {insecure: true}", "need tracing.otlp_endpoint"},
		"negative age":       {"limits: {max_connection_age: -1s}", "limits: must not be negative"},
		"negative age grace": {"limits: {max_connection_age_grace: -1s}", "limits: must not be negative"},
		"typo":               {"ops: {listn: ':9090'}", "listn"},
	} {
		_, err := Parse([]byte(good+tc.yaml+"\n"), "/etc/signsvr")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
