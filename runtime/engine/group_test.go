package engine_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// gate is a store that stands for a slow disk: each Commit announces its
// group on entered and waits for the test to release it with an error (nil
// persists the group in memory). It is not engine.InMemory, so the engine
// uses group commit with it. When the test ends, a Commit still waiting
// fails, so that a failed test ends instead of hanging in Close.
type gate struct {
	engine.Store
	entered chan []uint64 // the versions of each group handed to Commit
	release chan error
	done    chan struct{}
}

var errTestOver = errors.New("test over")

func newGate() *gate {
	return &gate{Store: memory.New(), entered: make(chan []uint64), release: make(chan error), done: make(chan struct{})}
}

// open makes g let go of its Commits when the test ends; call it after
// the engine on g was started, so that it runs before the engine's Close.
func (g *gate) open(t *testing.T) { t.Cleanup(func() { close(g.done) }) }

// newGateEngine starts an engine of procs on a gate.
func newGateEngine(t *testing.T, procs []*proc, opts ...engine.Option) (*engine.Engine[tstate], *gate) {
	g := newGate()
	e := newEngine(t, g, procs, opts...)
	g.open(t)
	return e, g
}

func (g *gate) Commit(ctx context.Context, recs []*engine.Record) error {
	vs := make([]uint64, len(recs))
	for i, r := range recs {
		vs[i] = r.Version
	}
	select {
	case g.entered <- vs:
	case <-g.done:
		return errTestOver
	}
	select {
	case err := <-g.release:
		if p, ok := err.(panicNow); ok {
			panic(p.value)
		}
		if err != nil {
			return err
		}
	case <-g.done:
		return errTestOver
	}
	return g.Store.Commit(ctx, recs)
}

// panicNow, sent on gate.release, makes Commit panic with value.
type panicNow struct{ value any }

func (panicNow) Error() string { return "panic" }

// within fails the test if ch yields nothing in a generous time: the
// engine would be stuck.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("stuck waiting for %s", what)
		panic("unreachable")
	}
}

// commitGroup waits for the next group to reach g, checks that it holds
// the versions want, and lets it commit.
func (g *gate) commitGroup(t *testing.T, want ...uint64) {
	t.Helper()
	if vs := within(t, g.entered, "a group"); !slices.Equal(vs, want) {
		t.Fatalf("group = %v, want %v", vs, want)
	}
	g.release <- nil
}

// receipts checks that every call returned a receipt.
func receipts(t *testing.T, calls ...<-chan result) {
	t.Helper()
	for _, ch := range calls {
		if res := within(t, ch, "a receipt"); res.err != nil {
			t.Fatal(res.err)
		}
	}
}

// returned is what a function run by async returned.
type returned[T any] struct {
	r   T
	err error
}

// async runs f in a goroutine and delivers what it returned on the
// channel it returns.
func async[T any](f func() (T, error)) <-chan returned[T] {
	ch := make(chan returned[T], 1)
	go func() {
		r, err := f()
		ch <- returned[T]{r, err}
	}()
	return ch
}

// result is what a call run in a goroutine returned.
type result = returned[engine.Receipt]

func goExec[S any](e *engine.Engine[S], proc int, c engine.Call[S]) <-chan result {
	return async(func() (engine.Receipt, error) { return e.Exec(context.Background(), proc, c) })
}

// sequenced waits until the engine has sequenced version v.
func sequenced[S any](t *testing.T, e *engine.Engine[S], v uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := engine.Sequenced(e)
		if got == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for version %d to be sequenced: the last is %d", v, got)
		}
		runtime.Gosched()
	}
}

