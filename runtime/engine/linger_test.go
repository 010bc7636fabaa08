package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

// blockedCall is a call of incC0 whose first run signals running and then
// waits for the test to close proceed.
func blockedCall() (c *call, running <-chan struct{}, proceed chan struct{}) {
	r, p := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c = &call{p: incC0, arg: 1, hook: func() {
		once.Do(func() {
			close(r)
			<-p
		})
	}}
	return c, r, p
}

// sharedGate is a gate that the engine takes for a shared store, whose
// groups wait for the calls inside the engine (a local store's do not).
// No other engine commits, so it has nothing to rebase on.
type sharedGate struct{ *gate }

var _ engine.SharedStore = sharedGate{}

func (g sharedGate) CommitShared(ctx context.Context, recs []*engine.Record, _ *engine.Footprint, _ func([]engine.Remote, bool) ([]*engine.Record, error)) error {
	return g.Commit(ctx, recs)
}

func (g sharedGate) Follow(ctx context.Context, _ uint64, _ func([]engine.Remote) uint64) error {
	<-ctx.Done()
	return nil
}

func (g sharedGate) Head(context.Context) (uint64, error) {
	return 0, errors.New("sharedGate: no Head")
}

// heldWithPending starts an engine of incC0 and incC1 on a sharedGate,
// commits version 1 (c0 += 10) and leaves it with the store, then
// sequences version 2 (c1 += 1), which waits for the next group. A group
// waits up to linger (if not 0) for calls to join it, and closes lingering
// (if not nil) the first time it waits.
func heldWithPending(t *testing.T, linger time.Duration, lingering chan struct{}) (e *engine.Engine[tstate], g *gate, first, second <-chan result) {
	t.Helper()
	g = newGate()
	e = newEngine(t, sharedGate{g}, []*proc{incC0, incC1})
	g.open(t)
	first = holdFirstCommit(t, e, g, 0, &call{p: incC0, arg: 10})
	if linger > 0 {
		var once sync.Once
		engine.LingerFor(e, linger, func() {
			if lingering != nil {
				once.Do(func() { close(lingering) })
			}
		})
	}
	second = goExec(e, 1, &call{p: incC1, arg: 1})
	sequenced(t, e, 2)
	return e, g, first, second
}

// A call that is running its process when a group settles joins the next
// group, which waits for it, rather than following it in a group of its
// own.
func TestGroupWaitsForRunningCalls(t *testing.T) {
	lingering := make(chan struct{})
	e, g, first, second := heldWithPending(t, time.Minute, lingering)
	c, running, proceed := blockedCall()
	third := goExec(e, 0, c)
	within(t, running, "the third call to run")
	g.release <- nil
	if res := within(t, first, "the first receipt"); res.err != nil {
		t.Fatal(res.err)
	}
	within(t, lingering, "the second group to wait for the third call")
	close(proceed)
	if vs := within(t, g.entered, "the second group"); len(vs) != 2 || vs[0] != 2 || vs[1] != 3 {
		t.Fatalf("second group = %v, want [2 3]", vs)
	}
	g.release <- nil
	for _, ch := range []<-chan result{second, third} {
		if res := within(t, ch, "a receipt of the second group"); res.err != nil {
			t.Fatal(res.err)
		}
	}
	if v, s := e.Snapshot(); v != 3 || s.C[0] != 11 || s.C[1] != 1 {
		t.Fatalf("version %d, state %+v; want 3, c0 11, c1 1", v, s.C)
	}
}

// A caller that got its receipt and left holds no group back: with no
// other call inside the engine, the next group goes to the store at once,
// however long a group may wait.
func TestGroupDoesNotWaitForCallersThatLeft(t *testing.T) {
	_, g, first, second := heldWithPending(t, time.Hour, nil)
	g.release <- nil
	if res := within(t, first, "the first receipt"); res.err != nil {
		t.Fatal(res.err)
	}
	if vs := within(t, g.entered, "the second group"); len(vs) != 1 || vs[0] != 2 {
		t.Fatalf("second group = %v, want [2]", vs)
	}
	g.release <- nil
	if res := within(t, second, "the second receipt"); res.err != nil {
		t.Fatal(res.err)
	}
}

// A group waits for a running call for a bounded time only: a call that
// takes long does not hold the commits before it back.
func TestGroupWaitIsBounded(t *testing.T) {
	e, g, first, second := heldWithPending(t, 0, nil)
	c, running, proceed := blockedCall()
	third := goExec(e, 0, c)
	within(t, running, "the third call to run")
	g.release <- nil
	if vs := within(t, g.entered, "the second group"); len(vs) != 1 || vs[0] != 2 {
		t.Fatalf("second group = %v, want [2]", vs)
	}
	g.release <- nil
	for _, ch := range []<-chan result{first, second} {
		if res := within(t, ch, "a receipt"); res.err != nil {
			t.Fatal(res.err)
		}
	}
	close(proceed)
	if vs := within(t, g.entered, "the third group"); len(vs) != 1 || vs[0] != 3 {
		t.Fatalf("third group = %v, want [3]", vs)
	}
	g.release <- nil
	if res := within(t, third, "the third receipt"); res.err != nil {
		t.Fatal(res.err)
	}
}

// On a local store a group does not wait for the calls inside the engine:
// a store that works on the machine's CPUs needs them as much as the
// callers do.
func TestLocalStoreGroupDoesNotWait(t *testing.T) {
	e, g, first := heldFirstCommit(t, []*proc{incC0, incC1})
	lingering := make(chan struct{})
	var once sync.Once
	engine.LingerFor(e, time.Hour, func() { once.Do(func() { close(lingering) }) })
	second := goExec(e, 1, &call{p: incC1, arg: 1})
	sequenced(t, e, 2)
	c, running, proceed := blockedCall()
	third := goExec(e, 0, c)
	within(t, running, "the third call to run")
	g.release <- nil
	if vs := within(t, g.entered, "the second group"); len(vs) != 1 || vs[0] != 2 {
		t.Fatalf("second group = %v, want [2]", vs)
	}
	select {
	case <-lingering:
		t.Fatal("a group on a local store waited for a call")
	default:
	}
	g.release <- nil
	close(proceed)
	within(t, g.entered, "the third group")
	g.release <- nil
	for _, ch := range []<-chan result{first, second, third} {
		if res := within(t, ch, "a receipt"); res.err != nil {
			t.Fatal(res.err)
		}
	}
}
