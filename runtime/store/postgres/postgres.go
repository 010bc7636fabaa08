package postgres

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// layoutVersion is the layout of the tables below. Open upgrades a store
// of an earlier layout (see upgrades) and refuses a later one.
const layoutVersion = 5

// upgrades[v] turns a store of layout v into one of layout v+1; upgrades[0]
// creates the tables of an empty schema. Every statement names its tables
// through the {s} placeholder, the quoted schema.
var upgrades = []string{
	`
CREATE TABLE IF NOT EXISTS {s}.theus_head (
	id      integer PRIMARY KEY CHECK (id = 1),
	version bigint NOT NULL
);
INSERT INTO {s}.theus_head (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.theus_fields (
	path       text PRIMARY KEY,
	type       text NOT NULL,
	collection boolean NOT NULL,
	value      bytea,
	version    bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.theus_entries (
	path    text NOT NULL,
	key     text NOT NULL,
	value   bytea NOT NULL,
	version bigint NOT NULL,
	PRIMARY KEY (path, key)
);
CREATE TABLE IF NOT EXISTS {s}.theus_log (
	version  bigint PRIMARY KEY,
	grp      bigint NOT NULL,
	process  text NOT NULL,
	at       bigint NOT NULL,
	writes   bytea NOT NULL,
	vals     bytea NOT NULL,
	key_seqs bytea NOT NULL,
	ids      bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS theus_log_at ON {s}.theus_log (at);
CREATE TABLE IF NOT EXISTS {s}.theus_key_seqs (
	topic text NOT NULL,
	key   text NOT NULL,
	seq   bigint NOT NULL,
	PRIMARY KEY (topic, key)
);
CREATE TABLE IF NOT EXISTS {s}.theus_outbox (
	id           text PRIMARY KEY,
	version      bigint NOT NULL,
	idx          integer NOT NULL,
	topic        text NOT NULL,
	key          text NOT NULL,
	key_seq      bigint NOT NULL,
	payload      bytea NOT NULL,
	headers      text,
	created_at   bigint NOT NULL,
	state        text NOT NULL DEFAULT 'pending',
	attempts     integer NOT NULL DEFAULT 0,
	last_error   text,
	delivered_at bigint
);
CREATE INDEX IF NOT EXISTS theus_outbox_pending ON {s}.theus_outbox (version, idx) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS theus_outbox_parked ON {s}.theus_outbox (topic, key) WHERE state = 'parked';
CREATE INDEX IF NOT EXISTS theus_outbox_delivered ON {s}.theus_outbox (delivered_at) WHERE state = 'delivered';
`,
	// Layout 2: the relay fleet (fleet.go). Each message belongs to a
	// partition of the key space; relays lease partitions. The partitions
	// of the messages written before are set by init, which knows their
	// count.
	`
ALTER TABLE {s}.theus_outbox ADD COLUMN IF NOT EXISTS part integer NOT NULL DEFAULT -1;
CREATE TABLE IF NOT EXISTS {s}.theus_leases (
	part    integer PRIMARY KEY,
	holder  text NOT NULL DEFAULT '',
	token   bigint NOT NULL DEFAULT 0,
	expires timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE TABLE IF NOT EXISTS {s}.theus_relays (
	holder  text PRIMARY KEY,
	expires timestamptz NOT NULL
);
`,
	// Layout 3: acks as a cursor per partition (outbox.go). A pending
	// message at or before its partition's cursor (acked_version,
	// acked_idx) is delivered; the relay that holds the partition moves
	// the cursor, fenced like every write, instead of updating the rows.
	// Relays read each partition after its cursor through
	// theus_outbox_part_pending; theus_ack_marks records where the
	// cursors were when Prune ran, so it deletes what was delivered
	// longer than the retention ago.
	`
ALTER TABLE {s}.theus_leases
	ADD COLUMN IF NOT EXISTS acked_version bigint NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS acked_idx integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS acked_at bigint NOT NULL DEFAULT 0;
ALTER TABLE {s}.theus_leases SET (fillfactor = 50);
CREATE INDEX IF NOT EXISTS theus_outbox_part_pending ON {s}.theus_outbox (part, version, idx) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS theus_outbox_part_parked ON {s}.theus_outbox (part) WHERE state = 'parked';
DROP INDEX IF EXISTS {s}.theus_outbox_pending;
CREATE TABLE IF NOT EXISTS {s}.theus_ack_marks (
	part    integer NOT NULL,
	version bigint NOT NULL,
	idx     integer NOT NULL,
	at      bigint NOT NULL,
	PRIMARY KEY (part, version, idx)
);
`,
	// Layout 4: a relay holds a session-level advisory lock (lock_key)
	// for as long as it runs (fleet.go): once its session is gone, its
	// leases are free without waiting for them to expire. A relay that
	// takes none (NULL) is gone when its beat expires.
	`
ALTER TABLE {s}.theus_relays ADD COLUMN IF NOT EXISTS lock_key bigint;
`,
	// Layout 5: every Store that listens for commits is registered with
	// the expiry of its last beat (listeners.go); a group notifies only
	// when another one is.
	`
CREATE TABLE IF NOT EXISTS {s}.theus_listeners (
	id      bigint PRIMARY KEY,
	expires timestamptz NOT NULL
);
`,
}

