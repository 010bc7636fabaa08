package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"path/filepath"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// The store keeps the history of commits, across checkpoints and restarts,
// for WithHistoryRetention: History gives each commit's process, time,
// writes, message IDs and the values it wrote; Watch starts from it.
func TestHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path, sqlite.WithCheckpointEvery(0))
	eng := newBank(t, st, accounts(3, 100))
	var receipts []bank.TransferReceipt
	for i := range 6 {
		r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: int64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, r)
		if i == 2 {
			if err := st.Checkpoint(ctx); err != nil { // versions 1-3 folded into a snapshot
				t.Fatal(err)
			}
		}
	}
	check := func(when string, st *sqlite.Store) {
		t.Helper()
		hist, err := st.History(ctx, 2, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 4 {
			t.Fatalf("%s: History(2, 5) gave %d commits", when, len(hist))
		}
		balance := int64(100) - 1 // after version 1
		for i, c := range hist {
			r := receipts[i+1]
			balance -= int64(i + 2)
			if c.Version != r.Version || c.Process != "transfer" || c.Time.IsZero() || len(c.Writes) != 2 ||
				len(c.MessageIDs) != 1 || c.MessageIDs[0] != r.MessageIDs[0] {
				t.Fatalf("%s: commit %d = %+v, want version %d of transfer with %v", when, i, c, r.Version, r.MessageIDs)
			}
			var from bank.Account
			for _, v := range c.Values {
				if v.Path == "domain.accounts" && v.Key == "acc-000" {
					if err := json.Unmarshal(v.Data, &from); err != nil {
						t.Fatal(err)
					}
				}
			}
			if from.Balance != balance {
				t.Fatalf("%s: version %d left acc-000 at %d, want %d", when, c.Version, from.Balance, balance)
			}
		}
	}
	check("before a restart", st)
	eng.Close()
	st.Close()
	st = open(t, path, sqlite.WithCheckpointEvery(0))
	eng = newBank(t, st, bank.State{})
	check("after a restart", st)

	// Watch from version 2: the history, then the commits to come.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next, stop := iter.Pull2(eng.Watch(wctx, 2))
	defer stop()
	r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-001", To: "acc-002", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	for v := uint64(3); v <= r.Version; v++ {
		c, err, ok := next()
		if !ok || err != nil || c.Version != v {
			t.Fatalf("Watch from 2: %+v, %v, %v; want version %d", c, err, ok, v)
		}
	}

	// Retention: with none, a checkpoint folds the history away.
	eng.Close()
	st.Close()
	st = open(t, path, sqlite.WithCheckpointEvery(0), sqlite.WithHistoryRetention(0))
	eng = newBank(t, st, bank.State{})
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-001", To: "acc-002", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if hist, err := eng.History(ctx, 1, 100); err != nil || len(hist) != 0 {
		t.Fatalf("History after a checkpoint with no retention: %d commits, %v", len(hist), err)
	}
	for _, err := range eng.Watch(ctx, 0) {
		if !errors.Is(err, engine.ErrNoHistory) {
			t.Fatalf("Watch of pruned history: %v, want ErrNoHistory", err)
		}
		break
	}
}
