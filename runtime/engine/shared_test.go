package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// sharedLog is a SharedStore's content in memory, for several engines of
// one process: the history every engine appends to under one lock (what
// PostgreSQL's head row lock is to runtime/store/postgres), each commit
// with the values it left, encoded by the state codec.
type sharedLog struct {
	mu      sync.Mutex
	commits []sharedCommit
	changed chan struct{} // closed and replaced at every commit
	fail    map[int]error // the next CommitShared of an instance fails
}

type sharedCommit struct {
	instance int
	remote   engine.Remote
	record   engine.Record // as the engine that committed it handed it over
	state    tstate        // the state after it, as that engine saw it
}

func newSharedLog() *sharedLog {
	return &sharedLog{changed: make(chan struct{}), fail: map[int]error{}}
}

// sharedStore is one engine's handle on a sharedLog.
type sharedStore struct {
	log      *sharedLog
	instance int
	codec    engine.StateCodec
	// noFootprint: rebase every group on the others' commits, as
	// before stores numbered groups after them.
	noFootprint bool
}

var _ engine.SharedStore = (*sharedStore)(nil)

func (s *sharedStore) Recover(_ context.Context, codec engine.StateCodec) (*engine.Recovered, error) {
	s.codec = codec
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	if len(s.log.commits) > 0 {
		return nil, errors.New("sharedStore: recovery of a non-empty log is not implemented")
	}
	return nil, nil
}

func (s *sharedStore) Commit(ctx context.Context, recs []*engine.Record) error {
	return s.CommitShared(ctx, recs, nil, func([]engine.Remote, bool) ([]*engine.Record, error) {
		return nil, errors.New("sharedStore: Commit with other engines' commits")
	})
}

// CommitShared numbers a group after the other engines' commits itself,
// as runtime/store/postgres does, when they overlap none of its footprint
// (unless noFootprint), and checks that the engine numbers it so too.
func (s *sharedStore) CommitShared(_ context.Context, recs []*engine.Record, fp *engine.Footprint, rebase func([]engine.Remote, bool) ([]*engine.Record, error)) error {
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fail[s.instance]; err != nil {
		delete(l.fail, s.instance)
		return err
	}
	if base := int(recs[0].Version) - 1; base != len(l.commits) {
		if base > len(l.commits) {
			return fmt.Errorf("sharedStore: records numbered from %d after version %d", base+1, len(l.commits))
		}
		var others []engine.Remote
		for _, c := range l.commits[base:] {
			if c.instance == s.instance {
				return fmt.Errorf("sharedStore: version %d of instance %d is after its base %d", c.remote.Version, s.instance, base)
			}
			others = append(others, c.remote)
		}
		var err error
		if fp == nil || fp.All || s.noFootprint || overlaps(others, fp) {
			if recs, err = rebase(others, false); err != nil {
				return err
			}
		} else if recs, err = s.renumber(recs, others, rebase); err != nil {
			return err
		}
	}
	for i, r := range recs {
		if want := uint64(len(l.commits) + 1); r.Version != want {
			return fmt.Errorf("sharedStore: record %d has version %d, want %d", i, r.Version, want)
		}
		remote, err := s.remote(r)
		if err != nil {
			return err
		}
		rec := *r
		rec.Writes, rec.Messages = slices.Clone(r.Writes), slices.Clone(r.Messages)
		l.commits = append(l.commits, sharedCommit{instance: s.instance, remote: remote, record: rec, state: *r.State.(*tstate)})
	}
	if len(recs) > 0 {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return nil
}

// renumber has rebase number recs after others, none of which overlaps
// them, and checks that it moved them and their messages by the number
// of others, dropping none, leaving their KeySeqs.
func (s *sharedStore) renumber(recs []*engine.Record, others []engine.Remote, rebase func([]engine.Remote, bool) ([]*engine.Record, error)) ([]*engine.Record, error) {
	d := uint64(len(others))
	want := make([][]outbox.Message, len(recs))
	for i, r := range recs {
		want[i] = slices.Clone(r.Messages)
		for j := range want[i] {
			m := &want[i][j]
			inc, _, _, _ := outbox.ParseMessageID(m.ID)
			m.Version += d
			m.ID = outbox.MessageID(inc, m.Version, j)
		}
	}
	first := recs[0].Version + d
	got, err := rebase(others, true)
	if err != nil {
		return nil, err
	}
	if len(got) != len(want) {
		return nil, fmt.Errorf("sharedStore: rebase of a written group returned %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Version != first+uint64(i) || len(r.Messages) != len(want[i]) {
			return nil, fmt.Errorf("sharedStore: written record %d has version %d and %d messages, want %d and %d", i, r.Version, len(r.Messages), first+uint64(i), len(want[i]))
		}
		for j, m := range r.Messages {
			if w := want[i][j]; m.ID != w.ID || m.Version != w.Version || m.KeySeq != w.KeySeq {
				return nil, fmt.Errorf("sharedStore: written message %s (version %d, KeySeq %d), want %s (%d, %d)", m.ID, m.Version, m.KeySeq, w.ID, w.Version, w.KeySeq)
			}
		}
	}
	return got, nil
}

// overlaps reports whether a commit of others overlaps fp.
func overlaps(others []engine.Remote, fp *engine.Footprint) bool {
	for _, o := range others {
		for _, w := range o.Writes {
			for _, p := range fp.Paths {
				if w.Path == p || strings.HasPrefix(w.Path, p+".") {
					return true
				}
			}
			for _, e := range fp.Entries {
				if w.Path == e.Path && w.Key == e.Key {
					return true
				}
			}
		}
		for _, ks := range o.KeySeqs {
			if slices.Contains(fp.Keys, ks.TopicKey) {
				return true
			}
		}
	}
	return false
}

// remote encodes what r left as another engine receives it.
func (s *sharedStore) remote(r *engine.Record) (engine.Remote, error) {
	rm := engine.Remote{Version: r.Version, Process: r.Process, Writes: slices.Clone(r.Writes)}
	seen := map[int]bool{}
	for _, w := range r.Writes {
		f := s.codec.Field(w.Path)
		if f < 0 || seen[f] {
			continue
		}
		seen[f] = true
		data, err := s.codec.AppendField(nil, r.State, f)
		if err != nil {
			return rm, err
		}
		rm.Values = append(rm.Values, engine.RemoteValue{Field: f, Data: data})
	}
	last := map[outbox.TopicKey]uint64{}
	for _, m := range r.Messages {
		last[outbox.TopicKey{Topic: m.Topic, Key: m.Key}] = m.KeySeq
		rm.MessageIDs = append(rm.MessageIDs, m.ID)
	}
	for tk, seq := range last {
		rm.KeySeqs = append(rm.KeySeqs, engine.KeySeq{TopicKey: tk, Seq: seq})
	}
	return rm, nil
}

func (s *sharedStore) Follow(ctx context.Context, from uint64, apply func([]engine.Remote) uint64) error {
	for {
		s.log.mu.Lock()
		var others []engine.Remote
		for _, c := range s.log.commits[min(int(from), len(s.log.commits)):] {
			if c.instance != s.instance {
				others = append(others, c.remote)
			}
		}
		changed := s.log.changed
		s.log.mu.Unlock()
		if len(others) > 0 {
			from = apply(others)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(time.Millisecond): // the engine skipped them: it was committing
		}
	}
}

func (s *sharedStore) Head(context.Context) (uint64, error) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return uint64(len(s.log.commits)), nil
}

