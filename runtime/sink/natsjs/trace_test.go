package natsjs_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/theus-go/theus/runtime/internal/tracetest"
	"github.com/theus-go/theus/runtime/otelheaders"
)

// The traceparent of the caller's span goes from the call, through the
// store and the relay, into the header of the NATS message; a call without
// a span sends none.
func TestTraceparentReachesNATS(t *testing.T) {
	_, _, js := embedded(t)
	createStream(t, js, jetstream.StreamConfig{Name: "BANK", Subjects: []string{"account.>"}})
	sent := tracetest.Relay(t, newSink(t, js))

	got := consumeAll(t, js, "BANK")
	if len(got) != len(sent) {
		t.Fatalf("stream holds %d messages, want %d", len(got), len(sent))
	}
	if tp := got[0].Headers().Get(otelheaders.Traceparent); tp != tracetest.Traceparent {
		t.Fatalf("NATS header traceparent = %q, want %q", tp, tracetest.Traceparent)
	}
	if tp, ok := got[1].Headers()[otelheaders.Traceparent]; ok {
		t.Fatalf("message of a call without a span has traceparent %q", tp)
	}
	m := decode(t, got[0])
	sc := trace.SpanContextFromContext(otelheaders.Extract(context.Background(), m.Headers))
	if sc.TraceID() != tracetest.Span.TraceID() || sc.SpanID() != tracetest.Span.SpanID() || !sc.IsRemote() {
		t.Fatalf("consumer extracted %+v, want the caller's span %+v", sc, tracetest.Span)
	}
}
