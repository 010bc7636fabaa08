package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/recyclable"
	"github.com/theus-go/theus/runtime/store/memory"
)

// The tests drive the engine with a small hand-written state and calls that
// stand in for generated code: four integer cells and a nested pair, so
// conflicts between a path, its ancestor and its descendant can be tested.

type pair struct{ X, Y int }

type tstate struct {
	C [4]int
	P pair
}

const (
	pathC0 = iota
	pathC1
	pathC2
	pathC3
	pathP
	pathPX
	pathPY
)

var paths = []string{"domain.c0", "domain.c1", "domain.c2", "domain.c3", "domain.p", "domain.p.x", "domain.p.y"}

// get and set read and write a path of a state.
func get(s *tstate, path int) int {
	switch path {
	case pathP:
		return s.P.X*1000 + s.P.Y
	case pathPX:
		return s.P.X
	case pathPY:
		return s.P.Y
	}
	return s.C[path]
}

func set(s *tstate, path, v int) {
	switch path {
	case pathP:
		s.P = pair{X: v / 1000, Y: v % 1000}
	case pathPX:
		s.P.X = v
	case pathPY:
		s.P.Y = v
	default:
		s.C[path] = v
	}
}

// proc is a test process: a pure function of the values of its inputs and
// the call's argument to the values of its outputs and its messages.
type proc struct {
	name    string
	pure    bool
	inputs  []int
	outputs []int
	// fn computes the outputs (one per output) and message payloads.
	fn func(in []int, arg int) (out []int, msgs []string, err error)
}

func (p *proc) spec() engine.ProcessSpec {
	return engine.ProcessSpec{Name: p.name, Pure: p.pure, Inputs: p.inputs}
}

func schema(procs ...*proc) *engine.Schema[tstate] {
	s := &engine.Schema[tstate]{Paths: paths, Clone: func(s *tstate) tstate { return *s }}
	for _, p := range procs {
		s.Processes = append(s.Processes, p.spec())
	}
	return s
}

// call is one invocation of a proc, as generated code would make it.
type call struct {
	tx   engine.Tx
	p    *proc
	arg  int
	out  []int
	runs int
	// hook runs inside the process, after it read its inputs (tests use it
	// to commit something concurrently, or to block).
	hook func()
	// id, if set, is what ReceiptID returns.
	id *[1]string
	// in holds the input values the last run read.
	in []int
}

func (c *call) Tx() *engine.Tx { return &c.tx }

func (c *call) Run(_ context.Context, s *tstate) error {
	c.runs++
	in := make([]int, len(c.p.inputs))
	for i, path := range c.p.inputs {
		in[i] = get(s, path)
	}
	c.in = in
	if c.hook != nil {
		c.hook()
	}
	out, msgs, err := c.p.fn(in, c.arg)
	if err != nil {
		return err
	}
	c.out = out
	for i := range out {
		c.tx.Write(c.p.outputs[i])
	}
	for i, m := range msgs {
		key := strconv.Itoa(c.arg)
		if (i+c.arg)%3 != 2 {
			// As generated code does with its JSON encoders: encode into
			// the Tx's payload slab, after the payloads before it.
			c.tx.EmitScratch(c.p.name, key, append(c.tx.Scratch(), m...))
		} else {
			// As it does with a Codec's payload.
			c.tx.Emit(c.p.name, key, []byte(m))
		}
	}
	return nil
}

func (c *call) ReceiptID() *[1]string { return c.id }

func (c *call) Apply(s *tstate, _ uint64) {
	for i, v := range c.out {
		set(s, c.p.outputs[i], v)
	}
}

// patch is a Change for CompareAndSwap.
type patch map[int]int

func (p patch) paths() []int {
	var w []int
	for k := range p {
		w = append(w, k)
	}
	slices.Sort(w)
	return w
}

func (p patch) Record(tx *engine.Tx) {
	for _, k := range p.paths() {
		tx.Write(k)
	}
}

func (p patch) Apply(s *tstate, _ uint64) {
	for _, k := range p.paths() {
		set(s, k, p[k])
	}
}

// recorder is a memory store that keeps a copy of every record it
// persisted, so tests can replay the history. It copies the states it
// keeps, and so lets the engine recycle snapshots as the memory store
// does: the tests that use it check recycling too.
type recorder struct {
	*memory.Store
	mu      sync.Mutex
	records []engine.Record
	groups  int
	// unexpected holds the first error of the store that was not injected.
	unexpected error
}

var errInjected = errors.New("injected")

func newRecorder() *recorder { return &recorder{Store: memory.New()} }

func (r *recorder) Commit(ctx context.Context, recs []*engine.Record) error {
	if err := r.Store.Commit(ctx, recs); err != nil {
		r.mu.Lock()
		if err != errInjected && r.unexpected == nil {
			r.unexpected = err
		}
		r.mu.Unlock()
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups++
	for _, rec := range recs {
		c := *rec
		c.Messages = slices.Clone(rec.Messages) // the payloads are immutable: kept as they are
		c.Writes = slices.Clone(rec.Writes)
		c.State = copyState(rec.State)
		r.records = append(r.records, c)
	}
	return nil
}

// copyState copies the state of a record, a *tstate, *cstate or *pstate.
func copyState(s any) any {
	switch s := s.(type) {
	case *tstate:
		c := *s
		return &c
	case *pstate:
		c := *s
		return &c
	case *cstate:
		c := *s
		return &c
	}
	panic(fmt.Sprintf("recorder: state of type %T", s))
}

// ForgetsReplacedStates claims what the memory store does: the recorder
// keeps copies of states, never Record.State itself.
func (r *recorder) ForgetsReplacedStates(recyclable.Token) any { return r }

func (r *recorder) history() []engine.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

func newEngine(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}, st engine.Store, procs []*proc, opts ...engine.Option) *engine.Engine[tstate] {
	t.Helper()
	e, err := engine.New(context.Background(), schema(procs...), tstate{}, append([]engine.Option{engine.WithStore(st)}, opts...)...)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Processes used across tests.
var (
	// inc adds arg to c0 and emits the new value.
	incC0 = &proc{name: "inc_c0", inputs: []int{pathC0}, outputs: []int{pathC0},
		fn: func(in []int, arg int) ([]int, []string, error) {
			return []int{in[0] + arg}, []string{strconv.Itoa(in[0] + arg)}, nil
		}}
	incC1 = &proc{name: "inc_c1", inputs: []int{pathC1}, outputs: []int{pathC1},
		fn: func(in []int, arg int) ([]int, []string, error) {
			return []int{in[0] + arg}, []string{strconv.Itoa(in[0] + arg)}, nil
		}}
	readC0 = &proc{name: "read_c0", pure: true, inputs: []int{pathC0},
		fn: func(in []int, arg int) ([]int, []string, error) { return nil, nil, nil }}
)
