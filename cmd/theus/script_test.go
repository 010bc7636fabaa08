package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"theus": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

const pgDefault = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// TestScripts runs the scripts in testdata/script: what an operator types
// and what they see. Each script's store is made by the seed command
// (SQLite) or seedpg (PostgreSQL, in a schema of its own; the scripts
// skip loudly without a reachable server, and fail under
// THEUS_REQUIRE_SERVICES=1).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"seed":   seedSQLite,
			"seedpg": seedPostgres,
		},
		Condition: func(cond string) (bool, error) {
			if cond != "postgres" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			err := pingPostgres()
			if err != nil && os.Getenv("THEUS_REQUIRE_SERVICES") == "1" {
				return false, fmt.Errorf("THEUS_REQUIRE_SERVICES=1 but PostgreSQL (THEUS_TEST_POSTGRES) is unreachable: %v", err)
			}
			if err != nil {
				t.Logf("SKIPPING the PostgreSQL scripts: PostgreSQL (THEUS_TEST_POSTGRES) is unreachable: %v", err)
			}
			return err == nil, nil
		},
	})
}

// pgDSN is $THEUS_TEST_POSTGRES, else the local server's database test.
func pgDSN() string {
	if v := os.Getenv("THEUS_TEST_POSTGRES"); v != "" {
		return v
	}
	return pgDefault
}

func pingPostgres() error {
	db, err := sql.Open("pgx", pgDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// seed makes a bank with two accounts (one owner's name holds markup),
// three transfers from acc-0, the account.opened messages delivered and
// the first transfer.completed message parked; it sets $PARKED_ID.
func seed(ts *testscript.TestScript, st seedable) { seedStore(ts, st) }

// scriptEnv is what seeding needs of a script (or of a test).
type scriptEnv interface {
	Check(error)
	Setenv(k, v string)
}

type seedable interface {
	engine.Store
	outbox.Store
	outbox.Parking
}

func seedStore(ts scriptEnv, st interface {
	engine.Store
	outbox.Store
	outbox.Parking
}) {
	ctx := context.Background()
	eng, err := bank.NewEngine(ctx, bank.State{}, bank.Bank{}, engine.WithStore(st))
	ts.Check(err)
	defer eng.Close()
	for i, owner := range []string{"ann", "<b>bob</b>"} {
		_, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: fmt.Sprintf("acc-%d", i), Owner: owner, Initial: 100})
		ts.Check(err)
	}
	for range 3 {
		_, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-0", To: "acc-1", Amount: 1})
		ts.Check(err)
	}
	msgs, err := st.Undelivered(ctx, 100)
	ts.Check(err)
	var first string
	var acked []string
	for _, m := range msgs {
		switch {
		case m.Topic == "account.opened":
			acked = append(acked, m.ID)
		case first == "":
			first = m.ID
		}
	}
	ts.Check(st.Ack(ctx, acked))
	_, err = st.Failed(ctx, first, "receiver said 400", true, 0)
	ts.Check(err)
	ts.Setenv("PARKED_ID", first)
}

func seedSQLite(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: seed PATH")
	}
	st, err := sqlite.Open(context.Background(), ts.MkAbs(args[0]))
	ts.Check(err)
	defer st.Close()
	seed(ts, st)
}

// seedPostgres seeds a schema of its own, dropped when the script ends,
// and sets $PG_DSN and $PG_SCHEMA.
func seedPostgres(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: seedpg")
	}
	dsn := pgDSN()
	var b [6]byte
	rand.Read(b[:])
	schema := "theus_cli_" + hex.EncodeToString(b[:])
	ts.Defer(func() {
		db, err := sql.Open("pgx", dsn)
		if err == nil {
			db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`)
			db.Close()
		}
	})
	st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
	ts.Check(err)
	defer st.Close()
	seed(ts, st)
	ts.Setenv("PG_DSN", dsn)
	ts.Setenv("PG_SCHEMA", schema)
}
