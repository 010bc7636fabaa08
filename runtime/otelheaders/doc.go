// Package otelheaders carries the caller's OpenTelemetry trace context from
// a process call to the consumers of its messages, as W3C Trace Context
// headers (traceparent, and tracestate when the span has one).
//
// The engine knows nothing of OpenTelemetry: give it Headers with
// engine.WithHeaders, and every message a call emits gets the headers of
// the span in the call's context.
//
//	eng, err := shop.NewEngine(ctx, initial, impl, engine.WithHeaders(otelheaders.Headers))
//	...
//	ctx, span := tracer.Start(ctx, "update email")
//	eng.UpdateUserEmail(ctx, args) // its messages carry the span's traceparent
//
// The headers are stored with the message and travel with it: the natsjs
// and kafka sinks copy them into the NATS message or Kafka record headers,
// the webhook sink into the envelope's "headers", the sqltable sink into
// its headers column. A consumer continues the trace with Extract:
//
//	m, err := natsjs.Decode(msg.Subject(), msg.Headers(), msg.Data())
//	ctx := otelheaders.Extract(ctx, m.Headers)
//	ctx, span := tracer.Start(ctx, "handle user.updated", trace.WithLinks(...))
//
// A message is usually delivered long after the call that emitted it, and
// perhaps more than once, so consumers often start a new trace with a link
// to the extracted span context rather than a child span.
//
// Headers uses the W3C propagator (propagation.TraceContext) directly, not
// the global one from otel.GetTextMapPropagator: the format of the stored
// headers does not change with the process's OpenTelemetry setup. A call
// whose context holds no valid span context gets no headers, and Headers
// then allocates nothing. Only the OpenTelemetry API is imported; install
// an SDK (or none) as you like.
package otelheaders
