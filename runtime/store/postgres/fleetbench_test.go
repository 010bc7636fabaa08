package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// BenchmarkFleetDrain measures how fast relays drain a backlog of
// b.N messages (1,000 keys, enqueued beforehand in transactions of 500)
// to a sink that does nothing, with 1 and 4 relays (batch 500, 32
// partitions), and the CPU time of the benchmark's process (the relays,
// the sink) per message.
func BenchmarkFleetDrain(b *testing.B) {
	for _, relays := range []int{1, 4} {
		b.Run(fmt.Sprintf("relays=%d", relays), func(b *testing.B) {
			schema := freshSchema(b)
			pool := userPool(b)
			st := openStore(b, schema)
			enqueueBacklog(b, pool, st, b.N)
			var mu sync.Mutex
			seen := make(map[string]bool, b.N)
			dups := 0
			all := make(chan struct{})
			s := sinkFunc(func(_ context.Context, batch []outbox.Message) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range batch {
					if seen[m.ID] {
						dups++
						continue
					}
					seen[m.ID] = true
					if len(seen) == b.N {
						close(all)
					}
				}
				return len(batch), nil
			})
			// The relays' stores are opened before the clock starts: the
			// drain is timed, not Open.
			stores := []*postgres.Store{st}
			for range relays - 1 {
				stores = append(stores, openStore(b, schema))
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			for _, rs := range stores {
				runRelayB(b, outbox.NewRelay(rs, s, outbox.WithBatchSize(500)))
			}
			select {
			case <-all:
			case <-time.After(5 * time.Minute):
				mu.Lock()
				defer mu.Unlock()
				b.Fatalf("delivered %d of %d", len(seen), b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "client-cpu-ns/msg")
			mu.Lock()
			b.ReportMetric(float64(dups), "duplicates")
			mu.Unlock()
		})
	}
}

// runRelayB runs r until the benchmark ends.
func runRelayB(b *testing.B, r *outbox.Relay) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
}

// enqueueBacklog enqueues n messages of 1,000 keys on st, in transactions
// of 500 of pool: the backlog the drain benchmarks empty.
func enqueueBacklog(b *testing.B, pool *pgxpool.Pool, st *postgres.Store, n int) {
	b.Helper()
	ctx := context.Background()
	for done := 0; done < n; {
		k := min(500, n-done)
		msgs := make([]outbox.Message, k)
		for i := range msgs {
			msgs[i] = outbox.Message{Topic: "t", Key: strconv.Itoa((done + i) % 1000), Payload: []byte("x")}
		}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := st.Enqueue(ctx, tx, msgs...)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		done += k
	}
}
