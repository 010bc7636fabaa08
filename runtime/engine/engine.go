package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Schema describes a generated State type S to the engine.
type Schema[S any] struct {
	// Paths lists every state path that a process or a Patch reads or
	// writes, dotted ("domain.user", "domain.user.email"). Tx.Write and
	// ProcessSpec refer to paths by their index in this slice.
	Paths []string
	// Clone deep-copies a state; the engine copies the initial state with it
	// so the caller may reuse what it passed.
	Clone func(*S) S
	// Processes lists the processes; Exec refers to them by index.
	Processes []ProcessSpec
	// Outputs describes, by index of path, each path that a process
	// writes (ValueOutput, CollectionOutput); the others are zero.
	Outputs []Output[S]
	// Collections lists the collection fields that State does not
	// describe (a collection of State needs no CollectionSpec).
	Collections []CollectionSpec[S]
	// State describes every top-level state field (both zones) to durable
	// stores, which encode and decode values through the StateCodec the
	// engine builds from it.
	State []StateField[S]
	// Invariants are checked on every commit that writes their paths (see
	// Invariant); CompileCheck compiles their expressions when the engine
	// starts (generated code gives celcheck.Compiler).
	Invariants   []Invariant
	CompileCheck CheckCompiler
}

// ProcessSpec declares one process.
type ProcessSpec struct {
	Name string
	// Pure processes commit nothing: they read a snapshot and return.
	Pure bool
	// Inputs are the indexes (into Schema.Paths) of the paths it reads.
	Inputs []int
	// Errors are the domain errors (DomainError sentinels) the process
	// declares; a DomainError it returns that is not one of them makes the
	// call's error match ErrUndeclaredError as well.
	Errors []error
	// Outputs are the indexes (into Schema.Paths) of the paths it writes,
	// in the order it declares them: its output i is Outputs[i] (SetOutput).
	Outputs []int
	// Emits are the topics it emits, in the order it declares them
	// (RunEffects).
	Emits []string
	// Args, a nil pointer of the process's type of arguments ((*T)(nil)),
	// and Run make the engine pool calls of the process for Take (see
	// FrameCall); Rules checks the process's rules, if it has any.
	Args  any
	Run   RunFunc
	Rules RulesFunc
}

// Call is one invocation of a process: a FrameCall, which generated code
// takes with Take and fills through its Args, or any struct that embeds
// Invocation (which gives Tx and ReceiptID) and adds Run and Apply.
type Call[S any] interface {
	// Tx returns the call's effect collector.
	Tx() *Tx
	// Run runs the process on s, which it must not modify, recording its
	// effects in Tx. It is called once per attempt.
	Run(ctx context.Context, s *S) error
	// Apply writes the outputs of the last run into s, a copy of the state
	// that the commit will publish as version v.
	Apply(s *S, v uint64)
	// ReceiptID returns where the commit of the last run may keep the
	// receipt's message ID when the run emitted one message, or nil for the
	// engine to allocate room. The receipt outlives the call, so the room
	// must be the run's own: Invocation, which generated calls embed,
	// keeps it with the run's Out handle, in runs it allocates sixteen at
	// a time and never reuses, so that a commit that emits through
	// Tx.EmitScratch allocates a sixteenth of that and its share of the
	// slab its payloads and IDs are cut from (Tx.Scratch), and nothing else
	// on the memory store.
	ReceiptID() *[1]string
}

// Change is a set of writes made outside processes: a generated Patch.
type Change[S any] interface {
	// Record records in tx the paths (Tx.Write) and collection entries
	// (Tx.WriteKey) the change writes.
	Record(tx *Tx)
	// Apply writes the change into s, which becomes version v.
	Apply(s *S, v uint64)
}

// call is a Call with its state type erased: the frame of a FrameCall,
// or a callOf.
type call interface {
	Tx() *Tx
	ReceiptID() *[1]string
	// runOn is Call.Run, of s, a *S; applyTo (applier) is Call.Apply.
	runOn(ctx context.Context, s any) error
	applier
}

// applier writes what a commit writes into s, a copy of the state that
// becomes version v: a call's outputs, or a change.
type applier interface {
	applyTo(s unsafe.Pointer, v uint64)
}

// change is a Change with its state type erased.
type change interface {
	Record(tx *Tx)
	applier
}

// callFor returns c as a call: a FrameCall's frame, or else c wrapped (one
// allocation, for calls that generated code does not make).
func callFor[S any](c Call[S]) call {
	if f, ok := c.(*FrameCall[S]); ok {
		return &f.frame
	}
	return callOf[S]{c}
}

type callOf[S any] struct{ c Call[S] }

func (c callOf[S]) Tx() *Tx               { return c.c.Tx() }
func (c callOf[S]) ReceiptID() *[1]string { return c.c.ReceiptID() }
func (c callOf[S]) runOn(ctx context.Context, s any) error {
	return c.c.Run(ctx, s.(*S))
}
func (c callOf[S]) applyTo(s unsafe.Pointer, v uint64) { c.c.Apply((*S)(s), v) }

type changeOf[S any] struct{ ch Change[S] }

func (c changeOf[S]) Record(tx *Tx)                      { c.ch.Record(tx) }
func (c changeOf[S]) applyTo(s unsafe.Pointer, v uint64) { c.ch.Apply((*S)(s), v) }

// Receipt tells a caller what its call committed.
type Receipt struct {
	// Version of the commit, or of the snapshot a pure call read.
	Version uint64
	// MessageIDs lists the call's messages in emit order.
	MessageIDs []string
}

type process struct {
	ProcessSpec
	// conflicts are the paths whose write after the snapshot invalidates a
	// run: each input, its ancestors and its descendants.
	conflicts []int
}

type snapshot struct {
	version uint64
	// state points to the snapshot's S, which lives in the same
	// allocation (snapshotOf): a snapshot costs one allocation, as a
	// generic snapshot[S] would. boxed is state as a *S in an any, made
	// once: what processes run on, and Record.State.
	state unsafe.Pointer
	boxed any
	// refs counts the calls running on the snapshot, plus retired once a
	// later snapshot replaced it, when the engine recycles snapshots (see
	// recycle.go).
	refs atomic.Uint64
	// failed is set when the store refused the group of this version or
	// of an earlier one: the snapshot will never be durable, and a call
	// that ran on it must run again.
	failed atomic.Bool
}

