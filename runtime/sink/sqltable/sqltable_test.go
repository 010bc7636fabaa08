package sqltable_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/sqltable"
	"github.com/theus-go/theus/runtime/store/memory"
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
	if n != 0 || !outbox.IsPermanent(err) {
		t.Fatalf("missing table: %d, %v; want 0, Permanent", n, err)
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
	if n, err := s.Send(context.Background(), msgs(2, 1)); n != 0 || !outbox.IsPermanent(err) {
		t.Fatalf("missing table: %d, %v; want 0, Permanent", n, err)
	}
	// Bad data (a NUL byte in a text column) is permanent, for that message.
	s, _ = sqltable.New(db, table)
	batch := msgs(3, 50)
	batch[1].Topic = "bad\x00topic"
	if n, err := s.Send(context.Background(), batch); n != 1 || !outbox.IsPermanent(err) {
		t.Fatalf("bad data: %d, %v; want 1, Permanent", n, err)
	}
}

// quoted is name quoted part by part, as a test's own queries need it for
// a reserved word.
func quoted(name string) string {
	return `"` + strings.ReplaceAll(name, ".", `"."`) + `"`
}

// Reserved words are table names like any other: the sink quotes what it
// is given, so neither CreateTable nor Send meets a syntax error.
func testReservedWords(t *testing.T, db *sql.DB, names ...string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range names {
		s, err := sqltable.New(db, name)
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		if err := s.CreateTable(ctx); err != nil {
			t.Fatalf("CreateTable(%q): %v", name, err)
		}
		if n, err := s.Send(ctx, msgs(3, 1)); n != 3 || err != nil {
			t.Fatalf("Send to %q = %d, %v", name, n, err)
		}
		if got := count(t, db, quoted(strings.ToLower(name))); got != 3 {
			t.Fatalf("%q holds %d rows, want 3", name, got)
		}
	}
}

func TestSQLiteReservedWords(t *testing.T) {
	testReservedWords(t, openSQLite(t), "order", "select", "main.group", "Values")
}

