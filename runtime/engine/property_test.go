package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// Processes of the property test: each is a deterministic function of its
// inputs and argument, so a serial replay of the committed history must
// reproduce every state and every message the engine committed.
var propProcs = []*proc{
	incC0,
	incC1,
	{name: "move_c2_c3", inputs: []int{pathC2, pathC3}, outputs: []int{pathC2, pathC3},
		fn: func(in []int, arg int) ([]int, []string, error) {
			return []int{in[0] - arg, in[1] + arg}, []string{fmt.Sprint(in[0]-arg, in[1]+arg)}, nil
		}},
	{name: "sum_to_px", inputs: []int{pathC0, pathC1, pathC2, pathC3}, outputs: []int{pathPX},
		fn: func(in []int, _ int) ([]int, []string, error) {
			s := in[0] + in[1] + in[2] + in[3]
			return []int{s}, []string{strconv.Itoa(s), "again " + strconv.Itoa(s)}, nil
		}},
	{name: "px_to_py", inputs: []int{pathPX}, outputs: []int{pathPY},
		fn: func(in []int, _ int) ([]int, []string, error) { return []int{in[0] % 1000}, nil, nil }},
	{name: "reset_p", inputs: []int{pathC1}, outputs: []int{pathP},
		fn: func(in []int, arg int) ([]int, []string, error) {
			return []int{(in[0]%100)*1000 + arg}, []string{"reset"}, nil
		}},
	{name: "c3_even_only", inputs: []int{pathC3}, outputs: []int{pathC3},
		fn: func(in []int, arg int) ([]int, []string, error) {
			if (in[0]+arg)%2 != 0 {
				return nil, nil, errors.New("odd")
			}
			return []int{in[0] + arg}, []string{"even"}, nil
		}},
	{name: "panics_on_7", inputs: []int{pathC0}, outputs: []int{pathC0},
		fn: func(in []int, arg int) ([]int, []string, error) {
			if arg == 7 {
				panic("seven")
			}
			return []int{in[0]}, nil, nil
		}},
	{name: "read_all", pure: true, inputs: []int{pathC0, pathP},
		fn: func([]int, int) ([]int, []string, error) { return nil, nil, nil }},
}

type op struct {
	proc      int
	arg       int
	failStore bool // make the store fail the next commit before this call
}

type outcome struct {
	op      op
	receipt engine.Receipt
	err     error
	in      []int // what the call's last run read
}

// TestPropertySerializableHistory runs random concurrent calls and checks
// that the committed history is serializable: replaying the commits in
// version order, from the initial state, reproduces each committed state,
// each message and the final state; every message belongs to exactly one
// successful call; a call that failed left no trace.
func TestPropertySerializableHistory(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		workers := rapid.IntRange(1, 4).Draw(rt, "workers")
		plans := make([][]op, workers)
		for w := range plans {
			plans[w] = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) op {
				return op{
					proc:      rapid.IntRange(0, len(propProcs)-1).Draw(t, "proc"),
					arg:       rapid.IntRange(1, 9).Draw(t, "arg"),
					failStore: rapid.IntRange(0, 19).Draw(t, "fail") == 0,
				}
			}), 1, 30).Draw(rt, fmt.Sprintf("plan%d", w))
		}
		strict := rapid.Bool().Draw(rt, "strict")
		attempts := rapid.IntRange(1, 4).Draw(rt, "attempts")
		group := rapid.Bool().Draw(rt, "group")
		checkHistory(rt, plans, strict, attempts, group)
	})
}

