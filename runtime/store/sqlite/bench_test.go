package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
)

var callerCounts = []int{1, 8, 64, 1024}

// BenchmarkDurableCommit measures bank transfers (two collection entries
// and one message per commit) through the generated engine on a SQLite
// store with synchronous=FULL, from 1 to 1,024 concurrent callers. One op
// is one commit; commits/s, p50 and p99 commit latency are reported.
func BenchmarkDurableCommit(b *testing.B) {
	for _, callers := range callerCounts {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			ctx := context.Background()
			st := open(b, filepath.Join(b.TempDir(), "bench.db"))
			const n = 10000
			eng := newBank(b, st, accounts(n, 1<<40))
			runCallers(b, callers, func() error {
				from, to := rand.N(n), rand.N(n-1)
				if to >= from {
					to++
				}
				_, err := eng.Transfer(ctx, bank.TransferArgs{From: fmt.Sprintf("acc-%03d", from), To: fmt.Sprintf("acc-%03d", to), Amount: 1})
				return err
			})
		})
	}
}

// runCallers runs op b.N times from callers goroutines and reports
// throughput and latency percentiles.
func runCallers(b *testing.B, callers int, op func() error) {
	var next atomic.Int64
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := op(); err != nil {
					failed.Store(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkBaselineRawSQLite is the floor that BenchmarkDurableCommit is
// compared with: modernc SQLite on the same disk and pragmas (WAL,
// synchronous=FULL), inserting rows the size of an outbox message with no
// engine around it. rows=1 is one INSERT per transaction (the disk's sync
// rate); rows=64 and rows=1024 batch that many INSERTs per transaction,
// as group commit does at 64 and 1,024 callers. One op is one row.
func BenchmarkBaselineRawSQLite(b *testing.B) {
	for _, rows := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "raw.db")
			db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE m (id TEXT PRIMARY KEY, key TEXT, payload BLOB) WITHOUT ROWID`); err != nil {
				b.Fatal(err)
			}
			ins, err := db.Prepare(`INSERT INTO m (id, key, payload) VALUES (?, ?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			defer ins.Close()
			payload := []byte(`{"account":"acc-001","from":"acc-001","to":"acc-002","amount":1}`)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				stmt := tx.Stmt(ins)
				for j := 0; j < rows && i < b.N; j++ {
					if _, err := stmt.Exec(fmt.Sprintf("%016x-0000", i), "acc-001", payload); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