func TestPostgresReservedWords(t *testing.T) {
	db := openPostgres(t)
	schema := fmt.Sprintf("theus_sqltable_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	testReservedWords(t, db, schema+".order", schema+".select", schema+".user")
	// A name that is not a reserved word means what it meant unquoted:
	// Postgres folds it to lower case.
	testReservedWords(t, db, schema+".Events")
	if got := count(t, db, schema+".events"); got != 3 {
		t.Fatalf("%s.events holds %d rows, want 3", schema, got)
	}
	// Unqualified, on a connection whose search_path is the schema.
	testReservedWords(t, openPostgresWith(t, func(u *url.URL) {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
	}), "order", "table")
}

// openPostgresWith connects to THEUS_TEST_POSTGRES changed by edit.
func openPostgresWith(t *testing.T, edit func(*url.URL)) *sql.DB {
	t.Helper()
	u, err := url.Parse(servicetest.Addr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	edit(u)
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sendFails sends a batch to table and checks it fails at once with a
// Permanent error (parked: retrying cannot fix it) naming the first message.
func sendFails(t *testing.T, db *sql.DB, table, why string) {
	t.Helper()
	s, err := sqltable.New(db, table)
	if err != nil {
		t.Fatal(err)
	}
	batch := msgs(3, 1)
	n, err := s.Send(context.Background(), batch)
	if n != 0 || !outbox.IsPermanent(err) || !strings.Contains(err.Error(), batch[0].ID) {
		t.Errorf("%s: Send = %d, %v; want 0 and a Permanent error naming %s", why, n, err, batch[0].ID)
	}
}

// Errors that retrying cannot fix (the table is not there, lacks a column,
// has no key for ON CONFLICT, has a column of another type) are Permanent,
// so the message parks instead of being retried for ever.
func TestSQLiteErrorsRetryingCannotFix(t *testing.T) {
	db := openSQLite(t)
	for _, ddl := range []string{
		`CREATE TABLE no_headers (id TEXT PRIMARY KEY, topic TEXT, "key" TEXT, key_seq INTEGER, version INTEGER, payload BLOB, created_at TEXT)`,
		`CREATE TABLE no_key (id TEXT, topic TEXT, "key" TEXT, key_seq INTEGER, version INTEGER, payload BLOB, headers TEXT, created_at TEXT)`,
	} {
		if _, err := db.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	sendFails(t, db, "missing", "no such table")
	sendFails(t, db, "no_headers", "no such column")
	sendFails(t, db, "no_key", "ON CONFLICT without a unique id")
}

func TestPostgresErrorsRetryingCannotFix(t *testing.T) {
	db := openPostgres(t)
	schema := fmt.Sprintf("theus_sqltable_%d", time.Now().UnixNano())
	role := schema + "_ro"
	for _, q := range []string{
		"CREATE SCHEMA " + schema,
		"CREATE TABLE " + schema + `.no_headers (id TEXT PRIMARY KEY, topic TEXT, "key" TEXT, key_seq BIGINT, version BIGINT, payload BYTEA, created_at TIMESTAMPTZ)`,
		"CREATE TABLE " + schema + `.no_key (id TEXT, topic TEXT, "key" TEXT, key_seq BIGINT, version BIGINT, payload BYTEA, headers TEXT, created_at TIMESTAMPTZ)`,
		"CREATE TABLE " + schema + `.uuid_seq (id TEXT PRIMARY KEY, topic TEXT, "key" TEXT, key_seq UUID, version BIGINT, payload BYTEA, headers TEXT, created_at TIMESTAMPTZ)`,
		sqltable.CreateTableSQL(sqltable.Postgres, schema+".events"),
		"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA " + schema + " TO " + role,
		"GRANT SELECT ON " + schema + ".events TO " + role,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Exec("DROP ROLE " + role)
	})
	sendFails(t, db, schema+".missing", "undefined table")
	sendFails(t, db, schema+".no_headers", "undefined column")
	sendFails(t, db, schema+".no_key", "ON CONFLICT without a unique id")
	sendFails(t, db, schema+".uuid_seq", "datatype mismatch")

	// As another user, who may read the table but not insert.
	ro := openPostgresWith(t, func(u *url.URL) { u.User = url.User(role) })
	sendFails(t, ro, schema+".events", "permission denied")
}

// events is a RelayMetrics that tells when the relay parked a message and
// when it delivered one.
type events struct {
	parked, delivered chan struct{}
}

func (e events) Delivered([]outbox.Message) { e.delivered <- struct{}{} }
func (e events) Failed(_ string, _ error, parked bool) {
	if parked {
		e.parked <- struct{}{}
	}
}
func (events) Batch(int, time.Duration) {}

// End to end: a message the table cannot take parks (it is not retried for
// ever), and once the operator fixes the table a replay delivers it.
func TestRelayParksWhatTheTableCannotTake(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	if _, err := db.Exec(`CREATE TABLE events (id TEXT PRIMARY KEY, topic TEXT, "key" TEXT, key_seq INTEGER, version INTEGER, payload BLOB, created_at TEXT)`); err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	m := msgs(1, 1)[0]
	if err := st.Commit(ctx, []*engine.Record{{Version: 1, State: new(int), Messages: []outbox.Message{m}}}); err != nil {
		t.Fatal(err)
	}
	s, err := sqltable.New(db, "events")
	if err != nil {
		t.Fatal(err)
	}
	ev := events{parked: make(chan struct{}, 1), delivered: make(chan struct{}, 1)}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	r := outbox.NewRelay(st, s, outbox.WithRelayMetrics(ev), outbox.WithRelayBackoff(time.Millisecond, time.Millisecond))
	go func() { done <- r.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wait := func(c chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("not %s after 10s; relay stats %+v", what, r.Stats())
		}
	}
	wait(ev.parked, "parked")
	parked, err := st.Parked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := parked[0]; len(parked) != 1 || p.ID != m.ID || p.Attempts != 1 || !strings.Contains(p.LastError, "headers") {
		t.Fatalf("parked %+v, want %s after one attempt with the missing column in its error", parked, m.ID)
	}

	if _, err := db.Exec(`ALTER TABLE events ADD COLUMN headers TEXT`); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Replay(ctx, m.Topic, m.Key); n != 1 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	wait(ev.delivered, "delivered after the replay")
	if got := count(t, db, "events"); got != 1 {
		t.Fatalf("%d rows after the replay, want 1", got)
	}
}
