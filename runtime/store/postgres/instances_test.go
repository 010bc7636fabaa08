package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// Engine B sees engine A's commits: Snapshot within moments of them while
// idle (NOTIFY; the poll is an hour), Sync at once, Watch from the
// history for those before it was called and as they come after, History
// with the values they wrote.
func TestWatchAndHistoryAcrossInstances(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	a := newBank(t, openStore(t, schema), accounts(2, 100))
	b := newBank(t, openStore(t, schema, postgres.WithPollInterval(time.Hour)), accounts(2, 100))
	transfer := func(amount int64) {
		t.Helper()
		if _, err := a.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: amount}); err != nil {
			t.Fatal(err)
		}
	}
	transfer(1)
	transfer(2)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan engine.Commit, 10)
	go func() {
		defer close(seen)
		for c, err := range b.Watch(wctx, 0) {
			if err != nil {
				if wctx.Err() == nil {
					t.Errorf("watch: %v", err)
				}
				return
			}
			seen <- c
		}
	}()
	transfer(3)
	for v := uint64(1); v <= 3; v++ {
		select {
		case c := <-seen:
			if c.Version != v || c.Process != "transfer" || len(c.Writes) != 2 || len(c.MessageIDs) != 1 {
				t.Fatalf("watched %+v, want the transfer of version %d", c, v)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("version %d not watched on the other instance", v)
		}
	}
	// Idle, B follows: no Sync needed.
	deadline := time.Now().Add(10 * time.Second)
	for b.Snapshot().Version() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the idle instance is at version %d, want 3", b.Snapshot().Version())
		}
		time.Sleep(time.Millisecond)
	}
	if got := balances(b); got["acc-000"] != 94 || got["acc-001"] != 106 {
		t.Fatalf("balances on the other instance: %v", got)
	}
	// History on B, with the values each commit left.
	hist, err := b.History(ctx, 2, 3)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history: %+v, %v", hist, err)
	}
	for _, c := range hist {
		for _, v := range c.Values {
			var acc bank.Account
			if err := json.Unmarshal(v.Data, &acc); err != nil || v.Path != "domain.accounts" || acc.ID != v.Key {
				t.Fatalf("version %d value %+v: %v", c.Version, v, err)
			}
		}
	}
	if len(hist[0].Values) != 2 || hist[0].Values[0].Key != "acc-000" {
		t.Fatalf("values of version 2: %+v", hist[0].Values)
	}
	var acc bank.Account
	json.Unmarshal(hist[0].Values[0].Data, &acc)
	if acc.Balance != 97 {
		t.Fatalf("acc-000 at version 2 = %d, want 97 (100-1-2)", acc.Balance)
	}
	// B commits after A: its commit is numbered after A's.
	r, err := b.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 6})
	if err != nil || r.Version != 4 {
		t.Fatalf("deposit on B: version %d, %v", r.Version, err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := balances(a); got["acc-000"] != 100 {
		t.Fatalf("A after Sync: %v", got)
	}
}

// A commit whose COMMIT reply is lost (AfterCommit) is read back: it
// committed, and its caller gets its receipt. A commit whose backend is
// terminated before COMMIT is read back too: it did not commit, its
// caller gets ErrStore, and the engine goes on on a new connection.
func TestUnknownOutcomeIsResolved(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	var step postgres.Step
	armed := false
	db := servicetest.Postgres(t)
	hook := func(s postgres.Step) error {
		if !armed || s != step {
			return nil
		}
		armed = false
		if s == postgres.BeforeCommit {
			// End the backend that holds the transaction, as a crash of
			// the server or a failover would.
			// The group's connection: in a transaction under the head
			// row's lock, or idle, about to send the group in one round
			// trip; not the one that listens. Waits until it ended.
			n, err := terminateIdle(db, schema)
			if err == nil && n != 1 {
				err = fmt.Errorf("%d backends terminated, want the group's", n)
			}
			return err
		}
		return errors.New("connection lost while waiting for COMMIT's reply")
	}
	// A pool of one connection: resolving needs another than the one in
	// doubt.
	dsn := servicetest.WithParam(strings.Replace(testDSN(), "pool_max_conns=3", "pool_max_conns=1", 1), "application_name", schema)
	st, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithFaultHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := newBank(t, st, accounts(2, 100))

	step, armed = postgres.AfterCommit, true
	r, err := eng.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1})
	if err != nil || r.Version != 1 {
		t.Fatalf("deposit whose COMMIT reply was lost: version %d, %v; want version 1", r.Version, err)
	}
	step, armed = postgres.BeforeCommit, true
	_, err = eng.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 10})
	if !errors.Is(err, engine.ErrStore) || armed {
		t.Fatalf("deposit whose backend was terminated: %v, want ErrStore", err)
	}
	r, err = eng.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 100})
	if err != nil || r.Version != 2 {
		t.Fatalf("the next deposit: version %d, %v; want version 2", r.Version, err)
	}
	hist, err := st.History(ctx, 1, 10)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history %+v, %v", hist, err)
	}
	fresh := newBank(t, openStore(t, schema), bank.State{})
	if got := balances(fresh); got["acc-000"] != 201 {
		t.Fatalf("recovered acc-000 = %d, want 201 (100+1+100)", got["acc-000"])
	}
}

