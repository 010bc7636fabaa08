package bank

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/memory"
)

// checkingStore checks every committed state as the engine persists it:
// every version any reader could ever see passes through here.
type checkingStore struct {
	*memory.Store
	total int64

	mu       sync.Mutex
	versions int
	bad      error
}

func (s *checkingStore) Commit(ctx context.Context, recs []*engine.Record) error {
	for _, r := range recs {
		st := r.State.(*theusState)
		var sum int64
		for id, a := range engine.CollectionAll(st.Domain.Accounts) {
			if a.Balance < 0 {
				s.fail(fmt.Errorf("version %d: account %s has balance %d", r.Version, id, a.Balance))
			}
			sum += a.Balance
		}
		if sum != s.total {
			s.fail(fmt.Errorf("version %d: total %d, want %d", r.Version, sum, s.total))
		}
	}
	s.mu.Lock()
	s.versions += len(recs)
	s.mu.Unlock()
	return s.Store.Commit(ctx, recs)
}

func (s *checkingStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bad == nil {
		s.bad = err
	}
}

// The invariant test: 8 goroutines x 10,000 random transfers among
// 100 accounts. Money is conserved, no snapshot ever shows a negative
// balance, and there is exactly one transfer.completed per successful
// transfer and none for a refused one.
func TestBankInvariants(t *testing.T) {
	const accounts, workers = 100, 8
	perWorker := 10_000
	if testing.Short() {
		perWorker = 1_000
	}
	ctx := context.Background()
	initial := State{Domain: DomainState{Accounts: map[string]Account{}}}
	for i := range accounts {
		id := fmt.Sprintf("acct-%03d", i)
		initial.Domain.Accounts[id] = Account{ID: id, Owner: "owner", Balance: 100}
	}
	st := &checkingStore{Store: memory.New(), total: accounts * 100}
	var counters engine.Counters
	eng, err := NewEngine(ctx, initial, Bank{}, engine.WithStore(st), engine.WithMetrics(&counters))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	type outcome struct {
		version uint64
		ids     []string
	}
	var (
		mu      sync.Mutex
		ok      []outcome
		refused int
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			var mine []outcome
			nrefused := 0
			for range perWorker {
				from, to := r.IntN(accounts), r.IntN(accounts-1)
				if to >= from {
					to++
				}
				rc, err := eng.Transfer(ctx, TransferArgs{
					From:   fmt.Sprintf("acct-%03d", from),
					To:     fmt.Sprintf("acct-%03d", to),
					Amount: int64(1 + r.IntN(60)),
				})
				switch {
				case err == nil:
					mine = append(mine, outcome{rc.Version, rc.MessageIDs})
				case errors.Is(err, engine.ErrRuleViolation):
					nrefused++
					if rc.Version != 0 || len(rc.MessageIDs) != 0 {
						t.Errorf("a refused transfer returned %+v", rc)
					}
				default:
					t.Errorf("transfer: %v", err)
					return
				}
			}
			mu.Lock()
			ok = append(ok, mine...)
			refused += nrefused
			mu.Unlock()
		}()
	}
	wg.Wait()
	if st.bad != nil {
		t.Fatal(st.bad)
	}
	if refused == 0 || len(ok) == 0 {
		t.Fatalf("%d transfers succeeded and %d were refused: the test needs both", len(ok), refused)
	}
	msgs, err := eng.Store().Undelivered(ctx, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[uint64]outbox.Message{}
	for _, m := range msgs {
		if m.Topic != "transfer.completed" {
			t.Fatalf("unexpected message %+v", m)
		}
		if _, dup := byVersion[m.Version]; dup {
			t.Fatalf("two messages for version %d", m.Version)
		}
		byVersion[m.Version] = m
	}
	if len(msgs) != len(ok) {
		t.Fatalf("%d transfer.completed messages for %d successful transfers", len(msgs), len(ok))
	}
	for _, o := range ok {
		m, found := byVersion[o.version]
		if !found || len(o.ids) != 1 || o.ids[0] != m.ID {
			t.Fatalf("transfer at version %d (IDs %v) has message %+v", o.version, o.ids, m)
		}
	}
	if st.versions != len(ok) || eng.Snapshot().Version() != uint64(len(ok)) {
		t.Fatalf("%d versions persisted, snapshot at %d, %d transfers succeeded", st.versions, eng.Snapshot().Version(), len(ok))
	}
	t.Logf("%d transfers committed, %d refused by the rule, %d conflicts retried", len(ok), refused, counters.Conflicts.Load())
}

// pausing lets a test commit something while a transfer holds its snapshot.
type pausing struct {
	Bank
	paused atomic.Bool
	pause  func()
}

// Transfer pauses in its first run only; the transfer the pause commits
// goes straight through.
func (p *pausing) Transfer(ctx context.Context, in TransferIn, out *TransferOut) error {
	err := p.Bank.Transfer(ctx, in, out)
	if p.paused.CompareAndSwap(false, true) {
		p.pause()
	}
	return err
}

// Two transfers on disjoint accounts never conflict; two that share an
// account do.
func TestTransfersConflictOnlyWhenTheyShareAnAccount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		other    TransferArgs
		conflict bool
	}{
		{"disjoint", TransferArgs{From: "c", To: "d", Amount: 1}, false},
		{"shared source", TransferArgs{From: "a", To: "c", Amount: 1}, true},
		{"shared destination", TransferArgs{From: "c", To: "b", Amount: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			initial := State{Domain: DomainState{Accounts: map[string]Account{
				"a": {ID: "a", Balance: 10}, "b": {ID: "b", Balance: 10}, "c": {ID: "c", Balance: 10}, "d": {ID: "d", Balance: 10},
			}}}
			var counters engine.Counters
			impl := &pausing{}
			eng, err := NewEngine(ctx, initial, impl, engine.WithMetrics(&counters))
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			impl.pause = func() {
				// The first run of a->b holds its snapshot while the other
				// transfer commits (with the hook disabled for it).
				if _, err := eng.Transfer(ctx, tc.other); err != nil {
					t.Errorf("other transfer: %v", err)
				}
			}
			if _, err := eng.Transfer(ctx, TransferArgs{From: "a", To: "b", Amount: 1}); err != nil {
				t.Fatal(err)
			}
			if got := counters.Conflicts.Load() > 0; got != tc.conflict {
				t.Fatalf("conflicts %d, want conflict = %v", counters.Conflicts.Load(), tc.conflict)
			}
		})
	}
}

func TestDomainErrors(t *testing.T) {
	ctx := context.Background()
	eng, err := NewEngine(ctx, State{}, Bank{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.OpenAccount(ctx, OpenAccountArgs{ID: "a", Initial: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.OpenAccount(ctx, OpenAccountArgs{ID: "a"}); !errors.Is(err, ErrAccountExists) {
		t.Fatalf("open twice: %v, want ErrAccountExists", err)
	}
	if _, err := eng.Balance(ctx, BalanceArgs{ID: "zz"}); !errors.Is(err, ErrNoSuchAccount) {
		t.Fatalf("balance of a missing account: %v", err)
	}
	_, err = eng.Transfer(ctx, TransferArgs{From: "a", To: "a", Amount: 1})
	if !errors.Is(err, ErrSameAccount) {
		t.Fatalf("transfer to itself: %v", err)
	}
	r, err := eng.Balance(ctx, BalanceArgs{ID: "a"})
	if err != nil || r.Result != 5 {
		t.Fatalf("balance = %d, %v", r.Result, err)
	}
}
