package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// twoInstances is engine A, whose next group runs other (set by the test)
// before it writes, once armed, and engine B on the same schema, both on
// four accounts of 100.
type twoInstances struct {
	schema     string
	sa         *postgres.Store
	a, b       *bank.Engine
	other      func() error
	armed      atomic.Bool
	failApply  atomic.Bool // fail A's next group at BeforeApply
	version, i uint64      // A's next version, for deposit
}

func newTwoInstances(t *testing.T) *twoInstances {
	ti := &twoInstances{schema: freshSchema(t)}
	hook := func(s postgres.Step) error {
		if s == postgres.BeforeWrite && ti.armed.CompareAndSwap(true, false) {
			return ti.other()
		}
		if s == postgres.BeforeApply && ti.failApply.CompareAndSwap(true, false) {
			return errInjected
		}
		return nil
	}
	ti.sa = openStore(t, ti.schema, postgres.WithFaultHook(hook))
	ti.a = newBank(t, ti.sa, accounts(4, 100))
	ti.b = newBank(t, openStore(t, ti.schema), accounts(4, 100))
	return ti
}

// during arms A's next group to run B's deposit before it writes, as
// version want.
func (ti *twoInstances) during(id string, amount int64, want uint64) {
	ti.other = func() error {
		r, err := ti.b.Deposit(context.Background(), bank.DepositArgs{ID: id, Amount: amount})
		if err == nil && r.Version != want {
			err = fmt.Errorf("B's deposit has version %d, want %d", r.Version, want)
		}
		return err
	}
	ti.armed.Store(true)
}

