package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// schemaVersion is the layout of the tables below; a store written with
// another layout is refused.
const schemaVersion = "1"

// schema creates the tables. Values are stored as the engine's StateCodec
// encodes them; message times are Unix nanoseconds.
const schema = `
CREATE TABLE IF NOT EXISTS theus_meta (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS theus_fields (
	path       TEXT PRIMARY KEY,
	type       TEXT NOT NULL,
	collection INTEGER NOT NULL,
	value      BLOB,
	version    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS theus_entries (
	path    TEXT NOT NULL,
	key     TEXT NOT NULL,
	value   BLOB NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY (path, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS theus_messages (
	id           TEXT PRIMARY KEY,
	version      INTEGER NOT NULL,
	idx          INTEGER NOT NULL,
	topic        TEXT NOT NULL,
	key          TEXT NOT NULL,
	key_seq      INTEGER NOT NULL,
	payload      BLOB NOT NULL,
	headers      TEXT,
	created_at   INTEGER NOT NULL,
	state        TEXT NOT NULL DEFAULT 'pending',
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT,
	delivered_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS theus_messages_pending ON theus_messages (id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS theus_messages_parked ON theus_messages (topic, key) WHERE state = 'parked';
CREATE INDEX IF NOT EXISTS theus_messages_delivered ON theus_messages (delivered_at) WHERE state = 'delivered';
CREATE TABLE IF NOT EXISTS theus_key_seqs (
	topic TEXT NOT NULL,
	key   TEXT NOT NULL,
	seq   INTEGER NOT NULL,
	PRIMARY KEY (topic, key)
) WITHOUT ROWID;
`

// Store is a durable engine.Store and outbox.Store in one SQLite file. It
// also implements outbox.Parking and outbox.Pruner. It is safe for
// concurrent use by one engine and any number of relays in the process;
// other processes may read the file (a relay there is woken by its poll).
type Store struct {
	// w is the one connection that writes: commits, acks and parking are
	// serialised on it, so writers never wait on each other's locks. r
	// reads, concurrently with w (WAL).
	w, r *sql.DB
	opts options

	// cmu guards what Commit and Recover share.
	cmu     sync.Mutex
	codec   engine.StateCodec
	version uint64
	// empty is set while the store holds no state: the first commit then
	// writes the whole state, including the initial values no commit wrote.
	empty bool
	// broken holds the error of a COMMIT that failed: see Commit.
	broken error
	stmts  *stmts

	nmu    sync.Mutex
	notify chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Option configures a Store.
type Option func(*options)

type options struct {
	retention time.Duration
	batch     int
	fault     func(Step) error
	now       func() time.Time
	sync      string
}

// WithRetention sets how long delivered messages are kept before Prune
// deletes them (default 24h). A negative d keeps them forever.
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithPruneBatch sets how many messages Prune deletes per transaction
// (default 1000), so that pruning never holds the write lock for long.
func WithPruneBatch(n int) Option { return func(o *options) { o.batch = max(n, 1) } }

// WithSynchronous sets SQLite's synchronous pragma: "FULL" (the default)
// syncs the write-ahead log before every commit returns, so a commit
// survives a power loss; "NORMAL" survives a crash of the process but may
// lose the last commits on a power loss. Benchmarks compare the two; keep
// FULL in production.
func WithSynchronous(mode string) Option { return func(o *options) { o.sync = mode } }

// WithClock sets the clock that stamps delivered_at and decides what
// Prune deletes (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// Step is a point inside Commit where WithFaultHook may inject a failure.
type Step int

const (
	// BeforeWrite: the transaction is open and nothing is written yet.
	BeforeWrite Step = iota
	// BeforeSync: everything is written in the transaction, which is not
	// committed, and so not synced, yet.
	BeforeSync
)

func (s Step) String() string {
	switch s {
	case BeforeWrite:
		return "before write"
	case BeforeSync:
		return "before sync"
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// WithFaultHook calls f at each Step of every Commit; an error from f
// fails the commit there, and the transaction is rolled back. It exists to
// test that a failing store leaves nothing behind.
func WithFaultHook(f func(Step) error) Option { return func(o *options) { o.fault = f } }

// Open opens (creating it if needed) the SQLite database at path, in WAL
// mode with synchronous=FULL: a Commit returns only once it is synced. ctx
// bounds the opening. The store's owner closes it, after the relays and
// the engine that use it have stopped.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{retention: 24 * time.Hour, batch: 1000, now: time.Now, sync: "FULL"}
	for _, opt := range opts {
		opt(&o)
	}
	if strings.ContainsAny(path, "?#") || path == "" || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: %q: want a file path without ? or #", path)
	}
	switch strings.ToUpper(o.sync) {
	case "FULL", "NORMAL", "EXTRA":
	default:
		return nil, fmt.Errorf("sqlite: synchronous mode %q: want FULL, NORMAL or EXTRA", o.sync)
	}
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + o.sync + ")"
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &Store{w: w, r: r, opts: o}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// init creates the tables and checks the layout version.
func (s *Store) init(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, schema); err != nil {
		return err
	}
	var v string
	err := s.w.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'schema'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = s.w.ExecContext(ctx, `INSERT INTO theus_meta (name, value) VALUES ('schema', ?)`, schemaVersion)
		if err != nil {
			return err
		}
	case err != nil:
		return err
	case v != schemaVersion:
		return fmt.Errorf("the store's layout is version %s; this build reads version %s", v, schemaVersion)
	}
	st, err := prepare(ctx, s.w)
	if err != nil {
		return err
	}
	s.stmts = st
	return nil
}

// Close closes the database. Commits and acks after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stmts != nil {
			s.stmts.close()
		}
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
}

// Notify implements outbox.Store: the channel is closed by the next
// commit with messages, and by Replay, in this process.
func (s *Store) Notify() <-chan struct{} {
	s.nmu.Lock()
	defer s.nmu.Unlock()
	if s.notify == nil {
		s.notify = make(chan struct{})
	}
	return s.notify
}

func (s *Store) wake() {
	s.nmu.Lock()
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
	s.nmu.Unlock()
}

var (
	_ engine.Store   = (*Store)(nil)
	_ outbox.Parking = (*Store)(nil)
	_ outbox.Pruner  = (*Store)(nil)
)