// snapshotOf is a snapshot with room for its state.
type snapshotOf[S any] struct {
	snapshot
	s S
}

// stateOps is what the engine knows of its state type S: a few functions,
// made once by New, through which the rest of the engine, which is not
// generic, handles states as unsafe pointers to an S. (The compiler makes
// a generic type's methods for every package that instantiates it with
// its own type: every package of generated code would compile the whole
// engine.)
type stateOps struct {
	ptrType reflect.Type // *S
	// newSnap returns a new snapshot with a zero state.
	newSnap func() *snapshot
	// copy does *dst = *src, zero *p = S{}.
	copy func(dst, src unsafe.Pointer)
	zero func(p unsafe.Pointer)
	// clone returns a new S, a deep copy of *src (Schema.Clone); newState
	// a new zero S.
	clone    func(src unsafe.Pointer) unsafe.Pointer
	newState func() unsafe.Pointer
	// box returns p as an any holding a *S (Record.State), unbox the *S in
	// v as a pointer, or nil if v holds none.
	box   func(p unsafe.Pointer) any
	unbox func(v any) unsafe.Pointer
}

// boxState returns p, a pointer to an S, as a *S in an any.
func boxState[S any](p unsafe.Pointer) any { return (*S)(p) }

// opsOf returns the stateOps of S; clone is Schema.Clone (nil: copy).
func opsOf[S any](clone func(*S) S) *stateOps {
	return &stateOps{
		ptrType: reflect.TypeFor[*S](),
		newSnap: func() *snapshot {
			n := new(snapshotOf[S])
			n.state, n.boxed = unsafe.Pointer(&n.s), &n.s
			return &n.snapshot
		},
		copy: func(dst, src unsafe.Pointer) { *(*S)(dst) = *(*S)(src) },
		zero: func(p unsafe.Pointer) { *(*S)(p) = *new(S) },
		clone: func(src unsafe.Pointer) unsafe.Pointer {
			s := new(S)
			if clone != nil {
				*s = clone((*S)(src))
			} else {
				*s = *(*S)(src)
			}
			return unsafe.Pointer(s)
		},
		newState: func() unsafe.Pointer { return unsafe.Pointer(new(S)) },
		box:      boxState[S],
		unbox: func(v any) unsafe.Pointer {
			s, _ := v.(*S)
			return unsafe.Pointer(s)
		},
	}
}

// Engine runs processes on immutable snapshots of a state S and commits
// their outputs and messages atomically. Generated code wraps it in a typed
// Engine; users rarely name it.
//
// Its methods only convert between *S and the untyped states of the
// engine's implementation (core), which is compiled once, in this
// package, whatever S is.
type Engine[S any] struct {
	c core
}

// core is the implementation of an Engine, of any state type: it reaches
// states only as unsafe pointers, through ops.
type core struct {
	opts      options
	store     Store
	ops       *stateOps
	paths     []string
	procs     []process
	frames    []sync.Pool              // per process, of *frame, for Take
	published atomic.Pointer[snapshot] // durable; what pure calls and readers see
	// head is the last sequenced snapshot: validated and applied, perhaps
	// still waiting for the store; what calls that commit run on. It is
	// changed with e.mu held.
	head atomic.Pointer[snapshot]
	// headp is where the last sequenced snapshot is read: &head, or
	// &published for an in-memory store, whose commits are durable before
	// e.mu is released, so that the two are always the same and a commit
	// stores one pointer, not two.
	headp *atomic.Pointer[snapshot]

	turn  sync.Mutex // held by a call in its exclusive turn
	clock *coarseClock

	mu           sync.Mutex
	cond         sync.Cond
	lastWrite    []uint64 // per path: version of its last sequenced write
	durableWrite []uint64 // per path: version of its last durable write
	// lastRead holds, per path, the version of the last sequenced commit
	// of a process that has the path among its inputs (a collection counts
	// whole, whatever entries it read), and lastReadAll that of the last
	// one that counts as reading everything:
	// what CompareAndSwap checks the commits in flight against (see
	// interferes). An in-memory engine has none in flight and keeps them
	// at 0.
	lastRead     []uint64
	lastReadAll  uint64
	keySeqs      keySeqs
	pending      []*Tx
	pendingSnaps []*snapshot
	spare        []*Tx
	spareSnaps   []*snapshot
	recs         []*Record
	one          [1]*Record // the group of an in-memory commit
	// colls holds, per path, how to look the entries of a collection up;
	// nil for paths that are not collections.
	colls []func(s unsafe.Pointer, key string) (uint64, bool)
	// deleted holds when entries were deleted, so a call that read a key
	// absent from the current state can still be checked; it is cleared
	// when it grows, and a read of an absent key by a call whose snapshot
	// is older than horizon then conflicts, to be safe.
	deleted map[collKey]uint64
	horizon uint64
	// settle, when a call waits for a snapshot to become durable or to
	// fail, is closed (and cleared) when the next group has settled.
	settle   chan struct{}
	flushing bool
	// inside counts the calls of processes that commit on a shared store
	// (presence); nudge wakes a flush that lingers (see linger) when one of
	// them leaves or a commit joins the pending ones; stored is how long
	// the store took for the last group; lingerFor and onLinger, set by
	// tests only, replace linger's bound and see it start to wait.
	inside    atomic.Int64
	nudge     chan struct{}
	stored    time.Duration
	lingerFor time.Duration
	onLinger  func()
	inMemory  bool // the store implements InMemory
	// watch holds the commits for Watch while it has watchers
	// (history.go).
	watch *watching
	// shared is the store, when several engines share it (SharedStore);
	// flushTxs and flushSnaps are the group it has, which its rebase may
	// change (remote.go); pathIndex finds a path's index, sc is the state
	// codec, and cancelFollow and followed stop the goroutine that
	// applies the other engines' commits.
	shared       SharedStore
	flushTxs     []*Tx
	flushSnaps   []*snapshot
	fp           Footprint // of the group with the store (footprint)
	pathIndex    map[string]int
	sc           *stateCodec
	cancelFollow context.CancelFunc
	followed     chan struct{}
	// inc is the store's incarnation, part of every message ID (see
	// Incarnated).
	inc uint64
	// recycle is set when snapshots are reused (see recycle.go); freed
	// and snaps hold the freed ones.
	recycle   bool
	freed     []*snapshot // freed under e.mu, reused first
	snaps     sync.Pool   // freed by calls, outside e.mu
	exclusive bool
	// onWait, set by tests only (export_test.go), is called with e.mu
	// held when a CompareAndSwap starts to wait: for another call's
	// exclusive turn to end, or in its own for the commits in flight to
	// settle.
	onWait func()
	// closed is set by Close, with e.mu held; pure calls, which do not
	// take e.mu, read it too.
	closed atomic.Bool
	// invs are the state invariants, and invByPath, per path, the
	// invariants a write of it must be checked against (invariants.go).
	invs      []invariant
	invByPath [][]int
	// onRefuse, set by tests only, is called with e.mu held when an
	// invariant refuses a commit.
	onRefuse func()
}

