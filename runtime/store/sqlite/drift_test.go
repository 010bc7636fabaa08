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

func TestSchemaDrift(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(3, 50))
	if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: "acc-001", Amount: 5}); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	st.Close()

	// A path whose type changed, and a path that disappeared.
	for name, tc := range map[string]struct {
		sch  *engine.Schema[later]
		want string
	}{
		"changed type": {
			laterSchema(engine.CollectionField("domain.accounts", "collection[string]Account{id string, balance int64}",
				func(s *later) *engine.Collection[string, bank.Account] { return &s.Accounts })),
			"domain.accounts is stored as " + accountsType + " but the contract declares collection[string]Account{id string, balance int64}",
		},
		"collection became a field": {
			laterSchema(engine.ValueField("domain.accounts", accountsType, func(s *later) *int64 { return &s.Limit })),
			"domain.accounts changed between collection and plain field",
		},
		"removed path": {
			laterSchema(extraField),
			"domain.accounts is stored but the contract no longer declares it",
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := openLater(t, path, tc.sch)
			var de *sqlite.DriftError
			if !errors.As(err, &de) || len(de.Paths) != 1 || de.Paths[0] != tc.want || !strings.Contains(err.Error(), "domain.accounts") {
				t.Fatalf("err = %v, want a DriftError: %s", err, tc.want)
			}
		})
	}

	// A new path is fine: it starts at its zero value, the rest is kept.
	e, closeLater, err := openLater(t, path, laterSchema(accountsField, extraField))
	if err != nil {
		t.Fatal(err)
	}
	v, s := e.Snapshot()
	if a, ok := s.Accounts.Get("acc-001"); v != 1 || !ok || a.Balance != 55 || s.Extra != nil {
		t.Fatalf("version %d, acc-001 %+v, extra %v", v, a, s.Extra)
	}
	closeLater()
	// ... and is recorded, so a later change of its type is drift too.
	_, _, err = openLater(t, path, laterSchema(accountsField,
		engine.ValueField("domain.extra", "[]int64", func(s *later) *int64 { return &s.Limit })))
	if err == nil || !strings.Contains(err.Error(), "domain.extra is stored as []string but the contract declares []int64") {
		t.Fatalf("err = %v, want drift on domain.extra", err)
	}
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
	closeAll()
	// The full form is recorded: a changed type is drift again, and so is
	// another type's name.
	for _, typ := range []string{
		"map[string]example.com/money.Amount{units int64}",
		"map[string]example.com/money.Price{units int64, currency example.com/money.Code(string)}",
	} {
		if _, _, err := openLater(t, path, schema(typ)); err == nil || !strings.Contains(err.Error(), "stored as "+full) {
			t.Fatalf("%s after the upgrade: %v, want drift from the full form", typ, err)
		}
	}
}

// setExtra is a Change that sets domain.extra of a later state.
type setExtra []string

func (c setExtra) Record(tx *engine.Tx)     { tx.Write(0) }
func (c setExtra) Apply(s *later, _ uint64) { s.Extra = c }
