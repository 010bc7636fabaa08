package engine_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
	"weak"

	"go.uber.org/goleak"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func exec(t *testing.T, e *engine.Engine[tstate], procs []*proc, p *proc, c *call) (engine.Receipt, error) {
	t.Helper()
	for i, q := range procs {
		if q == p {
			c.p = p
			return e.Exec(context.Background(), i, c)
		}
	}
	t.Fatalf("process %s not registered", p.name)
	return engine.Receipt{}, nil
}

func undelivered(t *testing.T, st outbox.Store) []outbox.Message {
	t.Helper()
	msgs, err := st.Undelivered(context.Background(), 1<<20)
	if err != nil {
		t.Fatalf("Undelivered: %v", err)
	}
	return msgs
}

func TestCommitAppliesOutputsAndAssignsMessages(t *testing.T) {
	procs := []*proc{incC0}
	st := memory.New()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	e := newEngine(t, st, procs, engine.WithClock(func() time.Time { return at }))
	before, beforeState := e.Snapshot()

	r, err := exec(t, e, procs, incC0, &call{arg: 5})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if r.Version != 1 || len(r.MessageIDs) != 1 || r.MessageIDs[0] != outbox.MessageID(st.Incarnation(), 1, 0) {
		t.Fatalf("receipt = %+v, want version 1 and one message %s", r, outbox.MessageID(st.Incarnation(), 1, 0))
	}
	v, s := e.Snapshot()
	if v != 1 || s.C[0] != 5 {
		t.Fatalf("snapshot = version %d, c0 %d; want 1, 5", v, s.C[0])
	}
	if before != 0 || beforeState.C[0] != 0 {
		t.Fatalf("the old snapshot changed: version %d, c0 %d", before, beforeState.C[0])
	}
	msgs := undelivered(t, st)
	want := outbox.Message{ID: r.MessageIDs[0], Topic: "inc_c0", Key: "5", KeySeq: 1, Version: 1, Payload: []byte("5"), CreatedAt: at}
	if len(msgs) != 1 || msgs[0].ID != want.ID || msgs[0].Topic != want.Topic || msgs[0].Key != want.Key ||
		msgs[0].KeySeq != 1 || msgs[0].Version != 1 || string(msgs[0].Payload) != "5" || !msgs[0].CreatedAt.Equal(at) {
		t.Fatalf("store holds %+v, want [%+v]", msgs, want)
	}
}

// Generated code pools its calls, and a pooled call may wait in its pool
// while others commit: what its Tx keeps of its last commit must not keep
// that commit's snapshot alive once a later one replaced it.
func TestCallKeepsNoSnapshot(t *testing.T) {
	for _, arg := range []int{1, 2} { // the message goes through EmitScratch, then Emit
		procs := []*proc{incC0}
		st := memory.New()
		e := newEngine(t, st, procs)
		first := &call{arg: arg}
		if _, err := exec(t, e, procs, incC0, first); err != nil {
			t.Fatal(err)
		}
		_, s := e.Snapshot()
		snap := weak.Make(s)
		s = nil
		if _, err := exec(t, e, procs, incC0, &call{arg: 1}); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		if snap.Value() != nil {
			t.Fatalf("arg %d: version 1's snapshot is alive after version 2 replaced it", arg)
		}
		runtime.KeepAlive(first)
		if n := len(undelivered(t, st)); n != 2 {
			t.Fatalf("%d undelivered messages, want 2", n)
		}
	}
}

func TestDefaultClockStampsCommitTimes(t *testing.T) {
	procs := []*proc{incC0}
	st := memory.New()
	e := newEngine(t, st, procs)
	start := time.Now()
	for i := range 500 {
		if _, err := exec(t, e, procs, incC0, &call{arg: i}); err != nil {
			t.Fatal(err)
		}
	}
	end := time.Now()
	msgs := undelivered(t, st)
	if len(msgs) != 500 {
		t.Fatalf("%d messages, want 500", len(msgs))
	}
	for i, m := range msgs {
		if m.CreatedAt.Before(start.Round(0)) || m.CreatedAt.After(end.Round(0)) {
			t.Fatalf("message %d: CreatedAt %v outside the calls [%v, %v]", i, m.CreatedAt, start, end)
		}
		if i > 0 && m.CreatedAt.Before(msgs[i-1].CreatedAt) {
			t.Fatalf("message %d (version %d) created at %v, before the previous commit's %v", i, m.Version, m.CreatedAt, msgs[i-1].CreatedAt)
		}
	}
}

