package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/evolvetest"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// later is the bank's state as a later contract might declare it.
type later struct {
	Accounts engine.Collection[string, bank.Account]
	Extra    []string
	Limit    int64
}

const accountsType = "collection[string]Account{id string, owner string, balance int64}"

func laterSchema(fields ...engine.StateField[later]) *engine.Schema[later] {
	return &engine.Schema[later]{Clone: func(s *later) later { return *s }, State: fields}
}

var (
	accountsField = engine.CollectionField("domain.accounts", accountsType,
		func(s *later) *engine.Collection[string, bank.Account] { return &s.Accounts })
	extraField = engine.ValueField("domain.extra", "[]string", func(s *later) *[]string { return &s.Extra })
)

// openLater starts an engine of sch on the store at path; closing it also
// closes its store, so that the next engine may take the file.
func openLater(t *testing.T, path string, sch *engine.Schema[later]) (e *engine.Engine[later], closeAll func(), err error) {
	t.Helper()
	st := open(t, path)
	e, err = engine.New(context.Background(), sch, later{}, engine.WithStore(st))
	if err != nil {
		return nil, nil, err
	}
	closeAll = func() {
		e.Close()
		st.Close()
	}
	t.Cleanup(closeAll)
	return e, closeAll, nil
}

// The table of contract changes shared by the durable stores: compatible
// ones recover, breaking ones are refused with the path and the reason.
func TestContractEvolution(t *testing.T) {
	evolvetest.Run(t, func(t *testing.T) evolvetest.Opener {
		path := filepath.Join(t.TempDir(), "evolve.db")
		return func(t *testing.T) (engine.Store, func()) {
			st := open(t, path)
			return st, func() { st.Close() }
		}
	})
}

// A breaking change is a DriftError listing every path, sorted.
func TestDriftError(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(3, 50))
	if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: "acc-001", Amount: 5}); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	st.Close()

	_, _, err := openLater(t, path, laterSchema(engine.CollectionField("domain.accounts", "collection[int64]Account{id int64, owner string, balance int32}",
		func(s *later) *engine.Collection[string, bank.Account] { return &s.Accounts })))
	var de *sqlite.DriftError
	want := []string{
		"domain.accounts: key type changed (collection[string]Account -> collection[int64]Account)",
	}
	if !errors.As(err, &de) || strings.Join(de.Paths, "\n") != strings.Join(want, "\n") {
		t.Fatalf("err = %v, want a DriftError: %q", err, want)
	}
	_, _, err = openLater(t, path, laterSchema(engine.CollectionField("domain.accounts", "collection[string]Account{id int64, owner string, balance int32}",
		func(s *later) *engine.Collection[string, bank.Account] { return &s.Accounts })))
	want = []string{
		"domain.accounts[*].balance: narrowed (int64 -> int32)",
		"domain.accounts[*].id: type changed (string -> int64)",
	}
	if !errors.As(err, &de) || strings.Join(de.Paths, "\n") != strings.Join(want, "\n") {
		t.Fatalf("err = %v, want a DriftError: %q", err, want)
	}

	// A new path is fine: it starts at its zero value, the rest is kept.
	e, closeLater, err := openLater(t, path, laterSchema(accountsField, extraField))
	if err != nil {
		t.Fatal(err)
	}
	v, s := e.Snapshot()
	if a, ok := engine.CollectionGet(s.Accounts, "acc-001"); v != 1 || !ok || a.Balance != 55 || s.Extra != nil {
		t.Fatalf("version %d, acc-001 %+v, extra %v", v, a, s.Extra)
	}
	closeLater()
}

// Values written with one codec are not read with another.
func TestCodecChangeIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(1, 1))
	if _, err := eng.Deposit(context.Background(), bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	st.Close()
	st2 := open(t, path)
	_, err := bank.NewEngine(context.Background(), bank.State{}, bank.Bank{}, engine.WithStore(st2), engine.WithCodec(otherCodec{}))
	if err == nil || !strings.Contains(err.Error(), "encoded as json") {
		t.Fatalf("err = %v, want a codec mismatch", err)
	}
	// The refused engine does not keep the file: with st2 still open, an
	// engine with the right codec takes it.
	eng3 := newBank(t, open(t, path), bank.State{})
	if v := eng3.Snapshot().Version(); v != 1 {
		t.Fatalf("recovered version %d, want 1", v)
	}
}

type otherCodec struct{}

func (otherCodec) Marshal(any) ([]byte, error) { return nil, errors.New("unused") }
func (otherCodec) Unmarshal([]byte, any) error { return errors.New("unused") }

// A store written before types of other packages were fingerprinted by
// their structure recorded only their name ("example.com/money.Amount"):
// it opens with the structural fingerprint of the same type, which it
// records from then on, so that a later change of the type is drift.
func TestLegacyImportedFingerprint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	const (
		full   = "map[string]example.com/money.Amount{units int64, currency example.com/money.Code(string)}"
		legacy = "map[string]example.com/money.Amount"
	)
	field := func(typ string) engine.StateField[later] {
		return engine.ValueField("domain.extra", typ, func(s *later) *[]string { return &s.Extra })
	}
	schema := func(typ string) *engine.Schema[later] {
		s := laterSchema(accountsField, field(typ))
		s.Paths = []string{"domain.extra"}
		return s
	}
	e, closeAll, err := openLater(t, path, schema(full))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompareAndSwap(ctx, 0, setExtra{"x"}); err != nil {
		t.Fatal(err)
	}
	closeAll()
	// What a store of the previous fingerprint holds.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE theus_fields SET type = ? WHERE path = 'domain.extra'`, legacy); err != nil {
		t.Fatal(err)
	}
	db.Close()

	e, closeAll, err = openLater(t, path, schema(full))
	if err != nil {
		t.Fatalf("a store with the name-only fingerprint of the same type: %v", err)
	}
	if _, s := e.Snapshot(); len(s.Extra) != 1 || s.Extra[0] != "x" {
		t.Fatalf("recovered %v", s.Extra)
	}
	// The full form is recorded with the next commit: a breaking change of
	// the type is drift again.
	if _, err := e.CompareAndSwap(ctx, 1, setExtra{"y"}); err != nil {
		t.Fatal(err)
	}
	closeAll()
	_, _, err = openLater(t, path, schema("map[string]example.com/money.Amount{units string, currency example.com/money.Code(string)}"))
	if err == nil || !strings.Contains(err.Error(), "domain.extra[*].units: type changed (int64 -> string)") {
		t.Fatalf("after the upgrade: %v, want drift from the full form", err)
	}
}

// setExtra is a Change that sets domain.extra of a later state.
type setExtra []string

func (c setExtra) Record(tx *engine.Tx)     { tx.Write(0) }
func (c setExtra) Apply(s *later, _ uint64) { s.Extra = c }
