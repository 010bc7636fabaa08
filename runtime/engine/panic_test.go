package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// storePanicked fails unless err is the StoreError of the group of
// version v that the store's panic with value failed.
func storePanicked(t *testing.T, err error, v uint64, value any) {
	t.Helper()
	var se *engine.StoreError
	var pe *engine.PanicError
	if !errors.Is(err, engine.ErrStore) || !errors.As(err, &se) || se.Version != v {
		t.Fatalf("err = %v, want a StoreError for version %d", err, v)
	}
	if !errors.Is(err, engine.ErrPanic) || !errors.As(err, &pe) || pe.Value != value || len(pe.Stack) == 0 || pe.Process != "" {
		t.Fatalf("err = %#v, want it to carry the store's panic %v and a stack", err, value)
	}
	if want := fmt.Sprintf("theus: store failed to persist version %d: panic: %v", v, value); err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
}

// A panic in Store.Commit, in the caller's goroutine or in the engine's
// flush goroutine, fails that group like an error; the engine goes on.
func TestStorePanicFailsItsGroup(t *testing.T) {
	e, g := newGateEngine(t, []*proc{incC0})
	// The first caller hands its own group to the store.
	first := goExec(e, 0, &call{p: incC0, arg: 1})
	within(t, g.entered, "the first group")
	g.release <- panicNow{"store boom"}
	storePanicked(t, within(t, first, "the first call").err, 1, "store boom")

	// The second group is handed over by the engine's goroutine.
	second := goExec(e, 0, &call{p: incC0, arg: 2})
	within(t, g.entered, "the second call's group")
	third := goExec(e, 0, &call{p: incC0, arg: 3})
	sequenced(t, e, 2)
	g.release <- nil
	if res := within(t, second, "the second call"); res.err != nil || res.r.Version != 1 {
		t.Fatalf("second call: %+v, want version 1", res)
	}
	within(t, g.entered, "the third call's group")
	g.release <- panicNow{"flush boom"}
	storePanicked(t, within(t, third, "the third call").err, 2, "flush boom")

	// The engine is usable: the next commit reuses version 2.
	fourth := goExec(e, 0, &call{p: incC0, arg: 4})
	within(t, g.entered, "the fourth call's group")
	g.release <- nil
	if res := within(t, fourth, "the fourth call"); res.err != nil || res.r.Version != 2 {
		t.Fatalf("fourth call: %+v, want version 2", res)
	}
	if v, s := e.Snapshot(); v != 2 || s.C[0] != 6 {
		t.Fatalf("version %d, c0 %d; want 2 and 6", v, s.C[0])
	}
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	if err := within(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
}

// panicky is a memory store (so the engine commits to it with its lock
// held) whose next Commit panics when panicNext is set.
type panicky struct {
	*memory.Store
	panicNext atomic.Bool
}

func (p *panicky) Commit(ctx context.Context, recs []*engine.Record) error {
	if p.panicNext.CompareAndSwap(true, false) {
		panic("memory boom")
	}
	return p.Store.Commit(ctx, recs)
}

func TestInMemoryStorePanicFailsItsCommit(t *testing.T) {
	procs := []*proc{incC0}
	st := &panicky{Store: memory.New()}
	e := newEngine(t, st, procs)
	if _, ok := engine.Store(st).(engine.InMemory); !ok {
		t.Fatal("the test store does not take the in-memory path")
	}
	st.panicNext.Store(true)
	_, err := exec(t, e, procs, incC0, &call{arg: 1})
	storePanicked(t, err, 1, "memory boom")
	if r, err := exec(t, e, procs, incC0, &call{arg: 2}); err != nil || r.Version != 1 {
		t.Fatalf("next call: (%+v, %v), want version 1", r, err)
	}
	if v, s := e.Snapshot(); v != 1 || s.C[0] != 2 {
		t.Fatalf("version %d, c0 %d; want 1 and 2", v, s.C[0])
	}
	if n := len(undelivered(t, st)); n != 1 {
		t.Fatalf("%d messages, want the second call's only", n)
	}
}
