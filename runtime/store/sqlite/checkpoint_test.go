package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// randomBankOps runs n random operations on *engp: transfers, deposits,
// new accounts and deletions (through CompareAndSwap), with what fails by
// rule or domain error skipped; and calls between(i) before each, which
// may replace the engine.
func randomBankOps(t *testing.T, r *rand.Rand, engp **bank.Engine, n int, between func(i int)) {
	t.Helper()
	ctx := context.Background()
	acc := func() string { return fmt.Sprintf("acc-%03d", r.IntN(12)) }
	for i := range n {
		between(i)
		eng := *engp
		var err error
		switch k := r.IntN(10); {
		case k < 6:
			_, err = eng.Transfer(ctx, bank.TransferArgs{From: acc(), To: acc(), Amount: r.Int64N(30) + 1})
		case k < 8:
			_, err = eng.Deposit(ctx, bank.DepositArgs{ID: acc(), Amount: r.Int64N(30) + 1})
		case k < 9:
			_, err = eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: acc(), Owner: "o", Initial: r.Int64N(100)})
		default:
			var p bank.Patch
			p.DeleteAccounts(acc())
			_, err = eng.CompareAndSwap(ctx, eng.Snapshot().Version(), p)
		}
		var de engine.DomainError
		if err != nil && !errors.Is(err, engine.ErrRuleViolation) && !errors.As(err, &de) {
			t.Fatalf("operation %d: %v", i, err)
		}
	}
}

// logRows counts the rows of the commit log after the checkpoint in
// effect (those recovery replays), read from the file; the rows before it
// are kept as history.
func logRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM theus_log
		WHERE version > (SELECT value FROM theus_meta WHERE name = 'checkpoint')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// restartBank closes eng and st, opens the file at path again with opts
// and checks that the engine recovers the state and version it had.
func restartBank(t *testing.T, path string, st *sqlite.Store, eng *bank.Engine, opts ...sqlite.Option) (*sqlite.Store, *bank.Engine) {
	t.Helper()
	want, version := balances(eng), eng.Snapshot().Version()
	eng.Close()
	st.Close()
	st = open(t, path, opts...)
	eng = newBank(t, st, bank.State{})
	if got, v := balances(eng), eng.Snapshot().Version(); v != version || !reflect.DeepEqual(got, want) {
		t.Fatalf("recovered version %d %v, want version %d %v", v, got, version, want)
	}
	return st, eng
}

// Random histories with checkpoints and restarts at random points: every
// restart recovers the state and version the engine had, from a snapshot,
// a log, or both, including deleted and added entries.
func TestCheckpointAndRestartAtRandomPoints(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 4))
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "bank.db")
			st := open(t, path, sqlite.WithCheckpointEvery(0))
			eng := newBank(t, st, accounts(8, 100))
			checkpoints, restarts := 0, 0
			randomBankOps(t, r, &eng, 300, func(int) {
				switch r.IntN(25) {
				case 0:
					if err := st.Checkpoint(ctx); err != nil {
						t.Fatal(err)
					}
					if n := logRows(t, path); n != 0 {
						t.Fatalf("%d log rows after a checkpoint", n)
					}
					checkpoints++
				case 1:
					st, eng = restartBank(t, path, st, eng, sqlite.WithCheckpointEvery(0))
					restarts++
				}
			})
			t.Logf("%d checkpoints, %d restarts, version %d", checkpoints, restarts, eng.Snapshot().Version())
		})
	}
}

// checkpointSignal reports every checkpoint that took effect on a
// channel, and fails the ones fail says to.
type checkpointSignal struct {
	done chan struct{}
	fail atomic.Pointer[sqlite.Step]
}

func newCheckpointSignal() *checkpointSignal {
	return &checkpointSignal{done: make(chan struct{}, 1000)}
}

var errInjected = errors.New("injected")

func (c *checkpointSignal) hook(s sqlite.Step) error {
	if f := c.fail.Load(); f != nil && *f == s {
		return errInjected
	}
	if s == sqlite.CheckpointBeforeSync {
		c.done <- struct{}{}
	}
	return nil
}

// wait waits for the next checkpoint, for a minute at most.
func (c *checkpointSignal) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("no checkpoint in a minute")
	}
}

// The store checkpoints by itself once the log holds WithCheckpointEvery
// commits and at least the snapshot's size, while commits go on; the
// state survives a restart after background checkpoints.
func TestBackgroundCheckpoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	sig := newCheckpointSignal()
	st := open(t, path, sqlite.WithCheckpointEvery(20), sqlite.WithFaultHook(sig.hook))
	eng := newBank(t, st, accounts(10, 1000))
	// 19 commits: not enough.
	for range 19 {
		if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: "acc-001", Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(sig.done); n != 0 {
		t.Fatalf("%d checkpoints after 19 commits", n)
	}
	r := rand.New(rand.NewPCG(1, 2))
	randomBankOps(t, r, &eng, 300, func(int) {})
	sig.wait(t)
	cp := st.WaitCheckpoint()
	version := eng.Snapshot().Version()
	if n := logRows(t, path); cp < 20 || n >= int(version-cp)+1 {
		t.Fatalf("checkpoint at version %d, %d log rows for %d commits", cp, n, version)
	}
	restartBank(t, path, st, eng)
}

// A checkpoint that fails, at either step, returns the error and leaves
// the previous checkpoint and the log in effect: the state is recovered
// the same, and the next checkpoint succeeds.
func TestFailedCheckpointKeepsThePreviousOne(t *testing.T) {
	for _, step := range []sqlite.Step{sqlite.CheckpointBeforeWrite, sqlite.CheckpointBeforeSync} {
		t.Run(step.String(), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "bank.db")
			sig := newCheckpointSignal()
			st := open(t, path, sqlite.WithCheckpointEvery(0), sqlite.WithFaultHook(sig.hook))
			eng := newBank(t, st, accounts(10, 1000))
			r := rand.New(rand.NewPCG(3, 4))
			randomBankOps(t, r, &eng, 50, func(int) {})
			if err := st.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			randomBankOps(t, r, &eng, 50, func(int) {})
			rows := logRows(t, path)
			sig.fail.Store(&step)
			if err := st.Checkpoint(ctx); !errors.Is(err, errInjected) {
				t.Fatalf("Checkpoint = %v, want the injected error", err)
			}
			if n := logRows(t, path); n != rows || rows == 0 {
				t.Fatalf("%d log rows after a failed checkpoint, want %d", n, rows)
			}
			// Commits go on.
			randomBankOps(t, r, &eng, 10, func(int) {})
			st, _ = restartBank(t, path, st, eng, sqlite.WithCheckpointEvery(0))
			if err := st.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			if n := logRows(t, path); n != 0 {
				t.Fatalf("%d log rows after a checkpoint", n)
			}
		})
	}
}
