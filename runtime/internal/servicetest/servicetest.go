// Package servicetest is internal/servicetest for the packages under
// runtime: the one policy for tests that need an external service lives
// there, where the examples can use it too.
package servicetest

import (
	"database/sql"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/theus-go/theus/internal/servicetest"
)

// Addr returns the value of env, or def when it is unset.
func Addr(env, def string) string { return servicetest.Addr(env, def) }

// WithParam returns the PostgreSQL dsn with the parameter key=value added.
func WithParam(dsn, key, value string) string { return servicetest.WithParam(dsn, key, value) }

// Unreachable ends the test because the service named what (at addr, from
// env) could not be reached: a skip, or a failure under
// THEUS_REQUIRE_SERVICES=1.
func Unreachable(t testing.TB, what, env, addr string, err error) {
	t.Helper()
	servicetest.Unreachable(t, what, env, addr, err)
}

// Postgres opens and pings the database at THEUS_TEST_POSTGRES (default
// the local server's database test), closed when the test ends.
func Postgres(t testing.TB) *sql.DB {
	t.Helper()
	return servicetest.Postgres(t)
}

// AMQPURL returns the URL of the RabbitMQ broker at THEUS_TEST_AMQP
// (default the local one, guest/guest) after checking that it takes
// connections.
func AMQPURL(t testing.TB) string {
	t.Helper()
	return servicetest.AMQPURL(t)
}

// Redis returns a client of the Redis server at THEUS_TEST_REDIS (default
// 127.0.0.1:6379; a redis:// URL works too) after a ping, closed when the
// test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	return servicetest.Redis(t)
}

// Cluster is a throwaway PostgreSQL server of a test's own.
type Cluster = servicetest.Cluster

// StartCluster runs initdb and pg_ctl start on a new directory and a free
// port; it skips loudly when the server binaries are missing, and fails
// instead under THEUS_REQUIRE_SERVICES=1.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return servicetest.StartCluster(t)
}
