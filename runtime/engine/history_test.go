package engine_test

import (
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// Watch yields every commit after the version it is given, as it becomes
// durable, in order, with its process, writes and message IDs; a commit
// made before Watch was called comes from the store's history, which the
// memory store does not keep.
func TestWatch(t *testing.T) {
	procs := []*proc{incC0, propProcs[3]} // inc_c0, sum_to_px
	st := memory.New()
	e := newEngine(t, st, procs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pull, stop := iter.Pull2(e.Watch(ctx, 0))
	defer stop()
	next := func() (engine.Commit, error) {
		c, err, ok := pull()
		if !ok {
			t.Fatal("Watch ended")
		}
		return c, err
	}
	var receipts []engine.Receipt
	for i := range 4 {
		r, err := exec(t, e, procs, procs[i%2], &call{arg: i + 1})
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, r)
	}
	for i, r := range receipts {
		c, err := next()
		if err != nil {
			t.Fatal(err)
		}
		want := procs[i%2].name
		if c.Version != r.Version || c.Process != want || len(c.Writes) == 0 || len(c.MessageIDs) != len(r.MessageIDs) ||
			(len(r.MessageIDs) > 0 && c.MessageIDs[0] != r.MessageIDs[0]) || c.Time.IsZero() {
			t.Fatalf("commit %d: %+v, want version %d of %s with IDs %v", i, c, r.Version, want, r.MessageIDs)
		}
	}
	// Before the call, on a store without history: refused.
	for _, err := range e.Watch(ctx, 1) {
		if !errors.Is(err, engine.ErrNoHistory) {
			t.Fatalf("Watch from version 1 on the memory store: %v, want ErrNoHistory", err)
		}
		break
	}
	if _, err := e.History(ctx, 1, 4); !errors.Is(err, engine.ErrNoHistory) {
		t.Fatalf("History on the memory store: %v, want ErrNoHistory", err)
	}
}
