package sqltable_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/sqltable"
)

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "sink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres connects to THEUS_TEST_POSTGRES (see servicetest).
func openPostgres(t *testing.T) *sql.DB { return servicetest.Postgres(t) }

func msgs(n int, from uint64) []outbox.Message {
	out := make([]outbox.Message, n)
	for i := range out {
		v := from + uint64(i)
		out[i] = outbox.Message{
			ID:        outbox.MessageID(0, v, 0),
			Topic:     "user.updated",
			Key:       fmt.Sprintf("u-%d", i%3),
			KeySeq:    v,
			Version:   v,
			Payload:   []byte(fmt.Sprintf(`{"n":%d}`, v)),
			CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, int(v), time.UTC),
		}
		if i%2 == 0 {
			out[i].Headers = map[string]string{"traceparent": "00-abc", "n": fmt.Sprint(v)}
		}
	}
	return out
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func testInsertIdempotent(t *testing.T, db *sql.DB, table string, opts ...sqltable.Option) {
	ctx := context.Background()
	s, err := sqltable.New(db, table, append(opts, sqltable.WithChunk(4))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable twice: %v", err)
	}
	batch := msgs(10, 1)
	for round := range 2 {
		n, err := s.Send(ctx, batch)
		if err != nil || n != len(batch) {
			t.Fatalf("round %d: Send = %d, %v", round, n, err)
		}
		if got := count(t, db, table); got != len(batch) {
			t.Fatalf("round %d: %d rows, want %d (one per message ID)", round, got, len(batch))
		}
	}
	// Overlapping batch: only the new ones are added.
	if n, err := s.Send(ctx, msgs(12, 1)); err != nil || n != 12 {
		t.Fatalf("Send overlap = %d, %v", n, err)
	}
	if got := count(t, db, table); got != 12 {
		t.Fatalf("%d rows after overlap, want 12", got)
	}
	if n, err := s.Send(ctx, nil); n != 0 || err != nil {
		t.Fatalf("empty Send = %d, %v", n, err)
	}

	rows, err := db.Query(`SELECT id, topic, "key", key_seq, version, payload, headers FROM ` + table + ` ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := msgs(12, 1)
	i := 0
	for rows.Next() {
		var id, topic, key, headers string
		var seq, ver int64
		var payload []byte
		if err := rows.Scan(&id, &topic, &key, &seq, &ver, &payload, &headers); err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if id != w.ID || topic != w.Topic || key != w.Key || uint64(seq) != w.KeySeq || uint64(ver) != w.Version || string(payload) != string(w.Payload) {
			t.Errorf("row %d = %s %s %s %d %d %s, want %+v", i, id, topic, key, seq, ver, payload, w)
		}
		var h map[string]string
		if err := json.Unmarshal([]byte(headers), &h); err != nil {
			t.Errorf("row %d headers %q: %v", i, headers, err)
		}
		if len(h) != len(w.Headers) || h["traceparent"] != w.Headers["traceparent"] {
			t.Errorf("row %d headers = %v, want %v", i, h, w.Headers)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != 12 {
		t.Fatalf("read %d rows", i)
	}
}

func TestSQLiteInsertIdempotent(t *testing.T) {
	db := openSQLite(t)
	testInsertIdempotent(t, db, "events")
	var created string
	if err := db.QueryRow(`SELECT created_at FROM events WHERE id = ?`, outbox.MessageID(0, 3, 0)).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if created != "2026-01-01T00:00:00.000000003Z" {
		t.Fatalf("created_at = %q", created)
	}
}

func TestSQLiteDetectAndDialect(t *testing.T) {
	db := openSQLite(t)
	s, err := sqltable.New(db, "events")
	if err != nil {
		t.Fatal(err)
	}
	if s.Dialect() != sqltable.SQLite {
		t.Fatalf("detected %v", s.Dialect())
	}
	pg, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/x")
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	s, err = sqltable.New(pg, "events")
	if err != nil || s.Dialect() != sqltable.Postgres {
		t.Fatalf("pgx: %v, %v", s, err)
	}
	if _, err := sqltable.New(db, "events", sqltable.WithDialect(sqltable.Dialect(42))); err == nil {
		t.Fatal("unknown dialect accepted")
	}
	if _, err := sqltable.New(nil, "events"); err == nil {
		t.Fatal("nil db accepted")
	}
}

func TestTableNameValidation(t *testing.T) {
	db := openSQLite(t)
	good := []string{"events", "_e", "E2", "public.events", "s_1.t_2", strings.Repeat("a", 63)}
	bad := []string{
		"", ".", "a.", ".a", "a.b.c", "1events", "ev-ents", "ev ents", "events;", "events; DROP TABLE x",
		"events--", `"events"`, "`events`", "[events]", "events/*", "ev\x00", "évents", "a..b",
		"events) VALUES (1); --", "t'", strings.Repeat("a", 64),
	}
	for _, name := range good {
		if _, err := sqltable.New(db, name); err != nil {
			t.Errorf("New(%q) = %v, want ok", name, err)
		}
	}
	for _, name := range bad {
		if _, err := sqltable.New(db, name); err == nil {
			t.Errorf("New(%q) accepted", name)
		}
	}
}

func TestSQLiteErrors(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)

	// No table: the sink is the problem, not the message.
	s, err := sqltable.New(db, "missing")
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Send(ctx, msgs(3, 1))
	if n != 0 || !outbox.IsUnavailable(err) {
		t.Fatalf("missing table: %d, %v; want 0, Unavailable", n, err)
	}

	// A constraint refuses the third message: the first two are delivered
	// and the error, permanent, is the third's.
	if _, err := db.Exec(strings.Replace(sqltable.CreateTableSQL(sqltable.SQLite, "strict"),
		"payload BLOB", "payload BLOB CHECK (length(payload) < 12)", 1)); err != nil {
		t.Fatal(err)
	}
	s, err = sqltable.New(db, "strict")
	if err != nil {
		t.Fatal(err)
	}
	batch := msgs(5, 1)
	batch[2].Payload = []byte(`{"big":"payload"}`)
	n, err = s.Send(ctx, batch)
	if n != 2 || !outbox.IsPermanent(err) || !strings.Contains(err.Error(), batch[2].ID) {
		t.Fatalf("constraint: %d, %v; want 2, Permanent naming %s", n, err, batch[2].ID)
	}
	if got := count(t, db, "strict"); got != 2 {
		t.Fatalf("%d rows, want 2", got)
	}

	// A KeySeq beyond int64 is permanent; the prefix is delivered.
	batch = msgs(3, 10)
	batch[1].KeySeq = 1 << 63
	n, err = s.Send(ctx, batch)
	if n != 1 || !outbox.IsPermanent(err) {
		t.Fatalf("overflow: %d, %v; want 1, Permanent", n, err)
	}

	// A closed database is unavailable.
	db.Close()
	n, err = s.Send(ctx, msgs(1, 100))
	if n != 0 || err == nil || outbox.IsPermanent(err) {
		t.Fatalf("closed db: %d, %v", n, err)
	}

	// A cancelled context is returned plain.
	db2 := openSQLite(t)
	s2, _ := sqltable.New(db2, "events")
	if err := s2.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	n, err = s2.Send(cctx, msgs(2, 1))
	if n != 0 || !errors.Is(err, context.Canceled) || outbox.IsPermanent(err) || outbox.IsUnavailable(err) {
		t.Fatalf("cancelled: %d, %v", n, err)
	}
}

func TestPostgresInsertIdempotent(t *testing.T) {
	db := openPostgres(t)
	table := fmt.Sprintf("theus_sqltable_test_%d", time.Now().UnixNano())
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + table) })
	testInsertIdempotent(t, db, table)

	var created time.Time
	if err := db.QueryRow(`SELECT created_at FROM `+table+` WHERE id = $1`, outbox.MessageID(0, 3, 0)).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if !created.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) { // microsecond precision
		t.Fatalf("created_at = %v", created)
	}

	s, _ := sqltable.New(db, "theus_no_such_table_xyz")
	if n, err := s.Send(context.Background(), msgs(2, 1)); n != 0 || !outbox.IsUnavailable(err) {
		t.Fatalf("missing table: %d, %v; want 0, Unavailable", n, err)
	}
	// Bad data (a NUL byte in a text column) is permanent, for that message.
	s, _ = sqltable.New(db, table)
	batch := msgs(3, 50)
	batch[1].Topic = "bad\x00topic"
	if n, err := s.Send(context.Background(), batch); n != 1 || !outbox.IsPermanent(err) {
		t.Fatalf("bad data: %d, %v; want 1, Permanent", n, err)
	}
}
