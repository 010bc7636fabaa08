package invbench

import (
	"context"
	"errors"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

func newEngine(tb testing.TB) *Engine {
	tb.Helper()
	events := map[string]Event{"e1": {ID: "e1", Capacity: 1000}}
	e, err := NewEngine(context.Background(), State{Domain: DomainState{Checked: events, Plain: events}}, Procs{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

// The invariant is checked on the checked collection only.
func TestInvariant(t *testing.T) {
	e := newEngine(t)
	var p Patch
	p.PutChecked("e1", Event{ID: "e1", Sold: 2, Capacity: 1})
	if _, err := e.CompareAndSwap(context.Background(), 0, p); !errors.Is(err, engine.ErrRuleViolation) {
		t.Fatalf("err = %v, want the invariant", err)
	}
	var q Patch
	q.PutPlain("e1", Event{ID: "e1", Sold: 2, Capacity: 1})
	if _, err := e.CompareAndSwap(context.Background(), 0, q); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCommit is a commit that reads and writes one entry of a
// collection, through the memory store, with one CEL invariant on the
// entries (Invariant) and without (None).
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	b.Run("None", func(b *testing.B) {
		e := newEngine(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.SellPlain(ctx, SellPlainArgs{Event: "e1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Invariant", func(b *testing.B) {
		e := newEngine(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.SellChecked(ctx, SellCheckedArgs{Event: "e1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