// New starts an engine. If the store holds data, its state is recovered and
// initial is ignored; otherwise the state starts as a copy of initial at
// version 0. ctx bounds the recovery only.
func New[S any](ctx context.Context, schema *Schema[S], initial S, opts ...Option) (*Engine[S], error) {
	e := new(Engine[S])
	if err := e.c.start(ctx, eraseSchema(schema), opsOf(schema.Clone), unsafe.Pointer(&initial), opts); err != nil {
		return nil, err
	}
	return e, nil
}

// schema is a Schema with its state type erased, for core.
type schema struct {
	paths        []string
	processes    []ProcessSpec
	outputs      []outputDesc
	collections  []collSpec
	state        []stateField
	invariants   []Invariant
	compileCheck CheckCompiler
}

type collSpec struct {
	path    int
	version func(s unsafe.Pointer, key string) (uint64, bool)
}

func eraseSchema[S any](s *Schema[S]) *schema {
	es := &schema{paths: s.Paths, processes: s.Processes, outputs: outputDescs(s.Outputs),
		state: stateFields(s.State), invariants: s.Invariants, compileCheck: s.CompileCheck}
	for _, c := range s.Collections {
		version := c.Version
		es.collections = append(es.collections, collSpec{path: c.Path,
			version: func(p unsafe.Pointer, key string) (uint64, bool) { return version((*S)(p), key) }})
	}
	return es
}

// outputDescs and stateFields return the untyped descriptions in outs and
// fields, which are the same in memory: Output and StateField are structs
// of one field, of these types.
func outputDescs[S any](outs []Output[S]) []outputDesc {
	return unsafe.Slice((*outputDesc)(unsafe.Pointer(unsafe.SliceData(outs))), len(outs))
}

func stateFields[S any](fields []StateField[S]) []stateField {
	return unsafe.Slice((*stateField)(unsafe.Pointer(unsafe.SliceData(fields))), len(fields))
}

// start starts the engine (New), whose initial state is at initial.
func (e *core) start(ctx context.Context, schema *schema, ops *stateOps, initial unsafe.Pointer, opts []Option) error {
	e.opts, e.paths, e.ops = defaultOptions(), schema.paths, ops
	for _, o := range opts {
		o(&e.opts)
	}
	e.cond.L = &e.mu
	e.nudge = make(chan struct{}, 1)
	if e.opts.now == nil {
		e.clock = newCoarseClock()
		e.opts.now = e.clock.Now
	}
	e.store = e.opts.store
	if e.store == nil {
		return errors.New("theus: no store: pass engine.WithStore (generated NewEngine defaults to memory.New())")
	}
	_, e.inMemory = e.store.(InMemory)
	e.shared, _ = e.store.(SharedStore)
	e.recycle = recycles(e.store)
	e.headp = &e.head
	if e.inMemory {
		e.headp = &e.published
	}
	e.colls = make([]func(unsafe.Pointer, string) (uint64, bool), len(schema.paths))
	for _, c := range schema.collections {
		e.colls[c.path] = c.version
	}
	// A collection of Schema.State needs no CollectionSpec: its codec
	// finds the versions of its entries.
	for _, f := range schema.state {
		if i := slices.Index(schema.paths, f.info.Path); f.info.Collection && i >= 0 && e.colls[i] == nil {
			e.colls[i] = f.codec.version
		}
	}
	e.deleted = make(map[collKey]uint64)
	e.procs = make([]process, len(schema.processes))
	for i, p := range schema.processes {
		// A collection conflicts per entry read, not as a whole: its path
		// takes no part in the static conflict set.
		var inputs []int
		for _, in := range p.Inputs {
			if e.colls[in] == nil {
				inputs = append(inputs, in)
			}
		}
		e.procs[i] = process{ProcessSpec: p, conflicts: conflictSet(schema.paths, inputs)}
		for _, out := range p.Outputs {
			if out < 0 || out >= len(schema.outputs) || schema.outputs[out].o == nil {
				return fmt.Errorf("theus: process %s writes path %d, which Schema.Outputs does not describe", p.Name, out)
			}
		}
	}
	e.frames = framePools(e, schema)
	e.lastWrite = make([]uint64, len(schema.paths))
	e.durableWrite = make([]uint64, len(schema.paths))
	e.lastRead = make([]uint64, len(schema.paths))

	e.pathIndex = make(map[string]int, len(schema.paths))
	for i, p := range schema.paths {
		e.pathIndex[p] = i
	}
	e.sc = newStateCodec(schema.state, ops, e.opts.codec)
	if err := e.compileInvariants(schema); err != nil {
		return err
	}
	e.sc.migrations = e.opts.migrations
	rec, err := e.store.Recover(ctx, e.sc)
	if err != nil {
		return fmt.Errorf("theus: recover: %w", err)
	}
	snap := ops.newSnap()
	if rec == nil {
		ops.copy(snap.state, ops.clone(initial))
	} else {
		s := ops.unbox(rec.State)
		if s == nil {
			return fmt.Errorf("theus: recover: the store holds a state of type %T, want %v", rec.State, ops.ptrType)
		}
		snap.version = rec.Version
		ops.copy(snap.state, s)
		for _, w := range rec.Warnings {
			e.opts.logger.WarnContext(ctx, "theus: recover: "+w, "version", rec.Version)
		}
		for k, v := range rec.KeySeqs {
			*e.keySeqs.of(k.Topic, k.Key) = v
		}
	}
	if ic, ok := e.store.(Incarnated); ok {
		e.inc = ic.Incarnation()
	}
	e.head.Store(snap)
	e.published.Store(snap)
	if e.shared != nil {
		fctx, cancel := context.WithCancel(context.Background())
		e.cancelFollow, e.followed = cancel, make(chan struct{})
		go e.follow(fctx)
	}
	if e.opts.globals != nil {
		if err := e.applyGlobals(ctx); err != nil {
			e.close()
			return err
		}
	}
	return nil
}

