package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// BenchmarkFleetDrainChurn drains a backlog of b.N messages with 4
// relays (batch 500, 32 partitions, leases of 1s), without and with
// churn: every 250ms a random relay dies as a killed process does to the
// others (it stops renewing its leases, its sink never returns, and
// PostgreSQL ends its sessions), and a new one starts on a new Store.
func BenchmarkFleetDrainChurn(b *testing.B) {
	for _, churn := range []bool{false, true} {
		b.Run(fmt.Sprintf("churn=%v", churn), func(b *testing.B) {
			schema := freshSchema(b)
			pool := userPool(b)
			opts := []postgres.Option{postgres.WithRelayLease(time.Second)}
			st := openStore(b, schema, opts...)
			enqueueBacklog(b, pool, st, b.N)
			var mu sync.Mutex
			seen := make(map[string]bool, b.N)
			all := make(chan struct{})
			hang := make(chan struct{}) // closed at the end: the dead return
			defer close(hang)
			type relay struct {
				st   *postgres.Store
				dead atomic.Bool
			}
			newRelay := func() *relay {
				r := &relay{st: openStore(b, schema, opts...)}
				runRelayB(b, outbox.NewRelay(r.st, sinkFunc(func(_ context.Context, batch []outbox.Message) (int, error) {
					if r.dead.Load() {
						<-hang
						return 0, context.Canceled
					}
					mu.Lock()
					defer mu.Unlock()
					for _, m := range batch {
						if !seen[m.ID] {
							seen[m.ID] = true
							if len(seen) == b.N {
								close(all)
							}
						}
					}
					return len(batch), nil
				}), outbox.WithBatchSize(500)))
				return r
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			relays := []*relay{newRelay(), newRelay(), newRelay(), newRelay()}
			kills := 0
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
		wait:
			for {
				select {
				case <-all:
					break wait
				case <-time.After(5 * time.Minute):
					b.Fatal("backlog not drained")
				case <-tick.C:
					if churn {
						i := rand.N(len(relays))
						relays[i].st.PauseLeases(true)
						relays[i].dead.Store(true)
						for _, pid := range append(relays[i].st.Backends(), relays[i].st.RelaySession()) {
							if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, int32(pid)); err != nil {
								b.Fatal(err)
							}
						}
						relays[i] = newRelay()
						kills++
					}
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
			b.ReportMetric(float64(kills), "kills")
		})
	}
}
