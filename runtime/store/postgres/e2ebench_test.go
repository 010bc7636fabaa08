package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
)

// BenchmarkE2ELatency commits b.N transfers at a steady 1,000 per second
// (an engine on one Store, 100 accounts) and delivers their messages
// with a relay on another Store, default settings: woken by the commits'
// NOTIFY. It reports the percentiles of the time from each Transfer's
// call to its message's arrival at the sink, and those of the commits
// alone (the call to its return). Message.CreatedAt is not the start: the
// engine's default clock reads the time about once a millisecond.
func BenchmarkE2ELatency(b *testing.B) {
	ctx := context.Background()
	schema := freshSchema(b)
	eng := newBank(b, openStore(b, schema), accounts(100, 1<<40))
	relaySt := openStore(b, schema)
	var mu sync.Mutex
	arrived := make(map[string]time.Time, b.N)
	all := make(chan struct{})
	want := -1 // messages to wait for, once known
	var once sync.Once
	runRelayB(b, outbox.NewRelay(relaySt, sinkFunc(func(_ context.Context, batch []outbox.Message) (int, error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			arrived[m.ID] = now
			if len(arrived) == want {
				once.Do(func() { close(all) })
			}
		}
		return len(batch), nil
	})))
	// The relay holds its partitions once it has delivered a first
	// message, not measured.
	r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
	if err != nil {
		b.Fatal(err)
	}
	for { // the warm-up's messages
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= len(r.MessageIDs) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	clear(arrived)
	want = b.N * len(r.MessageIDs)
	mu.Unlock()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	commits := make([]time.Duration, 0, b.N)  // how long each Transfer took
	called := make(map[string]time.Time, b.N) // when the Transfer of each message was called
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			from, to := rand.N(100), rand.N(99)
			if to >= from {
				to++
			}
			t0 := time.Now()
			r, err := eng.Transfer(ctx, bank.TransferArgs{From: fmt.Sprintf("acc-%03d", from), To: fmt.Sprintf("acc-%03d", to), Amount: 1})
			if err != nil {
				b.Error(err)
				return
			}
			d := time.Since(t0)
			mu.Lock()
			commits = append(commits, d)
			for _, id := range r.MessageIDs {
				called[id] = t0
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatal("not every message delivered")
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, 0, len(called))
	for id, t0 := range called {
		at, ok := arrived[id]
		if !ok {
			b.Fatalf("message %s committed and not delivered", id)
		}
		lat = append(lat, at.Sub(t0))
	}
	slices.Sort(lat)
	slices.Sort(commits)
	q := func(ds []time.Duration, p float64) float64 {
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(lat, 0.5), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	// The commits alone, from the call of Transfer to its return: the
	// part of the e2e latency before the relay is woken.
	b.ReportMetric(q(commits, 0.5), "commit-p50-ms")
	b.ReportMetric(q(commits, 0.99), "commit-p99-ms")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}
