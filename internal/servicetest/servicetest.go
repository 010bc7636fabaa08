// Package servicetest holds the one policy for tests that need an external
// service (PostgreSQL, NATS, RabbitMQ, Redis): its address comes from an environment
// variable with a local default; when it is unreachable the test skips
// with a loud message, unless THEUS_REQUIRE_SERVICES=1 (set by .ci/run),
// which makes it fail.
package servicetest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// Addr returns the value of env, or def when it is unset.
func Addr(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// WithParam returns the PostgreSQL dsn (a URL or key=value pairs) with
// the parameter key=value added.
func WithParam(dsn, key, value string) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return dsn + " " + key + "=" + value
	case strings.Contains(dsn, "?"):
		return dsn + "&" + key + "=" + value
	}
	return dsn + "?" + key + "=" + value
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

// AMQPURL returns the URL of the RabbitMQ broker at THEUS_TEST_AMQP
// (default the local one, guest/guest) after checking that it takes
// connections.
func AMQPURL(t testing.TB) string {
	t.Helper()
	u := Addr("THEUS_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		Unreachable(t, "RabbitMQ", "THEUS_TEST_AMQP", redacted(u), err)
	}
	conn.Close()
	return u
}

// Redis returns a client of the Redis server at THEUS_TEST_REDIS (default
// 127.0.0.1:6379; a redis:// URL works too) after a ping, closed when the
// test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	addr := Addr("THEUS_TEST_REDIS", "127.0.0.1:6379")
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			t.Fatalf("THEUS_TEST_REDIS=%s: %v", redacted(addr), err)
		}
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := c.Ping(ctx).Err()
	cancel()
	if err != nil {
		c.Close()
		Unreachable(t, "Redis", "THEUS_TEST_REDIS", redacted(addr), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
