package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// BenchmarkThreeInstances measures durable commits per second of three
// engine instances on one schema (three Stores, as three processes would
// have), 64 callers each, depositing back to back: on disjoint keys
// (each caller its own account), and on shared keys (the three instances'
// callers on the same 64 accounts), where it also reports the conflicts
// retried per commit. Cross-instance staleness is BenchmarkStaleness
// (bench_test.go).
func BenchmarkThreeInstances(b *testing.B) {
	const instances, callers = 3, 64
	for _, shared := range []bool{false, true} {
		name := "keys=disjoint"
		if shared {
			name = "keys=shared"
		}
		b.Run(name, func(b *testing.B) {
			schema := freshSchema(b)
			ctx := context.Background()
			var counters [instances]engine.Counters
			engines := make([]*bank.Engine, instances)
			stores := make([]*postgres.Store, instances)
			for i := range engines {
				stores[i] = openStore(b, schema)
				eng, err := bank.NewEngine(ctx, accounts(instances*callers, 1), bank.Bank{},
					engine.WithStore(stores[i]), engine.WithMetrics(&counters[i]))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { eng.Close() })
				engines[i] = eng
			}
			// The first commit writes the whole state: not measured.
			if _, err := engines[0].Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil {
				b.Fatal(err)
			}
			for _, e := range engines {
				if err := e.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, eng := range engines {
				for c := range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						acct := i*callers + c
						if shared {
							acct = c
						}
						id := fmt.Sprintf("acc-%03d", acct)
						for next.Add(1) <= int64(b.N) {
							if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: id, Amount: 1}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			var conflicts uint64
			for i := range counters {
				conflicts += counters[i].Conflicts.Load()
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
			b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/commit")
			var one, moved, renumbered uint64
			for _, st := range stores {
				o, m := st.Trips()
				one, moved, renumbered = one+o, moved+m, renumbered+st.Renumbered()
			}
			b.ReportMetric(float64(one), "onetrip")
			b.ReportMetric(float64(renumbered), "renumbered")
			b.ReportMetric(float64(moved), "moved")
		})
	}
}
