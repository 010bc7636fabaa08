package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

func TestMain(m *testing.M) {
	if crashChild() || lockChild() || fullChild() || syncChild() || lostAckChild() || migrateChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// childBank opens the store at path and a bank engine on it in a child
// process of a test, where no testing.T cleans up: closeAll closes both
// (again, it does nothing).
func childBank(ctx context.Context, path string, initial bank.State, opts ...sqlite.Option) (eng *bank.Engine, st *sqlite.Store, closeAll func() error, err error) {
	st, err = sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	eng, err = bank.NewEngine(ctx, initial, bank.Bank{}, engine.WithStore(st))
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return eng, st, func() error { eng.Close(); return st.Close() }, nil
}

// exitChild ends a child process of a test (this test binary, started
// again by the test) with err.
func exitChild(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func open(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newBank(t testing.TB, st *sqlite.Store, initial bank.State) *bank.Engine {
	t.Helper()
	eng, err := bank.NewEngine(context.Background(), initial, bank.Bank{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func accounts(n int, balance int64) bank.State {
	s := bank.State{Domain: bank.DomainState{Accounts: map[string]bank.Account{}}}
	for i := range n {
		id := fmt.Sprintf("acc-%03d", i)
		s.Domain.Accounts[id] = bank.Account{ID: id, Owner: "owner " + id, Balance: balance}
	}
	return s
}

// balances reads every account of a snapshot.
func balances(eng *bank.Engine) map[string]bank.Account {
	out := map[string]bank.Account{}
	for id, v := range eng.Snapshot().Accounts().All() {
		out[id] = v.Clone()
	}
	return out
}

func undelivered(t testing.TB, st outbox.Store) []outbox.Message {
	t.Helper()
	msgs, err := st.Undelivered(context.Background(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// The bank's state (a collection, with its initial accounts no commit
// wrote), its KeySeqs and its undelivered messages survive closing and
// reopening the store.
func TestBankRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(10, 100))
	for i := range 30 {
		from, to := fmt.Sprintf("acc-%03d", i%10), fmt.Sprintf("acc-%03d", (i*3+1)%10)
		if from == to {
			continue
		}
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: from, To: to, Amount: int64(i%7 + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: "new", Owner: "Zoe", Initial: 5}); err != nil {
		t.Fatal(err)
	}
	// Ack a few messages: they must not come back.
	msgs := undelivered(t, st)
	if err := st.Ack(ctx, []string{msgs[0].ID, msgs[1].ID}); err != nil {
		t.Fatal(err)
	}
	wantState, wantVersion := balances(eng), eng.Snapshot().Version()
	wantMsgs := undelivered(t, st)
	eng.Close()
	st.Close()

	st2 := open(t, path)
	eng2 := newBank(t, st2, bank.State{}) // initial is ignored: the store holds data
	if v := eng2.Snapshot().Version(); v != wantVersion {
		t.Fatalf("recovered version %d, want %d", v, wantVersion)
	}
	if got := balances(eng2); !reflect.DeepEqual(got, wantState) {
		t.Fatalf("recovered accounts\n%v\nwant\n%v", got, wantState)
	}
	gotMsgs := undelivered(t, st2)
	if len(gotMsgs) != len(wantMsgs) {
		t.Fatalf("%d undelivered after reopening, want %d", len(gotMsgs), len(wantMsgs))
	}
	for i := range gotMsgs {
		g, w := gotMsgs[i], wantMsgs[i]
		if g.ID != w.ID || g.Key != w.Key || g.KeySeq != w.KeySeq || string(g.Payload) != string(w.Payload) || !g.CreatedAt.Equal(w.CreatedAt) {
			t.Fatalf("message %d after reopening: %+v, want %+v", i, g, w)
		}
	}
	// KeySeqs go on where they stopped, even for a key whose messages were
	// all acked.
	first := msgs[0]
	r, err := eng2.Transfer(ctx, bank.TransferArgs{From: first.Key, To: "new", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, m := range append(msgs, gotMsgs...) {
		if m.Key == first.Key && m.Topic == "transfer.completed" {
			last = max(last, m.KeySeq)
		}
	}
	after := undelivered(t, st2)
	m := after[len(after)-1]
	if m.ID != r.MessageIDs[0] || m.KeySeq != last+1 || m.Version != wantVersion+1 {
		t.Fatalf("first message after recovery: %s KeySeq %d version %d; want %s KeySeq %d version %d",
			m.ID, m.KeySeq, m.Version, r.MessageIDs[0], last+1, wantVersion+1)
	}
}

// A store failing inside Commit, at each step, returns an error and keeps
// neither the state change nor the message, in the running engine and
// after reopening.
func TestFailedCommitLeavesNothing(t *testing.T) {
	for _, step := range []sqlite.Step{sqlite.BeforeWrite, sqlite.BeforeSync} {
		t.Run(step.String(), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "bank.db")
			var fail atomic.Bool
			injected := errors.New("disk on fire")
			st := open(t, path, sqlite.WithFaultHook(func(s sqlite.Step) error {
				if s == step && fail.Load() {
					return injected
				}
				return nil
			}))
			eng := newBank(t, st, accounts(2, 100))
			if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 10}); err != nil {
				t.Fatal(err)
			}
			wantState, wantMsgs := balances(eng), undelivered(t, st)

			fail.Store(true)
			_, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 20})
			if !errors.Is(err, engine.ErrStore) || !errors.Is(err, injected) {
				t.Fatalf("err = %v, want the injected error as an engine.ErrStore", err)
			}
			check := func(when string, eng *bank.Engine, st *sqlite.Store) {
				t.Helper()
				if v := eng.Snapshot().Version(); v != 1 {
					t.Fatalf("%s: version %d, want 1", when, v)
				}
				if got := balances(eng); !reflect.DeepEqual(got, wantState) {
					t.Fatalf("%s: accounts %v, want %v", when, got, wantState)
				}
				if got := undelivered(t, st); len(got) != len(wantMsgs) {
					t.Fatalf("%s: %d messages, want %d", when, len(got), len(wantMsgs))
				}
			}
			check("after the failure", eng, st)
			eng.Close()
			st.Close()

			st2 := open(t, path)
			eng2 := newBank(t, st2, bank.State{})
			check("after reopening", eng2, st2)
			// The version and the KeySeq that failed are used again.
			r, err := eng2.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 20})
			if err != nil || r.Version != 2 {
				t.Fatalf("transfer after reopening: %+v, %v", r, err)
			}
			if msgs := undelivered(t, st2); msgs[len(msgs)-1].KeySeq != 2 {
				t.Fatalf("KeySeq after a failed commit: %d, want 2", msgs[len(msgs)-1].KeySeq)
			}
		})
	}
}

// A closed database fails the commit the same way.
func TestCommitOnClosedStoreFails(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(2, 100))
	st.Close()
	if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); !errors.Is(err, engine.ErrStore) {
		t.Fatalf("err = %v, want engine.ErrStore", err)
	}
	if v := eng.Snapshot().Version(); v != 0 {
		t.Fatalf("version %d after a failed commit, want 0", v)
	}
	eng.Close()
	st2 := open(t, path)
	if rec, err := st2.Recover(ctx, nil); err == nil || rec != nil {
		t.Fatal("Recover without a codec succeeded")
	}
	eng2 := newBank(t, st2, accounts(3, 7)) // the store is empty: initial is used
	if got := balances(eng2); len(got) != 3 || got["acc-000"].Balance != 7 {
		t.Fatalf("state of a store whose only commit failed: %v", got)
	}
}