// A caller gets its receipt once its own group is durable, even while the
// groups sequenced after it are still with the store: no caller carries
// the others' groups.
func TestReceiptDoesNotWaitForLaterGroups(t *testing.T) {
	procs := []*proc{incC0, incC1}
	e, g := newGateEngine(t, procs)
	first := goExec(e, 0, &call{p: incC0, arg: 1})
	if vs := within(t, g.entered, "the first group"); len(vs) != 1 || vs[0] != 1 {
		t.Fatalf("first group = %v, want [1]", vs)
	}
	// Two more commits are sequenced while the first group is in the store.
	second := goExec(e, 1, &call{p: incC1, arg: 1})
	third := goExec(e, 0, &call{p: incC0, arg: 1})
	sequenced(t, e, 3)
	g.release <- nil
	if res := within(t, first, "the first receipt"); res.err != nil || res.r.Version != 1 {
		t.Fatalf("first call: %+v, want version 1", res)
	}
	// The first caller returned; the next group is now in the store.
	g.commitGroup(t, 2, 3)
	receipts(t, second, third)
	if v, s := e.Snapshot(); v != 3 || s.C[0] != 2 || s.C[1] != 1 {
		t.Fatalf("version %d, state %+v; want 3, c0 2, c1 1", v, s.C)
	}
}

// heldFirstCommit starts an engine of procs (procs[0] must be incC0) on a
// gate and commits c0 += 10 as version 1, which it leaves with the store:
// sequenced, neither durable nor failed until the test releases the gate.
func heldFirstCommit(t *testing.T, procs []*proc) (*engine.Engine[tstate], *gate, <-chan result) {
	t.Helper()
	e, g := newGateEngine(t, procs)
	return e, g, holdFirstCommit(t, e, g, 0, &call{p: procs[0], arg: 10})
}

// holdFirstCommit makes c, a call of process proc, commit version 1 on a
// fresh engine on g, and returns once its group is with the store.
func holdFirstCommit[S any](t *testing.T, e *engine.Engine[S], g *gate, proc int, c engine.Call[S]) <-chan result {
	t.Helper()
	first := goExec(e, proc, c)
	if vs := within(t, g.entered, "the first group"); len(vs) != 1 || vs[0] != 1 {
		t.Fatalf("first group = %v, want [1]", vs)
	}
	return first
}

// A call runs on the latest sequenced snapshot, which may still be with
// the store. If that group then fails, the run read state that never
// existed: its commit must not land on top of it (it runs again on the
// recovered state), and its result must reflect the recovered state.
func TestRunOnALostSnapshotRunsAgain(t *testing.T) {
	e, g, lost := heldFirstCommit(t, []*proc{incC0})
	// The second call reads c0 = 10 from the sequenced snapshot, and waits
	// inside its run until the first group has failed.
	inRun, resume := make(chan struct{}), make(chan struct{})
	c := &call{p: incC0, arg: 1}
	c.hook = func() {
		if c.runs == 1 {
			close(inRun)
			<-resume
		}
	}
	second := goExec(e, 0, c)
	within(t, inRun, "the second call's first run")
	g.release <- errInjected
	if res := within(t, lost, "the failed call"); !errors.Is(res.err, engine.ErrStore) {
		t.Fatalf("failed group: %v, want ErrStore", res.err)
	}
	close(resume)
	within(t, g.entered, "the second call's group")
	g.release <- nil
	res := within(t, second, "the second call")
	if res.err != nil || res.r.Version != 1 {
		t.Fatalf("second call: %+v, want version 1", res)
	}
	if c.runs != 2 {
		t.Fatalf("the second call ran %d times, want 2 (once on the lost snapshot, once after)", c.runs)
	}
	if _, s := e.Snapshot(); s.C[0] != 1 {
		t.Fatalf("c0 = %d, want 1: the lost write of 10 must not show through", s.C[0])
	}
}

// zeroOnly sets c1 to its argument if c0 is zero, and fails otherwise: its
// error depends on the snapshot it ran on.
var zeroOnly = &proc{name: "c1_if_c0_zero", inputs: []int{pathC0}, outputs: []int{pathC1},
	fn: func(in []int, arg int) ([]int, []string, error) {
		if in[0] != 0 {
			return nil, nil, errors.New("c0 is not zero")
		}
		return []int{arg}, nil, nil
	}}

