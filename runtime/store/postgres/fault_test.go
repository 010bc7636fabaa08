package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// Every connection of two instances is terminated, three times, while
// they commit transfers, as a restart of the server would: some commits
// fail, at any point of their transaction, COMMIT included. Every receipt
// a caller got is a commit of the log with its messages, every commit of
// the log was returned to exactly one caller (none got an error for a
// commit that is there), and both instances serve again.
func TestConnectionsTerminatedUnderLoad(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	db := servicetest.Postgres(t)
	var engines []*bank.Engine
	var stores []*postgres.Store
	for range 2 {
		st, err := postgres.Open(ctx, servicetest.WithParam(testDSN(), "application_name", schema), postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		engines = append(engines, newBank(t, st, accounts(8, 1000)))
	}
	type receipt struct {
		version uint64
		ids     []string
	}
	var mu sync.Mutex
	var receipts []receipt
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eng := engines[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := eng.Transfer(ctx, bank.TransferArgs{From: accountID((w + i) % 8), To: accountID((w + i + 1) % 8), Amount: 1})
				switch {
				case err == nil:
					mu.Lock()
					receipts = append(receipts, receipt{r.Version, r.MessageIDs})
					mu.Unlock()
				case errors.Is(err, engine.ErrStore):
					failed.Add(1)
				default:
					t.Errorf("transfer: %v", err)
					return
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(receipts) }
	waitFor := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d commits, want %d: the instances do not serve again", count(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for round := 1; round <= 3; round++ {
		waitFor(50 * round)
		if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, schema); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(200)
	close(stop)
	wg.Wait()

	head, err := stores[0].Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := stores[0].History(ctx, 1, head)
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[uint64]receipt{}
	for _, r := range receipts {
		if _, dup := byVersion[r.version]; dup {
			t.Fatalf("version %d returned twice", r.version)
		}
		byVersion[r.version] = r
	}
	if len(hist) != int(head) || len(byVersion) != len(hist) {
		t.Fatalf("head %d, %d commits in the log, %d receipts (%d calls failed)", head, len(hist), len(byVersion), failed.Load())
	}
	for i, c := range hist {
		r, ok := byVersion[c.Version]
		if c.Version != uint64(i+1) || !ok || !slices.Equal(r.ids, c.MessageIDs) {
			t.Fatalf("commit %d of the log: version %d, message IDs %v; receipt %+v (%v)", i, c.Version, c.MessageIDs, r, ok)
		}
	}
	msgs, err := stores[1].Undelivered(ctx, 1<<20)
	if err != nil || len(msgs) != len(hist) {
		t.Fatalf("%d messages for %d commits: %v", len(msgs), len(hist), err)
	}
	t.Logf("%d commits, %d calls failed with ErrStore", len(hist), failed.Load())
}
