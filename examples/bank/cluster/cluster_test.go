package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/internal/servicetest"
)

// TestMain lets the test binary be the cluster's child processes: the
// tests start it again with childEnv set and the command's arguments.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := cli(context.Background(), os.Args[1:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testConfig is a config on a schema of the test's own, dropped when the
// test ends; it skips (fails under THEUS_REQUIRE_SERVICES=1) without
// PostgreSQL.
func testConfig(t *testing.T) (config, *pgxpool.Pool) {
	t.Helper()
	db := servicetest.Postgres(t)
	dsn := servicetest.Addr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	var b [6]byte
	rand.Read(b[:])
	schema := "bank_cluster_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return config{store: dsn, schema: schema, accounts: 100, balance: 100, instances: 3, workers: 8, transfers: 5000, seed: 1}, pool
}

// The bank test across OS processes: 3 engine processes x 8
// goroutines x 5,000 random transfers among 100 accounts on one schema;
// at every version of the shared history the total is unchanged and no
// balance is negative, every receipt is in the history, and there is one
// message per transfer. Under -short, 500 transfers per goroutine.
func TestBankAcrossProcesses(t *testing.T) {
	cfg, _ := testConfig(t)
	if testing.Short() {
		cfg.transfers = 500
	}
	var out strings.Builder
	if err := runCluster(context.Background(), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
}
