package engine_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// A hand-written stand-in for a generated process over the frame machinery:
// output 0 is a float (which JSON may refuse), output 1 a collection; the
// frame's run sets what its script says, emits, sets a result, and its
// rules refuse a negative value.

type fstate struct {
	F float64
	M engine.Collection[string, int]
}

type fscript struct {
	setF    *float64
	put     map[string]int
	emit    []string
	result  string
	keepOut **engine.Out
}

// frules records the outputs that the rules were checked on, in order.
var frules []int

func frun(_ context.Context, _, args, _ any, o *engine.Out) error {
	a := args.(*fscript)
	frules = frules[:0]
	if a.keepOut != nil {
		*a.keepOut = o
	}
	if a.setF != nil {
		engine.SetOutput(o, 0, *a.setF)
	}
	w := engine.OutputWriter[string, int](o, 1, nil)
	for k, v := range a.put {
		w.Put(k, v)
	}
	for _, t := range a.emit {
		o.Tx().Emit(t, "", []byte(`{}`))
		if o.Keep() {
			o.Kept(t, t+"!")
		}
	}
	if a.result != "" {
		engine.SetResult(o, a.result)
	}
	return nil
}

func fcheck(tx *engine.Tx, i int, out, _ any) {
	frules = append(frules, i)
	if p, ok := out.(*float64); ok && *p < 0 {
		tx.Fail(errors.New("negative"))
	}
}

var fschema = &engine.Schema[fstate]{
	Paths: []string{"domain.f", "domain.m"},
	Clone: func(s *fstate) fstate { return *s },
	Outputs: []engine.Output[fstate]{
		0: engine.ValueOutput("domain.f", func(s *fstate) *float64 { return &s.F }, func(p *float64) error {
			if math.IsNaN(*p) {
				return errors.New("NaN")
			}
			return nil
		}),
		1: engine.CollectionOutput("domain.m", func(s *fstate) *engine.Collection[string, int] { return &s.M }, nil),
	},
	Processes: []engine.ProcessSpec{{Name: "p", Args: (*fscript)(nil), Run: frun, Rules: fcheck, Outputs: []int{0, 1}, Emits: []string{"t1", "t2"}}},
	Collections: []engine.CollectionSpec[fstate]{{Path: 1, Version: func(s *fstate, k string) (uint64, bool) {
		return engine.CollectionVersion(s.M, k)
	}}},
}

func ptr(f float64) *float64 { return &f }

// feffects is fschema's process's effects as a RunX declares them: its
// outputs, its topics, its result.
type feffects struct {
	F      *float64
	M      map[string]*int
	T1, T2 []string
	Result string
}

// RunEffects fills the effects in the order of their fields, with nothing
// for what the run did not write or emit, and nothing at all for a run
// that failed.
func TestRunEffects(t *testing.T) {
	var eff feffects
	err := engine.RunEffects(context.Background(), fschema, 0, nil, &fscript{setF: ptr(2.5), put: map[string]int{"a": 1}, emit: []string{"t1", "t2", "t1"}, result: "ok"}, &fstate{}, &eff)
	if err != nil {
		t.Fatal(err)
	}
	if eff.F == nil || *eff.F != 2.5 || len(eff.M) != 1 || *eff.M["a"] != 1 || eff.Result != "ok" ||
		!slices.Equal(eff.T1, []string{"t1!", "t1!"}) || !slices.Equal(eff.T2, []string{"t2!"}) {
		t.Errorf("effects of a run that did everything: %+v", eff)
	}
	for _, s := range []*fscript{{}, {setF: ptr(-1), put: map[string]int{"a": 1}, emit: []string{"t1"}, result: "ok"}} {
		eff = feffects{}
		err = engine.RunEffects(context.Background(), fschema, 0, nil, s, &fstate{}, &eff)
		if (err != nil) != (s.setF != nil) || eff.F != nil || eff.M != nil || eff.T1 != nil || eff.T2 != nil || eff.Result != "" {
			t.Errorf("effects of %+v: %+v, %v; want none", s, eff, err)
		}
	}
}