// Store is a durable engine.SharedStore and outbox.Store on PostgreSQL.
// Several Stores, in one process or many, open on one database schema
// share one state, one history and one outbox: each engine runs on a
// Store of its own (Recover claims a Store for one engine). It also
// implements engine.HistoryReader, outbox.Parking, outbox.Pruner,
// outbox.StatsReader and outbox.RelayClaimer.
type Store struct {
	pool   *pgxpool.Pool
	opts   options
	schema string // quoted
	// tables holds the statements with the schema filled in.
	q queries
	// channel is the NOTIFY channel of commits on this schema.
	channel string
	// secret is the DSN's password, as written in it and as parsed,
	// kept out of every error and log line (redact).
	secret []string
	inc    uint64
	// pids maps the backend of each pooled connection to its start
	// time, to end a backend in doubt (resolve) and no other.
	pids sync.Map // uint32 -> time.Time

	// cmu serialises commits and guards what Recover sets.
	cmu     sync.Mutex
	codec   engine.StateCodec
	claimed bool
	// version is the last version this Store knows to be durable.
	version uint64
	// calm tells whether a group tries one round trip (commitAt).
	calm  calm
	trips trips
	// lockOnly makes every group take the head row's lock (benchmarks).
	lockOnly atomic.Bool
	// unheard is set when the last group's notify statement found no
	// other Store listening (batch).
	unheard bool
	// unapplied: a group is in the database after commits of other
	// instances that the engine could not apply; groups take the head
	// row's lock until it has (ErrCommittedUnapplied).
	unapplied bool
	scr       scratch
	// pending is how the contract's fields differ from those recorded, as
	// Recover found: the next commit records the difference in its
	// transaction (recordPending), so until then the schema is as the
	// previous contract left it.
	pending engine.Evolution

	// The listener (follow.go), registered by its id (listeners.go).
	listener int64
	lmu      sync.Mutex
	changed  chan struct{}
	listenOn bool
	stop     context.CancelFunc
	wg       sync.WaitGroup
	heard    heard
	// seal encrypts and authenticates the commits that notifications
	// carry (notice).
	seal cipher.AEAD

	relay sync.Mutex // held while a relay's claim is (outbox.go)
	held  bool
	// parts is the number of partitions of the key space (fleet.go), as
	// stored in theus_meta.
	parts int
	fleet fleet

	closeOnce sync.Once
	closed    chan struct{}
}

// Option configures a Store.
type Option func(*options)

type options struct {
	schema    string
	history   time.Duration
	retention time.Duration
	batch     int
	logger    *slog.Logger
	now       func() time.Time
	poll      time.Duration
	fault     func(Step) error
	parts     int           // 0: the stored count, or DefaultPartitions
	lease     time.Duration // see WithRelayLease
	// notifyValues: notifications carry the commits (WithNotifyValues).
	notifyValues bool
}