// countingHook counts the transactions Commit opens.
type countingHook struct{ txs atomic.Int64 }

func (c *countingHook) hook(s sqlite.Step) error {
	if s == sqlite.BeforeWrite {
		c.txs.Add(1)
	}
	return nil
}

// Concurrent callers share transactions: N commits take fewer than N.
func TestGroupCommitSharesTransactions(t *testing.T) {
	ctx := context.Background()
	var c countingHook
	st := open(t, filepath.Join(t.TempDir(), "bank.db"), sqlite.WithFaultHook(c.hook))
	eng := newBank(t, st, accounts(64, 1000))
	const callers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				from := fmt.Sprintf("acc-%03d", g*2)
				to := fmt.Sprintf("acc-%03d", (g*2+1+i%2*2)%64)
				if _, err := eng.Transfer(ctx, bank.TransferArgs{From: from, To: to, Amount: 1}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	commits, txs := int64(callers*each), c.txs.Load()
	t.Logf("%d commits in %d transactions (%.1f per transaction)", commits, txs, float64(commits)/float64(txs))
	if v := eng.Snapshot().Version(); v != uint64(commits) {
		t.Fatalf("version %d, want %d", v, commits)
	}
	if txs >= commits {
		t.Fatalf("%d commits took %d transactions: no group commit", commits, txs)
	}
	if n := len(undelivered(t, st)); n != int(commits) {
		t.Fatalf("%d messages, want %d", n, commits)
	}
}

// Two engines on one file would each commit from their own view of the
// state: the second is refused while the first holds the store, and
// accepted once it has closed it. A relay may open the file meanwhile.
func TestOneEnginePerFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	first := open(t, path)
	eng := newBank(t, first, accounts(2, 10))
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	relayOnly := open(t, path) // no engine: no lock
	if _, err := relayOnly.Undelivered(ctx, 10); err != nil {
		t.Fatalf("a relay's store on the same file: %v", err)
	}
	second := open(t, path)
	_, err := bank.NewEngine(ctx, accounts(2, 10), bank.Bank{}, engine.WithStore(second))
	if !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("a second engine on the file: %v, want ErrInUse", err)
	}
	eng.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	eng2, err := bank.NewEngine(ctx, accounts(2, 10), bank.Bank{}, engine.WithStore(second))
	if err != nil {
		t.Fatalf("after the first engine's store closed: %v", err)
	}
	defer eng2.Close()
	if v := eng2.Snapshot().Version(); v != 1 {
		t.Fatalf("the second engine recovered version %d, want 1", v)
	}
}

// A panic inside a commit's transaction (here from the fault hook, as a
// codec's could) fails that group only: the transaction is rolled back,
// and the next commit finds the write connection free.
func TestPanicInCommitRollsBack(t *testing.T) {
	for _, step := range []sqlite.Step{sqlite.BeforeWrite, sqlite.BeforeSync} {
		t.Run(step.String(), func(t *testing.T) {
			ctx := context.Background()
			var fail atomic.Bool
			st := open(t, filepath.Join(t.TempDir(), "bank.db"), sqlite.WithFaultHook(func(s sqlite.Step) error {
				if s == step && fail.CompareAndSwap(true, false) {
					panic("codec on fire")
				}
				return nil
			}))
			eng := newBank(t, st, accounts(2, 100))
			if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 10}); err != nil {
				t.Fatal(err)
			}
			fail.Store(true)
			_, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 20})
			if !errors.Is(err, engine.ErrStore) || !errors.Is(err, engine.ErrPanic) {
				t.Fatalf("err = %v, want a store panic", err)
			}
			r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 30})
			if err != nil || r.Version != 2 {
				t.Fatalf("the commit after the panic: %+v, %v; want version 2", r, err)
			}
			if got := balances(eng)["acc-000"].Balance; got != 60 {
				t.Fatalf("acc-000 holds %d, want 60", got)
			}
		})
	}
}
