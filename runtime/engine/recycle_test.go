package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// An engine on the memory store reuses the memory of snapshots no one can
// see any more (recycle.go). These tests attack what must not be reused:
// a snapshot handed out by Snapshot, one a call is running on, and one a
// store that merely embeds the memory store keeps.

// Snapshots handed out by Snapshot never change, however many commits
// follow.
func TestSnapshotsHandedOutStayAsTheyAre(t *testing.T) {
	procs := []*proc{incC0}
	e := newEngine(t, memory.New(), procs)
	type seen struct {
		version uint64
		s       *tstate
		was     tstate
	}
	var kept []seen
	for i := range 300 {
		if i%10 == 0 {
			v, s := e.Snapshot()
			kept = append(kept, seen{v, s, *s})
		}
		if _, err := exec(t, e, procs, incC0, &call{arg: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range kept {
		if *k.s != k.was || k.was.C[0] != int(k.version) {
			t.Fatalf("the snapshot of version %d held c0 = %d when handed out, now %+v", k.version, k.was.C[0], *k.s)
		}
	}
}

// holdCall is a call whose first run reads the whole state, waits until
// the test lets it go, and reads it again.
type holdCall struct {
	call
	entered, proceed chan struct{}
	first, again     tstate
	held             bool
	err              chan error // Exec's error, when it returned
}

func (h *holdCall) Run(ctx context.Context, s *tstate) error {
	if !h.held {
		h.held = true
		h.first = *s
		close(h.entered)
		<-h.proceed
		h.again = *s
	}
	return h.call.Run(ctx, s)
}

// A call's snapshot does not change while it runs, though the commits
// made meanwhile replace it: four calls wait inside their process, each
// on a different version, while 200 others commit.
func TestRunningCallKeepsItsSnapshot(t *testing.T) {
	procs := []*proc{incC0, incC1}
	e := newEngine(t, memory.New(), procs)
	commit := func(n int) {
		for range n {
			if _, err := exec(t, e, procs, incC0, &call{arg: 1}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	holds := make([]*holdCall, 4)
	for i := range holds {
		h := &holdCall{call: call{p: incC1, arg: 1}, entered: make(chan struct{}), proceed: make(chan struct{}), err: make(chan error, 1)}
		holds[i] = h
		go func() {
			_, err := e.Exec(context.Background(), 1, h)
			h.err <- err
		}()
		<-h.entered
		commit(5)
	}
	commit(200)
	for _, h := range holds {
		close(h.proceed)
	}
	for _, h := range holds {
		if err := <-h.err; err != nil {
			t.Fatal(err)
		}
		if h.again != h.first {
			t.Fatalf("a running call's snapshot changed under it: %+v, then %+v", h.first, h.again)
		}
	}
	if _, s := e.Snapshot(); s.C[0] != 220 || s.C[1] != 4 {
		t.Fatalf("final state %+v, want c0 220, c1 4", *s)
	}
}

// keeper embeds the memory store, and so inherits its methods, but keeps
// every committed state as the Store contract allows.
type keeper struct {
	*memory.Store
	states []*tstate
}

func (k *keeper) Commit(ctx context.Context, recs []*engine.Record) error {
	if err := k.Store.Commit(ctx, recs); err != nil {
		return err
	}
	for _, r := range recs {
		k.states = append(k.states, r.State.(*tstate))
	}
	return nil
}

// Only the memory store itself lets the engine recycle: the states a store
// that embeds it keeps stay as they were committed.
func TestStoreEmbeddingMemoryKeepsItsStates(t *testing.T) {
	procs := []*proc{incC0}
	k := &keeper{Store: memory.New()}
	e := newEngine(t, k, procs)
	for range 200 {
		if _, err := exec(t, e, procs, incC0, &call{arg: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range k.states {
		if s.C[0] != i+1 {
			t.Fatalf("the state the store kept for version %d now holds c0 = %d", i+1, s.C[0])
		}
	}
}

// sumCall sums the cells of its snapshot twice, yielding in between.
type sumCall struct {
	call
	sums [2]int
}

func (c *sumCall) Run(ctx context.Context, s *tstate) error {
	for i := range c.sums {
		c.sums[i] = s.C[0] + s.C[1] + s.C[2] + s.C[3]
		runtime.Gosched()
	}
	return c.call.Run(ctx, s)
}

// Readers and writers at once: every commit adds 1 to one cell, so a
// snapshot of version v holds cells that sum to v. Pure calls and Snapshot
// callers check it on what they read while snapshots are being replaced,
// retired and reused around them.
func TestConcurrentReadersSeeWholeSnapshots(t *testing.T) {
	inc := func(path int) *proc {
		return &proc{name: "inc_" + strconv.Itoa(path), inputs: []int{path}, outputs: []int{path},
			fn: func(in []int, arg int) ([]int, []string, error) { return []int{in[0] + arg}, nil, nil }}
	}
	readAll := &proc{name: "read_all", pure: true, inputs: []int{pathC0, pathC1, pathC2, pathC3},
		fn: func([]int, int) ([]int, []string, error) { return nil, nil, nil }}
	procs := []*proc{inc(pathC0), inc(pathC1), inc(pathC2), inc(pathC3), readAll}
	e := newEngine(t, memory.New(), procs)
	const perWriter = 500
	var writers, readers sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for w := range 4 {
		writers.Go(func() {
			for range perWriter {
				if _, err := e.Exec(context.Background(), w, &call{p: procs[w], arg: 1}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := &sumCall{call: call{p: readAll}}
				r, err := e.Exec(context.Background(), 4, c)
				if err != nil {
					errs <- err
					return
				}
				if uint64(c.sums[0]) != r.Version || c.sums[1] != c.sums[0] {
					errs <- fmt.Errorf("a pure call on version %d read cells summing to %d, then %d", r.Version, c.sums[0], c.sums[1])
					return
				}
				v, s := e.Snapshot()
				was := *s
				runtime.Gosched()
				if uint64(was.C[0]+was.C[1]+was.C[2]+was.C[3]) != v || *s != was {
					errs <- fmt.Errorf("Snapshot of version %d held %+v, then %+v", v, was, *s)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, s := e.Snapshot(); v != 4*perWriter || *s != (tstate{C: [4]int{perWriter, perWriter, perWriter, perWriter}}) {
		t.Fatalf("final version %d, state %+v", v, *s)
	}
}