// The outbox is not what these tests look at.
func (s *sharedStore) Undelivered(context.Context, int) ([]outbox.Message, error) { return nil, nil }
func (s *sharedStore) Ack(context.Context, []string) error                        { return nil }
func (s *sharedStore) Notify() <-chan struct{}                                    { return nil }

// sharedSchema is the tests' schema with its state described to stores,
// so that values cross from one engine to another.
func sharedSchema(procs ...*proc) *engine.Schema[tstate] {
	s := schema(procs...)
	for i := range 4 {
		s.State = append(s.State, engine.ValueField(paths[i], "int", func(s *tstate) *int { return &s.C[i] }))
	}
	s.State = append(s.State, engine.ValueField("domain.p", "pair", func(s *tstate) *pair { return &s.P }))
	return s
}

// Several engines on one shared store commit random calls concurrently:
// the history they make together is serializable. Replaying it in version
// order from the initial state gives every state an engine committed, and
// every message; versions are dense across engines, and KeySeqs per key;
// every call that failed left nothing; and every engine, once synced,
// holds the final state.
func TestPropertySharedHistory(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		engines := rapid.IntRange(2, 3).Draw(rt, "engines")
		log := newSharedLog()
		initial := tstate{C: [4]int{10, 20, 30, 40}, P: pair{X: 1, Y: 2}}
		attempts := rapid.IntRange(1, 4).Draw(rt, "attempts")
		es := make([]*engine.Engine[tstate], engines)
		for i := range es {
			e, err := engine.New(context.Background(), sharedSchema(propProcs...), initial,
				engine.WithStore(&sharedStore{log: log, instance: i}), engine.WithRetry(attempts, time.Microsecond, 50*time.Microsecond))
			if err != nil {
				rt.Fatal(err)
			}
			defer e.Close()
			es[i] = e
		}
		type work struct {
			engine int
			plan   []op
		}
		var works []work
		for i := range es {
			for range rapid.IntRange(1, 2).Draw(rt, "workers") {
				works = append(works, work{engine: i, plan: rapid.SliceOfN(rapid.Custom(func(t *rapid.T) op {
					return op{
						proc:      rapid.IntRange(0, len(propProcs)-1).Draw(t, "proc"),
						arg:       rapid.IntRange(1, 9).Draw(t, "arg"),
						failStore: rapid.IntRange(0, 19).Draw(t, "fail") == 0,
					}
				}), 1, 20).Draw(rt, "plan")})
			}
		}
		// Every engine watches the whole history, the others' commits
		// included.
		watchCtx, stopWatching := context.WithCancel(context.Background())
		defer stopWatching()
		watched := make([]chan uint64, len(es))
		for i, e := range es {
			watched[i] = make(chan uint64, 1024)
			seq := e.Watch(watchCtx, 0)
			go func() {
				defer close(watched[i])
				for c, err := range seq {
					if err != nil {
						return
					}
					watched[i] <- c.Version
				}
			}()
		}
		results := make([][]outcome, len(works))
		var wg sync.WaitGroup
		for w, wk := range works {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, o := range wk.plan {
					if o.failStore {
						log.mu.Lock()
						log.fail[wk.engine] = errInjected
						log.mu.Unlock()
					}
					c := &call{p: propProcs[o.proc], arg: o.arg, hook: runtime.Gosched}
					r, err := es[wk.engine].Exec(context.Background(), o.proc, c)
					results[w] = append(results[w], outcome{op: o, receipt: r, err: err, in: c.in})
				}
			}()
		}
		wg.Wait()

		byVersion := map[uint64]outcome{}
		for _, rs := range results {
			for _, r := range rs {
				p := propProcs[r.op.proc]
				switch {
				case r.err != nil:
					if !errors.Is(r.err, engine.ErrStore) && !errors.Is(r.err, engine.ErrPanic) && r.err.Error() != "theus: process c3_even_only: odd" {
						rt.Fatalf("%s(%d): unexpected error %v", p.name, r.op.arg, r.err)
					}
				case p.pure:
				default:
					if prev, dup := byVersion[r.receipt.Version]; dup {
						rt.Fatalf("version %d returned to two calls: %v and %v", r.receipt.Version, prev.op, r.op)
					}
					byVersion[r.receipt.Version] = r
				}
			}
		}
		log.mu.Lock()
		hist := slices.Clone(log.commits)
		log.mu.Unlock()
		if len(hist) != len(byVersion) {
			rt.Fatalf("the store holds %d commits, %d calls succeeded", len(hist), len(byVersion))
		}
		state := initial
		keySeq := map[outbox.TopicKey]uint64{}
		for i, c := range hist {
			rec := c.record
			if rec.Version != uint64(i+1) {
				rt.Fatalf("commit %d has version %d", i, rec.Version)
			}
			r, ok := byVersion[rec.Version]
			if !ok {
				rt.Fatalf("version %d is in the store but no call received it", rec.Version)
			}
			p := propProcs[r.op.proc]
			if rec.Process != p.name {
				rt.Fatalf("version %d: store says %s, receipt came from %s", rec.Version, rec.Process, p.name)
			}
			in := make([]int, len(p.inputs))
			for j, path := range p.inputs {
				in[j] = get(&state, path)
			}
			out, msgs, err := p.fn(in, r.op.arg)
			if err != nil {
				rt.Fatalf("version %d: replay of %s(%d) fails (%v) but it committed", rec.Version, p.name, r.op.arg, err)
			}
			for j, v := range out {
				set(&state, p.outputs[j], v)
			}
			if c.state != state {
				rt.Fatalf("version %d (%s(%d) on engine %d): committed state %+v, serial replay gives %+v", rec.Version, p.name, r.op.arg, c.instance, c.state, state)
			}
			if len(rec.Messages) != len(msgs) || len(r.receipt.MessageIDs) != len(msgs) {
				rt.Fatalf("version %d: %d messages committed, %d in the receipt, replay emits %d", rec.Version, len(rec.Messages), len(r.receipt.MessageIDs), len(msgs))
			}
			for j, m := range rec.Messages {
				if string(m.Payload) != msgs[j] || m.Version != rec.Version || m.ID != r.receipt.MessageIDs[j] {
					rt.Fatalf("version %d message %d = %+v; replay payload %q, receipt ID %s", rec.Version, j, m, msgs[j], r.receipt.MessageIDs[j])
				}
				tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
				keySeq[tk]++
				if m.KeySeq != keySeq[tk] {
					rt.Fatalf("message %s of %v has KeySeq %d, want %d", m.ID, tk, m.KeySeq, keySeq[tk])
				}
			}
		}
		for i, e := range es {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := e.Sync(ctx)
			cancel()
			if err != nil {
				rt.Fatalf("engine %d: Sync: %v", i, err)
			}
			if v, s := e.Snapshot(); v != uint64(len(hist)) || *s != state {
				rt.Fatalf("engine %d after Sync: version %d %+v, serial replay (version %d) %+v", i, v, *s, len(hist), state)
			}
		}
		for i := range es {
			for j := range len(hist) {
				if v, ok := <-watched[i]; !ok || v != uint64(j+1) {
					rt.Fatalf("engine %d watched version %d (%v) where version %d was due", i, v, ok, j+1)
				}
			}
		}
		stopWatching()
	})
}