// DefaultSchema is the default of WithSchema.
const DefaultSchema = "theus"

// WithSchema sets the PostgreSQL schema that holds the store's tables
// (default DefaultSchema), created if needed. The name must be a plain
// lower-case identifier: letters, digits and underscores, not starting
// with a digit, at most 63 bytes. Engines share a state when they open
// the same database and schema.
func WithSchema(name string) Option { return func(o *options) { o.schema = name } }

// DefaultHistoryRetention is the default of WithHistoryRetention.
const DefaultHistoryRetention = 7 * 24 * time.Hour

// WithHistoryRetention sets how long the store keeps the log of commits
// that History reads and other engines catch up from (default
// DefaultHistoryRetention); Prune deletes older rows. d < 0 keeps them for
// ever. An engine that was stopped for longer than this cannot catch up
// from the log; it starts again from the stored state when it is restarted.
func WithHistoryRetention(d time.Duration) Option { return func(o *options) { o.history = d } }

// WithRetention sets how long delivered messages are kept before Prune
// deletes them (default 24h). A negative d keeps them forever.
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithPruneBatch sets how many rows Prune deletes per statement (default
// 1000), so that pruning never holds locks for long.
func WithPruneBatch(n int) Option { return func(o *options) { o.batch = max(n, 1) } }

// WithLogger sets where the store logs what it retries in the background
// (a lost LISTEN connection, a commit whose outcome it is resolving);
// default slog.Default(). The DSN's password never reaches it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// DefaultPollInterval is the default of WithPollInterval.
const DefaultPollInterval = time.Second

// WithPollInterval sets how often an idle engine, and a relay, look for
// commits of other instances when no notification came (default
// DefaultPollInterval). Notifications (LISTEN/NOTIFY) wake them within
// milliseconds; polling is only the backstop for a lost notification
// connection.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithNotifyValues sets whether the notification of a commit group
// (NOTIFY, which wakes the other instances) carries the group's commits,
// the values written included, when they fit in a payload (about 5,900
// bytes of log rows), and whether the Store applies the commits that
// notifications carry. The default, true, lets an idle instance apply a
// commit without reading the log, a round trip fewer. Any role that can
// connect to the database can LISTEN and NOTIFY on any channel
// (PostgreSQL checks no privilege): the commits are therefore encrypted
// and authenticated (AES-GCM) with a key kept in the store's theus_meta
// table, so that only roles that can read that table can read or forge
// them. With false, notifications carry the version only and instances
// read the log.
func WithNotifyValues(on bool) Option { return func(o *options) { o.notifyValues = on } }

// WithClock sets the clock that stamps delivered_at and decides what
// Prune deletes (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// Step is a point inside a commit where WithFaultHook may inject a
// failure.
type Step int

const (
	// BeforeWrite: nothing is written yet. A group that took the head
	// row's lock holds it and is rebased; a group in one round trip has
	// sent nothing.
	BeforeWrite Step = iota
	// BeforeCommit: the statements that write the group are ready, and
	// about to be sent with COMMIT, in one pipeline (BEGIN and the move
	// of the head first, for a group in one round trip); a group that
	// took the head row's lock holds it.
	BeforeCommit
	// AfterCommit: COMMIT succeeded. An error here is taken for a failure
	// of COMMIT whose outcome is unknown (a connection lost before the
	// reply came back): the store finds out that the transaction did
	// commit.
	AfterCommit
	// BeforeApply: a group in one round trip committed after commits of
	// other instances, which the engine is about to apply. An error here
	// is taken for the engine's failure to apply them
	// (ErrCommittedUnapplied).
	BeforeApply
)

func (s Step) String() string {
	switch s {
	case BeforeWrite:
		return "before write"
	case BeforeCommit:
		return "before commit"
	case AfterCommit:
		return "after commit"
	case BeforeApply:
		return "before apply"
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// WithFaultHook calls f at each Step of every commit; an error from f
// fails the commit there (at AfterCommit, as an unknown outcome). It
// exists to test that a failing store keeps its promises.
func WithFaultHook(f func(Step) error) Option { return func(o *options) { o.fault = f } }

// DefaultPartitions is the number of partitions of a new store's key
// space unless WithPartitions says otherwise.
const DefaultPartitions = 32

// WithPartitions sets into how many partitions the key space of a new
// store is split (default DefaultPartitions): relays lease partitions, so
// the count bounds how many relays share the work. The count is fixed
// when the store's tables are created and stored with them; Open of an
// existing store with a different n fails. n is between 1 and 4096.
func WithPartitions(n int) Option { return func(o *options) { o.parts = n } }

// DefaultRelayLease is the default of WithRelayLease.
const DefaultRelayLease = 10 * time.Second

// WithRelayLease sets how long a relay's lease on a partition lasts
// without renewal (default DefaultRelayLease). A relay renews its leases
// every third of it; when a relay pauses or is cut off, its partitions go
// to the others once the lease has run out, so d bounds the stall of
// their keys. When a relay's process dies, its sessions end with it and
// the others take its partitions at their next renewal, within a third
// of d. Relays of one schema should use the same value.
func WithRelayLease(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lease = d
		}
	}
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database at dsn (a URL or a key=value string, as
// pgx reads it; pool settings such as pool_max_conns included), creates
// the store's schema and tables, or upgrades those of an earlier layout,
// and returns the store. ctx bounds the opening. The store's owner closes
// it, after the engine and relays that use it have stopped. The DSN's
// password appears in no error.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{schema: DefaultSchema, history: DefaultHistoryRetention, retention: 24 * time.Hour,
		batch: 1000, logger: slog.Default(), now: time.Now, poll: DefaultPollInterval, lease: DefaultRelayLease,
		notifyValues: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.parts < 0 || o.parts > maxPartitions {
		return nil, fmt.Errorf("postgres: %d partitions: want 1 to %d", o.parts, maxPartitions)
	}
	if !identifier.MatchString(o.schema) {
		return nil, fmt.Errorf("postgres: schema name %q: want lower-case letters, digits and underscores, not starting with a digit, at most 63 bytes", o.schema)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password of a URL, not always of key=value
		// strings: say no more than that it did not parse.
		return nil, errors.New("postgres: the DSN does not parse (want postgres://user:password@host:port/database?options or key=value pairs)")
	}
	s := &Store{opts: o, closed: make(chan struct{}), changed: make(chan struct{}), listener: newToken()}
	if pw := cfg.ConnConfig.Password; pw != "" {
		s.secret = []string{pw, url.QueryEscape(pw), url.PathEscape(pw)}
	}
	s.schema = pgx.Identifier{o.schema}.Sanitize()
	s.channel = o.schema + "_commits"
	s.q = newQueries(s.schema)
	// A process paused while its group holds the head row (a GC pause, a
	// SIGSTOP, a VM migration) holds up every instance: PostgreSQL ends
	// such a session after a while, its COMMIT then fails and is resolved
	// as not committed. The DSN may set another value.
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "10000"
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		var start time.Time
		if err := c.QueryRow(ctx, `SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&start); err != nil {
			return err
		}
		s.pids.Store(c.PgConn().PID(), start)
		return nil
	}
	cfg.BeforeClose = func(c *pgx.Conn) { s.pids.Delete(c.PgConn().PID()) }
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, s.errorf("open", err)
	}
	if err := s.init(ctx); err != nil {
		s.pool.Close()
		return nil, s.errorf("open", err)
	}
	return s, nil
}

// init creates or upgrades the tables in one transaction, under an
// advisory lock that keeps instances opening at once from racing.
func (s *Store) init(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('theus'), hashtext($1))`, s.opts.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.schema+`.theus_meta (
			name  text PRIMARY KEY,
			value text NOT NULL)`); err != nil {
			return err
		}
		layout := 0
		var v string
		err := tx.QueryRow(ctx, `SELECT value FROM `+s.schema+`.theus_meta WHERE name = 'layout'`).Scan(&v)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if layout, err = strconv.Atoi(v); err != nil || layout < 1 {
				return fmt.Errorf("the store's layout is version %q; this build reads version %d", v, layoutVersion)
			}
		}
		if layout > layoutVersion {
			return fmt.Errorf("the store's layout is version %d; this build reads version %d", layout, layoutVersion)
		}
		for ; layout < layoutVersion; layout++ {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(upgrades[layout], "{s}", s.schema)); err != nil {
				return fmt.Errorf("upgrade the store's layout from version %d: %w", layout, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s.schema+`.theus_meta (name, value) VALUES ('layout', $1), ('incarnation', $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE theus_meta.name = 'layout'`,
			strconv.Itoa(layoutVersion), strconv.FormatUint(newIncarnation(), 10)); err != nil {
			return err
		}
		var inc string
		if err := tx.QueryRow(ctx, `SELECT value FROM `+s.schema+`.theus_meta WHERE name = 'incarnation'`).Scan(&inc); err != nil {
			return err
		}
		if s.inc, err = strconv.ParseUint(inc, 10, 64); err != nil {
			return err
		}
		if err := s.initNotices(ctx, tx); err != nil {
			return err
		}
		return s.initPartitions(ctx, tx)
	})
}

