// Package dedupsql is outbox.Dedup persisted in the consumer's own
// database (SQLite or PostgreSQL through database/sql), for consumers that
// restart.
//
// It keeps, per (topic, key), the incarnation and highest KeySeq seen (an
// outbox.Mark, decided as outbox.Dedup decides), in a table:
//
//	CREATE TABLE IF NOT EXISTS theus_dedup (
//		topic       TEXT NOT NULL,
//		"key"       TEXT NOT NULL,
//		last_seq    BIGINT NOT NULL,             -- INTEGER in SQLite
//		incarnation BIGINT NOT NULL DEFAULT 0,   -- INTEGER in SQLite
//		PRIMARY KEY (topic, "key")
//	)
//
// A table made before incarnations existed lacks the last column:
// CreateTable adds it, or add it in your migrations.
//
// # Exactly-once effects
//
// Delivery is at least once; a consumer gets exactly-once effects by
// recording the dedup mark in the same transaction as its effect:
//
//	tx, err := db.BeginTx(ctx, nil)
//	...
//	fresh, gap, err := d.ObserveTx(ctx, tx, m)
//	if err != nil { tx.Rollback(); return err }
//	if gap > 0 { log.Warn("messages missing or out of order", "gap", gap) }
//	if fresh {
//		if err := apply(ctx, tx, m); err != nil { tx.Rollback(); return err }
//	}
//	return tx.Commit()
//
// If the consumer crashes or rolls back, neither its effect nor the mark
// is kept, and the re-delivered message is fresh again; once committed,
// both are, and every re-delivery is dropped. Observe, which commits the
// mark on its own, cannot give that guarantee: a crash between the mark
// and the effect loses the message.
//
// ObserveTx locks the (topic, key) row until tx ends (SELECT ... FOR UPDATE
// in Postgres; SQLite's transaction holds the write lock after the first
// write), so concurrent consumers of one key are serialised and exactly
// one of them sees a message as fresh. Under Postgres REPEATABLE READ or
// SERIALIZABLE a concurrent mark makes tx fail with a serialization error
// (retry the transaction); READ COMMITTED, the default, waits instead.
// In SQLite, begin the transaction IMMEDIATE (or set a busy timeout) if
// several connections write.
package dedupsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/theus-go/theus/runtime/internal/sqldialect"
	"github.com/theus-go/theus/runtime/outbox"
)

// Dialect selects the placeholder style and column types.
type Dialect = sqldialect.Dialect

// The dialects; Auto (the default) detects it from db.Driver().
const (
	Auto     = sqldialect.Auto
	SQLite   = sqldialect.SQLite
	Postgres = sqldialect.Postgres
)

// DefaultTable is the table name unless WithTable says otherwise.
const DefaultTable = "theus_dedup"

// Dedup remembers the highest KeySeq per (topic, key) in a table. It is
// safe for concurrent use; the database serialises the marks.
type Dedup struct {
	db      *sql.DB
	table   string
	dialect Dialect

	qEnsure, qSelect, qUpdate, qLast, qHasInc, qAddInc string
}

// Option configures a Dedup.
type Option func(*Dedup)

// WithTable sets the table (default DefaultTable): an identifier
// [A-Za-z_][A-Za-z0-9_]*, optionally "schema.table". It is quoted in
// every statement, so a reserved word such as order is a name like any
// other; PostgreSQL names are lower-cased first, as PostgreSQL folds a
// name it is given unquoted.
func WithTable(name string) Option { return func(d *Dedup) { d.table = name } }

// WithDialect sets the dialect instead of detecting it.
func WithDialect(dl Dialect) Option { return func(d *Dedup) { d.dialect = dl } }

// New returns a Dedup over db. It does not touch the database; call
// CreateTable (or create the table in your migrations, see CreateTableSQL).
func New(db *sql.DB, opts ...Option) (*Dedup, error) {
	if db == nil {
		return nil, errors.New("dedupsql: nil *sql.DB")
	}
	d := &Dedup{db: db, table: DefaultTable}
	for _, o := range opts {
		o(d)
	}
	if err := sqldialect.ValidTable(d.table); err != nil {
		return nil, fmt.Errorf("dedupsql: %w", err)
	}
	dl, err := sqldialect.Resolve(db, d.dialect)
	if err != nil {
		return nil, fmt.Errorf("dedupsql: %w", err)
	}
	d.dialect = dl
	p := dl.Placeholder
	q := dl.QuoteTable(d.table)
	d.qEnsure = "INSERT INTO " + q + ` (topic, "key", last_seq) VALUES (` + p(1) + ", " + p(2) + `, 0) ON CONFLICT (topic, "key") DO NOTHING`
	d.qSelect = "SELECT incarnation, last_seq FROM " + q + ` WHERE topic = ` + p(1) + ` AND "key" = ` + p(2)
	if dl == Postgres {
		d.qSelect += " FOR UPDATE"
	}
	d.qUpdate = "UPDATE " + q + " SET incarnation = " + p(1) + ", last_seq = " + p(2) + " WHERE topic = " + p(3) + ` AND "key" = ` + p(4)
	d.qHasInc = "SELECT incarnation FROM " + q + " WHERE 1 = 0"
	d.qAddInc = "ALTER TABLE " + q + " ADD COLUMN incarnation " + intType(dl) + " NOT NULL DEFAULT 0"
	d.qLast = "SELECT last_seq FROM " + q + ` WHERE topic = ` + p(1) + ` AND "key" = ` + p(2)
	return d, nil
}

