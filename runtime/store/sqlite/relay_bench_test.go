package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// relayBenchKeys is the number of keys the relay benchmarks spread their
// messages over: the users of the peer benchmark (bench/peers).
const relayBenchKeys = 10_000

// benchPayload is a JSON payload of about 200 bytes, as in bench/peers.
var benchPayload = []byte(`{"id":"user-00042","email":"user-00042@example.com","name":"User 42","counter":1234567,` +
	`"updated_at":"2026-12-06T20:00:00.123456789Z","note":"` + strings.Repeat("x", 60) + `"}`)

// BenchmarkRelayDrain measures how fast a relay empties a backlog of
// messages (200-byte payloads over 10,000 keys) from a SQLite store into a
// sink that confirms at once: the relay's own cost, store reads and acks.
// The backlog is written outside the timer. One op is one message.
func BenchmarkRelayDrain(b *testing.B) {
	for _, backlog := range []int{20_000, 100_000} {
		for _, batch := range []int{100, 500} {
			b.Run(fmt.Sprintf("backlog=%d/batch=%d", backlog, batch), func(b *testing.B) {
				var total time.Duration
				var cpu time.Duration
				delivered := 0
				for range b.N {
					st := open(b, filepath.Join(b.TempDir(), "drain.db"))
					fillBacklog(b, st, backlog)
					d, c := drain(b, st, batch, backlog)
					total, cpu = total+d, cpu+c
					delivered += backlog
					st.Close()
				}
				b.ReportMetric(float64(delivered)/total.Seconds(), "msgs/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(delivered), "cpu-µs/msg")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// fillBacklog commits n messages straight into st, in groups of 1,000
// commits of one message each.
func fillBacklog(b *testing.B, st *sqlite.Store, n int) {
	b.Helper()
	ctx := context.Background()
	state := recoverAccounts(b, st, 16)
	created := time.Now()
	seqs := make([]uint64, relayBenchKeys)
	for v := uint64(1); v <= uint64(n); {
		recs := make([]*engine.Record, 0, 1000)
		for ; len(recs) < cap(recs) && v <= uint64(n); v++ {
			k := rand.N(relayBenchKeys)
			seqs[k]++
			key := fmt.Sprintf("user-%05d", k)
			recs = append(recs, &engine.Record{Version: v, Process: "update_user", State: state,
				Messages: []outbox.Message{{ID: outbox.MessageID(st.Incarnation(), v, 0), Topic: "user.updated", Key: key,
					KeySeq: seqs[k], Version: v, Payload: benchPayload, CreatedAt: created}}})
		}
		if err := st.Commit(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
}

// drain runs a relay on st until the sink confirmed want messages and
// returns the time it took and the process's CPU time meanwhile.
func drain(b *testing.B, st outbox.Store, batch, want int) (time.Duration, time.Duration) {
	b.Helper()
	var got atomic.Int64
	done := make(chan struct{})
	sink := sinkFunc(func(_ context.Context, msgs []outbox.Message) (int, error) {
		if got.Add(int64(len(msgs))) >= int64(want) {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		return len(msgs), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	r := outbox.NewRelay(st, sink, outbox.WithBatchSize(batch))
	errc := make(chan error, 1)
	b.StartTimer()
	cpu0, t0 := cpuTime(), time.Now()
	go func() { errc <- r.Run(ctx) }()
	<-done
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return elapsed, cpu
}

// BenchmarkCommitWithRelay measures bank transfers from 8 and 64 callers
// on a SQLite store (synchronous=FULL) while a relay delivers their
// messages to a sink that confirms at once, beside the same without a
// relay: what delivering costs the commit path. One op is one commit;
// commits/s and the relay's delivered msgs/s are reported.
func BenchmarkCommitWithRelay(b *testing.B) {
	for _, callers := range []int{8, 64} {
		for _, relay := range []bool{false, true} {
			b.Run(fmt.Sprintf("callers=%d/relay=%v", callers, relay), func(b *testing.B) {
				ctx := context.Background()
				st := open(b, filepath.Join(b.TempDir(), "bench.db"))
				eng, err := bank.NewEngine(ctx, accounts(relayBenchKeys, 1<<40), bank.Bank{}, engine.WithStore(st))
				if err != nil {
					b.Fatal(err)
				}
				defer eng.Close()
				transfer := func() error {
					from, to := rand.N(relayBenchKeys), rand.N(relayBenchKeys-1)
					if to >= from {
						to++
					}
					_, err := eng.Transfer(ctx, bank.TransferArgs{From: fmt.Sprintf("acc-%03d", from), To: fmt.Sprintf("acc-%03d", to), Amount: 1})
					return err
				}
				if err := transfer(); err != nil { // writes the initial state
					b.Fatal(err)
				}
				var delivered atomic.Int64
				stop := func() {}
				if relay {
					rctx, cancel := context.WithCancel(ctx)
					errc := make(chan error, 1)
					r := outbox.NewRelay(st, sinkFunc(func(_ context.Context, msgs []outbox.Message) (int, error) {
						delivered.Add(int64(len(msgs)))
						return len(msgs), nil
					}), outbox.WithBatchSize(500))
					go func() { errc <- r.Run(rctx) }()
					stop = func() {
						cancel()
						if err := <-errc; err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu0, t0 := cpuTime(), time.Now()
				delivered.Store(0)
				runCallers(b, callers, transfer)
				elapsed, cpu := time.Since(t0), cpuTime()-cpu0
				stop()
				if relay {
					b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "delivered/s")
				}
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/commit")
			})
		}
	}
}

// sinkFunc is an outbox.Sink of a function over a whole batch.
type sinkFunc func(ctx context.Context, batch []outbox.Message) (int, error)

func (f sinkFunc) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	return f(ctx, batch)
}
