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
	"syscall"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/sqlite"
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
			var steps stepCounter
			st := open(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.WithFaultHook(steps.hook))
			// Enough accounts that two of 1,024 concurrent transfers
			// rarely touch the same one: the figure is the store's, not
			// conflict retries'.
			const n = 100_000
			var counters engine.Counters
			eng, err := bank.NewEngine(ctx, accounts(n, 1<<40), bank.Bank{}, engine.WithStore(st), engine.WithMetrics(&counters))
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			transfer := func() error {
				from, to := rand.N(n), rand.N(n-1)
				if to >= from {
					to++
				}
				_, err := eng.Transfer(ctx, bank.TransferArgs{From: fmt.Sprintf("acc-%03d", from), To: fmt.Sprintf("acc-%03d", to), Amount: 1})
				return err
			}
			// The first commit writes the whole initial state: not timed.
			if err := transfer(); err != nil {
				b.Fatal(err)
			}
			conflicts := counters.Conflicts.Load()
			steps.reset()
			runCallers(b, callers, transfer)
			steps.report(b)
			b.ReportMetric(float64(counters.Conflicts.Load()-conflicts)/float64(b.N), "conflicts/op")
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

// rstate is the state of the restart benchmark: 10,000 accounts in a
// collection.
type rstate struct {
	Acc engine.Collection[string, bank.Account]
}

var rschema = &engine.Schema[rstate]{
	Clone: func(s *rstate) rstate { return *s },
	State: []engine.StateField[rstate]{engine.CollectionField("domain.accounts", accountsType,
		func(s *rstate) *engine.Collection[string, bank.Account] { return &s.Acc })},
}

// BenchmarkRestart1M measures a restart (Open, then recovery by
// engine.New) of a store holding 1,000,000 committed transfers: 10,000
// accounts, 1,000,000 messages kept (all delivered, within retention). The
// store is built once per sub-benchmark, outside the timer, by committing
// groups of 1,000 records directly: with the default checkpoints, which
// leave a snapshot and the log of the commits after it (reported as
// log-commits), and with checkpoints off, where the log holds every
// commit since the first.
func BenchmarkRestart1M(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a store of 1,000,000 commits")
	}
	for _, every := range []int{sqlite.DefaultCheckpointEvery, 0} {
		name := "checkpoints=on"
		if every == 0 {
			name = "checkpoints=off"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "restart.db")
			const accountsN, commits, group = 10_000, 1_000_000, 1000
			st := open(b, path, sqlite.WithCheckpointEvery(every))
			state := recoverAccounts(b, st, accountsN)
			created := time.Now()
			for v := uint64(1); v <= commits; {
				recs := make([]*engine.Record, 0, group)
				for ; len(recs) < group; v++ {
					from, to := fmt.Sprintf("acc-%03d", v%accountsN), fmt.Sprintf("acc-%03d", (v*7+1)%accountsN)
					recs = append(recs, transferRecord(v, state, from, to, v/accountsN+1, created))
				}
				if err := st.Commit(ctx, recs); err != nil {
					b.Fatal(err)
				}
				ids := make([]string, len(recs))
				for i, r := range recs {
					ids[i] = r.Messages[0].ID
				}
				if err := st.Ack(ctx, ids); err != nil {
					b.Fatal(err)
				}
			}
			cp := st.WaitCheckpoint()
			st.Close()
			b.ResetTimer()
			for range b.N {
				// No checkpoint in the loop: each restart finds the same
				// files.
				st, err := sqlite.Open(ctx, path, sqlite.WithCheckpointEvery(0))
				if err != nil {
					b.Fatal(err)
				}
				e, err := engine.New(ctx, rschema, rstate{}, engine.WithStore(st))
				if err != nil {
					b.Fatal(err)
				}
				if v, s := e.Snapshot(); v != commits || engine.CollectionLen(s.Acc) != accountsN {
					b.Fatalf("recovered version %d with %d accounts", v, engine.CollectionLen(s.Acc))
				}
				e.Close()
				st.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restart")
			b.ReportMetric(float64(commits-cp), "log-commits")
		})
	}
}

