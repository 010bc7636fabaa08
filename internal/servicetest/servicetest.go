// Package servicetest holds the one policy for tests that need an external
// service (PostgreSQL, NATS): its address comes from an environment
// variable with a local default; when it is unreachable the test skips
// with a loud message, unless THEUS_REQUIRE_SERVICES=1 (set by .ci/run),
// which makes it fail.
package servicetest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Addr returns the value of env, or def when it is unset.
func Addr(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// Unreachable ends the test because the service named what (at addr, from
// env) could not be reached: a skip, or a failure under
// THEUS_REQUIRE_SERVICES=1.
func Unreachable(t testing.TB, what, env, addr string, err error) {
	t.Helper()
	if os.Getenv("THEUS_REQUIRE_SERVICES") == "1" {
		t.Fatalf("THEUS_REQUIRE_SERVICES=1 but %s at %s (%s) is unreachable: %v", what, addr, env, err)
	}
	t.Skipf("SKIPPING: %s at %s (%s) is unreachable: %v; set THEUS_REQUIRE_SERVICES=1 to fail instead", what, addr, env, err)
}

// redacted hides the password of a URL-shaped DSN, which must not reach
// the test log.
func redacted(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// Postgres opens and pings the database at THEUS_TEST_POSTGRES (default
// the local server's database test), closed when the test ends.
func Postgres(t testing.TB) *sql.DB {
	t.Helper()
	dsn := Addr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err != nil {
			db.Close()
		}
	}
	if err != nil {
		Unreachable(t, "PostgreSQL", "THEUS_TEST_POSTGRES", redacted(dsn), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