// Table returns the table name.
func (d *Dedup) Table() string { return d.table }

// CreateTable creates the table if it does not exist, and adds the
// incarnation column to a table made before it existed.
func (d *Dedup) CreateTable(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, CreateTableSQL(d.dialect, d.table)); err != nil {
		return fmt.Errorf("dedupsql: create table %s: %w", d.table, err)
	}
	rows, err := d.db.QueryContext(ctx, d.qHasInc)
	if err == nil {
		return rows.Close()
	}
	if _, err := d.db.ExecContext(ctx, d.qAddInc); err != nil {
		return fmt.Errorf("dedupsql: add column incarnation to %s: %w", d.table, err)
	}
	return nil
}

func intType(dl Dialect) string {
	if dl == Postgres {
		return "BIGINT"
	}
	return "INTEGER"
}

// CreateTableSQL returns the statement CreateTable runs, the table name
// quoted (see WithTable). table is not validated.
func CreateTableSQL(dl Dialect, table string) string {
	typ := intType(dl)
	return "CREATE TABLE IF NOT EXISTS " + dl.QuoteTable(table) + ` (
	topic TEXT NOT NULL,
	"key" TEXT NOT NULL,
	last_seq ` + typ + ` NOT NULL,
	incarnation ` + typ + ` NOT NULL DEFAULT 0,
	PRIMARY KEY (topic, "key")
)`
}

// ObserveTx is outbox.Dedup.Observe inside the consumer's transaction tx:
// fresh is false for a duplicate (its KeySeq was seen, or is 0, or it is of
// an older incarnation than one seen); gap is the number of KeySeqs
// skipped before m. When fresh, the new mark is written
// in tx and is kept only if tx commits; the (topic, key) row stays locked
// until then. On error, roll tx back.
func (d *Dedup) ObserveTx(ctx context.Context, tx *sql.Tx, m outbox.Message) (fresh bool, gap uint64, err error) {
	inc := m.Incarnation()
	if m.KeySeq > math.MaxInt64 || inc > math.MaxInt64 {
		return false, 0, fmt.Errorf("dedupsql: key_seq %d or incarnation %d beyond int64", m.KeySeq, inc)
	}
	if m.KeySeq == 0 {
		return false, 0, nil
	}
	if _, err := tx.ExecContext(ctx, d.qEnsure, m.Topic, m.Key); err != nil {
		return false, 0, fmt.Errorf("dedupsql: %w", err)
	}
	var lastInc, last int64
	if err := tx.QueryRowContext(ctx, d.qSelect, m.Topic, m.Key).Scan(&lastInc, &last); err != nil {
		return false, 0, fmt.Errorf("dedupsql: %w", err)
	}
	fresh, gap = outbox.Mark{Incarnation: uint64(lastInc), KeySeq: uint64(last)}.Next(m)
	if !fresh {
		return false, 0, nil
	}
	if _, err := tx.ExecContext(ctx, d.qUpdate, int64(inc), int64(m.KeySeq), m.Topic, m.Key); err != nil {
		return false, 0, fmt.Errorf("dedupsql: %w", err)
	}
	return true, gap, nil
}

// Observe is ObserveTx in a transaction of its own, committed before it
// returns. Use it only when the consumer's effect is itself idempotent:
// see the package documentation.
func (d *Dedup) Observe(ctx context.Context, m outbox.Message) (fresh bool, gap uint64, err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, 0, fmt.Errorf("dedupsql: %w", err)
	}
	fresh, gap, err = d.ObserveTx(ctx, tx, m)
	if err != nil {
		_ = tx.Rollback()
		return false, 0, err
	}
	if err := tx.Commit(); err != nil {
		return false, 0, fmt.Errorf("dedupsql: %w", err)
	}
	return fresh, gap, nil
}

// Last returns the highest KeySeq committed for (topic, key), 0 if none.
func (d *Dedup) Last(ctx context.Context, topic, key string) (uint64, error) {
	var last int64
	err := d.db.QueryRowContext(ctx, d.qLast, topic, key).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dedupsql: %w", err)
	}
	return uint64(last), nil
}
