package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
)

// BenchmarkThreeInstances measures durable commits per second of three
// engine instances on one schema (three Stores, as three processes would
// have), 64 callers each, depositing back to back: on disjoint keys
// (each caller its own account), and on shared keys (the three instances'
// callers on the same 64 accounts), where it also reports the conflicts
// retried per commit.
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
			for i := range engines {
				eng, err := bank.NewEngine(ctx, accounts(instances*callers, 1), bank.Bank{},
					engine.WithStore(openStore(b, schema)), engine.WithMetrics(&counters[i]))
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
		})
	}
}

// BenchmarkStaleness measures how long after a commit on instance A
// returned its receipt the idle instance B (no calls, no Sync: it follows
// by LISTEN/NOTIFY) shows that version in its Snapshot: p50 and p99 over
// b.N commits made one at a time.
func BenchmarkStaleness(b *testing.B) {
	schema := freshSchema(b)
	ctx := context.Background()
	a := newBank(b, openStore(b, schema), accounts(2, 0))
	bb := newBank(b, openStore(b, schema), accounts(2, 0))
	if _, err := a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil {
		b.Fatal(err)
	}
	if err := bb.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	lags := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1})
		if err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		deadline := committed.Add(10 * time.Second)
		for bb.Snapshot().Version() < r.Version {
			if time.Now().After(deadline) {
				b.Fatalf("version %d not visible on B after 10s", r.Version)
			}
			runtime.Gosched() // spinning: the lag is measured to the microsecond
		}
		lags = append(lags, time.Since(committed))
	}
	b.StopTimer()
	slices.Sort(lags)
	q := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}
