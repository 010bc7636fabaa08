package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/outbox"
)

// BenchmarkEnqueue measures postgres.Enqueue in the caller's transaction:
// one message per transaction (BEGIN, Enqueue, COMMIT; round-trips/op
// counts the writes to the connection), and 500 per transaction (ns/op
// is per message). 1,000 keys.
func BenchmarkEnqueue(b *testing.B) {
	for _, per := range []int{1, 500} {
		b.Run(fmt.Sprintf("per-tx=%d", per), func(b *testing.B) {
			ctx := context.Background()
			st := openStore(b, freshSchema(b))
			pool, writes := countingPool(b)
			msgs := make([]outbox.Message, per)
			b.ReportAllocs()
			b.ResetTimer()
			before := writes.Load()
			for done := 0; done < b.N; {
				n := min(per, b.N-done)
				for i := range n {
					msgs[i] = outbox.Message{Topic: "t", Key: fmt.Sprint((done + i) % 1000), Payload: []byte("payload")}
				}
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					_, err := st.Enqueue(ctx, tx, msgs[:n]...)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				done += n
			}
			b.StopTimer()
			if per == 1 {
				b.ReportMetric(float64(writes.Load()-before)/float64(b.N), "round-trips/op")
			}
		})
	}
}
