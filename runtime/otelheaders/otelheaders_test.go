package otelheaders_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/commitallocs"
	"github.com/theus-go/theus/runtime/otelheaders"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/memory"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// spanContext is a sampled remote span context with fixed IDs, so tests
// need no OpenTelemetry SDK.
func spanContext(t testing.TB, state string) trace.SpanContext {
	t.Helper()
	ts, err := trace.ParseTraceState(state)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
	})
}

const wantTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestHeadersOfASpan(t *testing.T) {
	ctx := trace.ContextWithSpanContext(context.Background(), spanContext(t, ""))
	h := otelheaders.Headers(ctx)
	if len(h) != 1 || h[otelheaders.Traceparent] != wantTraceparent {
		t.Fatalf("Headers = %v, want only traceparent %s", h, wantTraceparent)
	}

	ctx = trace.ContextWithSpanContext(context.Background(), spanContext(t, "vendor=abc"))
	h = otelheaders.Headers(ctx)
	if h[otelheaders.Traceparent] != wantTraceparent || h[otelheaders.Tracestate] != "vendor=abc" {
		t.Fatalf("Headers = %v, want traceparent %s and tracestate vendor=abc", h, wantTraceparent)
	}
}

func TestNoSpanNoHeadersNoAllocation(t *testing.T) {
	ctx := context.Background()
	invalid := trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	for name, ctx := range map[string]context.Context{"no span": ctx, "invalid span": invalid} {
		if h := otelheaders.Headers(ctx); h != nil {
			t.Errorf("%s: Headers = %v, want nil", name, h)
		}
		if n := testing.AllocsPerRun(100, func() { otelheaders.Headers(ctx) }); n != 0 {
			t.Errorf("%s: Headers allocates %v times, want 0", name, n)
		}
	}
}

func TestExtractContinuesTheTrace(t *testing.T) {
	sc := spanContext(t, "vendor=abc")
	h := otelheaders.Headers(trace.ContextWithSpanContext(context.Background(), sc))
	got := trace.SpanContextFromContext(otelheaders.Extract(context.Background(), h))
	if !got.IsRemote() || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() ||
		got.TraceFlags() != sc.TraceFlags() || got.TraceState().String() != "vendor=abc" {
		t.Fatalf("extracted %+v, want the remote span context %+v", got, sc)
	}
	for _, h := range []map[string]string{nil, {"traceparent": "garbage"}} {
		ctx := context.Background()
		if got := otelheaders.Extract(ctx, h); got != ctx {
			t.Errorf("Extract(%v) returned a new context, want ctx itself", h)
		}
	}
}

// newBank starts the bank example on st with two open accounts, with
// Headers as its headers func.
func newBank(t *testing.T, st engine.Store) *bank.Engine {
	t.Helper()
	eng, err := bank.NewEngine(context.Background(), bank.State{}, bank.Bank{},
		engine.WithStore(st), engine.WithHeaders(otelheaders.Headers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// commitTraced opens two accounts (one message each) under a span and
// makes a transfer (one message) with no span in its context.
func commitTraced(t *testing.T, eng *bank.Engine) {
	t.Helper()
	traced := trace.ContextWithSpanContext(context.Background(), spanContext(t, ""))
	for _, id := range []string{"a", "b"} {
		if _, err := eng.OpenAccount(traced, bank.OpenAccountArgs{ID: id, Initial: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.Transfer(context.Background(), bank.TransferArgs{From: "a", To: "b", Amount: 1}); err != nil {
		t.Fatal(err)
	}
}

func checkTraced(t *testing.T, st outbox.Store) {
	t.Helper()
	msgs, err := st.Undelivered(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("store holds %d messages, want 3", len(msgs))
	}
	for _, m := range msgs[:2] {
		if len(m.Headers) != 1 || m.Headers[otelheaders.Traceparent] != wantTraceparent {
			t.Errorf("message %s (%s): headers %v, want traceparent %s", m.ID, m.Topic, m.Headers, wantTraceparent)
		}
	}
	if m := msgs[2]; len(m.Headers) != 0 {
		t.Errorf("message %s of a call without a span: headers %v, want none", m.ID, m.Headers)
	}
}

func TestTraceparentInTheMemoryStore(t *testing.T) {
	st := memory.New()
	commitTraced(t, newBank(t, st))
	checkTraced(t, st)
}

// The SQLite store keeps the headers with the message, across a restart.
func TestTraceparentInTheSQLiteStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	eng := newBank(t, st)
	commitTraced(t, eng)
	checkTraced(t, st)
	eng.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkTraced(t, st)
}

// With Headers set, a call whose context has no span allocates no more
// than with no headers func at all.
func TestNoSpanCommitAllocatesNothingMore(t *testing.T) {
	without := commitallocs.Transfer(t)
	with := commitallocs.Transfer(t, engine.WithHeaders(otelheaders.Headers))
	if with > without+commitallocs.Noise {
		t.Fatalf("a commit without a span allocates %.2f times with otelheaders.Headers, %.2f without", with, without)
	}
}