// checkHistory runs plans and checks the history. With group set the
// engine does not see that the store is in memory, and commits through
// group commit, as for a durable store.
func checkHistory(t *rapid.T, plans [][]op, strict bool, attempts int, group bool) {
	st := newRecorder()
	var store engine.Store = st
	if group {
		store = groupCommit{st}
	}
	opts := []engine.Option{engine.WithStore(store), engine.WithRetry(attempts, time.Microsecond, 50*time.Microsecond)}
	if strict {
		opts = append(opts, engine.WithStrictCAS())
	}
	initial := tstate{C: [4]int{10, 20, 30, 40}, P: pair{X: 1, Y: 2}}
	e, err := engine.New(context.Background(), schema(propProcs...), initial, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	results := make([][]outcome, len(plans))
	var wg sync.WaitGroup
	for w, plan := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, o := range plan {
				if o.failStore {
					st.FailNextCommit(errInjected)
				}
				// Yielding inside the process widens the window between
				// snapshot and commit, so calls interleave and conflict.
				c := &call{p: propProcs[o.proc], arg: o.arg, hook: runtime.Gosched}
				r, err := e.Exec(context.Background(), o.proc, c)
				results[w] = append(results[w], outcome{op: o, receipt: r, err: err, in: c.in})
			}
		}()
	}
	wg.Wait()

	// Successful committing calls, by version.
	byVersion := map[uint64]outcome{}
	receiptIDs := map[string]int{}
	for _, rs := range results {
		for _, r := range rs {
			p := propProcs[r.op.proc]
			switch {
			case r.err != nil:
				if !errors.Is(r.err, engine.ErrStore) && !errors.Is(r.err, engine.ErrPanic) && r.err.Error() != "theus: process c3_even_only: odd" {
					t.Fatalf("%s(%d): unexpected error %v", p.name, r.op.arg, r.err)
				}
				if r.receipt.Version != 0 || len(r.receipt.MessageIDs) != 0 {
					t.Fatalf("%s(%d) failed but returned a receipt %+v", p.name, r.op.arg, r.receipt)
				}
			case p.pure:
			default:
				if prev, dup := byVersion[r.receipt.Version]; dup {
					t.Fatalf("version %d returned to two calls: %v and %v", r.receipt.Version, prev.op, r.op)
				}
				byVersion[r.receipt.Version] = r
				for _, id := range r.receipt.MessageIDs {
					receiptIDs[id]++
				}
			}
		}
	}

	if st.unexpected != nil {
		t.Fatalf("the store failed on its own: %v", st.unexpected)
	}
	hist := st.history()
	var inc uint64 // what the engine puts in message IDs
	if ic, ok := store.(engine.Incarnated); ok {
		inc = ic.Incarnation()
	}
	if len(hist) != len(byVersion) {
		t.Fatalf("the store holds %d commits, %d calls succeeded", len(hist), len(byVersion))
	}
	state := initial
	durableC3 := map[int]bool{state.C[3]: true} // c3 in every durable version
	keySeq := map[outbox.TopicKey]uint64{}
	seenIDs := map[string]bool{}
	for i, rec := range hist {
		if rec.Version != uint64(i+1) {
			t.Fatalf("commit %d has version %d: versions must be dense and ordered", i, rec.Version)
		}
		r, ok := byVersion[rec.Version]
		if !ok {
			t.Fatalf("version %d is in the store but no call received it", rec.Version)
		}
		p := propProcs[r.op.proc]
		if rec.Process != p.name {
			t.Fatalf("version %d: store says process %s, receipt came from %s", rec.Version, rec.Process, p.name)
		}
		// Replay the call on the serial state.
		in := make([]int, len(p.inputs))
		for j, path := range p.inputs {
			in[j] = get(&state, path)
		}
		out, msgs, err := p.fn(in, r.op.arg)
		if err != nil {
			t.Fatalf("version %d: replay of %s(%d) fails (%v) but the engine committed it", rec.Version, p.name, r.op.arg, err)
		}
		for j, v := range out {
			set(&state, p.outputs[j], v)
		}
		durableC3[state.C[3]] = true
		if got := *rec.State.(*tstate); got != state {
			t.Fatalf("version %d (%s(%d)): committed state %+v, serial replay gives %+v", rec.Version, p.name, r.op.arg, got, state)
		}
		if len(rec.Messages) != len(msgs) || len(r.receipt.MessageIDs) != len(msgs) {
			t.Fatalf("version %d: %d messages committed, %d in the receipt, replay emits %d",
				rec.Version, len(rec.Messages), len(r.receipt.MessageIDs), len(msgs))
		}
		for j, m := range rec.Messages {
			if string(m.Payload) != msgs[j] || m.Version != rec.Version || m.ID != r.receipt.MessageIDs[j] ||
				m.ID != outbox.MessageID(inc, rec.Version, j) {
				t.Fatalf("version %d message %d = %+v; replay payload %q, receipt ID %s", rec.Version, j, m, msgs[j], r.receipt.MessageIDs[j])
			}
			tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
			keySeq[tk]++
			if m.KeySeq != keySeq[tk] {
				t.Fatalf("message %s of %v has KeySeq %d, want %d", m.ID, tk, m.KeySeq, keySeq[tk])
			}
			if seenIDs[m.ID] {
				t.Fatalf("message ID %s used twice", m.ID)
			}
			seenIDs[m.ID] = true
			if receiptIDs[m.ID] != 1 {
				t.Fatalf("message %s appears in %d receipts, want 1", m.ID, receiptIDs[m.ID])
			}
		}
	}
	// A process error reaches its caller only if it was decided on durable
	// state: the c3 that c3_even_only found odd is one some durable version
	// held, never one of a group the store refused.
	for _, rs := range results {
		for _, r := range rs {
			if r.err != nil && propProcs[r.op.proc].name == "c3_even_only" && !errors.Is(r.err, engine.ErrStore) && !durableC3[r.in[0]] {
				t.Fatalf("c3_even_only(%d) failed on c3 = %d, which no durable version held", r.op.arg, r.in[0])
			}
		}
	}
	if len(seenIDs) != len(receiptIDs) {
		t.Fatalf("receipts list %d messages, the store holds %d", len(receiptIDs), len(seenIDs))
	}
	if v, s := e.Snapshot(); v != uint64(len(hist)) || *s != state {
		t.Fatalf("final snapshot (version %d) %+v, serial replay (version %d) %+v", v, *s, len(hist), state)
	}
	// The relay's view agrees: exactly the committed messages, in order.
	pending, err := st.Undelivered(context.Background(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(pending))
	for i, m := range pending {
		ids[i] = m.ID
	}
	if len(ids) != len(seenIDs) || !sort.StringsAreSorted(ids) {
		t.Fatalf("undelivered messages: %d, sorted %v; want %d in commit order", len(ids), sort.StringsAreSorted(ids), len(seenIDs))
	}
}

// groupCommit hides that a store is in memory (engine.InMemory).
type groupCommit struct{ engine.Store }