// deposits makes n deposits of 1 into acc-000 on A, as versions 1 to n.
func (ti *twoInstances) deposits(t *testing.T, n uint64) {
	t.Helper()
	for v := range n {
		if r, err := ti.a.Deposit(context.Background(), bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil || r.Version != v+1 {
			t.Fatalf("deposit: version %d, %v; want %d", r.Version, err, v+1)
		}
	}
}

func (ti *twoInstances) trips(t *testing.T, one, moved, renumbered uint64) {
	t.Helper()
	o, m := ti.sa.Trips()
	if r := ti.sa.Renumbered(); o != one || m != moved || r != renumbered {
		t.Fatalf("A: %d groups in one round trip (%d of them after B's commits), %d found B's commits overlapping; want %d (%d), %d", o, r, m, one, renumbered, moved)
	}
}

// check checks that the history is versions 1 to n, that the message IDs
// of the log and of the outbox name the versions of their commits, and
// that a fresh instance recovers balances want.
func (ti *twoInstances) check(t *testing.T, n int, want map[string]int64) {
	t.Helper()
	ctx := context.Background()
	hist, err := ti.sa.History(ctx, 1, 100)
	if err != nil || len(hist) != n {
		t.Fatalf("history of %d commits, %v; want %d", len(hist), err, n)
	}
	for i, c := range hist {
		if c.Version != uint64(i+1) {
			t.Fatalf("commit %d of the history has version %d", i, c.Version)
		}
		for j, id := range c.MessageIDs {
			if _, v, idx, ok := outbox.ParseMessageID(id); !ok || v != c.Version || idx != j {
				t.Fatalf("message %d of version %d in the log has ID %s", j, c.Version, id)
			}
		}
	}
	db, _ := testDBs.Load(t)
	rows, err := db.(*sql.DB).Query(`SELECT id, version, idx FROM ` + ti.schema + `.theus_outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var version uint64
		var idx int
		if err := rows.Scan(&id, &version, &idx); err != nil {
			t.Fatal(err)
		}
		if _, v, i, ok := outbox.ParseMessageID(id); !ok || v != version || i != idx || !slicesContains(hist[version-1].MessageIDs, id) {
			t.Fatalf("the outbox holds message %s as message %d of version %d", id, idx, version)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	fresh := newBank(t, openStore(t, ti.schema), bank.State{})
	got := balances(fresh)
	for id, b := range want {
		if got[id] != b {
			t.Fatalf("recovered balances %v, want %v", got, want)
		}
	}
	if a := balances(ti.a); fmt.Sprint(a) != fmt.Sprint(got) {
		t.Fatalf("A holds balances %v, the store %v", a, got)
	}
}

func slicesContains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// The groups of an instance commit in one round trip, also after commits
// of another instance that they did not see, when those touched nothing
// they read or wrote: here B's transfer on other accounts, committed
// inside A's group before it writes. A's transfer is then numbered after
// it by the server, message ID included, with the KeySeq it had, and A
// applies B's commit before its own.
func TestOneRoundTripAfterOthers(t *testing.T) {
	ctx := context.Background()
	ti := newTwoInstances(t)
	ti.deposits(t, 3)
	ti.trips(t, 2, 0, 0) // the first group writes the state under the lock
	ti.other = func() error {
		r, err := ti.b.Transfer(ctx, bank.TransferArgs{From: "acc-002", To: "acc-003", Amount: 10})
		if err == nil && r.Version != 4 {
			err = fmt.Errorf("B's transfer has version %d, want 4", r.Version)
		}
		return err
	}
	ti.armed.Store(true)
	r, err := ti.a.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 2})
	if err != nil || r.Version != 5 || len(r.MessageIDs) != 1 {
		t.Fatalf("A's transfer after B's: version %d, messages %v, %v; want version 5 and a message", r.Version, r.MessageIDs, err)
	}
	if _, v, _, _ := outbox.ParseMessageID(r.MessageIDs[0]); v != 5 {
		t.Fatalf("A's transfer at version 5 has message %s", r.MessageIDs[0])
	}
	ti.trips(t, 3, 0, 1)
	if v := ti.a.Snapshot().Version(); v != 5 {
		t.Fatalf("A is at version %d after its transfer, want 5", v)
	}
	if r, err := ti.a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil || r.Version != 6 {
		t.Fatalf("deposit: version %d, %v; want 6", r.Version, err)
	}
	ti.trips(t, 4, 0, 1)
	ti.check(t, 6, map[string]int64{"acc-000": 102, "acc-001": 102, "acc-002": 90, "acc-003": 110})
}

// A group numbered after B's commit in its round trip is in the database
// even when the engine then fails to apply B's commit: its caller gets
// ErrCommittedUnapplied, and A's next group takes the head row's lock,
// which hands A's engine B's commit and its own before it writes.
func TestCommittedUnappliedTakesTheLock(t *testing.T) {
	ctx := context.Background()
	ti := newTwoInstances(t)
	ti.deposits(t, 3)
	ti.other = func() error {
		_, err := ti.b.Transfer(ctx, bank.TransferArgs{From: "acc-002", To: "acc-003", Amount: 10})
		return err
	}
	ti.armed.Store(true)
	ti.failApply.Store(true)
	if _, err := ti.a.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 2}); !errors.Is(err, postgres.ErrCommittedUnapplied) {
		t.Fatalf("A's transfer numbered after B's, not applied: %v; want ErrCommittedUnapplied", err)
	}
	ti.trips(t, 3, 0, 1)
	if r, err := ti.a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil || r.Version != 6 {
		t.Fatalf("deposit after the unapplied group: version %d, %v; want 6", r.Version, err)
	}
	ti.trips(t, 3, 0, 1) // the deposit took the head row's lock
	if v := ti.a.Snapshot().Version(); v != 6 {
		t.Fatalf("A is at version %d, want 6", v)
	}
	ti.check(t, 6, map[string]int64{"acc-000": 102, "acc-001": 102, "acc-002": 90, "acc-003": 110})
}

// A group that B's commit, made after its base, overlaps (here a deposit
// into the account A's group reads and writes) writes nothing in its
// round trip: it takes the head row's lock, the engine rebases, its
// deposit runs again after B's, and no deposit is lost.
func TestOverlapTakesTheLock(t *testing.T) {
	ctx := context.Background()
	ti := newTwoInstances(t)
	ti.deposits(t, 3)
	ti.during("acc-000", 10, 4)
	if r, err := ti.a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil || r.Version != 5 {
		t.Fatalf("A's deposit after B's: version %d, %v; want 5", r.Version, err)
	}
	ti.check(t, 5, map[string]int64{"acc-000": 114})
	// B's deposit overlapped A's group, which took the lock and ran again.
	if _, m := ti.sa.Trips(); m != 1 || ti.sa.Renumbered() != 0 {
		t.Fatalf("A: %d groups found B's commits overlapping, %d were numbered after them; want 1 and 0", m, ti.sa.Renumbered())
	}
}

// An instance whose groups have met no other instance's commit for a
// while sends them without the read of the others' commits, their move
// of the head failing unless it is at their base. When B commits inside
// such a group, the group fails, writing nothing, and goes again with
// the read: it is numbered after B's commit in one round trip.
func TestAloneGroupFindsTheHeadMoved(t *testing.T) {
	ctx := context.Background()
	ti := newTwoInstances(t)
	const alone = 12
	ti.deposits(t, alone)
	ti.during("acc-001", 10, alone+1)
	if r, err := ti.a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil || r.Version != alone+2 {
		t.Fatalf("A's deposit after B's: version %d, %v; want %d", r.Version, err, alone+2)
	}
	ti.check(t, alone+2, map[string]int64{"acc-000": 100 + alone + 1, "acc-001": 110})
	if n := ti.sa.NotAlone(); n != 1 {
		t.Fatalf("A: %d groups alone found the head moved, want 1", n)
	}
	ti.trips(t, alone, 0, 1) // the first group took the lock
}
