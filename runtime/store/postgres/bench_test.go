package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
)

// BenchmarkCommit measures durable commits per second on one instance:
// callers goroutines deposit into accounts of their own (no conflicts),
// each call waiting for its group's PostgreSQL transaction.
func BenchmarkCommit(b *testing.B) {
	for _, callers := range []int{8, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			st := openStore(b, freshSchema(b))
			eng := newBank(b, st, accounts(callers, 0))
			ctx := context.Background()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("acc-%03d", c)
					for next.Add(1) <= int64(b.N) {
						if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: id, Amount: 1}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
		})
	}
}
