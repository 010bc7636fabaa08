package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/theus-go/theus/internal/servicetest"
)

// The demo on PostgreSQL (-store postgres://…), twice on one schema of the
// test's own, dropped afterwards: the first run relays straight to the
// consumer, the second through an embedded nats-server; the second
// recovers the first's state from the database. Skips loudly without
// PostgreSQL (fails under THEUS_REQUIRE_SERVICES=1).
func TestQuickstartOnPostgres(t *testing.T) {
	db := servicetest.Postgres(t)
	dsn := servicetest.Addr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	var b [6]byte
	rand.Read(b[:])
	schema := "quickstart_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	cfg := config{workers: 4, updates: 50, logins: 20, timeout: time.Minute, data: t.TempDir(), store: dsn, schema: schema, direct: true}
	var first summary
	for i := range 2 {
		var out strings.Builder
		s, err := run(context.Background(), cfg, &out)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out.String())
		}
		if s.Lost != 0 || s.Duplicates != 0 || s.Gaps != 0 || s.Committed != 4*50 || s.Unique != s.Committed {
			t.Fatalf("run %d: summary %+v\n%s", i, s, out.String())
		}
		if !strings.Contains(out.String(), "PostgreSQL") || !strings.Contains(out.String(), "schema "+schema) {
			t.Fatalf("run %d does not say it ran on PostgreSQL:\n%s", i, out.String())
		}
		if i == 0 {
			if s.StartVersion != 0 {
				t.Fatalf("a fresh schema recovered version %d", s.StartVersion)
			}
			first = s
			cfg.direct = false // the second run goes through NATS
			continue
		}
		if s.StartVersion != first.Version || s.Version != first.Version+s.Commits {
			t.Fatalf("second run started at %d, ended at %d; the first ended at %d", s.StartVersion, s.Version, first.Version)
		}
		if !strings.Contains(out.String(), "logins 160") {
			t.Fatalf("logins did not accumulate over the two runs:\n%s", out.String())
		}
	}
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&tables); err != nil || tables == 0 {
		t.Fatalf("the store's tables in schema %s: %d, %v", schema, tables, err)
	}
}

// A -store that is neither empty nor a PostgreSQL URL is refused, and a
// password in it is not printed.
func TestQuickstartRefusesUnknownStore(t *testing.T) {
	var out strings.Builder
	_, err := run(context.Background(), config{workers: 1, updates: 1, store: "mysql://u:hunter2@h/db", direct: true}, &out)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}