// BenchmarkCheckpoint measures a checkpoint of a state of 100,000
// accounts (about 7 MB encoded) after 10,000 transfers: Checkpoint from
// the call to its return, synchronous=FULL. The transfers are committed
// outside the timer.
func BenchmarkCheckpoint(b *testing.B) {
	ctx := context.Background()
	const accountsN, commits, group = 100_000, 10_000, 64
	var total time.Duration
	for range b.N {
		st := open(b, filepath.Join(b.TempDir(), "checkpoint.db"), sqlite.WithCheckpointEvery(0))
		state := recoverAccounts(b, st, accountsN)
		v := uint64(1)
		for i := 0; i < commits; {
			recs := make([]*engine.Record, 0, group)
			for ; len(recs) < group && i < commits; i++ {
				from, to := fmt.Sprintf("acc-%03d", rand.N(accountsN)), fmt.Sprintf("acc-%03d", rand.N(accountsN))
				rec := transferRecord(v, state, from, to, 0, time.Time{})
				rec.Messages = nil // the state only
				recs = append(recs, rec)
				v++
			}
			if err := st.Commit(ctx, recs); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		if err := st.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		st.Close()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/checkpoint")
}

// recoverAccounts starts an engine of n accounts on st, the way the
// benchmarks that commit records straight into a store begin (the store
// learns the state codec in Recover), and returns its state.
func recoverAccounts(b *testing.B, st *sqlite.Store, n int) any {
	b.Helper()
	initial := accounts(n, 1000).Domain.Accounts
	e, err := engine.New(context.Background(), rschema, rstate{Acc: engine.NewCollection(initial, nil)}, engine.WithStore(st))
	if err != nil {
		b.Fatal(err)
	}
	e.Close()
	_, state := e.Snapshot()
	return state
}

// transferRecord is the record of a bank transfer from one account to
// another as the engine hands it to a store, with its message.
func transferRecord(v uint64, state any, from, to string, keySeq uint64, created time.Time) *engine.Record {
	return &engine.Record{
		Version: v, Process: "transfer", State: state,
		Writes: []engine.Write{{Path: "domain.accounts", Key: from}, {Path: "domain.accounts", Key: to}},
		Messages: []outbox.Message{{ID: outbox.MessageID(0, v, 0), Topic: "transfer.completed", Key: from, KeySeq: keySeq, Version: v,
			Payload: []byte(`{"account":"` + from + `","from":"` + from + `","to":"` + to + `","amount":1}`), CreatedAt: created}},
	}
}

// stepCounter counts, through the fault hook, the transactions of commit
// groups and the checkpoints, for the benchmarks' reports.
type stepCounter struct {
	groups, checkpoints atomic.Int64
}

func (c *stepCounter) hook(s sqlite.Step) error {
	switch s {
	case sqlite.BeforeWrite:
		c.groups.Add(1)
	case sqlite.CheckpointBeforeSync:
		c.checkpoints.Add(1)
	}
	return nil
}

func (c *stepCounter) reset() { c.groups.Store(0); c.checkpoints.Store(0) }

// report reports the commits per group and the checkpoints written while
// the benchmark ran.
func (c *stepCounter) report(b *testing.B) {
	if g := c.groups.Load(); g > 0 {
		b.ReportMetric(float64(b.N)/float64(g), "commits/group")
	}
	b.ReportMetric(float64(c.checkpoints.Load()), "checkpoints")
}

// cpuTime returns the CPU time the process used so far, user and system:
// on this shared machine it varies less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStoreCommitCPU measures the store's own work per commit: bank
// transfers as records (two entries, one message), in groups of 1 and 64,
// straight into Store.Commit with synchronous=NORMAL, so that no fsync
// hides the CPU. One op is one record.
func BenchmarkStoreCommitCPU(b *testing.B) {
	for _, group := range []int{1, 64} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			ctx := context.Background()
			st := open(b, filepath.Join(b.TempDir(), "cpu.db"), sqlite.WithSynchronous("NORMAL"), sqlite.WithCheckpointEvery(0))
			const accountsN = 100_000
			state := recoverAccounts(b, st, accountsN)
			created := time.Now()
			v := uint64(1)
			// The records are made before the timer starts.
			recs := make([]*engine.Record, b.N)
			for i := range recs {
				from, to := fmt.Sprintf("acc-%03d", rand.N(accountsN)), fmt.Sprintf("acc-%03d", rand.N(accountsN))
				recs[i] = transferRecord(v, state, from, to, v, created)
				v++
			}
			// The first commit writes the whole state: not timed.
			if err := st.Commit(ctx, recs[:1]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for i := 1; i < len(recs); i += group {
				if err := st.Commit(ctx, recs[i:min(i+group, len(recs))]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
