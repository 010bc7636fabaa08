package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// The chaos test of the relay fleet (issue 18): three relays (each on a
// Store of its own) deliver while an engine transfers and a transaction
// of the application enqueues, without pause, on a throwaway PostgreSQL
// server, which is restarted three times under that load (fast,
// immediate, immediate: a crash, the WAL replayed). Every relay delivers
// again after each restart without being restarted itself; afterwards
// every committed message (every transfer whose caller got a receipt,
// every enqueue whose transaction committed, and whatever else the outbox
// holds) was sent, per-key order held, and every message sent twice was
// sent before only in a send whose ack was refused or failed, or whose
// ack an immediate restart may have lost: it succeeded after the start
// of the last commit that succeeded before the restart (acks are not
// synced on their own; checkTrail).
func TestFleetServerRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server of its own")
	}
	c := servicetest.StartCluster(t)
	ctx := context.Background()
	dsn := c.DSN("pool_max_conns=4")
	const schema = "fleet_chaos" // the server is the test's own
	quiet := postgres.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	opts := []postgres.Option{postgres.WithSchema(schema), postgres.WithPartitions(8), postgres.WithRelayLease(time.Second), quiet}
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, dsn, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	pst := open()
	eng := newBank(t, pst, accounts(200, 1<<40))
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// The relays, until the end.
	trail := newMemTrail()
	names := []string{"r0", "r1", "r2"}
	rctx, stopRelays := context.WithCancel(ctx)
	var relayWG sync.WaitGroup
	relayErr := make([]error, len(names))
	for i, name := range names {
		ts, sink := trail.relay(name, open())
		r := outbox.NewRelay(ts, sink, outbox.WithBatchSize(20))
		relayWG.Add(1)
		go func() {
			defer relayWG.Done()
			relayErr[i] = r.Run(rctx)
		}()
	}
	stopped := false
	stopAll := func() {
		if !stopped {
			stopped = true
			stopRelays()
			relayWG.Wait()
		}
	}
	t.Cleanup(stopAll)

	// The producers, until stop.
	var (
		mu       sync.Mutex
		receipts []string // message IDs of transfers and enqueues that succeeded
		failed   atomic.Int64
		produced atomic.Int64
		prodWG   sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 3 {
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				var ids []string
				var err error
				if w == 2 {
					var got []outbox.Message
					err = trail.commit(func() error {
						return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
							var msgs []outbox.Message
							for range 1 + r.IntN(3) {
								msgs = append(msgs, outbox.Message{Topic: "transfer.completed", Key: accountID(r.IntN(200)), Payload: []byte("enqueued")})
							}
							var err error
							got, err = pst.Enqueue(ctx, tx, msgs...)
							return err
						})
					})
					for _, m := range got {
						ids = append(ids, m.ID)
					}
				} else {
					from := r.IntN(200)
					var rc bank.TransferReceipt
					err = trail.commit(func() error {
						var err error
						rc, err = eng.Transfer(ctx, bank.TransferArgs{From: accountID(from), To: accountID((from + 1 + r.IntN(199)) % 200), Amount: 1})
						return err
					})
					if err != nil && !errors.Is(err, engine.ErrStore) {
						t.Errorf("transfer: %v (want nil or ErrStore)", err)
						return
					}
					ids = rc.MessageIDs
				}
				if err != nil {
					failed.Add(1)
					time.Sleep(5 * time.Millisecond) // the server is down: no busy loop
					continue
				}
				mu.Lock()
				receipts = append(receipts, ids...)
				mu.Unlock()
				produced.Add(1)
			}
		}()
	}
	stopProducers := func() {
		select {
		case <-stop:
		default:
			close(stop)
			prodWG.Wait()
		}
	}
	t.Cleanup(stopProducers)

	// progress waits until the producers committed n more times and
	// every relay sent n more times.
	progress := func(what string, n int) {
		t.Helper()
		base := produced.Load()
		var sends []int
		for _, name := range names {
			sends = append(sends, trail.sendsOf(name))
		}
		waitUntil(t, 60*time.Second, what, func() bool {
			if produced.Load() < base+int64(n) {
				return false
			}
			for i, name := range names {
				if trail.sendsOf(name) < sends[i]+n {
					return false
				}
			}
			return true
		})
	}
	began := time.Now()
	progress("the fleet delivers before the restarts", 20)
	modes := []string{"fast", "immediate", "immediate"}
	for _, mode := range modes {
		if mode == "immediate" { // a crash: unsynced acks may be lost
			trail.crash(func() { c.Restart(mode) })
		} else { // a clean shutdown syncs everything first
			c.Restart(mode)
		}
		progress("every relay delivers again after a "+mode+" restart", 20)
	}
	stopProducers()
	var all map[string]committed
	pollUntil(t, 60*time.Second, "every committed message delivered and sent", func() bool {
		if openMessages(t, pst) > 0 {
			return false
		}
		all = committedMessages(t, pool, schema)
		_, _, ids := trail.snapshot()
		for id := range all {
			if !ids[id] {
				return false
			}
		}
		return true
	})
	stopAll()
	for i, err := range relayErr {
		if err != nil {
			t.Errorf("relay %s returned %v", names[i], err)
		}
	}
	mu.Lock()
	for _, id := range receipts {
		if _, ok := all[id]; !ok {
			t.Errorf("message %s was committed (its caller was told so) but is not in the outbox", id)
		}
	}
	mu.Unlock()
	sends, outcome, _ := trail.snapshot()
	v := checkTrail(all, sends, outcome, nil, true, trail.lostAck)
	v.report(t, "server restarts")
	var per []string
	for _, name := range names {
		per = append(per, fmt.Sprintf("%s %d", name, trail.sendsOf(name)))
	}
	t.Logf("%d restarts (%v) in %v: %d commits and enqueues, %d failed while the server was down; sends per relay %v",
		len(modes), modes, time.Since(began).Round(time.Millisecond), produced.Load(), failed.Load(), per)
}