// An instance whose LISTEN connection is terminated listens again, and
// follows the other instances' commits without waiting for its poll.
func TestListenReconnects(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	db := servicetest.Postgres(t)
	a := newBank(t, openStore(t, schema), accounts(2, 100))
	st, err := postgres.Open(ctx, servicetest.WithParam(testDSN(), "application_name", schema), postgres.WithSchema(schema), postgres.WithPollInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := newBank(t, st, accounts(2, 100))
	wait := func(v uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for b.Snapshot().Version() != v {
			if time.Now().After(deadline) {
				t.Fatalf("the idle instance is at version %d, want %d", b.Snapshot().Version(), v)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for v := uint64(1); v <= 3; v++ {
		if v > 1 {
			// The listener reconnects after the previous termination, and
			// the idle instance may have caught up (by its catch-up read)
			// before it listens again: wait until it does.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var n int
				if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity
					WHERE application_name = $1 AND query LIKE 'LISTEN%'`, schema).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d LISTEN connections, want 1", n)
				}
				time.Sleep(time.Millisecond)
			}
			res, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = $1 AND query LIKE 'LISTEN%'`, schema)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("%d LISTEN connections terminated, want 1", n)
			}
		}
		if _, err := a.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil {
			t.Fatal(err)
		}
		wait(v)
	}
}

// A store written by a contract whose state changed in a breaking way is
// refused, with the path and the reason; so is one whose values another
// codec encoded. (TestContractEvolution has the compatible changes.)
func TestDrift(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema)
	eng := newBank(t, st, accounts(1, 1))
	if _, err := eng.Deposit(ctx, bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	db := servicetest.Postgres(t)
	if _, err := db.Exec(`UPDATE ` + schema + `.theus_fields SET type = 'collection[int64]Account{id string, owner string, balance int32}'`); err != nil {
		t.Fatal(err)
	}
	_, err := bank.NewEngine(ctx, bank.State{}, bank.Bank{}, engine.WithStore(openStore(t, schema)))
	var de *postgres.DriftError
	if !errors.As(err, &de) || len(de.Paths) != 1 ||
		de.Paths[0] != "domain.accounts: key type changed (collection[int64]Account -> collection[string]Account)" {
		t.Fatalf("err = %v, want a DriftError on domain.accounts", err)
	}
	if _, err := db.Exec(`UPDATE ` + schema + `.theus_fields SET type = 'collection[string]Account{id string, owner string, balance string}'`); err != nil {
		t.Fatal(err)
	}
	_, err = bank.NewEngine(ctx, bank.State{}, bank.Bank{}, engine.WithStore(openStore(t, schema)))
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "domain.accounts[*].balance: type changed (string -> int64)") {
		t.Fatalf("err = %v, want a DriftError on domain.accounts[*].balance", err)
	}
	if _, err := db.Exec(`UPDATE `+schema+`.theus_fields SET path = 'domain.accounts', type = $1`, fieldType(t)); err != nil {
		t.Fatal(err)
	}
	_, err = bank.NewEngine(ctx, bank.State{}, bank.Bank{}, engine.WithStore(openStore(t, schema)), engine.WithCodec(otherCodec{}))
	if err == nil || !strings.Contains(err.Error(), `encoded as "json"`) {
		t.Fatalf("err = %v, want a codec mismatch", err)
	}
	// Back as it was, the store opens.
	if v := newBank(t, openStore(t, schema), bank.State{}).Snapshot().Version(); v != 1 {
		t.Fatalf("version %d, want 1", v)
	}
}

// fieldType is the fingerprint of the bank's accounts.
func fieldType(t *testing.T) string {
	return "collection[string]Account{id string, owner string, balance int64}"
}

type otherCodec struct{}

func (otherCodec) Marshal(any) ([]byte, error) { return nil, errors.New("unused") }
func (otherCodec) Unmarshal([]byte, any) error { return errors.New("unused") }

// terminateIdle ends the idle backends (in a transaction or not, LISTEN
// aside) whose application_name is app, waiting until each is gone, and
// returns how many it ended. The backends are chosen first, in a CTE of
// their own: with pg_terminate_backend among a WHERE's conditions,
// PostgreSQL may call it before it filters by application_name, and end
// other tests' connections.
func terminateIdle(db *sql.DB, app string) (int, error) {
	var n int
	err := db.QueryRow(`WITH victims AS MATERIALIZED (SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND state IN ('idle', 'idle in transaction') AND query NOT LIKE 'LISTEN%')
		SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM victims`, app).Scan(&n)
	return n, err
}

// terminateIdle ends the idle backends of its application only: an idle
// connection of another application, as another test's is, survives it.
func TestTerminateIdleEndsOnlyItsApplication(t *testing.T) {
	ctx := context.Background()
	db := servicetest.Postgres(t)
	app := freshSchema(t)
	open := func(name string) *pgx.Conn {
		c, err := pgx.Connect(ctx, servicetest.WithParam(serverDSN(), "application_name", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	victim, bystander := open(app), open(app+"_other")
	n, err := terminateIdle(db, app)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d backends ended, want 1", n)
	}
	if err := victim.Ping(ctx); err == nil {
		t.Error("the backend of the application is still there")
	}
	if err := bystander.Ping(ctx); err != nil {
		t.Errorf("another application's idle backend was ended: %v", err)
	}
}