// newFrameEngine starts an engine of fschema on a memory store, closed
// when t ends.
func newFrameEngine(t *testing.T) *engine.Engine[fstate] {
	t.Helper()
	e, err := engine.New(context.Background(), fschema, fstate{M: engine.NewCollection[string, int](nil, nil)}, engine.WithStore(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// The engine applies what a call wrote, checks an output against its
// Output's valid function before the rules, and a pooled call forgets the
// previous call's result, pending entries and outputs.
func TestFrameCallCommits(t *testing.T) {
	ctx := context.Background()
	e := newFrameEngine(t)
	call := func(s fscript) (engine.ReceiptOf[string], []int, error) {
		c := engine.Take(e, 0, nil)
		*c.Args().(*fscript) = s
		r, err := engine.ExecResult[string](ctx, c)
		return r, frules, err
	}
	first, f, err := call(fscript{setF: ptr(1.5), put: map[string]int{"a": 1}, result: "first"})
	if err != nil || first.Result != "first" {
		t.Fatalf("first call: %v, %+v", err, first)
	}
	if len(f) != 2 || f[0] != 0 || f[1] != 1 {
		t.Errorf("rules checked on outputs %v, want [0 1]", f)
	}
	_, s := e.Snapshot()
	if v, ok := engine.CollectionGet(s.M, "a"); s.F != 1.5 || !ok || *v != 1 {
		t.Fatalf("state after the first call: %v, %v", s.F, s.M)
	}
	// The pool may hand the same call back: nothing of the first call
	// may show in the second, which sets nothing.
	r, f, err := call(fscript{put: map[string]int{"b": 2}})
	if err != nil || r.Result != "" {
		t.Fatalf("second call: %v, %+v (a previous result leaked?)", err, r)
	}
	if len(f) != 1 || f[0] != 1 {
		t.Errorf("rules checked on outputs %v, want [1]: output 0 was not written", f)
	}
	_, s = e.Snapshot()
	if s.F != 1.5 || engine.CollectionLen(s.M) != 2 {
		t.Fatalf("state after the second call: %v, %d entries", s.F, engine.CollectionLen(s.M))
	}
	if va, _ := engine.CollectionVersion(s.M, "a"); va != first.Version {
		t.Errorf("entry a is of version %d, want %d: the second call wrote it again", va, first.Version)
	}
	// valid refuses NaN before the rules run.
	_, _, err = call(fscript{setF: ptr(math.NaN())})
	if err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN: err = %v", err)
	}
	_, s = e.Snapshot()
	if s.F != 1.5 {
		t.Errorf("a refused call changed the state: %v", s.F)
	}
	// An Out kept past its call panics on use.
	var kept *engine.Out
	if _, _, err := call(fscript{keepOut: &kept}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("SetOutput on a stale Out did not panic")
		}
	}()
	engine.SetOutput(kept, 0, 3.0)
}

// Exec of a generated call reaches the engine's untyped implementation
// without an allocation: a commit on the memory store, which recycles its
// snapshots, allocates nothing per call (the Out handles, a sixteenth of
// an allocation a run, round down to nothing).
func TestFrameCallExecDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	e := newFrameEngine(t)
	c := engine.NewFrameCall(fschema, 0, nil, &fscript{setF: ptr(1)})
	exec := func() {
		if _, err := e.Exec(ctx, 0, c); err != nil {
			t.Fatal(err)
		}
	}
	exec()
	if n := testing.AllocsPerRun(100, exec); n != 0 {
		t.Errorf("a commit of a FrameCall allocates %v times", n)
	}
	if v, s := e.Snapshot(); v != 102 || s.F != 1 {
		t.Errorf("after 102 commits: version %d, F %v", v, s.F)
	}
}
