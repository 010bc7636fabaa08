// Package tracetest is the shared half of the tests that a caller's W3C
// traceparent reaches each broker: it commits messages under a span and
// relays them into the sink under test, which then checks what the broker
// received.
package tracetest

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/otelheaders"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/memory"
)

// Span is the sampled span context the traced call runs under, and
// Traceparent its W3C header.
var (
	Span = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
		SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
		TraceFlags: trace.FlagsSampled,
	})
	Traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// Relay starts the bank example with otelheaders.Headers on a memory store,
// opens account "a" under Span (an account.opened message keyed "a") and
// account "b" with no span in the context (a second one, keyed "b"),
// relays both into sink and returns them as the store committed them.
func Relay(t testing.TB, sink outbox.Sink) []outbox.Message {
	t.Helper()
	st := memory.New()
	eng, err := bank.NewEngine(context.Background(), bank.State{}, bank.Bank{},
		engine.WithStore(st), engine.WithHeaders(otelheaders.Headers))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	traced := trace.ContextWithSpanContext(context.Background(), Span)
	if _, err := eng.OpenAccount(traced, bank.OpenAccountArgs{ID: "a", Initial: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.OpenAccount(context.Background(), bank.OpenAccountArgs{ID: "b", Initial: 1}); err != nil {
		t.Fatal(err)
	}
	msgs, err := st.Undelivered(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := relaybench.NewWatch(sink, len(msgs))
	r := outbox.NewRelay(st, s)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Errorf("the relay delivered %d of %d messages in 30s", r.Stats().Delivered, len(msgs))
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return msgs
}
