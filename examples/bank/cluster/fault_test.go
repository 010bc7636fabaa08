package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/internal/servicetest"
	"github.com/theus-go/theus/runtime/engine"
)

// The fault test: three engines (in this process, each on a store of its
// own) transfer without pause on a throwaway PostgreSQL server, which is
// restarted twice under that load, once with a fast shutdown and once
// with an immediate one (a crash: no checkpoint, the WAL replayed). Every
// receipt a caller got is in the history afterwards, the history keeps
// the bank's invariants, every commit has its message, and every engine
// commits again after each restart. Callers whose commit did not happen
// get engine.ErrStore and nothing else.
func TestServerRestartsUnderLoad(t *testing.T) {
	c := servicetest.StartCluster(t)
	ctx := context.Background()
	cfg := config{store: c.DSN("pool_max_conns=4"), schema: "bank_fault", accounts: 100, balance: 100, workers: 4}
	pool, err := pgxpool.New(ctx, cfg.store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	const instances = 3
	engines := make([]*bank.Engine, instances)
	for i := range engines {
		st, eng, err := open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		t.Cleanup(func() { eng.Close() })
		engines[i] = eng
	}
	var (
		mu       sync.Mutex
		receipts []Receipt
		failed   atomic.Int64
		okBy     [instances]atomic.Int64
		wg       sync.WaitGroup
	)
	lctx, stop := context.WithCancel(ctx)
	for i, eng := range engines {
		for g := range cfg.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var seq uint64
				for n := 0; lctx.Err() == nil; n++ {
					seq = seq*6364136223846793005 + uint64(i*cfg.workers+g)*2 + 1
					from, to := int(seq>>33)%cfg.accounts, int(seq>>13)%cfg.accounts
					if from == to {
						to = (to + 1) % cfg.accounts
					}
					rc, err := eng.Transfer(lctx, bank.TransferArgs{From: accountID(from), To: accountID(to), Amount: int64(1 + n%60)})
					switch {
					case err == nil:
						mu.Lock()
						receipts = append(receipts, Receipt{rc.Version, rc.MessageIDs[0]})
						mu.Unlock()
						okBy[i].Add(1)
					case errors.Is(err, engine.ErrRuleViolation), lctx.Err() != nil:
					case errors.Is(err, engine.ErrStore):
						failed.Add(1)
						if rc.Version != 0 || len(rc.MessageIDs) != 0 {
							t.Errorf("a failed transfer returned a receipt %+v", rc)
						}
					default:
						t.Errorf("transfer on engine %d: %v (want nil, ErrRuleViolation or ErrStore)", i, err)
						return
					}
				}
			}()
		}
	}
	// progress waits until every engine has committed n more transfers.
	progress := func(what string, n int64) {
		t.Helper()
		var base [instances]int64
		for i := range base {
			base[i] = okBy[i].Load()
		}
		deadline := time.Now().Add(60 * time.Second)
		for i := range base {
			for okBy[i].Load() < base[i]+n {
				if time.Now().After(deadline) {
					stop()
					wg.Wait()
					t.Fatalf("%s: engine %d committed %d transfers in 60s, want %d", what, i, okBy[i].Load()-base[i], n)
				}
				time.Sleep(5 * time.Millisecond) // polling the counters
			}
		}
	}
	progress("before the restarts", 50)
	for _, mode := range []string{"fast", "immediate"} {
		c.Restart(mode)
		progress("after a "+mode+" restart", 50)
	}
	stop()
	wg.Wait()
	mu.Lock()
	got := append([]Receipt(nil), receipts...)
	mu.Unlock()
	rep, err := Check(ctx, cfg, pool, got, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 restarts: %d receipts, %d calls failed with ErrStore; %s", len(got), failed.Load(), rep)
}
