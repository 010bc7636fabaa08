package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// A rolled-back transaction enqueues nothing and uses up no KeySeq and no
// version; a committed one is delivered, by a relay whose poll interval is
// an hour (the COMMIT's notification wakes it).
func TestEnqueueRollbackDeliversNothing(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema)
	pool := userPool(t)
	c := newCollector(1)
	runRelay(t, outbox.NewRelay(st, sink.Func(c.receive), outbox.WithPollInterval(time.Hour)))

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, tx, outbox.Message{Topic: "t", Key: "k", Payload: []byte("rolled back")}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	out := enqueueKeys(t, st, pool, "k")
	c.wait(t)
	got := c.received()[0]
	if string(got.Payload) != "k" || got.KeySeq != 1 || got.Version != 1 || got.ID != out[0].ID {
		t.Fatalf("delivered %+v, want the committed message with KeySeq 1, version 1, ID %s", got, out[0].ID)
	}
	if head, err := st.Head(ctx); err != nil || head != 1 {
		t.Fatalf("head = %d, %v; want 1", head, err)
	}
}

// Transactions that enqueue to one key number its messages in the order
// they get to enqueue: a transaction that enqueues while another holds
// uncommitted messages waits for it (it cannot take a KeySeq after one
// that may still roll back, nor commit before it). Here B began first and
// tries to commit first, but waits for A; A's message comes first; a
// rolled-back C leaves no gap. B is a *sql.Tx (pgx stdlib).
func TestEnqueueOrderAcrossTransactions(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema)
	pool := userPool(t)
	db := servicetest.Postgres(t)
	c := newCollector(2)
	runRelay(t, outbox.NewRelay(st, sink.Func(c.receive), outbox.WithPollInterval(time.Hour)))

	b, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Rollback()
	var bPID int
	if err := b.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&bPID); err != nil {
		t.Fatal(err)
	}
	a, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback(ctx)
	outA, err := st.Enqueue(ctx, a, outbox.Message{Topic: "t", Key: "k", Payload: []byte("A")})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out []outbox.Message
		err error
	}
	bDone := make(chan result, 1)
	go func() {
		out, err := st.Enqueue(ctx, b, outbox.Message{Topic: "t", Key: "k", Payload: []byte("B")})
		if err == nil {
			err = b.Commit()
		}
		bDone <- result{out, err}
	}()
	// B waits for A's lock: PostgreSQL says so.
	waitUntil(t, 10*time.Second, "B waits for a lock", func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, bPID).Scan(&waiting)
		return err == nil && waiting
	})
	select {
	case r := <-bDone:
		t.Fatalf("B enqueued and committed before A ended: %+v", r)
	default:
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-bDone
	if r.err != nil {
		t.Fatal(r.err)
	}
	if outA[0].KeySeq != 1 || r.out[0].KeySeq != 2 {
		t.Fatalf("KeySeqs A %d, B %d; want 1, 2", outA[0].KeySeq, r.out[0].KeySeq)
	}
	c.wait(t)
	if msgs := c.received(); string(msgs[0].Payload) != "A" || string(msgs[1].Payload) != "B" {
		t.Fatalf("delivered %s then %s", msgs[0].Payload, msgs[1].Payload)
	}

	// A rolled-back transaction in between leaves no gap.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, tx, outbox.Message{Topic: "t", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if out := enqueueKeys(t, st, pool, "k"); out[0].KeySeq != 3 {
		t.Fatalf("after a rollback, KeySeq %d, want 3", out[0].KeySeq)
	}
}

// Engine commits and enqueued messages share a key's KeySeqs, dense and
// in order, and one history: the engine catches up on the enqueued
// versions. The package-level Enqueue writes to the default schema's
// store only, so this test uses Store.Enqueue.
func TestEnqueueMixedWithEngine(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	a, b := openStore(t, schema), openStore(t, schema)
	eng := newBank(t, a, accounts(2, 1000))
	pool := userPool(t)
	const rounds = 20
	c := newCollector(2 * rounds)
	runRelay(t, outbox.NewRelay(b, sink.Func(c.receive), outbox.WithPollInterval(time.Hour)))
	for i := range rounds {
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
			t.Fatal(err)
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := b.Enqueue(ctx, tx, outbox.Message{Topic: "transfer.completed", Key: "acc-000", Payload: fmt.Appendf(nil, "enqueued %d", i)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t)
	var seqs []uint64
	for _, m := range c.received() {
		if m.Topic == "transfer.completed" && m.Key == "acc-000" {
			seqs = append(seqs, m.KeySeq)
		}
	}
	want := make([]uint64, 2*rounds)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("KeySeqs of acc-000 delivered %v, want 1..%d", seqs, 2*rounds)
	}
	if got := balances(eng)["acc-000"]; got != 1000-rounds {
		t.Fatalf("balance %d", got)
	}
}

// Enqueue takes only the two kinds of transactions.
func TestEnqueueRefusesOtherTx(t *testing.T) {
	if _, err := postgres.Enqueue(context.Background(), struct{}{}, outbox.Message{Topic: "t"}); err == nil {
		t.Fatal("Enqueue with a struct{} as tx succeeded")
	}
}

// Concurrent transactions enqueueing on overlapping keys, new and known,
// get dense KeySeqs per key: every (key, KeySeq) once, 1 to the key's
// count with no gap, whichever transaction waited for which.
func TestEnqueueConcurrentKeySeqsDense(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, freshSchema(t))
	pool := userPool(t)
	const workers, txs = 6, 15
	var mu sync.Mutex
	seqs := map[string][]uint64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txs {
				// Keys k0..k11, a new one now and then: each transaction
				// takes four of them, two messages on its first.
				var msgs []outbox.Message
				for j := range 4 {
					k := fmt.Sprint("k", (w*7+i*5+j*3)%(4+i%9))
					msgs = append(msgs, outbox.Message{Topic: "t", Key: k})
					if j == 0 {
						msgs = append(msgs, outbox.Message{Topic: "t", Key: k})
					}
				}
				var out []outbox.Message
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					var err error
					out, err = st.Enqueue(ctx, tx, msgs...)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, m := range out {
					seqs[m.Key] = append(seqs[m.Key], m.KeySeq)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seqs) < 10 {
		t.Fatalf("only %d keys used", len(seqs))
	}
	for k, s := range seqs {
		slices.Sort(s)
		for i, q := range s {
			if q != uint64(i+1) {
				t.Fatalf("key %s: KeySeqs %v, want 1..%d", k, s, len(s))
			}
		}
	}
}
