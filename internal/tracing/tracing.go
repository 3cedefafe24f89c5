// Package tracing is the server's opt-in OpenTelemetry tracing: a span per gRPC call
// (otelgrpc's stats handler), exported in batches over OTLP gRPC to a collector.
//
// It is off unless configured: then New returns no server option, nothing of
// OpenTelemetry is installed, and no call pays for it. When on, it uses a tracer
// provider of its own, never OpenTelemetry's global one, and the W3C trace-context
// propagator: a caller's traceparent makes the server's span its child, and its
// sampling decision is followed; calls without one are sampled at the configured
// ratio. Spans carry the RPC's method and status, never request or response data.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
)

// Config says where spans go.
type Config struct {
	// Endpoint is the collector's host:port; "" turns tracing off.
	Endpoint string
	// Insecure sends without TLS.
	Insecure bool
	// SampleRatio is the share of calls without a caller's sampling decision that
	// are traced, in (0, 1].
	SampleRatio float64
	// ServiceName and InstanceID name this server in the spans' resource
	// (service.name, service.instance.id).
	ServiceName, InstanceID string
}

// Tracing is the configured tracer; its zero value (tracing off) does nothing.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// New sets tracing up as c says. The exporter connects lazily: a collector that is
// down loses spans, never calls.
func New(c Config) (*Tracing, error) {
	if c.Endpoint == "" {
		return &Tracing{}, nil
	}
	if !(c.SampleRatio > 0 && c.SampleRatio <= 1) {
		return nil, fmt.Errorf("tracing: sample ratio %v is not in (0, 1]", c.SampleRatio)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.Endpoint)}
	if c.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", c.ServiceName)}
	if c.InstanceID != "" {
		attrs = append(attrs, attribute.String("service.instance.id", c.InstanceID))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	return &Tracing{tp: tp}, nil
}

// ServerOptions are the gRPC server options that trace calls: none when off.
func (t *Tracing) ServerOptions() []grpc.ServerOption {
	if t.tp == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()), // metrics are Prometheus'
	))}
}

// Close sends the spans still buffered (for at most a few seconds) and stops the
// exporter.
func (t *Tracing) Close() error {
	if t.tp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(t.tp.ForceFlush(ctx), t.tp.Shutdown(ctx))
}
