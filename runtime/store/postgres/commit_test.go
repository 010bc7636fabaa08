package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// The groups of an instance alone commit in one round trip. When another
// instance commits meanwhile (here inside a group, before its write), the
// group finds the head moved: it writes nothing, takes the head row's
// lock, rebases on the other's commit and commits after it; the next
// group takes the lock too, and finding no other commit, lets the one
// after go in one round trip again.
func TestOneRoundTripGroups(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	var other func() error
	var armed atomic.Bool
	hook := func(s postgres.Step) error {
		if s == postgres.BeforeWrite && armed.CompareAndSwap(true, false) {
			return other()
		}
		return nil
	}
	sa := openStore(t, schema, postgres.WithFaultHook(hook))
	a := newBank(t, sa, accounts(2, 0))
	deposit := func(eng *bank.Engine, id string, amount int64, version uint64) {
		t.Helper()
		r, err := eng.Deposit(ctx, bank.DepositArgs{ID: id, Amount: amount})
		if err != nil || r.Version != version {
			t.Fatalf("deposit of %d into %s: version %d, %v; want version %d", amount, id, r.Version, err, version)
		}
	}
	trips := func(one, moved uint64) {
		t.Helper()
		if o, m := sa.Trips(); o != one || m != moved {
			t.Fatalf("%d groups in one round trip, %d found the head moved; want %d and %d", o, m, one, moved)
		}
	}
	for v := range uint64(3) {
		deposit(a, "acc-000", 1, v+1)
	}
	trips(2, 0) // the first group writes the state under the lock
	b := newBank(t, openStore(t, schema), accounts(2, 0))
	// Called inside A's group, maybe on the engine's goroutine: returns
	// what went wrong, which fails A's group.
	other = func() error {
		r, err := b.Deposit(ctx, bank.DepositArgs{ID: "acc-001", Amount: 10})
		if err == nil && r.Version != 4 {
			err = fmt.Errorf("B's deposit has version %d, want 4", r.Version)
		}
		return err
	}
	armed.Store(true)
	deposit(a, "acc-000", 1, 5)
	trips(2, 1)
	deposit(a, "acc-000", 1, 6) // locked: the last group found B's commit
	trips(2, 1)
	deposit(a, "acc-000", 1, 7)
	trips(3, 1)

	hist, err := sa.History(ctx, 1, 100)
	if err != nil || len(hist) != 7 {
		t.Fatalf("history of %d commits, %v; want 7", len(hist), err)
	}
	for i, c := range hist {
		if c.Version != uint64(i+1) {
			t.Fatalf("commit %d of the history has version %d", i, c.Version)
		}
	}
	fresh := newBank(t, openStore(t, schema), bank.State{})
	if got := balances(fresh); got["acc-000"] != 6 || got["acc-001"] != 10 {
		t.Fatalf("recovered balances %v, want acc-000 6 and acc-001 10", got)
	}
}