// newIncarnation returns the incarnation of a new store: the time in
// milliseconds in the high bits, random low bits, never 0.
func newIncarnation() uint64 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return uint64(time.Now().UnixMilli())<<16 | uint64(binary.BigEndian.Uint16(b[:])) | 1
}

// Incarnation implements engine.Incarnated: the incarnation recorded when
// the store's tables were created, the same for every instance.
func (s *Store) Incarnation() uint64 { return s.inc }

// Close stops the store's background work and closes its connections.
// Commits and reads after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.lmu.Lock()
		if s.stop != nil {
			s.stop()
		}
		listened := s.listenOn
		s.lmu.Unlock()
		s.wg.Wait()
		if listened {
			s.unregister()
		}
		s.pool.Close()
	})
	return nil
}

// errorf wraps err for op, with the DSN's password taken out.
func (s *Store) errorf(op string, err error) error {
	return redact(fmt.Errorf("postgres: %s: %w", op, err), s.secret...)
}

// redactedError is an error whose text had a secret taken out. It unwraps
// to the original only when that one's text does not hold the secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err without any of secrets in its text.
func redact(err error, secrets ...string) error {
	shows := func(e error) bool {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(e.Error(), sec) {
				return true
			}
		}
		return false
	}
	if err == nil || !shows(err) {
		return err
	}
	msg := err.Error()
	for _, sec := range secrets {
		if sec != "" {
			msg = strings.ReplaceAll(msg, sec, "xxxxx")
		}
	}
	r := &redactedError{msg: msg}
	// Keep the chain only as far as it does not show the secret.
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		if !shows(u) {
			r.err = u
			break
		}
	}
	return r
}

var (
	_ engine.SharedStore   = (*Store)(nil)
	_ engine.Incarnated    = (*Store)(nil)
	_ engine.HistoryReader = (*Store)(nil)
	_ outbox.Parking       = (*Store)(nil)
	_ outbox.Pruner        = (*Store)(nil)
	_ outbox.RelayClaimer  = (*Store)(nil)
	_ outbox.StatsReader   = (*Store)(nil)
)

// RedactDSN returns dsn as it may be printed: a URL with its password
// replaced by xxxxx, key=value pairs with the password's value replaced,
// anything else as "postgres://…".
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	if strings.Contains(dsn, "=") {
		f := strings.Fields(dsn)
		for i, kv := range f {
			if k, _, ok := strings.Cut(kv, "="); ok && k == "password" {
				f[i] = "password=xxxxx"
			}
		}
		return strings.Join(f, " ")
	}
	return "postgres://…"
}
