package invbench

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

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

// BenchmarkCommitPair runs the two commits of BenchmarkCommit alternately,
// each timed on its own in CPU time of the thread that runs it (a commit
// on the memory store runs on the caller's goroutine, locked to its
// thread here), so that other processes on a busy machine do not count:
// it reports each one's time per commit and the difference
// (invariant-ns), what the invariant adds.
func BenchmarkCommitPair(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx := context.Background()
	e := newEngine(b)
	var none, checked int64
	for b.Loop() {
		t0 := threadNanos(b)
		if _, err := e.SellPlain(ctx, SellPlainArgs{Event: "e1"}); err != nil {
			b.Fatal(err)
		}
		t1 := threadNanos(b)
		if _, err := e.SellChecked(ctx, SellCheckedArgs{Event: "e1"}); err != nil {
			b.Fatal(err)
		}
		t2 := threadNanos(b)
		none += t1 - t0
		checked += t2 - t1
	}
	n := float64(b.N)
	b.ReportMetric(float64(none)/n, "none-ns")
	b.ReportMetric(float64(checked)/n, "checked-ns")
	b.ReportMetric(float64(checked-none)/n, "invariant-ns")
}

// threadNanos is the CPU time of the calling thread.
func threadNanos(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return ts.Nano()
}
