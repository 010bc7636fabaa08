package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// The migration test's child (this test binary, re-executed) opens the
// store with the new contract and its migrations; it is killed with
// SIGKILL in the middle of the migration (envMigrateKill: "convert" at the
// 50th converted entry, or "sync" with everything written, before
// COMMIT), or migrates and exits.
const (
	envMigrateDB   = "THEUS_MIGRATE_DB"
	envMigrateKill = "THEUS_MIGRATE_KILL"
	migrateEntries = 100
)

type acctV1 struct {
	Balance int32 `json:"balance"`
}

type acctV2 struct {
	Balance int64 `json:"balance"`
}

type migState[A any, T any] struct {
	Accts engine.Collection[string, A]
	Total T
}

func migSchema[A, T any](acct, total string) *engine.Schema[migState[A, T]] {
	type S = migState[A, T]
	return &engine.Schema[S]{
		Paths: []string{"domain.total"},
		Clone: func(s *S) S { return *s },
		State: []engine.StateField[S]{
			engine.CollectionField("domain.accts", "collection[string]"+acct, func(s *S) *engine.Collection[string, A] { return &s.Accts }),
			engine.ValueField("domain.total", total, func(s *S) *T { return &s.Total }),
		},
	}
}

var (
	schemaV1 = migSchema[acctV1, int32]("Acct{balance int32}", "int32")
	schemaV2 = migSchema[acctV2, int64]("Acct{balance int64}", "int64")
)

// v2Migrations double every balance and the total, so that a migration
// applied twice would show.
func v2Migrations(onEntry func()) engine.Option {
	return engine.WithMigrations(
		engine.Migrate("domain.accts", func(a acctV1) (acctV2, error) {
			onEntry()
			return acctV2{Balance: 2 * int64(a.Balance)}, nil
		}),
		engine.Migrate("domain.total", func(t int32) (int64, error) { return 2 * int64(t), nil }),
	)
}

type setTotal int32

func (c setTotal) Record(tx *engine.Tx)                       { tx.Write(0) }
func (c setTotal) Apply(s *migState[acctV1, int32], _ uint64) { s.Total = int32(c) }
func killSelf() error                                         { syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }
func noKill(sqlite.Step) error                                { return nil }
func startV2(ctx context.Context, st engine.Store, opt engine.Option) (*engine.Engine[migState[acctV2, int64]], error) {
	return engine.New(ctx, schemaV2, migState[acctV2, int64]{}, engine.WithStore(st), opt)
}

// migrateChild runs the child when the test binary is started as one.
func migrateChild() bool {
	path := os.Getenv(envMigrateDB)
	if path == "" {
		return false
	}
	exitChild(func() error {
		ctx := context.Background()
		kill := os.Getenv(envMigrateKill)
		hook := noKill
		if kill == "sync" {
			hook = func(s sqlite.Step) error {
				if s == sqlite.MigrateBeforeSync {
					return killSelf()
				}
				return nil
			}
		}
		st, err := sqlite.Open(ctx, path, sqlite.WithFaultHook(hook))
		if err != nil {
			return err
		}
		var n atomic.Int32
		e, err := startV2(ctx, st, v2Migrations(func() {
			if n.Add(1) == migrateEntries/2 && kill == "convert" {
				killSelf()
			}
		}))
		if err != nil {
			return err
		}
		e.Close()
		return st.Close()
	}())
	return true
}

// A migration killed in the middle leaves the data as it was, and runs
// once in effect when the store is opened again: every value converted
// once, nothing half-migrated.
func TestMigrationKilledInTheMiddle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	// The data of the first contract: entries in the snapshot, the total
	// in the log.
	st := open(t, path)
	accts := map[string]acctV1{}
	for i := range migrateEntries {
		accts[fmt.Sprintf("a%03d", i)] = acctV1{Balance: int32(i)}
	}
	e1, err := engine.New(ctx, schemaV1, migState[acctV1, int32]{Accts: engine.NewCollection(accts, nil)}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e1.CompareAndSwap(ctx, 0, setTotal(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e1.CompareAndSwap(ctx, 1, setTotal(4950)); err != nil {
		t.Fatal(err)
	}
	e1.Close()
	st.Close()

	for _, kill := range []string{"convert", "sync"} {
		err := runMigrateChild(t, path, kill)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child killed at %s: %v, want killed by SIGKILL", kill, err)
		}
		// Nothing half-migrated: the first contract still opens the data,
		// every value as it was.
		st := open(t, path)
		e, err := engine.New(ctx, schemaV1, migState[acctV1, int32]{}, engine.WithStore(st))
		if err != nil {
			t.Fatalf("after a kill at %s: %v", kill, err)
		}
		_, s := e.Snapshot()
		for k, v := range accts {
			if a, ok := engine.CollectionGet(s.Accts, k); !ok || *a != v {
				t.Fatalf("after a kill at %s: %s = %v, want %v", kill, k, a, v)
			}
		}
		if s.Total != 4950 {
			t.Fatalf("after a kill at %s: total %d", kill, s.Total)
		}
		e.Close()
		st.Close()
	}
	if err := runMigrateChild(t, path, ""); err != nil {
		t.Fatalf("child: %v", err)
	}

	// Migrated once: values doubled, not quadrupled; the migration does
	// not run again; the first contract is now refused.
	st = open(t, path)
	e2, err := startV2(ctx, st, v2Migrations(func() { t.Error("the migration ran again") }))
	if err != nil {
		t.Fatal(err)
	}
	v, s := e2.Snapshot()
	if v != 2 || s.Total != 9900 || engine.CollectionLen(s.Accts) != migrateEntries {
		t.Fatalf("version %d, total %d, %d entries", v, s.Total, engine.CollectionLen(s.Accts))
	}
	for k, a := range accts {
		if got, ok := engine.CollectionGet(s.Accts, k); !ok || got.Balance != 2*int64(a.Balance) {
			t.Fatalf("%s = %v, want %d", k, got, 2*a.Balance)
		}
	}
	e2.Close()
	st.Close()
	st = open(t, path)
	_, err = engine.New(ctx, schemaV1, migState[acctV1, int32]{}, engine.WithStore(st))
	if err == nil || !strings.Contains(err.Error(), "domain.total: narrowed (int64 -> int32)") {
		t.Fatalf("the first contract after the migration: %v", err)
	}
}

func runMigrateChild(t *testing.T, path, kill string) error {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envMigrateDB+"="+path, envMigrateKill+"="+kill)
	out, err := cmd.CombinedOutput()
	if len(out) > 0 {
		t.Logf("child (kill %q): %s", kill, out)
	}
	return err
}