// An error a process returns on a snapshot still with the store is not
// returned before that snapshot is durable: if its group fails, the call
// runs again on the recovered state, where it may well succeed.
func TestErrorOnALostSnapshotIsNotReturned(t *testing.T) {
	e, g, lost := heldFirstCommit(t, []*proc{incC0, zeroOnly})
	ran := make(chan struct{})
	c := &call{p: zeroOnly, arg: 5}
	c.hook = func() {
		if c.runs == 1 {
			close(ran)
		}
	}
	second := goExec(e, 1, c)
	within(t, ran, "the run on the undecided snapshot")
	// The run saw c0 = 10 and failed; the call cannot return that while
	// the snapshot is undecided. Fail its group.
	g.release <- errInjected
	if res := within(t, lost, "the failed call"); !errors.Is(res.err, engine.ErrStore) {
		t.Fatalf("failed group: %v, want ErrStore", res.err)
	}
	within(t, g.entered, "the second call's group")
	g.release <- nil
	if res := within(t, second, "the second call"); res.err != nil {
		t.Fatalf("second call: %v; the error was decided on a snapshot that was lost", res.err)
	}
	if _, s := e.Snapshot(); s.C[0] != 0 || s.C[1] != 5 {
		t.Fatalf("state %+v, want c0 0 and c1 5", s.C)
	}
}

// The same error, on a snapshot that becomes durable, is returned once it
// is.
func TestErrorOnADurableSnapshotIsReturned(t *testing.T) {
	e, g, first := heldFirstCommit(t, []*proc{incC0, zeroOnly})
	second := goExec(e, 1, &call{p: zeroOnly, arg: 5})
	g.release <- nil
	if res := within(t, first, "the first call"); res.err != nil {
		t.Fatal(res.err)
	}
	var pe *engine.ProcessError
	if res := within(t, second, "the second call"); !errors.As(res.err, &pe) {
		t.Fatalf("second call: %+v, want the process's error", res)
	}
}

// readersSee fails unless Snapshot and a pure call read version v, where
// c0 is c0.
func readersSee(t *testing.T, e *engine.Engine[tstate], pure int, v uint64, c0 int, when string) {
	t.Helper()
	if got, s := e.Snapshot(); got != v || s.C[0] != c0 {
		t.Fatalf("%s: Snapshot is version %d with c0 %d, want %d and %d", when, got, s.C[0], v, c0)
	}
	c := &call{p: readC0}
	r, err := e.Exec(context.Background(), pure, c)
	if err != nil || r.Version != v || c.in[0] != c0 {
		t.Fatalf("%s: pure call (%+v, %v) read c0 %v, want version %d and c0 %d", when, r, err, c.in, v, c0)
	}
}

// Readers (Snapshot and pure calls) see durable versions only: not a
// version while the store holds its group, nor after the group failed; a
// version once its receipt was returned.
func TestReadersSeeDurableVersionsOnly(t *testing.T) {
	const pure = 1
	e, g, lost := heldFirstCommit(t, []*proc{incC0, readC0})
	readersSee(t, e, pure, 0, 0, "while version 1 is with the store")
	g.release <- errInjected
	if res := within(t, lost, "the failed call"); !errors.Is(res.err, engine.ErrStore) {
		t.Fatalf("failed group: %v, want ErrStore", res.err)
	}
	readersSee(t, e, pure, 0, 0, "after version 1 failed")

	second := goExec(e, 0, &call{p: incC0, arg: 5})
	within(t, g.entered, "the second group")
	readersSee(t, e, pure, 0, 0, "while version 1 is with the store again")
	g.release <- nil
	if res := within(t, second, "the second call"); res.err != nil || res.r.Version != 1 {
		t.Fatalf("second call: %+v, want version 1", res)
	}
	readersSee(t, e, pure, 1, 5, "once version 1's receipt was returned")
}

// goCAS runs a CompareAndSwap in a goroutine; r is the version it
// committed.
func goCAS[S any](e *engine.Engine[S], expected uint64, p engine.Change[S]) <-chan returned[uint64] {
	return async(func() (uint64, error) { return e.CompareAndSwap(context.Background(), expected, p) })
}

// signal returns a channel and a function that sends on it without ever
// blocking, for hooks that may run more than once.
func signal() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	return ch, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
