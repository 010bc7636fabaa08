package kafka_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/theus-go/theus/runtime/internal/tracetest"
	"github.com/theus-go/theus/runtime/otelheaders"
	"github.com/theus-go/theus/runtime/sink/kafka"
)

// The traceparent of the caller's span goes from the call, through the
// store and the relay, into a header of the Kafka record; a call without a
// span sends none.
func TestTraceparentReachesKafka(t *testing.T) {
	c := cluster(t, "account.opened")
	sent := tracetest.Relay(t, newSink(t, client(t, c)))

	recs := consume(t, c, "account.opened", len(sent))
	traced := map[string]string{} // record key -> traceparent header
	for _, r := range recs {
		for _, h := range r.Headers {
			if h.Key == otelheaders.Traceparent {
				traced[string(r.Key)] = string(h.Value)
			}
		}
	}
	if len(traced) != 1 || traced["a"] != tracetest.Traceparent {
		t.Fatalf("traceparent headers by record key = %v, want only a: %s", traced, tracetest.Traceparent)
	}
	for _, r := range recs {
		m, err := kafka.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if m.Key != "a" {
			continue
		}
		sc := trace.SpanContextFromContext(otelheaders.Extract(context.Background(), m.Headers))
		if sc.TraceID() != tracetest.Span.TraceID() || sc.SpanID() != tracetest.Span.SpanID() || !sc.IsRemote() {
			t.Fatalf("consumer extracted %+v, want the caller's span %+v", sc, tracetest.Span)
		}
	}
}
