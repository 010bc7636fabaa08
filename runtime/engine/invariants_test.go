package engine_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// The engine's side of state invariants, with a check written in Go in
// place of the CEL one generated code compiles (runtime/celcheck, tested
// end to end with generated code in internal/gen/testdata/invariants).

var (
	setPX = &proc{name: "set_px", inputs: []int{pathPX}, outputs: []int{pathPX},
		fn: func(_ []int, arg int) ([]int, []string, error) { return []int{arg}, nil, nil }}
	setPY = &proc{name: "set_py", inputs: []int{pathPY}, outputs: []int{pathPY},
		fn: func(_ []int, arg int) ([]int, []string, error) { return []int{arg}, nil, nil }}
)

// invariantEngine starts an engine of procs on st with the invariant
// domain.p: x <= y, and p at {0, 10}.
func invariantEngine(t *testing.T, st engine.Store, procs ...*proc) *engine.Engine[tstate] {
	t.Helper()
	s := schema(procs...)
	s.State = []engine.StateField[tstate]{engine.ValueField("domain.p", "pair", func(s *tstate) *pair { return &s.P })}
	s.Invariants = []engine.Invariant{{Path: "domain.p", Field: 0, Rule: "check", Check: "self.x <= self.y", Must: "satisfy self.x <= self.y"}}
	s.CompileCheck = func(expr string, typ reflect.Type, sub []string) (func(any) (bool, any, error), error) {
		if expr != "self.x <= self.y" || typ != reflect.TypeFor[pair]() || len(sub) != 0 {
			t.Errorf("CompileCheck(%q, %v, %v)", expr, typ, sub)
		}
		return func(v any) (bool, any, error) {
			p := v.(*pair)
			return p.X <= p.Y, *p, nil
		}, nil
	}
	e, err := engine.New(context.Background(), s, tstate{P: pair{0, 10}}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestInvariantOnWhatAPathBelowWrote(t *testing.T) {
	procs := []*proc{setPX, setPY}
	e := invariantEngine(t, memory.New(), procs...)
	_, err := exec(t, e, procs, setPX, &call{arg: 11})
	var re *engine.RuleError
	if !errors.As(err, &re) || !re.Invariant || re.Process != "set_px" || re.Value != (pair{11, 10}) {
		t.Fatalf("err = %v, want the invariant on domain.p", err)
	}
	if v, s := e.Snapshot(); v != 0 || s.P != (pair{0, 10}) {
		t.Fatalf("a refused commit left version %d, p %+v", v, s.P)
	}
	if r, err := exec(t, e, procs, setPY, &call{arg: 20}); err != nil || r.Version != 1 {
		t.Fatalf("set_py: %v, version %d", err, r.Version)
	}
	if _, err := exec(t, e, procs, setPX, &call{arg: 11}); err != nil {
		t.Fatalf("x = 11 with y = 20: %v", err)
	}
}

// A commit refused on state still with the store is refused only once
// that state is durable; if the store fails it instead, the call runs
// again on the recovered state, where the invariant may well hold.
func TestInvariantRefusalOnALostSnapshotRunsAgain(t *testing.T) {
	procs := []*proc{setPY, setPX}
	g := newGate()
	e := invariantEngine(t, g, procs...)
	g.open(t)
	lost := holdFirstCommit(t, e, g, 0, &call{p: setPY, arg: 0}) // y = 0, with the store
	refused := make(chan struct{}, 1)
	engine.OnRefuse(e, func() { refused <- struct{}{} })
	c := &call{p: setPX, arg: 5}
	second := goExec(e, 1, c) // x = 5 breaks x <= y on the sequenced state
	within(t, refused, "the refusal on the sequenced state")
	g.release <- errInjected
	if res := within(t, lost, "the failed call"); !errors.Is(res.err, engine.ErrStore) {
		t.Fatalf("failed group: %v, want ErrStore", res.err)
	}
	within(t, g.entered, "the second call's group")
	g.release <- nil
	res := within(t, second, "the second call")
	if res.err != nil || res.r.Version != 1 {
		t.Fatalf("second call: %+v, want version 1 (y is 10 again)", res)
	}
	if _, s := e.Snapshot(); s.P != (pair{5, 10}) {
		t.Fatalf("p = %+v, want {5 10}", s.P)
	}
	if c.runs != 2 {
		t.Fatalf("the second call ran %d times, want 2 (refused on the lost state, then committed)", c.runs)
	}
}

// When the state a refusal was decided on becomes durable, the refusal
// stands.
func TestInvariantRefusalOnADurableSnapshot(t *testing.T) {
	procs := []*proc{setPY, setPX}
	g := newGate()
	e := invariantEngine(t, g, procs...)
	g.open(t)
	first := holdFirstCommit(t, e, g, 0, &call{p: setPY, arg: 0})
	refused := make(chan struct{}, 1)
	engine.OnRefuse(e, func() { refused <- struct{}{} })
	c := &call{p: setPX, arg: 5}
	second := goExec(e, 1, c)
	within(t, refused, "the refusal on the sequenced state")
	g.release <- nil
	if res := within(t, first, "the first call"); res.err != nil {
		t.Fatal(res.err)
	}
	res := within(t, second, "the second call")
	if !errors.Is(res.err, engine.ErrRuleViolation) || c.runs != 1 {
		t.Fatalf("second call: %v after %d runs, want the invariant after 1", res.err, c.runs)
	}
}

// With several engines on one store, a commit that held its invariants on
// the state it was sequenced on, but not once rebased onto another
// engine's commit that the store ordered first, runs again, and is
// refused: engine A sets x = 5 (y is 10) while engine B sets y = 0.
func TestInvariantAfterRebase(t *testing.T) {
	procs := []*proc{setPX, setPY}
	start := func(st engine.Store) *engine.Engine[tstate] {
		s := sharedSchema(procs...)
		s.Invariants = []engine.Invariant{{Path: "domain.p", Field: 4, Rule: "check", Check: "self.x <= self.y"}}
		s.CompileCheck = func(string, reflect.Type, []string) (func(any) (bool, any, error), error) {
			return func(v any) (bool, any, error) { p := v.(*pair); return p.X <= p.Y, *p, nil }, nil
		}
		e, err := engine.New(context.Background(), s, tstate{P: pair{0, 10}}, engine.WithStore(st))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	log := newSharedLog()
	gated := &gatedShared{sharedStore: &sharedStore{log: log, instance: 0}, gate: make(chan struct{}), waiting: make(chan struct{})}
	a, b := start(gated), start(&sharedStore{log: log, instance: 1})
	c := &call{p: setPX, arg: 5}
	done := goExec(a, 0, c)
	within(t, gated.waiting, "A's commit with the store") // {5, 10} holds
	if _, err := b.Exec(context.Background(), 1, &call{p: setPY, arg: 0}); err != nil {
		t.Fatal(err) // version 1: {0, 0}
	}
	close(gated.gate)
	res := within(t, done, "A's call")
	var re *engine.RuleError
	if !errors.As(res.err, &re) || !re.Invariant || c.runs != 2 {
		t.Fatalf("A's call: %v after %d runs, want the invariant after 2", res.err, c.runs)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.commits) != 1 || log.commits[0].state.P != (pair{0, 0}) {
		t.Fatalf("the log holds %d commits, the last %+v; want B's alone", len(log.commits), log.commits[len(log.commits)-1].state)
	}
}