// conflictSet returns the paths related to any input: the input itself, its
// ancestors and its descendants, in ascending index order.
func conflictSet(paths []string, inputs []int) []int {
	var out []int
	for q, qp := range paths {
		for _, in := range inputs {
			ip := paths[in]
			if qp == ip || strings.HasPrefix(ip, qp+".") || strings.HasPrefix(qp, ip+".") {
				out = append(out, q)
				break
			}
		}
	}
	return out
}

// Store returns the engine's store.
func (e *Engine[S]) Store() Store { return e.c.store }

// Snapshot returns the latest published version and its state, which must
// not be modified.
func (e *Engine[S]) Snapshot() (uint64, *S) {
	v, s := e.c.snapshot()
	return v, (*S)(s)
}

func (e *core) snapshot() (uint64, unsafe.Pointer) {
	s := e.acquire(&e.published) // never released: it stays as it is
	return s.version, s.state
}

// Exec runs process proc (an index into Schema.Processes) for call c and
// commits its effects. A conflict re-runs the process on a fresh snapshot
// with backoff; after the configured attempts the call runs once more in an
// exclusive turn. A process error, a panic, a cancelled ctx or a closed
// engine end the call with nothing committed; after Close every call, pure
// ones included, returns ErrClosed without running.
//
// A pure process runs on the latest durable snapshot. A process that
// commits runs on the latest sequenced one, which may still wait for the
// store: its commit is sequenced after that snapshot's, so it becomes
// durable only after it, and fails if it fails (the run is then repeated
// on the recovered state). An error decided on such a snapshot is
// returned only once the snapshot is durable, so nothing a caller is told
// depends on state a store failure takes back.
func (e *Engine[S]) Exec(ctx context.Context, proc int, c Call[S]) (Receipt, error) {
	return e.c.exec(ctx, proc, callFor(c))
}

func (e *core) exec(ctx context.Context, proc int, c call) (Receipt, error) {
	p := &e.procs[proc]
	in := presence{e, !p.Pure && e.shared != nil}
	in.enter()
	defer in.leave()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Receipt{}, err
		}
		if e.closed.Load() {
			return Receipt{}, ErrClosed
		}
		if attempt > e.opts.attempts {
			return e.execExclusive(ctx, p, c)
		}
		if p.Pure {
			snap := e.acquire(&e.published)
			err := e.run(ctx, p, c, snap)
			v := snap.version
			e.release(snap)
			if err != nil {
				return Receipt{}, err
			}
			return Receipt{Version: v}, nil
		}
		snap := e.acquire(e.headp)
		if err := e.run(ctx, p, c, snap); err != nil {
			in.leave()
			ok, werr := e.awaitSettled(ctx, snap)
			in.enter()
			e.release(snap)
			if werr != nil {
				return Receipt{}, werr
			} else if !ok {
				continue // the snapshot was lost with its group: run again
			}
			return Receipt{}, err
		}
		r, released, err := e.commit(p, c, snap, false)
		if !released {
			e.release(snap)
		}
		if err == nil {
			e.warn(ctx, c.Tx(), r.Version)
		}
		if ref, ok := err.(*refusal); ok {
			if lost, err := e.settleRefusal(ctx, ref); !lost {
				return Receipt{}, err
			}
			continue // decided on state a failed group took back: run again
		}
		if err != ErrConflict {
			return r, err
		}
		e.opts.metrics.Conflict(p.Name)
		e.opts.metrics.Retry(p.Name)
		in.leave()
		err = e.backoff(ctx, attempt)
		in.enter()
		if err != nil {
			return Receipt{}, err
		}
	}
}

// execExclusive runs p once more on the latest sequenced snapshot while no
// other call may commit, so it cannot conflict. The commits in flight go on
// being persisted meanwhile: only the sequencing of new ones waits, for as
// long as one run of p takes.
func (e *core) execExclusive(ctx context.Context, p *process, c call) (Receipt, error) {
	e.turn.Lock()
	defer e.turn.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return Receipt{}, err
		}
		r, lost, err := e.exclusiveTurn(ctx, p, c)
		if !lost {
			return r, err
		}
		// A group before the turn's snapshot failed: the run read state
		// that is gone. Take the turn again on the recovered state.
	}
}

// exclusiveTurn is one exclusive run and commit; lost reports that its
// snapshot failed with its group, so nothing was committed or decided.
func (e *core) exclusiveTurn(ctx context.Context, p *process, c call) (r Receipt, lost bool, err error) {
	e.mu.Lock()
	e.exclusive = true
	snap := e.acquire(e.headp)
	e.mu.Unlock()
	released := false
	defer func() {
		if !released {
			e.release(snap)
		}
		e.mu.Lock()
		e.endTurn()
		e.mu.Unlock()
	}()
	if err := e.run(ctx, p, c, snap); err != nil {
		ok, werr := e.awaitSettled(ctx, snap)
		if werr != nil {
			return Receipt{}, false, werr
		}
		return Receipt{}, !ok, err
	}
	r, released, err = e.commit(p, c, snap, true)
	if err == ErrConflict { // only a failed snapshot conflicts in a turn
		return Receipt{}, true, nil
	}
	if ref, ok := err.(*refusal); ok {
		lost, err = e.settleRefusal(ctx, ref)
		return Receipt{}, lost, err
	}
	if err == nil {
		e.warn(ctx, c.Tx(), r.Version)
	}
	return r, false, err
}

