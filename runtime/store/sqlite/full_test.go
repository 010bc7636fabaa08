package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// cannot ends a test that needs to do what the machine does not let it:
// a loud skip, or a failure under THEUS_REQUIRE_SERVICES=1 or CI=true.
func cannot(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("THEUS_REQUIRE_SERVICES") == "1" || os.Getenv("CI") == "true" {
		t.Fatalf("cannot %s: %v", what, err)
	}
	t.Skipf("SKIPPING: cannot %s: %v; THEUS_REQUIRE_SERVICES=1 or CI=true fails instead", what, err)
}

// fullCode is an error that reads as SQLite's SQLITE_FULL.
type fullCode struct{}

func (fullCode) Error() string { return "database or disk is full (13)" }
func (fullCode) Code() int     { return 13 }

// A COMMIT that fails in a way that may leave the group on disk makes the
// store refuse every write, with an error that says to restart, and the
// restart finds what the disk holds: here the group, committed though
// reported failed (as after an I/O error while syncing). A failure
// reported as SQLITE_FULL is trusted only once the file, read again, does
// not hold the group.
func TestCommitInDoubtRefusesWrites(t *testing.T) {
	for name, injected := range map[string]error{
		"I/O error":         errors.New("disk I/O error (1034)"),
		"full, but on disk": fullCode{},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "bank.db")
			var fail atomic.Bool
			st := open(t, path, sqlite.WithFaultHook(func(s sqlite.Step) error {
				if s == sqlite.AfterSync && fail.Load() {
					return injected
				}
				return nil
			}))
			eng := newBank(t, st, accounts(2, 100))
			transfer := func() error {
				_, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
				return err
			}
			if err := transfer(); err != nil {
				t.Fatal(err)
			}
			refused := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), "restart the process") || !errors.Is(err, injected) {
					t.Fatalf("%s: %v, want the COMMIT's error and an instruction to restart", what, err)
				}
			}
			fail.Store(true)
			err := transfer()
			refused("the commit in doubt", err)
			if !errors.Is(err, engine.ErrStore) {
				t.Fatalf("the commit in doubt: %v, want engine.ErrStore", err)
			}
			fail.Store(false)
			err = transfer()
			refused("the next commit", err)
			refused("a checkpoint", st.Checkpoint(ctx))
			eng.Close()
			st.Close()

			eng2 := newBank(t, open(t, path), bank.State{})
			if v, b := eng2.Snapshot().Version(), balances(eng2)["acc-001"].Balance; v != 2 || b != 102 {
				t.Fatalf("after the restart: version %d, acc-001 at %d; want 2 and 102 (the group in doubt was on disk)", v, b)
			}
		})
	}
}
