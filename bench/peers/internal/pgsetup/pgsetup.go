// Package pgsetup prepares PostgreSQL for the server-based implementations
// of the peer benchmark: a schema of their own, created anew for each run,
// with the users table of the workload.
package pgsetup

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/bench/peers/workload"
)

// Reset drops schema and everything in it, creates it again with the
// table users(id, email, counter, updated_at) holding the workload's users,
// then runs ddl (in the search path of schema).
func Reset(ctx context.Context, dsn, schema string, users int, ddl ...string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	s := pgx.Identifier{schema}.Sanitize()
	for _, q := range []string{
		`DROP SCHEMA IF EXISTS ` + s + ` CASCADE`,
		`CREATE SCHEMA ` + s,
		`SET search_path TO ` + s,
		`CREATE TABLE users (
			id         text PRIMARY KEY,
			email      text NOT NULL,
			counter    bigint NOT NULL,
			updated_at bigint NOT NULL
		)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%.40s…: %w", q, err)
		}
	}
	rows := make([][]any, users)
	for i := range rows {
		id := workload.UserID(i)
		rows[i] = []any{id, workload.InitialEmail(id), int64(0), int64(0)}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "users"}, []string{"id", "email", "counter", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("filling %s.users: %w", s, err)
	}
	for _, q := range append(ddl, `ANALYZE users`) {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%.40s…: %w", q, err)
		}
	}
	return nil
}

// PoolSize is how many connections a run with c producers opens: one per
// producer and two for the relay, all opened before the clock starts.
func PoolSize(c int) int { return c + 2 }

// TestDSN is the PostgreSQL of the tests (workload.DSN). When it cannot be
// reached the test skips, or fails under THEUS_REQUIRE_SERVICES=1 (as CI
// sets it), the policy of the main module's tests.
func TestDSN(t testing.TB) string {
	t.Helper()
	dsn := workload.DSN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		if os.Getenv("THEUS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("THEUS_REQUIRE_SERVICES=1 but PostgreSQL (THEUS_TEST_POSTGRES) is unreachable: %v", err)
		}
		t.Skipf("SKIPPING: PostgreSQL (THEUS_TEST_POSTGRES) is unreachable: %v", err)
	}
	return dsn
}