// awaitSettled waits until snap is durable (ok) or lost with a group the
// store refused (not ok), or until ctx is done.
func (e *core) awaitSettled(ctx context.Context, snap *snapshot) (ok bool, err error) {
	if e.inMemory {
		// An in-memory engine publishes only durable snapshots, and calls
		// run on published ones. (Nor may it read the published one's
		// version below: it holds no reference on it, and it may be
		// recycled.)
		return true, nil
	}
	for {
		// published first: a snapshot that failed is marked before any
		// later group reuses its version.
		if e.published.Load().version >= snap.version {
			return !snap.failed.Load(), nil
		}
		if snap.failed.Load() {
			return false, nil
		}
		e.mu.Lock()
		if e.published.Load().version >= snap.version || snap.failed.Load() {
			e.mu.Unlock()
			continue
		}
		if e.settle == nil {
			e.settle = make(chan struct{})
		}
		ch := e.settle
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// settled wakes the calls waiting in awaitSettled: a group became durable
// or failed. e.mu is held.
func (e *core) settled() {
	if e.settle != nil {
		close(e.settle)
		e.settle = nil
	}
}

// run runs one attempt of p on snap.
func (e *core) run(ctx context.Context, p *process, c call, snap *snapshot) error {
	err := runOnce(ctx, p.Name, p.Errors, e.opts.codec, c, snap.boxed)
	e.countRejected(err)
	if err == nil && e.opts.headers != nil {
		c.Tx().setHeaders(ctx, e.opts.headers)
	}
	return err
}

// Run runs the call c of process name, which declares the domain errors
// declared, once on s, with no engine and nothing committed: what
// generated RunXxx functions do for unit tests. Errors are those Exec
// would return for the same run.
func Run[S any](ctx context.Context, name string, c Call[S], s *S, declared ...error) error {
	return runOnce(ctx, name, declared, nil, callFor(c), s)
}

// runOnce resets c's effects and runs it, turning a panic into a
// *PanicError and a process error into a *ProcessError (marked Undeclared
// for a DomainError not among declared).
func runOnce(ctx context.Context, name string, declared []error, codec Codec, c call, s any) (err error) {
	tx := c.Tx()
	tx.reset(codec)
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Process: name, Value: r, Stack: debug.Stack()}
		}
	}()
	if err := c.runOn(ctx, s); err != nil {
		return &ProcessError{Process: name, Err: err, Undeclared: undeclared(err, declared)}
	}
	return tx.err
}

