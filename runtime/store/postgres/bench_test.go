package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// BenchmarkCommit measures durable commits per second on one instance:
// callers goroutines deposit into accounts of their own (no conflicts),
// each call waiting for its group's PostgreSQL transaction.
func BenchmarkCommit(b *testing.B) {
	for _, callers := range []int{8, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			schema := freshSchema(b)
			st := openStore(b, schema)
			eng := newBank(b, st, accounts(callers, 0))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			deposits(b, eng, callers, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
			db, _ := testDBs.Load(b)
			var perGroup float64
			if err := db.(*sql.DB).QueryRow(`SELECT count(*)::float8 / count(DISTINCT grp) FROM ` + schema + `.theus_log`).Scan(&perGroup); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(perGroup, "commits/group")
		})
	}
}

// BenchmarkRecover measures the cold start of an instance on a store
// holding a collection of 100,000 and 1,000,000 entries (the latter not
// under -short), written in key order (fillAccounts): Open, and Recover
// through NewEngine. It reports the wall time and the process's CPU time
// per entry (the database's CPU not included).
func BenchmarkRecover(b *testing.B) {
	for _, entries := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			if entries > 100_000 && testing.Short() {
				b.Skip("a million entries: not under -short")
			}
			ctx := context.Background()
			schema := freshSchema(b)
			fillAccounts(b, schema, entries, false)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for range b.N {
				st, err := postgres.Open(ctx, testDSN(), postgres.WithSchema(schema))
				if err != nil {
					b.Fatal(err)
				}
				e, err := bank.NewEngine(ctx, bank.State{}, bank.Bank{}, engine.WithStore(st))
				if err != nil {
					b.Fatal(err)
				}
				if n := e.Snapshot().Accounts().Len(); n != entries {
					b.Fatalf("recovered %d entries, want %d", n, entries)
				}
				e.Close()
				st.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(entries), "ns/entry")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N)/float64(entries), "cpu-ns/entry")
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStaleness measures how long an idle instance takes to apply a
// commit of another instance (LISTEN/NOTIFY; the poll is an hour): from
// the return of the commit on A to B's Watch yielding it, which B does
// once the commit is on its Snapshot. It waits for each commit without
// spinning, so that the waiting takes no CPU from the instance it
// measures (2 cores here). It reports the median and the 99th percentile.
func BenchmarkStaleness(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	schema := freshSchema(b)
	a := newBank(b, openStore(b, schema), accounts(2, 0))
	idle := newBank(b, openStore(b, schema, postgres.WithPollInterval(time.Hour)), accounts(2, 0))
	type seen struct {
		version uint64
		at      time.Time
	}
	applied := make(chan seen, 1024)
	watching := make(chan struct{})
	go func() {
		defer close(applied)
		close(watching)
		for c, err := range idle.Watch(ctx, idle.Snapshot().Version()) {
			if err != nil {
				if ctx.Err() == nil {
					b.Error(err)
				}
				return
			}
			applied <- seen{c.Version, time.Now()}
		}
	}()
	<-watching
	lags := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		timeout := time.After(10 * time.Second)
		for done := false; !done; {
			select {
			case s, ok := <-applied:
				if !ok {
					b.Fatal("Watch on the idle instance ended")
				}
				if done = s.version >= r.Version; done {
					lags = append(lags, max(s.at.Sub(start), 0))
				}
			case <-timeout:
				b.Fatalf("version %d not applied on the idle instance after 10 s", r.Version)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds()), "p99-µs")
}

// fillAccounts writes n accounts into theus_entries of schema directly
// (one INSERT … SELECT), after a commit of the bank's engine made it a
// store: acc-0000001 to acc-<n-1> beside acc-000, owned by "owner <id>"
// as accounts names them, in ascending key order or, shuffled, in random
// order and with owners whose JSON holds escapes. It returns the head
// version.
func fillAccounts(t testing.TB, schema string, n int, shuffle bool) uint64 {
	t.Helper()
	ctx := context.Background()
	st := openStore(t, schema)
	eng, err := bank.NewEngine(ctx, accounts(1, 1), bank.Bank{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	r, err := eng.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	eng.Close()
	st.Close()
	db, _ := testDBs.Load(t)
	order, owner := "i", `'owner ' || k`
	if shuffle {
		order = "random()"
		owner = `CASE i % 3 WHEN 0 THEN 'owner ' || i WHEN 1 THEN 'Zoë \"' || i || '\"' ELSE 'back\\slash ' || i END`
	}
	// Owners with quotes, backslashes and non-ASCII letters, encoded as
	// the engine's JSON encodes them.
	if _, err := db.(*sql.DB).Exec(`INSERT INTO `+schema+`.theus_entries (path, key, value, version)
		SELECT 'domain.accounts', k, convert_to('{"id":"' || k || '","owner":"' || o || '","balance":' || b || '}', 'UTF8'), 1
		FROM (SELECT k, `+owner+` AS o, i % 1000 AS b, i
			FROM (SELECT 'acc-' || lpad(i::text, 7, '0') AS k, i FROM generate_series(1, $1::int) i) ki) g
		ORDER BY `+order, n-1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.(*sql.DB).Exec(`VACUUM ANALYZE ` + schema + `.theus_entries`); err != nil {
		t.Fatal(err)
	}
	return r.Version
}

// BenchmarkCommitLatency commits b.N deposits at a steady 1,000 per
// second (an engine alone on its Store, 100 accounts) and reports the
// percentiles of a call's duration, from the call to its durable receipt:
// the commit's share of a message's end-to-end latency (E2ELatency).
func BenchmarkCommitLatency(b *testing.B) {
	ctx := context.Background()
	eng := newBank(b, openStore(b, freshSchema(b)), accounts(100, 0))
	// The first commit writes the whole state: not measured.
	if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: fmt.Sprintf("acc-%03d", i%100), Amount: 1}); err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(t)
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkGroupPaths compares, in one process, the two paths of a group
// of an instance alone: one round trip (the default) and the head row's
// lock first (LockOnly), alternating every 25 commits per caller (about
// 50 groups) so that the load of the machine weighs on both alike.
// callers goroutines deposit into accounts of their own; it reports the
// commits per second of each path.
func BenchmarkGroupPaths(b *testing.B) {
	for _, callers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			st := openStore(b, freshSchema(b))
			eng := newBank(b, st, accounts(callers, 0))
			var spent [2]time.Duration
			var done [2]int
			b.ResetTimer()
			for chunk := 0; done[0]+done[1] < b.N; chunk++ {
				path := chunk % 2
				st.LockOnly(path == 1)
				n := min(25*callers, b.N-done[0]-done[1])
				start := time.Now()
				deposits(b, eng, callers, n)
				spent[path] += time.Since(start)
				done[path] += n
			}
			b.ReportMetric(float64(done[0])/spent[0].Seconds(), "onetrip-commits/s")
			b.ReportMetric(float64(done[1])/spent[1].Seconds(), "locked-commits/s")
		})
	}
}

// deposits makes n deposits of 1 from callers goroutines, each into an
// account of its own (acc-000, acc-001, …), and returns once all are
// committed.
func deposits(b *testing.B, eng *bank.Engine, callers, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("acc-%03d", c)
			for next.Add(1) <= int64(n) {
				if _, err := eng.Deposit(context.Background(), bank.DepositArgs{ID: id, Amount: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
