// Package sqltable is an outbox.Sink that inserts messages into a table of
// the user's own database through database/sql: the relay becomes a copy
// of the outbox into a table other programs can read.
//
//	db, _ := sql.Open("pgx", dsn) // or "sqlite", ...
//	s, err := sqltable.New(db, "public.theus_events")
//	if err != nil { ... }
//	if err := s.CreateTable(ctx); err != nil { ... } // or create it yourself
//	relay := outbox.NewRelay(st, s)
//
// # The table
//
// Columns (CreateTable creates them; a table of your own needs at least
// these, with a primary key or unique index on id):
//
//	column      SQLite    Postgres     value
//	id          TEXT      TEXT         Message.ID, the primary key
//	topic       TEXT      TEXT         Message.Topic
//	key         TEXT      TEXT         Message.Key ("" for topics without a key)
//	key_seq     INTEGER   BIGINT       Message.KeySeq
//	version     INTEGER   BIGINT       Message.Version
//	payload     BLOB      BYTEA        Message.Payload, verbatim
//	headers     TEXT      TEXT         Message.Headers as a JSON object, "{}" when none
//	created_at  TEXT      TIMESTAMPTZ  Message.CreatedAt (SQLite: RFC 3339 with nanoseconds, UTC)
//
// The table name must be an identifier [A-Za-z_][A-Za-z0-9_]* optionally
// qualified by a schema ("schema.table"); New refuses anything else. The
// sink quotes it part by part ("schema"."table"), so a reserved word such
// as order or select is a table name like any other; for Postgres it is
// lower-cased first, so it names the table it would name unquoted
// (Postgres folds unquoted names to lower case). Values are always bound
// parameters.
//
// # Delivery
//
// A batch is one transaction of multi-row INSERT ... ON CONFLICT (id) DO
// NOTHING statements: a message already in the table (a re-delivery) is
// skipped, so delivery is idempotent on the message ID. ON CONFLICT needs
// SQLite 3.24+ or PostgreSQL 9.5+; MySQL is not supported.
//
// When the batch's transaction fails for a reason that is not the
// database being unavailable, the sink inserts the messages one per
// transaction to find the one at fault, so that the relay's count of
// delivered messages and the error it parks belong to the right message.
//
// # Errors
//
//   - outbox.Permanent (parked at once): retrying cannot help. The
//     database refuses the row's data: Postgres SQLSTATE class 22 or 23,
//     SQLite CONSTRAINT, TOOBIG, MISMATCH; a KeySeq or Version beyond
//     int64. Or the table as it is cannot take the row: a missing table
//     or column, no unique key on id for ON CONFLICT, a column of another
//     type, no privilege, a syntax error: Postgres classes 42, 3F, 0A
//     and a value pgx cannot encode for its column; SQLite ERROR, AUTH,
//     RANGE. Fix the table or the grants, then replay the parked keys
//     (outbox.Parking): each key that had a message to deliver parks.
//   - outbox.Unavailable (retried, never counted): the database is the
//     problem and may come back: connection errors (driver.ErrBadConn,
//     sql.ErrConnDone, network errors), Postgres classes 08, 28, 3D, 53,
//     57P01-57P03; SQLite PERM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN,
//     NOTADB.
//   - Anything else, such as a serialization failure, a deadlock, SQLite
//     BUSY, or a timeout: a plain error, retried and counted. When the
//     relay's context is done its error is returned as is.
package sqltable

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/theus-go/theus/runtime/internal/sqldialect"
	"github.com/theus-go/theus/runtime/outbox"
)

// Dialect selects the placeholder style and column types.
type Dialect = sqldialect.Dialect

// The dialects.
const (
	// Auto (the default) detects the dialect from db.Driver(): a driver
	// whose package path mentions sqlite is SQLite, pgx, lib/pq or
	// postgres is Postgres; any other driver makes New fail.
	Auto = sqldialect.Auto
	// SQLite: ? placeholders.
	SQLite = sqldialect.SQLite
	// Postgres: $1, $2... placeholders.
	Postgres = sqldialect.Postgres
)

// DefaultChunk is how many rows one INSERT statement carries.
const DefaultChunk = 500

// columns in insert order.
var columns = []string{"id", "topic", `"key"`, "key_seq", "version", "payload", "headers", "created_at"}

// Sink inserts messages into one table. It is safe for concurrent use.
type Sink struct {
	db      *sql.DB
	table   string // as given, for errors
	quoted  string // as statements name it
	dialect Dialect
	chunk   int
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink)

// WithDialect sets the dialect instead of detecting it.
func WithDialect(d Dialect) Option { return func(s *Sink) { s.dialect = d } }

// WithChunk sets the number of rows per INSERT statement (default
// DefaultChunk; a batch larger than that takes several statements in the
// same transaction). n < 1 is 1.
func WithChunk(n int) Option { return func(s *Sink) { s.chunk = max(n, 1) } }