func (e *core) backoff(ctx context.Context, attempt int) error {
	d := e.opts.backoff << min(attempt-1, 30)
	if d > e.opts.maxBackoff || d <= 0 {
		d = e.opts.maxBackoff
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(rand.N(d) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// commit validates the run of c on snap and, if no input changed since,
// sequences it and waits until it is durable. released reports that the
// commit dropped the caller's reference on snap (see publish).
func (e *core) commit(p *process, c call, snap *snapshot, exclusive bool) (r Receipt, released bool, err error) {
	tx := c.Tx()
	e.mu.Lock()
	for e.exclusive && !exclusive {
		e.cond.Wait()
	}
	if e.closed.Load() {
		e.mu.Unlock()
		return Receipt{}, false, ErrClosed
	}
	var conflict bool
	switch {
	case snap.failed.Load():
		// Lost with its group, whatever it holds: its version may since
		// have been reused by other commits.
		conflict = true
	case e.opts.strictCAS:
		conflict = e.headp.Load() != snap
	default:
		conflict = e.stale(p, tx, snap.version)
	}
	if conflict {
		e.mu.Unlock()
		return Receipt{}, false, ErrConflict
	}
	next := e.next()
	c.applyTo(next.state, next.version)
	if e.invs != nil {
		if err := e.checkInvariants(p.Name, tx, next.state); err != nil {
			// Decided on the last sequenced state, which a store failure
			// may yet take back: see settleRefusal.
			ref := &refusal{err: err, base: e.acquire(e.headp)}
			if e.onRefuse != nil {
				e.onRefuse()
			}
			e.discard(next)
			e.mu.Unlock()
			return Receipt{}, false, ref
		}
	}
	tx.proc, tx.snapv, tx.applier = p, snap.version, c
	if released, err = e.persist(tx, e.sequence(p, tx, next, c.ReceiptID()), snap); err != nil {
		return Receipt{}, released, err
	}
	e.opts.metrics.Commit(p.Name)
	// The receipt keeps the IDs; the Tx, which generated code pools, must
	// not keep the room they are in, which is the run's.
	ids := tx.ids
	tx.ids = nil
	return Receipt{Version: tx.rec.Version, MessageIDs: ids}, released, nil
}

// stale reports whether anything the run of p read, on the snapshot at
// version sv, was written since. e.mu is held.
func (e *core) stale(p *process, tx *Tx, sv uint64) bool {
	for _, q := range p.conflicts {
		if e.lastWrite[q] > sv {
			return true
		}
	}
	for _, q := range tx.readAlls {
		if e.lastWrite[q] > sv {
			return true
		}
	}
	head := e.headp.Load()
	for _, r := range tx.reads {
		if e.entryChanged(head, r, sv) {
			return true
		}
	}
	return false
}

// entryChanged reports whether the collection entry r may have been
// written or deleted after version sv, as far as head, the last sequenced
// snapshot, and the deleted-entry log tell. e.mu is held.
func (e *core) entryChanged(head *snapshot, r collKey, sv uint64) bool {
	if ver, ok := e.colls[r.path](head.state, r.key); ok {
		return ver > sv
	}
	if d, ok := e.deleted[r]; ok {
		return d > sv
	}
	return sv < e.horizon
}

// CompareAndSwap commits ch as a new version, and returns it, unless a
// commit after version expected exists that the caller could have read:
// then it returns ErrVersionMismatch naming the current durable version.
//
// Callers read durable versions only (Snapshot, pure calls, receipts).
// The commits after the durable version are sequenced but still with the
// store, and nobody can have read them. Precisely:
//
//   - If a commit after expected is durable, or expected is ahead of the
//     last sequenced version, CompareAndSwap fails.
//   - If expected is the last sequenced version, ch commits.
//   - Otherwise the commits after expected are in flight. If none of them
//     wrote or read what ch writes (a path, its ancestors or its
//     descendants; an entry of a collection, where reading any entry
//     counts as reading the whole collection; a CompareAndSwap, and under
//     WithStrictCAS any commit, counts as reading everything), ch commits
//     at once, sequenced after them: the outcome is the one of committing
//     ch right after expected, before them. Else CompareAndSwap takes an
//     exclusive turn, so that nothing new is sequenced, waits until every
//     sequenced commit is durable or failed, and decides again: it fails
//     if one is durable, and commits if all failed (the engine is back at
//     expected).
//
// A change that writes nothing commits nothing: it succeeds if expected is
// the durable version. A commit sequenced after commits in flight becomes
// durable after them, and fails with them (ErrStore). ctx bounds the wait
// for them, not the wait for another call's exclusive turn.
func (e *Engine[S]) CompareAndSwap(ctx context.Context, expected uint64, ch Change[S]) (uint64, error) {
	return e.c.cas(ctx, expected, changeOf[S]{ch})
}

func (e *core) cas(ctx context.Context, expected uint64, ch change) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tx := new(Tx)
	tx.reset(nil)
	ch.Record(tx)
	v, err := e.compareAndSwap(ctx, expected, tx, ch)
	if err == nil {
		e.warn(ctx, tx, v) // invariants with on_fail: warn
	}
	return v, err
}

func (e *core) compareAndSwap(ctx context.Context, expected uint64, tx *Tx, ch change) (uint64, error) {
	e.mu.Lock()
	for e.exclusive {
		e.waiting()
		e.cond.Wait()
	}
	if e.closed.Load() {
		e.mu.Unlock()
		return 0, ErrClosed
	}
	switch e.compare(tx, expected) {
	case casSwap:
		return e.swap(expected, tx, ch)
	case casMismatch:
		err := e.mismatch(expected)
		e.mu.Unlock()
		return 0, err
	}
	e.mu.Unlock()
	return e.compareInTurn(ctx, expected, tx, ch)
}

// casVerdict is what a CompareAndSwap decides from what it sees now.
type casVerdict uint8

const (
	casSwap     casVerdict = iota // commit the change
	casMismatch                   // a commit after expected is durable
	casSettle                     // wait for the commits in flight, then decide
)

// compare decides a CompareAndSwap of the change recorded in tx on
// version expected. e.mu is held.
func (e *core) compare(tx *Tx, expected uint64) casVerdict {
	durable, head := e.published.Load().version, e.headp.Load().version
	switch {
	case durable > expected || expected > head:
		return casMismatch
	case len(tx.writes) == 0:
		// Nothing to order: only what the caller can see is checked.
		if durable == expected {
			return casSwap
		}
		return casMismatch
	case expected == head || !e.interferes(tx, expected):
		return casSwap
	}
	return casSettle
}

// interferes reports whether a commit sequenced after version expected,
// which is therefore still in flight, wrote or read what tx writes: a path
// related to one tx writes (itself, an ancestor, a descendant), or an entry
// tx writes. A read of any entry of a collection counts as a read of the
// collection, which is coarse but cheap to keep. e.mu is held.
func (e *core) interferes(tx *Tx, expected uint64) bool {
	if e.lastReadAll > expected {
		return true
	}
	for _, q := range conflictSet(e.paths, tx.writes) {
		if e.lastRead[q] > expected {
			return true
		}
		// A collection's writes are checked entry by entry below.
		if e.lastWrite[q] > expected && (e.colls[q] == nil || !slices.Contains(tx.writes, q)) {
			return true
		}
	}
	head := e.headp.Load()
	for _, k := range tx.keys {
		if e.entryChanged(head, k.collKey, expected) {
			return true
		}
	}
	return false
}

// compareInTurn decides a CompareAndSwap that commits in flight may
// interfere with once they have settled. It takes an exclusive turn, so
// that nothing new is sequenced, and waits until every sequenced commit is
// durable or failed: the durable version is then the last sequenced one,
// and the change commits if it is expected.
func (e *core) compareInTurn(ctx context.Context, expected uint64, tx *Tx, ch change) (uint64, error) {
	e.turn.Lock()
	defer e.turn.Unlock()
	e.mu.Lock()
	e.exclusive = true
	last := e.headp.Load()
	e.waiting()
	e.mu.Unlock()
	_, err := e.awaitSettled(ctx, last)
	e.mu.Lock()
	e.endTurn()
	switch {
	case err != nil:
	case e.closed.Load():
		err = ErrClosed
	case e.published.Load().version != expected:
		err = e.mismatch(expected)
	default:
		return e.swap(expected, tx, ch)
	}
	e.mu.Unlock()
	return 0, err
}

// swap commits ch, whose writes tx recorded; a change that writes nothing
// commits nothing. e.mu is held on entry and released on return.
func (e *core) swap(expected uint64, tx *Tx, ch change) (uint64, error) {
	if len(tx.writes) == 0 {
		e.mu.Unlock()
		return expected, nil
	}
	next := e.next()
	ch.applyTo(next.state, next.version)
	if e.invs != nil {
		if err := e.checkInvariants("", tx, next.state); err != nil {
			e.discard(next)
			e.mu.Unlock()
			e.countRejected(err)
			return 0, err
		}
	}
	tx.proc, tx.snapv, tx.applier = nil, expected, ch
	if _, err := e.persist(tx, e.sequence(nil, tx, next, nil), nil); err != nil {
		if err == ErrConflict { // another engine committed first (remote.go)
			return 0, fmt.Errorf("%w: expected %d: another engine committed after it", ErrVersionMismatch, expected)
		}
		return 0, err
	}
	return tx.rec.Version, nil
}

// mismatch is the error of a CompareAndSwap on expected that fails. It
// names the durable version, the one a caller can read. e.mu is held.
func (e *core) mismatch(expected uint64) error {
	return fmt.Errorf("%w: expected %d, current %d", ErrVersionMismatch, expected, e.published.Load().version)
}

// endTurn ends an exclusive turn and wakes the calls waiting for it. e.mu
// is held.
func (e *core) endTurn() {
	e.exclusive = false
	e.cond.Broadcast()
}

// waiting calls the test hook onWait. e.mu is held.
func (e *core) waiting() {
	if e.onWait != nil {
		e.onWait()
	}
}

// next returns the snapshot of the next version: a shallow copy of the last
// sequenced state, for the commit to apply its writes to. e.mu is held.
func (e *core) next() *snapshot {
	head := e.headp.Load()
	s := e.newSnapshot()
	s.version = head.version + 1
	e.ops.copy(s.state, head.state)
	return s
}

// sequence gives tx, the commit of process p (nil for CompareAndSwap),
// the version of next, the snapshot its writes were applied to (see next),
// and the receipt's ID room id (see Call.ReceiptID; nil to allocate): it
// records the writes and reads, assigns the messages' fields and makes
// next the last sequenced snapshot (with an in-memory store, persist does,
// once the store has it). The caller applies the writes: a generic
// interface conversion here would cost a type assertion per commit. e.mu
// is held.
func (e *core) sequence(p *process, tx *Tx, next *snapshot, id *[1]string) *snapshot {
	v := next.version
	name := ""
	if p != nil {
		name = p.Name
	}
	for _, w := range tx.writes {
		e.lastWrite[w] = v
		if e.colls[w] == nil { // a collection's writes are listed per entry
			tx.wrecs = append(tx.wrecs, Write{Path: e.paths[w]})
		}
	}
	for _, k := range tx.keys {
		tx.wrecs = append(tx.wrecs, Write{Path: e.paths[k.path], Key: k.key, Deleted: k.del})
		if k.del {
			e.deleted[k.collKey] = v
		}
	}
	if len(e.deleted) > maxDeleted {
		clear(e.deleted)
		e.horizon = v
	}
	now := e.opts.now()
	if len(tx.msgs) > 0 {
		// The receipt's ID slice is not in tx, which generated code reuses
		// while the receipt outlives the call.
		if len(tx.msgs) == 1 && id != nil {
			tx.ids = id[:]
		} else {
			tx.ids = make([]string, len(tx.msgs))
		}
		for i := range tx.msgs {
			m := &tx.msgs[i]
			m.ID = tx.newID(e.inc, v, i)
			tx.ids[i] = m.ID
			m.Version = v
			m.CreatedAt = now
			p := e.keySeqs.of(m.Topic, m.Key)
			*p++
			m.KeySeq = *p
		}
	}
	tx.rec = Record{Version: v, Process: name, Time: now, Writes: tx.wrecs, Messages: tx.msgs, State: next.boxed}
	tx.status = txPending
	if !e.inMemory { // else persist publishes it once the store has it
		e.head.Store(next)
		e.noteReads(p, v)
	}
	return next
}

// noteReads records what the commit of p (nil for CompareAndSwap) at
// version v read, for CompareAndSwap to check (see interferes). A
// CompareAndSwap counts as reading everything, since its caller computed
// the change from whatever it read, and so does any commit under
// WithStrictCAS. e.mu is held.
func (e *core) noteReads(p *process, v uint64) {
	if p == nil || e.opts.strictCAS {
		e.lastReadAll = v
		return
	}
	for _, q := range p.Inputs {
		e.lastRead[q] = v
	}
}

// persist makes tx, sequenced as next, durable, and returns once it is or
// has failed. held is the snapshot the caller holds a reference on, if
// any; released reports that persist dropped it (see publish). e.mu is
// held on entry and released on return.
func (e *core) persist(tx *Tx, next, held *snapshot) (released bool, err error) {
	if !e.inMemory {
		e.pending = append(e.pending, tx)
		e.pendingSnaps = append(e.pendingSnaps, next)
		e.nudgeFlush()
		return false, e.await(tx)
	}
	// The store does no I/O and the engine keeps its lock while it works,
	// so nothing else is pending: commit tx alone, now.
	defer e.mu.Unlock()
	e.one[0] = &tx.rec
	err = e.storeCommit(e.one[:], nil)
	e.one[0] = nil
	if err != nil {
		e.fail([]*Tx{tx}, []*snapshot{next}, err)
		return false, tx.serr
	}
	e.durable(tx)
	released = e.publish(next, held)
	e.settled()
	return released, nil
}

// durable records that tx is durable. e.mu is held.
func (e *core) durable(tx *Tx) {
	e.noteCommit(tx)
	for _, w := range tx.writes {
		e.durableWrite[w] = tx.rec.Version
	}
	tx.status = txDurable
	tx.rec.State = nil // the store has it; a pooled Tx must not keep it alive
	tx.applier = nil
}

// maxDeleted bounds the deleted-entry log; see Engine.deleted.
const maxDeleted = 1 << 14

// keySeqs holds the last KeySeq assigned per (topic, key). Topics are few
// and generated code passes the same string constants, so they are found
// by a scan that usually compares pointers; only the key is hashed.
type keySeqs struct {
	topics []topicSeqs
}

type topicSeqs struct {
	topic string
	keys  map[string]*uint64
}

// of returns the counter of (topic, key), created at 0. The map holds
// pointers so that the common case, a key seen before, costs one lookup.
func (k *keySeqs) of(topic, key string) *uint64 {
	var keys map[string]*uint64
	for i := range k.topics {
		if k.topics[i].topic == topic {
			keys = k.topics[i].keys
			break
		}
	}
	if keys == nil {
		keys = make(map[string]*uint64)
		k.topics = append(k.topics, topicSeqs{topic: topic, keys: keys})
	}
	p := keys[key]
	if p == nil {
		p = new(uint64)
		keys[key] = p
	}
	return p
}

// await waits until tx is durable or failed. A commit that finds no flush
// under way persists the pending commits, its own among them, in one
// store Commit, so concurrent commits share a transaction (group commit).
// If more were sequenced meanwhile, a goroutine takes over and persists
// them, group after group, until none is pending: the caller gets its
// receipt at once, and the store is handed the next group as soon as the
// last one settled, without waiting for a caller to be scheduled. Other
// callers sleep until their own group is durable. e.mu is held on entry
// and released on return.
func (e *core) await(tx *Tx) error {
	if e.flushing {
		tx.sleep(&e.mu)
	} else {
		e.flushing = true
		e.linger()
		e.flushGroup()
		if len(e.pending) > 0 {
			go e.flush()
		} else {
			e.flushed()
		}
		e.mu.Unlock()
	}
	if tx.status == txFailed || tx.status == txConflict {
		return tx.serr
	}
	return nil
}

// presence counts a call of a process that commits on a shared store in
// core.inside (on) from its start to its return, but for waits of its own
// (its snapshot to settle, a backoff).
type presence struct {
	e  *core
	on bool
}

func (p presence) enter() {
	if p.on {
		p.e.inside.Add(1)
	}
}

// leave uncounts the call and wakes a lingering flush.
func (p presence) leave() {
	if p.on {
		p.e.inside.Add(-1)
		p.e.nudgeFlush()
	}
}

// nudgeFlush wakes a lingering flush, if one waits, to count again.
func (e *core) nudgeFlush() {
	select {
	case e.nudge <- struct{}{}:
	default:
	}
}

// maxLinger bounds how long a group waits for calls to join it.
const maxLinger = time.Millisecond

// linger holds the next group back, on a shared store, while calls of
// processes that commit are inside the engine but not among the pending
// commits (running their process, or about to return), for at most half
// as long as the store took for the last group (and maxLinger). The
// callers of the group that just settled usually call again at once:
// waiting the few microseconds they take makes a group of every caller
// rather than of the half that came while the other half was with the
// store. A shared store's time per group is mostly a round trip and a
// flush, and grows much less than the group's size (PostgreSQL, 8
// callers: groups of 8 instead of 4, 1.5 times the commits per second);
// a local store works on the machine's CPUs, which the callers need too
// (SQLite, 64 callers: 8% fewer commits per second), so its groups do
// not wait (inside stays 0). A caller that leaves ends the wait for it,
// and so does Close. Nor does a group wait during an exclusive turn, which
// holds the calls back and may itself wait for the group. e.mu is held,
// and released while it waits.
func (e *core) linger() {
	if int(e.inside.Load()) <= len(e.pending) || e.exclusive {
		return
	}
	d := min(e.stored/2, maxLinger)
	if e.lingerFor > 0 {
		d = e.lingerFor
	}
	if e.onLinger != nil {
		e.onLinger()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for int(e.inside.Load()) > len(e.pending) && !e.closed.Load() && !e.exclusive {
		e.mu.Unlock()
		select {
		case <-e.nudge:
		case <-t.C:
			e.mu.Lock()
			return
		}
		e.mu.Lock()
	}
}

// flush persists the pending commits, group after group, until none is
// left. It runs in its own goroutine while e.flushing.
func (e *core) flush() {
	e.mu.Lock()
	for len(e.pending) > 0 {
		e.linger()
		e.flushGroup()
	}
	e.flushed()
	e.mu.Unlock()
}

// flushed ends a flush. e.mu is held.
func (e *core) flushed() {
	e.flushing = false
	e.cond.Broadcast() // for Close, which waits for this
}

// flushGroup hands every pending commit to the store in one Commit and
// wakes their callers once it has settled. e.mu is held, and released
// while the store works.
func (e *core) flushGroup() {
	batch, snaps := e.pending, e.pendingSnaps
	e.pending, e.pendingSnaps = e.spare[:0], e.spareSnaps[:0]
	// A shared store's rebase (remote.go) may drop and renumber them
	// while the store has them.
	e.flushTxs, e.flushSnaps = batch, snaps
	recs := e.recs[:0]
	for _, t := range batch {
		recs = append(recs, &t.rec)
	}
	var fp *Footprint
	if e.shared != nil {
		fp = e.footprint(batch)
	}
	e.mu.Unlock()
	start := time.Now()
	err := e.storeCommit(recs, fp)
	stored := time.Since(start)
	e.mu.Lock()
	e.stored = stored
	clear(recs)
	e.recs = recs[:0]
	if e.shared != nil {
		batch, snaps = e.flushTxs, e.flushSnaps
	}
	e.flushTxs, e.flushSnaps = nil, nil
	switch {
	case len(batch) == 0: // every commit of the group was dropped
	case err != nil:
		e.fail(batch, snaps, err)
	default:
		e.published.Store(snaps[len(snaps)-1])
		for _, t := range batch {
			e.durable(t)
			wake(t)
		}
	}
	e.settled()
	clear(batch)
	clear(snaps)
	e.spare, e.spareSnaps = batch[:0], snaps[:0]
}

// storeCommit hands recs to the store. The store works for every caller
// in the group, so no caller's context may cancel it. A panic in the store
// (or in a codec it calls) fails the group as an error would, as a
// *PanicError with no process: unrecovered it would kill the process, in
// the flush goroutine, or leave the engine flushing for ever.
func (e *core) storeCommit(recs []*Record, fp *Footprint) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if e.shared != nil {
		return e.shared.CommitShared(context.Background(), recs, fp, e.rebase)
	}
	return e.store.Commit(context.Background(), recs)
}

// sleep releases mu until the flush wakes t with its commit settled. mu
// is held.
func (t *Tx) sleep(mu *sync.Mutex) {
	if t.wake == nil {
		t.wake = make(chan struct{}, 1)
	}
	t.sleeping = true
	mu.Unlock()
	<-t.wake
}

// wake wakes the caller sleeping on tx, if any. The engine's lock is held.
func wake(tx *Tx) {
	if tx.sleeping {
		tx.sleeping = false
		tx.wake <- struct{}{} // never blocks: one sleeper, one token
	}
}

// fail fails a group that the store refused, and every commit sequenced
// after it (they were validated against the group), marks their snapshots
// lost, and returns the engine to the last durable version. e.mu is held.
func (e *core) fail(batch []*Tx, snaps []*snapshot, err error) {
	for _, s := range snaps {
		s.failed.Store(true)
	}
	for _, s := range e.pendingSnaps {
		s.failed.Store(true)
	}
	serr := &StoreError{Version: batch[0].rec.Version, Err: err}
	failed := append(batch, e.pending...)
	e.unassignKeySeqs(failed)
	for i := len(failed) - 1; i >= 0; i-- {
		t := failed[i]
		t.status, t.serr = txFailed, serr
		t.rec.State = nil
		wake(t)
	}
	clear(e.pending)
	clear(e.pendingSnaps)
	e.pending, e.pendingSnaps = e.pending[:0], e.pendingSnaps[:0]
	e.headp.Store(e.published.Load())
	copy(e.lastWrite, e.durableWrite)
	// Nothing is in flight any more: the reads of the failed commits no
	// longer count.
	durable := e.published.Load().version
	for i, v := range e.lastRead {
		e.lastRead[i] = min(v, durable)
	}
	e.lastReadAll = min(e.lastReadAll, durable)
}

// Close stops the engine: calls that have not committed get ErrClosed;
// commits already handed to the store finish first. Close is idempotent
// and does not close a store given with WithStore.
func (e *Engine[S]) Close() error { return e.c.close() }

func (e *core) close() error {
	e.mu.Lock()
	e.closed.Store(true)
	e.nudgeFlush() // a lingering group goes at once
	for e.flushing || len(e.pending) > 0 {
		e.cond.Wait()
	}
	e.cond.Broadcast()
	if e.clock != nil {
		e.clock.close() // no commit reads it once closed is set
	}
	cancel, followed := e.cancelFollow, e.followed
	e.cancelFollow = nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-followed // it takes e.mu to apply what it reads
	}
	return nil
}