func TestKeySeqCountsPerTopicAndKey(t *testing.T) {
	procs := []*proc{incC0, incC1}
	st := memory.New()
	e := newEngine(t, st, procs)
	for _, c := range []struct {
		p   *proc
		arg int
	}{{incC0, 1}, {incC0, 1}, {incC0, 2}, {incC1, 1}, {incC0, 1}} {
		if _, err := exec(t, e, procs, c.p, &call{arg: c.arg}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range undelivered(t, st) {
		got = append(got, m.Topic+"/"+m.Key+"#"+strconv.FormatUint(m.KeySeq, 10))
	}
	want := []string{"inc_c0/1#1", "inc_c0/1#2", "inc_c0/2#1", "inc_c1/1#1", "inc_c0/1#3"}
	if !equal(got, want) {
		t.Fatalf("messages = %v, want %v", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConflictRules commits a write to one path while a process that read
// another is running, and checks whether the process was re-run.
func TestConflictRules(t *testing.T) {
	cases := []struct {
		name     string
		read     int
		write    int
		strict   bool
		conflict bool
	}{
		{"same path", pathC0, pathC0, false, true},
		{"other path", pathC0, pathC1, false, false},
		{"ancestor written", pathPX, pathP, false, true},
		{"descendant written", pathP, pathPX, false, true},
		{"sibling written", pathPX, pathPY, false, false},
		{"other path under strict CAS", pathC0, pathC1, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reader := &proc{name: "reader", inputs: []int{tc.read}, outputs: []int{pathC3},
				fn: func(in []int, _ int) ([]int, []string, error) { return []int{in[0] + 1}, nil, nil }}
			procs := []*proc{reader}
			var opts []engine.Option
			if tc.strict {
				opts = append(opts, engine.WithStrictCAS())
			}
			e := newEngine(t, memory.New(), procs, opts...)
			c := &call{}
			c.hook = func() {
				if c.runs > 1 {
					return
				}
				v, _ := e.Snapshot()
				if _, err := e.CompareAndSwap(context.Background(), v, patch{tc.write: 7}); err != nil {
					t.Errorf("CompareAndSwap: %v", err)
				}
			}
			r, err := exec(t, e, procs, reader, c)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.runs > 1; got != tc.conflict {
				t.Fatalf("reading %s while %s was written: re-run = %v (runs %d), want %v",
					paths[tc.read], paths[tc.write], got, c.runs, tc.conflict)
			}
			if r.Version != 2 {
				t.Fatalf("version = %d, want 2 (the concurrent write, then this call)", r.Version)
			}
		})
	}
}

func TestCompareAndSwap(t *testing.T) {
	st := memory.New()
	e := newEngine(t, st, nil)
	ctx := context.Background()

	if _, err := e.CompareAndSwap(ctx, 3, patch{pathC0: 1}); !errors.Is(err, engine.ErrVersionMismatch) {
		t.Fatalf("CAS with a wrong version: err = %v, want ErrVersionMismatch", err)
	}
	if v, s := e.Snapshot(); v != 0 || s.C[0] != 0 {
		t.Fatalf("a refused CAS changed the state: version %d, c0 %d", v, s.C[0])
	}
	if v, err := e.CompareAndSwap(ctx, 0, patch{}); err != nil || v != 0 {
		t.Fatalf("empty patch: (%d, %v), want (0, nil)", v, err)
	}
	if v, _ := e.Snapshot(); v != 0 {
		t.Fatalf("an empty patch created version %d", v)
	}
	v, err := e.CompareAndSwap(ctx, 0, patch{pathC0: 4, pathPY: 9})
	if err != nil || v != 1 {
		t.Fatalf("CAS: (%d, %v), want (1, nil)", v, err)
	}
	if _, s := e.Snapshot(); s.C[0] != 4 || s.P.Y != 9 {
		t.Fatalf("after CAS: %+v", *s)
	}
	if n := len(undelivered(t, st)); n != 0 {
		t.Fatalf("CAS emitted %d messages", n)
	}
}

func TestProcessErrorCommitsNothing(t *testing.T) {
	errBad := errors.New("bad input")
	failing := &proc{name: "failing", inputs: []int{pathC0}, outputs: []int{pathC0},
		fn: func(in []int, _ int) ([]int, []string, error) { return nil, nil, errBad }}
	procs := []*proc{failing, incC0}
	st := memory.New()
	e := newEngine(t, st, procs)
	_, err := exec(t, e, procs, failing, &call{})
	if !errors.Is(err, errBad) {
		t.Fatalf("err = %v, want it to wrap the process's error", err)
	}
	var pe *engine.ProcessError
	if !errors.As(err, &pe) || pe.Process != "failing" {
		t.Fatalf("err = %#v, want a *ProcessError naming the process", err)
	}
	if v, _ := e.Snapshot(); v != 0 || len(undelivered(t, st)) != 0 {
		t.Fatalf("a failed call committed: version %d", v)
	}
}

// An emit followed by an error must not leave the message behind.
func TestErrorAfterEmitDropsTheMessage(t *testing.T) {
	emitThenFail := &proc{name: "emit_then_fail", inputs: []int{pathC0}, outputs: []int{pathC0},
		fn: func(in []int, arg int) ([]int, []string, error) {
			if arg == 1 {
				return nil, nil, errors.New("refused")
			}
			return []int{1}, []string{"ok"}, nil
		}}
	procs := []*proc{emitThenFail}
	st := memory.New()
	e := newEngine(t, st, procs)
	c := &call{arg: 1}
	c.hook = func() { c.tx.Emit("early", "", []byte("x")) }
	if _, err := exec(t, e, procs, emitThenFail, c); err == nil {
		t.Fatal("want an error")
	}
	if n := len(undelivered(t, st)); n != 0 {
		t.Fatalf("%d messages of a failed call reached the store", n)
	}
}

func TestPanicBecomesErrorAndEngineKeepsServing(t *testing.T) {
	panicky := &proc{name: "panicky", inputs: []int{pathC0}, outputs: []int{pathC0},
		fn: func([]int, int) ([]int, []string, error) { panic("boom") }}
	procs := []*proc{panicky, incC0}
	st := memory.New()
	e := newEngine(t, st, procs)
	_, err := exec(t, e, procs, panicky, &call{})
	if !errors.Is(err, engine.ErrPanic) {
		t.Fatalf("err = %v, want ErrPanic", err)
	}
	var pe *engine.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("err = %#v, want a *PanicError with the value and a stack", err)
	}
	if v, _ := e.Snapshot(); v != 0 {
		t.Fatalf("a panicking call committed version %d", v)
	}
	if _, err := exec(t, e, procs, incC0, &call{arg: 1}); err != nil {
		t.Fatalf("the engine stopped serving after a panic: %v", err)
	}
}

func TestPureCallCommitsNothing(t *testing.T) {
	procs := []*proc{incC0, readC0}
	e := newEngine(t, memory.New(), procs)
	if _, err := exec(t, e, procs, incC0, &call{arg: 1}); err != nil {
		t.Fatal(err)
	}
	r, err := exec(t, e, procs, readC0, &call{})
	if err != nil || r.Version != 1 || len(r.MessageIDs) != 0 {
		t.Fatalf("pure call: (%+v, %v), want version 1 and no messages", r, err)
	}
	if v, _ := e.Snapshot(); v != 1 {
		t.Fatalf("a pure call created version %d", v)
	}
}

// A call whose context ends while it is being retried stops with the
// context's error and commits nothing.
func TestCancelStopsRetries(t *testing.T) {
	procs := []*proc{incC0}
	st := memory.New()
	e := newEngine(t, st, procs, engine.WithRetry(1000, time.Millisecond, time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &call{p: incC0, arg: 1}
	c.hook = func() {
		// Make every attempt conflict, and give up after the third.
		v, _ := e.Snapshot()
		if _, err := e.CompareAndSwap(context.Background(), v, patch{pathC0: 100 + c.runs}); err != nil {
			t.Errorf("CompareAndSwap: %v", err)
		}
		if c.runs == 3 {
			cancel()
		}
	}
	_, err := e.Exec(ctx, 0, c)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(undelivered(t, st)); n != 0 {
		t.Fatalf("a cancelled call left %d messages", n)
	}
	if _, s := e.Snapshot(); s.C[0] != 103 {
		t.Fatalf("c0 = %d, want 103 (the last concurrent write, not the cancelled call's)", s.C[0])
	}
}

// After its attempts run out a call gets an exclusive turn, in which it
// cannot conflict.
func TestExclusiveTurnEndsConflicts(t *testing.T) {
	procs := []*proc{incC0}
	e := newEngine(t, memory.New(), procs, engine.WithRetry(2, time.Microsecond, time.Microsecond))
	c := &call{p: incC0, arg: 1}
	c.hook = func() {
		if c.runs > 2 {
			return // the exclusive turn: a commit here would wait for it
		}
		v, _ := e.Snapshot()
		if _, err := e.CompareAndSwap(context.Background(), v, patch{pathC0: 10 * c.runs}); err != nil {
			t.Errorf("CompareAndSwap: %v", err)
		}
	}
	r, err := e.Exec(context.Background(), 0, c)
	if err != nil {
		t.Fatal(err)
	}
	if c.runs != 3 || r.Version != 3 {
		t.Fatalf("runs = %d, version = %d; want 3 and 3", c.runs, r.Version)
	}
	if _, s := e.Snapshot(); s.C[0] != 21 {
		t.Fatalf("c0 = %d, want 21", s.C[0])
	}
}

// A CompareAndSwap started while a call runs in its exclusive turn waits
// for the turn to end, and is sequenced after the call's commit: expecting
// the version the turn will commit, it commits the one after.
func TestCompareAndSwapWaitsForExclusiveTurn(t *testing.T) {
	procs := []*proc{incC0}
	e := newEngine(t, memory.New(), procs, engine.WithRetry(1, time.Microsecond, time.Microsecond))
	inTurn, resume := make(chan struct{}), make(chan struct{})
	c := &call{p: incC0, arg: 1}
	c.hook = func() {
		switch c.runs {
		case 1: // the only attempt conflicts
			v, _ := e.Snapshot()
			if _, err := e.CompareAndSwap(context.Background(), v, patch{pathC0: 10}); err != nil {
				t.Errorf("CompareAndSwap: %v", err)
			}
		case 2: // the exclusive turn
			close(inTurn)
			<-resume
		}
	}
	turn := goExec(e, 0, c)
	within(t, inTurn, "the exclusive turn")
	waiting, wait := signal()
	engine.OnWait(e, wait)
	cas := goCAS(e, 2, patch{pathC1: 9})
	within(t, waiting, "the CompareAndSwap to wait for the turn")
	select {
	case res := <-cas:
		t.Fatalf("CompareAndSwap returned %+v during the exclusive turn", res)
	default:
	}
	close(resume)
	if res := within(t, turn, "the exclusive call"); res.err != nil || res.r.Version != 2 {
		t.Fatalf("exclusive call: %+v, want version 2", res)
	}
	if res := within(t, cas, "the CompareAndSwap"); res.err != nil || res.r != 3 {
		t.Fatalf("CompareAndSwap: %+v, want version 3, after the turn's", res)
	}
	if _, s := e.Snapshot(); s.C[0] != 11 || s.C[1] != 9 {
		t.Fatalf("c0 %d, c1 %d; want 11 and 9", s.C[0], s.C[1])
	}
}

// A slow process that reads every cell, against writers that keep changing
// them, still commits: the exclusive turn bounds its wait.
func TestHotWritersCannotStarveAReader(t *testing.T) {
	sumAll := &proc{name: "sum_all", inputs: []int{pathC0, pathC1, pathC2, pathC3}, outputs: []int{pathPX},
		fn: func(in []int, _ int) ([]int, []string, error) {
			return []int{in[0] + in[1] + in[2] + in[3]}, nil, nil
		}}
	procs := []*proc{incC0, incC1, sumAll}
	e := newEngine(t, memory.New(), procs, engine.WithRetry(3, time.Microsecond, 10*time.Microsecond))
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := e.Exec(ctx, w%2, &call{p: procs[w%2], arg: 1}); err != nil && ctx.Err() == nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		}()
	}
	slow := &call{p: sumAll}
	slow.hook = func() { time.Sleep(200 * time.Microsecond) } // widen the window for conflicts
	r, err := e.Exec(context.Background(), 2, slow)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if slow.runs > 4 {
		t.Fatalf("the reader ran %d times; WithRetry(3) allows 3 attempts and one exclusive turn", slow.runs)
	}
	t.Logf("reader committed version %d after %d runs", r.Version, slow.runs)
}

func TestClose(t *testing.T) {
	procs := []*proc{incC0, readC0}
	e := newEngine(t, memory.New(), procs)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := exec(t, e, procs, incC0, &call{arg: 1}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Exec after Close: %v, want ErrClosed", err)
	}
	if _, err := e.CompareAndSwap(context.Background(), 0, patch{pathC0: 1}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("CompareAndSwap after Close: %v, want ErrClosed", err)
	}
	pure := &call{}
	if _, err := exec(t, e, procs, readC0, pure); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("pure call after Close: %v, want ErrClosed", err)
	}
	if pure.runs != 0 {
		t.Fatalf("a pure call ran %d times on a closed engine", pure.runs)
	}
}

func TestStoreFailureLeavesNothing(t *testing.T) {
	procs := []*proc{incC0}
	st := memory.New()
	e := newEngine(t, st, procs)
	if _, err := exec(t, e, procs, incC0, &call{arg: 1}); err != nil {
		t.Fatal(err)
	}
	st.FailNextCommit(errors.New("disk full"))
	_, err := exec(t, e, procs, incC0, &call{arg: 1})
	var se *engine.StoreError
	if !errors.Is(err, engine.ErrStore) || !errors.As(err, &se) || se.Version != 2 {
		t.Fatalf("err = %v, want a StoreError for version 2", err)
	}
	if v, s := e.Snapshot(); v != 1 || s.C[0] != 1 {
		t.Fatalf("after the failure: version %d, c0 %d; want 1, 1", v, s.C[0])
	}
	// The engine goes on from the last durable version, reusing the failed
	// version number and KeySeq: no gaps.
	r, err := exec(t, e, procs, incC0, &call{arg: 1})
	if err != nil || r.Version != 2 {
		t.Fatalf("next call: (%+v, %v), want version 2", r, err)
	}
	msgs := undelivered(t, st)
	if len(msgs) != 2 || msgs[1].KeySeq != 2 || msgs[1].Version != 2 {
		t.Fatalf("messages = %+v, want KeySeq 1 and 2", msgs)
	}
}

func TestRecoverFromStore(t *testing.T) {
	procs := []*proc{incC0}
	st := memory.New()
	e1, err := engine.New(context.Background(), schema(procs...), tstate{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := exec(t, e1, procs, incC0, &call{arg: 2}); err != nil {
			t.Fatal(err)
		}
	}
	e1.Close()

	e2 := newEngine(t, st, procs) // initial is ignored: the store holds data
	if v, s := e2.Snapshot(); v != 3 || s.C[0] != 6 {
		t.Fatalf("recovered version %d, c0 %d; want 3, 6", v, s.C[0])
	}
	if _, err := exec(t, e2, procs, incC0, &call{arg: 2}); err != nil {
		t.Fatal(err)
	}
	msgs := undelivered(t, st)
	if last := msgs[len(msgs)-1]; last.KeySeq != 4 || last.Version != 4 {
		t.Fatalf("after recovery the next message is %+v, want KeySeq 4 at version 4", last)
	}
}

func TestInitialStateIsCopied(t *testing.T) {
	type st struct{ S []int }
	initial := st{S: []int{1, 2}}
	sch := &engine.Schema[st]{Clone: func(p *st) st { return st{S: append([]int(nil), p.S...)} }}
	e, err := engine.New(context.Background(), sch, initial, engine.WithStore(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	initial.S[0] = 99
	if _, s := e.Snapshot(); s.S[0] != 1 {
		t.Fatalf("the engine's state changed with the caller's slice: %v", s.S)
	}
}
