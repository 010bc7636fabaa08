package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testDSN is the database of the tests, with small pools: the server is
// shared, and every test opens several stores.
func testDSN() string {
	dsn := serverDSN()
	if strings.Contains(dsn, "pool_max_conns") {
		return dsn
	}
	return servicetest.WithParam(dsn, "pool_max_conns", "3")
}

// serverDSN is THEUS_TEST_POSTGRES, else the local server's database
// test: for a connection of its own (testDSN is a pool's).
func serverDSN() string {
	return servicetest.Addr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// testDBs holds the database/sql handle of each test (freshSchema).
var testDBs sync.Map // testing.TB -> *sql.DB

// freshSchema returns the name of a schema of the test's own, dropped
// when the test ends; it skips (or fails, under THEUS_REQUIRE_SERVICES=1)
// when PostgreSQL is unreachable.
func freshSchema(t testing.TB) string {
	t.Helper()
	db, ok := testDBs.Load(t)
	if !ok {
		db = servicetest.Postgres(t)
		testDBs.Store(t, db)
		t.Cleanup(func() { testDBs.Delete(t) })
	}
	var b [6]byte
	rand.Read(b[:])
	name := "theus_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := db.(*sql.DB).Exec(`DROP SCHEMA IF EXISTS ` + name + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openStore opens a store on schema, closed when the test ends.
func openStore(t testing.TB, schema string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), testDSN(), append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newBank(t testing.TB, st engine.Store, initial bank.State) *bank.Engine {
	t.Helper()
	eng, err := bank.NewEngine(context.Background(), initial, bank.Bank{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func accounts(n int, balance int64) bank.State {
	s := bank.State{Domain: bank.DomainState{Accounts: map[string]bank.Account{}}}
	for i := range n {
		id := fmt.Sprintf("acc-%03d", i)
		s.Domain.Accounts[id] = bank.Account{ID: id, Owner: "owner " + id, Balance: balance}
	}
	return s
}

func balances(eng *bank.Engine) map[string]int64 {
	out := map[string]int64{}
	for id, v := range eng.Snapshot().Accounts().All() {
		out[id] = v.Balance()
	}
	return out
}

// A store recovers what its engine committed: the state at the last
// version, initial values no commit wrote included, and the KeySeqs, which
// go on from where they were.
func TestRecover(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema)
	eng := newBank(t, st, accounts(3, 100))
	for i := range 5 {
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: "acc-new", Owner: "n", Initial: 7}); err != nil {
		t.Fatal(err)
	}
	want := balances(eng)
	eng.Close()
	st.Close()

	st2 := openStore(t, schema)
	eng2 := newBank(t, st2, bank.State{})
	if v := eng2.Snapshot().Version(); v != 6 {
		t.Fatalf("recovered version %d, want 6", v)
	}
	if got := balances(eng2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	r, err := eng2.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-002", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := st2.Undelivered(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	last := msgs[len(msgs)-1]
	if last.ID != r.MessageIDs[0] || last.Key != "acc-000" || last.KeySeq != 6 || last.Version != 7 {
		t.Fatalf("last message %+v, want the 6th of acc-000 at version 7 (receipt %v)", last, r.MessageIDs)
	}
	if inc := last.Incarnation(); inc == 0 || inc != st2.Incarnation() {
		t.Fatalf("message incarnation %d, store's %d", inc, st2.Incarnation())
	}
}

// A second engine on one Store is refused: each engine opens its own.
func TestOneEnginePerStore(t *testing.T) {
	st := openStore(t, freshSchema(t))
	newBank(t, st, accounts(1, 1))
	_, err := bank.NewEngine(context.Background(), accounts(1, 1), bank.Bank{}, engine.WithStore(st))
	if !errors.Is(err, postgres.ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
}

// Schema names are checked before they reach SQL.
func TestSchemaNameIsValidated(t *testing.T) {
	for _, name := range []string{"", "Theus", "1abc", "a-b", `x"; DROP TABLE y; --`, "a.b", strings.Repeat("a", 64)} {
		_, err := postgres.Open(context.Background(), testDSN(), postgres.WithSchema(name))
		if err == nil || !strings.Contains(err.Error(), "schema name") {
			t.Errorf("WithSchema(%q): err = %v, want a refusal of the name", name, err)
		}
	}
}

// The DSN's password never shows in an error, whatever the form of the
// DSN and whatever fails.
func TestPasswordNotInErrors(t *testing.T) {
	const pw = "s3cr3t-PassW0rd"
	const escaped = "s3cr3t%2FPa@ss" // s3cr3t/Pa@ss in a URL
	for _, dsn := range []string{
		"postgres://theus:" + escaped + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://theus:" + pw + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=theus password=" + pw + " dbname=db sslmode=disable connect_timeout=2",
		"postgres://theus:" + pw + "@127.0.0.1:1/db?sslmode=bogus",
		"host=127.0.0.1 port=1 user=theus password=" + pw + " dbname=db sslmode=bogus",
		"postgres://theus:" + pw + "@[::1/db",
	} {
		_, err := postgres.Open(context.Background(), dsn)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), pw) || strings.Contains(e.Error(), "s3cr3t") {
				t.Errorf("an error of Open shows the password: %v", e)
			}
		}
	}
}

// A layout this build does not know is refused, and the store is left
// as it was.
func TestUnknownLayoutIsRefused(t *testing.T) {
	schema := freshSchema(t)
	st := openStore(t, schema)
	st.Close()
	db := servicetest.Postgres(t)
	if _, err := db.Exec(`UPDATE ` + schema + `.theus_meta SET value = '99' WHERE name = 'layout'`); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(context.Background(), testDSN(), postgres.WithSchema(schema))
	if err == nil || !strings.Contains(err.Error(), "layout is version 99; this build reads version 5") {
		t.Fatalf("err = %v, want a refusal of layout 99", err)
	}
}

// Open is idempotent, and instances opening at once create the tables
// once, with one incarnation.
func TestConcurrentOpen(t *testing.T) {
	schema := freshSchema(t)
	incs := make(chan uint64, 4)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			st, err := postgres.Open(context.Background(), testDSN(), postgres.WithSchema(schema))
			if err != nil {
				errs <- err
				return
			}
			incs <- st.Incarnation()
			st.Close()
		}()
	}
	var first uint64
	for range 4 {
		select {
		case err := <-errs:
			t.Fatal(err)
		case inc := <-incs:
			if first == 0 {
				first = inc
			}
			if inc != first || inc == 0 {
				t.Fatalf("incarnations %d and %d", first, inc)
			}
		}
	}
}

var _ outbox.Store = (*postgres.Store)(nil)

// redact takes every form of the password out of an error's text and
// unwraps only to errors that do not show it.
func TestRedact(t *testing.T) {
	base := errors.New("dial postgres://u:p%40ss@h/db failed")
	err := postgres.Redact(fmt.Errorf("open: %w", fmt.Errorf("connect with p@ss: %w", base)), "p@ss", "p%40ss")
	if got := err.Error(); got != "open: connect with xxxxx: dial postgres://u:xxxxx@h/db failed" {
		t.Fatalf("redacted: %q", got)
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), "p@ss") || strings.Contains(e.Error(), "p%40ss") {
			t.Fatalf("the chain shows the password: %v", e)
		}
	}
	plain := errors.New("no secret here")
	if postgres.Redact(plain, "p@ss") != plain {
		t.Fatal("an error without the password is not kept as is")
	}
}

func TestRedactDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u:s3cret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                             "postgres://u@h/db",
		"host=h user=u password=s3cret dbname=db":       "host=h user=u password=xxxxx dbname=db",
		"not a dsn": "postgres://…",
	} {
		if got := postgres.RedactDSN(dsn); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}
