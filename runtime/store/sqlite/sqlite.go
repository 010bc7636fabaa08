package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// schemaVersion is the layout of the tables below. A store of layout 1
// (state tables updated by every commit, no log) or 2 (delivered messages
// moved to a table of their own) is upgraded when opened; a store of a
// later layout is refused.
const schemaVersion = "3"

// schema creates the tables of a new store. State values are stored as
// the engine's StateCodec encodes them, inside change sets (see
// changes.go); message times are Unix nanoseconds. The message states and
// the cursor are described in outbox.go.
const schema = `
CREATE TABLE IF NOT EXISTS theus_fields (
	path       TEXT PRIMARY KEY,
	type       TEXT NOT NULL,
	collection INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS theus_snapshot (
	id      INTEGER PRIMARY KEY,
	version INTEGER NOT NULL,
	data    BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS theus_log (
	version INTEGER PRIMARY KEY,
	first   INTEGER NOT NULL,
	data    BLOB NOT NULL,
	commits BLOB,
	at      INTEGER
);
` + outboxSchema + `
CREATE TABLE IF NOT EXISTS theus_key_seqs (
	topic TEXT NOT NULL,
	key   TEXT NOT NULL,
	seq   INTEGER NOT NULL,
	PRIMARY KEY (topic, key)
) WITHOUT ROWID;
INSERT INTO theus_meta (name, value) VALUES ('cursor', ''), ('folded', '')
	ON CONFLICT (name) DO NOTHING;
`

// outboxSchema creates the outbox of layout 3: the messages, their
// indexes, the times the cursor moved, and the view of the messages with
// their state as a reader means it.
const outboxSchema = `
CREATE TABLE IF NOT EXISTS theus_outbox (
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
CREATE INDEX IF NOT EXISTS theus_outbox_parked ON theus_outbox (topic, key) WHERE state = 'parked';
CREATE INDEX IF NOT EXISTS theus_outbox_held ON theus_outbox (topic, key) WHERE state = 'held';
CREATE INDEX IF NOT EXISTS theus_outbox_ready ON theus_outbox (id) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS theus_outbox_delivered ON theus_outbox (delivered_at) WHERE state = 'delivered';
CREATE TABLE IF NOT EXISTS theus_acks (
	cursor TEXT PRIMARY KEY,
	at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS theus_messages AS
	SELECT id, version, idx, topic, key, key_seq, payload, headers, created_at,
		CASE
			WHEN state = 'pending' AND id <= c.value THEN 'delivered'
			WHEN state IN ('held', 'ready') THEN 'pending'
			ELSE state
		END AS state,
		attempts, last_error,
		CASE
			WHEN state = 'pending' AND id <= c.value THEN (SELECT min(at) FROM theus_acks a WHERE a.cursor >= m.id)
			ELSE delivered_at
		END AS delivered_at
	FROM theus_outbox m, (SELECT value FROM theus_meta WHERE name = 'cursor') c;
`

