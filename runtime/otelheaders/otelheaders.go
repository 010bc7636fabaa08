package otelheaders

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The header names of W3C Trace Context.
const (
	Traceparent = "traceparent"
	Tracestate  = "tracestate"
)

// Headers returns the W3C Trace Context headers of the span context in
// ctx, nil when ctx holds none (it then allocates nothing). It has the
// shape engine.WithHeaders takes, and returns a new map on each call.
func Headers(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	h := make(map[string]string, 2)
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(h))
	return h
}

// Extract returns a copy of ctx holding the remote span context that the
// headers of a message carry, or ctx itself when they carry none (or an
// invalid one).
func Extract(ctx context.Context, headers map[string]string) context.Context {
	if headers[Traceparent] == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(headers))
}