// New returns a sink that inserts into table of db. It does not touch the
// database; CreateTable creates the table. The sink does not close db.
func New(db *sql.DB, table string, opts ...Option) (*Sink, error) {
	if db == nil {
		return nil, errors.New("sqltable: nil *sql.DB")
	}
	if err := sqldialect.ValidTable(table); err != nil {
		return nil, fmt.Errorf("sqltable: %w", err)
	}
	s := &Sink{db: db, table: table, chunk: DefaultChunk}
	for _, o := range opts {
		o(s)
	}
	d, err := sqldialect.Resolve(db, s.dialect)
	if err != nil {
		return nil, fmt.Errorf("sqltable: %w", err)
	}
	s.dialect = d
	s.quoted = d.QuoteTable(table)
	return s, nil
}

// Table returns the table name.
func (s *Sink) Table() string { return s.table }

// Dialect returns the dialect in use.
func (s *Sink) Dialect() Dialect { return s.dialect }

func (s *Sink) String() string { return "sqltable(" + s.table + ")" }

// CreateTable creates the table if it does not exist, with the columns
// listed in the package documentation.
func (s *Sink) CreateTable(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, CreateTableSQL(s.dialect, s.table))
	if err != nil {
		return fmt.Errorf("sqltable: create table %s: %w", s.table, err)
	}
	return nil
}

// CreateTableSQL returns the CREATE TABLE IF NOT EXISTS statement
// CreateTable runs, for migrations of your own, with table quoted as the
// sink quotes it (see The table). table is not validated.
func CreateTableSQL(d Dialect, table string) string {
	table = d.QuoteTable(table)
	if d == Postgres {
		return "CREATE TABLE IF NOT EXISTS " + table + ` (
	id TEXT PRIMARY KEY,
	topic TEXT NOT NULL,
	"key" TEXT NOT NULL,
	key_seq BIGINT NOT NULL,
	version BIGINT NOT NULL,
	payload BYTEA,
	headers TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
)`
	}
	return "CREATE TABLE IF NOT EXISTS " + table + ` (
	id TEXT PRIMARY KEY,
	topic TEXT NOT NULL,
	"key" TEXT NOT NULL,
	key_seq INTEGER NOT NULL,
	version INTEGER NOT NULL,
	payload BLOB,
	headers TEXT NOT NULL,
	created_at TEXT NOT NULL
)`
}

// Send inserts batch in one transaction; see the package documentation.
func (s *Sink) Send(ctx context.Context, batch []Message) (int, error) {
	if len(batch) == 0 {
		return 0, nil
	}
	rows := make([][]any, len(batch))
	for i, m := range batch {
		r, err := s.row(m)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			// Deliver the good prefix; the relay gets batch[i]'s error.
			n, perr := s.Send(ctx, batch[:i])
			if perr != nil {
				return n, perr
			}
			return i, err
		}
		rows[i] = r
	}
	err := s.insertTx(ctx, rows)
	if err == nil {
		return len(batch), nil
	}
	if ctx.Err() != nil || len(batch) == 1 {
		return 0, s.wrap(ctx, batch[0], err)
	}
	if sqldialect.Classify(s.dialect, err) == sqldialect.Unavailable {
		return 0, s.wrap(ctx, batch[0], err)
	}
	// Find the message at fault: one transaction per message.
	for i := range rows {
		if err := s.insertTx(ctx, rows[i:i+1]); err != nil {
			return i, s.wrap(ctx, batch[i], err)
		}
	}
	return len(batch), nil
}

// Message is outbox.Message.
type Message = outbox.Message

func (s *Sink) row(m Message) ([]any, error) {
	if m.KeySeq > math.MaxInt64 || m.Version > math.MaxInt64 {
		return nil, outbox.Permanent(fmt.Errorf("sqltable: message %s: key_seq %d or version %d beyond int64", m.ID, m.KeySeq, m.Version))
	}
	h := []byte("{}")
	if len(m.Headers) > 0 {
		var err error
		if h, err = json.Marshal(m.Headers); err != nil {
			return nil, outbox.Permanent(fmt.Errorf("sqltable: message %s: headers: %w", m.ID, err))
		}
	}
	payload := m.Payload
	if payload == nil {
		payload = []byte{}
	}
	var created any = m.CreatedAt.UTC()
	if s.dialect == SQLite {
		created = m.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	return []any{m.ID, m.Topic, m.Key, int64(m.KeySeq), int64(m.Version), payload, string(h), created}, nil
}

func (s *Sink) insertTx(ctx context.Context, rows [][]any) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for len(rows) > 0 {
		n := min(len(rows), s.chunk)
		q, args := s.insertSQL(rows[:n])
		if _, err = tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return tx.Commit()
}

func (s *Sink) insertSQL(rows [][]any) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(s.quoted)
	b.WriteString(" (")
	b.WriteString(strings.Join(columns, ", "))
	b.WriteString(") VALUES ")
	args := make([]any, 0, len(rows)*len(columns))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			args = append(args, v)
			b.WriteString(s.dialect.Placeholder(len(args)))
		}
		b.WriteByte(')')
	}
	b.WriteString(" ON CONFLICT (id) DO NOTHING")
	return b.String(), args
}

func (s *Sink) wrap(ctx context.Context, m Message, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("sqltable: insert into %s: %w", s.table, err)
	}
	e := fmt.Errorf("sqltable: insert %s into %s: %w", m.ID, s.table, err)
	switch sqldialect.Classify(s.dialect, err) {
	case sqldialect.Permanent:
		return outbox.Permanent(e)
	case sqldialect.Unavailable:
		return outbox.Unavailable(e)
	}
	return e
}