// Store is a durable engine.Store and outbox.Store in one SQLite file. It
// also implements outbox.Parking, outbox.Pruner and outbox.RelayClaimer.
// It is safe for concurrent use by one engine and one relay, in this
// process or another (a relay there is woken by its poll); other processes
// may read the file.
type Store struct {
	// w is the one connection that writes: commits, acks and parking are
	// serialised on it, so writers never wait on each other's locks. r
	// reads, concurrently with w (WAL).
	w, r *sql.DB
	opts options
	path string
	// file is the database file, which the engine's Recover claims for
	// it until Close (see ErrInUse).
	file *dbFile
	// relay is the claim of the relay that runs on the file (outbox.go).
	relay relayClaim
	// wc belongs to whoever holds the write connection (onWriteConn).
	wc writeConn

	// cmu guards what Commit, Recover and Checkpoint share.
	cmu     sync.Mutex
	codec   engine.StateCodec
	version uint64
	// last is the state after the last durable commit, which the next
	// checkpoint writes (a Record.State, immutable).
	last any
	// empty is set while the store holds no state: the first commit then
	// writes the whole state, including the initial values no commit wrote.
	empty bool
	// pending is how the contract's fields differ from those recorded, as
	// Recover found: the next commit records the difference in its
	// transaction (recordPending), so a crash before it leaves the file
	// as the previous contract wrote it.
	pending engine.Evolution
	// rr is what the relay read last, acks its acks not written yet
	// (outbox.go).
	rr   relayRead
	acks pendingAcks
	// tail holds the messages of the latest commits for the relay
	// (tail.go).
	tail tail
	// seqs holds the last KeySeq of the keys of the messages committed
	// since the last fold, up to lastID, the ID of the last message
	// committed (see fold).
	seqs   map[outbox.TopicKey]uint64
	lastID string
	// unfolded counts the messages committed since the last fold.
	unfolded int
	// inc is the store's incarnation (see Incarnation).
	inc uint64
	// broken holds the error of a COMMIT that failed in a way that leaves
	// the file in doubt: see settle.
	broken error
	scr    scratch

	// checkpoint is the version of the active snapshot; the log holds the
	// commits after it, logBytes long. snapBytes is the snapshot's size.
	// fmu serialises checkpoints.
	checkpoint          atomic.Uint64
	logBytes, snapBytes atomic.Int64
	fmu                 sync.Mutex
	ckpt                *checkpointer

	nmu    sync.Mutex
	notify chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Option configures a Store.
type Option func(*options)

type options struct {
	retention       time.Duration
	batch           int
	fault           func(Step) error
	now             func() time.Time
	sync            string
	checkpointEvery int
	logger          *slog.Logger
	ackInterval     time.Duration
	history         time.Duration
}

// DefaultHistoryRetention is the default of WithHistoryRetention.
const DefaultHistoryRetention = 7 * 24 * time.Hour

// WithHistoryRetention sets how long the store keeps the history of
// commits that History reads (default DefaultHistoryRetention): the rows
// of the commit log are deleted by the first checkpoint after they are
// that old and folded into a snapshot. d < 0 keeps them for ever; d == 0
// keeps none past a checkpoint.
func WithHistoryRetention(d time.Duration) Option { return func(o *options) { o.history = d } }

// DefaultAckInterval is the default of WithAckInterval.
const DefaultAckInterval = 100 * time.Millisecond

// WithAckInterval sets how long a relay's acks may wait in memory for a
// commit group to carry them into the file, before they are written in a
// transaction of their own (default DefaultAckInterval). While commits
// come in, acks cost no transaction of their own; a crash loses at most
// the acks of the last interval, whose messages are then delivered again.
// d <= 0 writes every ack at once.
func WithAckInterval(d time.Duration) Option { return func(o *options) { o.ackInterval = d } }

// DefaultCheckpointEvery is the default of WithCheckpointEvery.
const DefaultCheckpointEvery = 10_000

// WithCheckpointEvery sets how often the store writes a checkpoint, a
// snapshot of the whole state, in the background: once the commit log
// holds n commits (default DefaultCheckpointEvery) and at least as many
// bytes as the last snapshot. A restart reads the snapshot and replays the
// log after it, so its time is bounded by about twice the time to read the
// state, and a large state is not rewritten more often than its size in
// log has been written. n <= 0 turns automatic checkpoints off: only
// Checkpoint writes one.
func WithCheckpointEvery(n int) Option { return func(o *options) { o.checkpointEvery = n } }

// WithLogger sets where the store logs the failures of its background
// work (a checkpoint that failed and will be retried); default
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
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

// Step is a point inside Commit or a checkpoint where WithFaultHook may
// inject a failure.
type Step int

const (
	// BeforeWrite: the commit's transaction is open and nothing is
	// written yet.
	BeforeWrite Step = iota
	// BeforeSync: everything is written in the commit's transaction, which
	// is not committed, and so not synced, yet.
	BeforeSync
	// CheckpointBeforeWrite: a checkpoint's transaction is open and
	// nothing is folded yet.
	CheckpointBeforeWrite
	// CheckpointBeforeSync: a checkpoint's transaction has folded log rows
	// into the state tables and deleted them, and is not committed yet.
	CheckpointBeforeSync
	// AfterSync: the commit's transaction is committed and synced. An
	// error here is taken for a failure of COMMIT itself, as when the sync
	// reports an I/O error for a transaction that did reach the disk.
	AfterSync
	// MigrateBeforeSync: the transaction of a migration on recovery
	// (engine.Migrate) has written the converted state and the new types,
	// and is not committed yet.
	MigrateBeforeSync

	noStep Step = -1 // no fault hook
)

func (s Step) String() string {
	switch s {
	case BeforeWrite:
		return "before write"
	case BeforeSync:
		return "before sync"
	case CheckpointBeforeWrite:
		return "checkpoint before write"
	case CheckpointBeforeSync:
		return "checkpoint before sync"
	case AfterSync:
		return "after sync"
	case MigrateBeforeSync:
		return "migrate before sync"
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// WithFaultHook calls f at each Step of every Commit and checkpoint; an
// error from f fails the commit or checkpoint there, and its transaction
// is rolled back (at AfterSync, it is committed and the error counts as
// one of COMMIT). It exists to test that a failing store leaves nothing
// behind.
func WithFaultHook(f func(Step) error) Option { return func(o *options) { o.fault = f } }

// ErrInUse is returned (wrapped) by Recover, and so by engine.New, when
// another engine already writes the store's database file: an engine in
// another process, another Store of this process on the same file under
// whatever name (a symbolic link, a hard link, another path), or an engine
// that recovered this very Store before. Two engines on one file would
// each commit from their own view of the state. Relays and readers may
// open a store that an engine writes; only the engine claims the file,
// from its Recover to the store's Close (a failed Recover leaves it to the
// next one), with an exclusive flock on the database file itself. The
// lock goes with the process that held it, however it ends, so a restart
// after a crash finds it free. (Where flock is not available only engines
// of the same process are detected.)
var ErrInUse = errors.New("another engine writes this store's file (one engine per file)")

// Open opens (creating it if needed) the SQLite database at path, in WAL
// mode with synchronous=FULL: a Commit returns only once it is synced. ctx
// bounds the opening. The store's owner closes it, after the relays and
// the engine that use it have stopped.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{retention: 24 * time.Hour, batch: 1000, now: time.Now, sync: "FULL",
		checkpointEvery: DefaultCheckpointEvery, logger: slog.Default(), ackInterval: DefaultAckInterval,
		history: DefaultHistoryRetention}
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
	file, err := openFile(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + o.sync + ")"
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		file.release(nil)
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		file.release(nil)
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &Store{w: w, r: r, opts: o, path: path, file: file}
	s.acks.delivered = make(map[string]int64)
	s.acks.timer = time.AfterFunc(time.Hour, s.flushAcksLater)
	s.acks.timer.Stop()
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.startCheckpointer()
	return s, nil
}

// init creates the tables, or checks the layout version of an existing
// store and upgrades it from layout 1, in one transaction.
func (s *Store) init(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS theus_meta (
		name  TEXT PRIMARY KEY,
		value TEXT NOT NULL
	) WITHOUT ROWID`); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v string
	err = tx.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'schema'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err = tx.ExecContext(ctx, schema); err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO theus_meta (name, value) VALUES ('schema', ?), ('incarnation', ?)`,
				schemaVersion, newIncarnation(0))
		}
	case err != nil:
	case v == "1":
		err = upgrade1(ctx, tx)
	case v == "2":
		err = upgrade2(ctx, tx)
	case v != schemaVersion:
		err = fmt.Errorf("the store's layout is version %s; this build reads version %s", v, schemaVersion)
	}
	if err != nil {
		return err
	}
	if s.inc, err = readIncarnation(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Close stops the background checkpoints (one under way is rolled back)
// and closes the database, leaving the file to the next engine. Commits
// and acks after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.ckpt != nil {
			s.ckpt.stop()
		}
		// Acks not written yet: the commits are done, write them now.
		s.acks.timer.Stop()
		ferr := s.flushAcks(context.Background())
		s.rr.mu.Lock()
		rerr := errors.Join(ferr, s.closeReadConn())
		s.rr.mu.Unlock()
		s.closeErr = errors.Join(s.closeWriteConn(), rerr, s.r.Close(), s.w.Close())
		// Only now that SQLite has closed the file: see dbFile.
		s.closeErr = errors.Join(s.closeErr, s.file.release(s))
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
	_ engine.Store      = (*Store)(nil)
	_ engine.Incarnated = (*Store)(nil)
	_ outbox.Parking    = (*Store)(nil)
	_ outbox.Pruner     = (*Store)(nil)
)
