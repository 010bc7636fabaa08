package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

// runningCall starts a call of incC0 (c0 += 1) on e whose first run waits
// in the process until the test closes proceed, and returns once it runs.
func runningCall(t *testing.T, e *engine.Engine[tstate]) (done <-chan result, proceed chan struct{}) {
	t.Helper()
	running, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	done = goExec(e, 0, &call{p: incC0, arg: 1, hook: func() {
		once.Do(func() {
			close(running)
			<-proceed
		})
	}})
	within(t, running, "the call to run")
	return done, proceed
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

// heldWithPending starts an engine of incC0 and incC1 on a gate (a
// sharedGate if shared), commits version 1 (c0 += 10) and leaves it with
// the store, then sequences version 2 (c1 += 1), which waits for the next
// group. A group waits up to linger (if not 0) for calls to join it, and
// closes lingering (if not nil) the first time it waits.
func heldWithPending(t *testing.T, shared bool, linger time.Duration, lingering chan struct{}) (e *engine.Engine[tstate], g *gate, first, second <-chan result) {
	t.Helper()
	g = newGate()
	var st engine.Store = g
	if shared {
		st = sharedGate{g}
	}
	e = newEngine(t, st, []*proc{incC0, incC1})
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
	e, g, first, second := heldWithPending(t, true, time.Minute, lingering)
	third, proceed := runningCall(t, e)
	g.release <- nil
	receipts(t, first)
	within(t, lingering, "the second group to wait for the third call")
	close(proceed)
	g.commitGroup(t, 2, 3)
	receipts(t, second, third)
	if v, s := e.Snapshot(); v != 3 || s.C[0] != 11 || s.C[1] != 1 {
		t.Fatalf("version %d, state %+v; want 3, c0 11, c1 1", v, s.C)
	}
}

// A caller that got its receipt and left holds no group back: with no
// other call inside the engine, the next group goes to the store at once,
// however long a group may wait.
func TestGroupDoesNotWaitForCallersThatLeft(t *testing.T) {
	_, g, first, second := heldWithPending(t, true, time.Hour, nil)
	g.release <- nil
	receipts(t, first)
	g.commitGroup(t, 2)
	receipts(t, second)
}

// A group waits for a running call for a bounded time only (linger 0: the
// engine's bound): a call that takes long does not hold the commits before
// it back.
func TestGroupWaitIsBounded(t *testing.T) {
	e, g, first, second := heldWithPending(t, true, 0, nil)
	third, proceed := runningCall(t, e)
	g.release <- nil
	g.commitGroup(t, 2)
	receipts(t, first, second)
	close(proceed)
	g.commitGroup(t, 3)
	receipts(t, third)
}

// On a local store a group does not wait for the calls inside the engine:
// a store that works on the machine's CPUs needs them as much as the
// callers do.
func TestLocalStoreGroupDoesNotWait(t *testing.T) {
	lingering := make(chan struct{})
	e, g, first, second := heldWithPending(t, false, time.Hour, lingering)
	third, proceed := runningCall(t, e)
	g.release <- nil
	g.commitGroup(t, 2)
	select {
	case <-lingering:
		t.Fatal("a group on a local store waited for a call")
	default:
	}
	close(proceed)
	g.commitGroup(t, 3)
	receipts(t, first, second, third)
}

// During an exclusive turn (here a CompareAndSwap's, which waits for the
// commits in flight to settle) a group does not wait for the calls inside
// the engine: the turn holds them back and waits for the group.
func TestGroupDoesNotWaitDuringAnExclusiveTurn(t *testing.T) {
	e, g, first, second := heldWithPending(t, true, time.Hour, nil)
	third, proceed := runningCall(t, e)
	waiting, wait := signal()
	engine.OnWait(e, wait)
	cas := goCAS(e, 0, patch{pathC0: 7})
	within(t, waiting, "the CompareAndSwap's turn")
	g.release <- nil
	g.commitGroup(t, 2)
	if res := within(t, cas, "the CompareAndSwap"); !errors.Is(res.err, engine.ErrVersionMismatch) {
		t.Fatalf("CompareAndSwap: %+v, want ErrVersionMismatch", res)
	}
	close(proceed)
	g.commitGroup(t, 3)
	receipts(t, first, second, third)
}