// gatedShared holds its first CommitShared until gate is closed.
type gatedShared struct {
	*sharedStore
	gate    chan struct{}
	waiting chan struct{} // closed when the first CommitShared waits
	once    sync.Once
}

func (g *gatedShared) CommitShared(ctx context.Context, recs []*engine.Record, fp *engine.Footprint, rebase func([]engine.Remote, bool) ([]*engine.Record, error)) error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.waiting)
		<-g.gate
	}
	return g.sharedStore.CommitShared(ctx, recs, fp, rebase)
}

// A rebase drops the local commits that read what another engine's commit
// wrote, and then those that read what a dropped one wrote: engine A's
// move_c2_c3 (reads c2) is with the store when engine B commits a write of
// c2; A's copy_c3_to_c1 ran on move_c2_c3's state and read its c3. Both
// run again, and the history replays.
func TestRebaseDropsWhatReadADroppedCommit(t *testing.T) {
	setC2 := &proc{name: "set_c2", outputs: []int{pathC2},
		fn: func(_ []int, arg int) ([]int, []string, error) { return []int{100 * arg}, nil, nil }}
	copyC3 := &proc{name: "copy_c3_to_c1", inputs: []int{pathC3}, outputs: []int{pathC1},
		fn: func(in []int, _ int) ([]int, []string, error) { return []int{in[0]}, nil, nil }}
	procs := []*proc{propProcs[2], copyC3, setC2}
	const move, cp, set = 0, 1, 2
	log := newSharedLog()
	initial := tstate{C: [4]int{10, 20, 30, 40}}
	gated := &gatedShared{sharedStore: &sharedStore{log: log, instance: 0}, gate: make(chan struct{}), waiting: make(chan struct{})}
	a, err := engine.New(context.Background(), sharedSchema(procs...), initial, engine.WithStore(gated))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := engine.New(context.Background(), sharedSchema(procs...), initial, engine.WithStore(&sharedStore{log: log, instance: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	done := make(chan error, 2)
	moveCall := &call{p: procs[move], arg: 3}
	go func() { _, err := a.Exec(context.Background(), move, moveCall); done <- err }()
	<-gated.waiting // version 1 (c2 27, c3 43) is with the store
	copyCall := &call{p: procs[cp]}
	go func() { _, err := a.Exec(context.Background(), cp, copyCall); done <- err }()
	for engine.Sequenced(a) != 2 { // copy_c3_to_c1 read c3 = 43 of version 1
		runtime.Gosched()
	}
	if copyCall.in[0] != 43 {
		t.Fatalf("copy_c3_to_c1 read c3 = %d, want 43 of the commit with the store", copyCall.in[0])
	}
	if _, err := b.Exec(context.Background(), set, &call{p: procs[set], arg: 5}); err != nil {
		t.Fatal(err) // version 1 in the store: c2 = 500
	}
	close(gated.gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if moveCall.runs < 2 || copyCall.runs < 2 { // a second run may conflict with the first one's again
		t.Fatalf("runs: move_c2_c3 %d, copy_c3_to_c1 %d; want both run again", moveCall.runs, copyCall.runs)
	}
	// The history replays: set_c2, then move_c2_c3 and copy_c3_to_c1 in
	// the order they committed again.
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.commits) != 3 {
		t.Fatalf("%d commits, want 3", len(log.commits))
	}
	state := initial
	for _, c := range log.commits {
		switch c.record.Process {
		case "set_c2":
			state.C[2] = 500
		case "move_c2_c3":
			state.C[2], state.C[3] = state.C[2]-3, state.C[3]+3
		case "copy_c3_to_c1":
			state.C[1] = state.C[3]
		}
		if c.state != state {
			t.Fatalf("version %d (%s): %+v, serial replay %+v", c.record.Version, c.record.Process, c.state, state)
		}
	}
}
