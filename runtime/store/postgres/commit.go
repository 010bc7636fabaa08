package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// ErrUnknownOutcome is returned (wrapped) by a commit whose COMMIT failed
// in a way that leaves its outcome in doubt and that the store could not
// resolve before it was closed: the commit may or may not be in the
// database (the next engine to start reads what is). While the store is
// open, it resolves every such outcome (DESIGN.md, invariant 11).
var ErrUnknownOutcome = errors.New("the commit's outcome is unknown: the connection broke during COMMIT and the store was closed before it could read it back")

// ErrCommittedUnapplied is returned (wrapped) by a commit group that is in
// the database, numbered after commits of other instances that the engine
// then could not apply (it could not read them back, or decode them: an
// instance of another contract on the same schema): its callers get an
// error, yet their commits happened and their messages will be delivered.
// Until the engine can apply those commits, its next groups take the head
// row's lock, which hands it the others' commits before anything is
// written, and fail with nothing written.
var ErrCommittedUnapplied = errors.New("committed after other instances' commits that the engine could not apply")

// commitTimeout bounds one attempt at a commit's transaction: the engine
// hands a group over without a deadline, and a connection that hangs must
// not stall every caller of the group for ever.
const commitTimeout = 30 * time.Second

// queries holds the statements, with the schema filled in.
type queries struct {
	lockHead, head, readLog, insertLog, updateFields, upsertEntries, deleteEntries,
	insertFields, insertEntries, upsertKeySeqs, insertMessages, setHead, moveHead, setBase, others, notify, readBack string
	// at are the statements that write a group in one round trip, whose
	// versions move by theus.d, which moveHead sets (see commitAt).
	at struct{ insertLog, updateFields, upsertEntries, insertMessages, notify string }
}

// shift is the number of versions that other instances committed after
// a group's base, as moveHead found it (commitAt).
const shift = `current_setting('theus.d')::bigint`

func newQueries(schema string) queries {
	f := func(q string) string { return strings.ReplaceAll(q, "{s}", schema) }
	q := queries{
		lockHead: f(`SELECT version FROM {s}.theus_head WHERE id = 1 FOR UPDATE`),
		head:     f(`SELECT version FROM {s}.theus_head WHERE id = 1`),
		readLog: f(`SELECT version, process, at, writes, vals, key_seqs, ids FROM {s}.theus_log
			WHERE version > $1 AND version <= $2 ORDER BY version LIMIT $3`),
		insertLog: f(`INSERT INTO {s}.theus_log (version, grp, process, at, writes, vals, key_seqs, ids)
			SELECT v, $2, p, a, w, x, k, i FROM unnest($1::bigint[], $3::text[], $4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[]) AS u(v, p, a, w, x, k, i)`),
		updateFields: f(`UPDATE {s}.theus_fields f SET value = u.value, version = u.version
			FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS u(path, value, version) WHERE f.path = u.path`),
		upsertEntries: f(`INSERT INTO {s}.theus_entries (path, key, value, version)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[])
			ON CONFLICT (path, key) DO UPDATE SET value = excluded.value, version = excluded.version`),
		deleteEntries: f(`DELETE FROM {s}.theus_entries e USING unnest($1::text[], $2::text[]) AS u(path, key)
			WHERE e.path = u.path AND e.key = u.key`),
		insertFields: f(`INSERT INTO {s}.theus_fields (path, type, collection, value, version)
			SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::bytea[], $5::bigint[])
			ON CONFLICT (path) DO NOTHING`),
		insertEntries: f(`INSERT INTO {s}.theus_entries (path, key, value, version)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[])`),
		upsertKeySeqs: f(`INSERT INTO {s}.theus_key_seqs (topic, key, seq)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
			ON CONFLICT (topic, key) DO UPDATE SET seq = greatest(theus_key_seqs.seq, excluded.seq)`),
		insertMessages: f(`INSERT INTO {s}.theus_outbox (id, version, idx, topic, key, key_seq, payload, headers, created_at, part)
			SELECT i, v, x, t, k, q, p, nullif(h, ''), c, ` + partExpr("t", "k", "$10::int") + `
			FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::text[], $5::text[], $6::bigint[], $7::bytea[], $8::text[], $9::bigint[])
				AS u(i, v, x, t, k, q, p, h, c)`),
		setHead: f(`UPDATE {s}.theus_head SET version = $1 WHERE id = 1`),
		// Moves the head by the group's $2 commits, and sets theus.d to
		// the number of commits of other instances since the group's base
		// $1. Divides by zero, which aborts the transaction, if the head
		// was behind that base. The statements after it run their generic
		// plans: the server would plan the others statement and the
		// writes (arrays of parameters under unnest) for every group.
		moveHead: f(`WITH h AS (UPDATE {s}.theus_head SET version = version + $2 WHERE id = 1 RETURNING version - $2 AS old)
			SELECT set_config('theus.d', (max(old) - $1)::text, true), set_config('plan_cache_mode', 'force_generic_plan', true),
				1 / (CASE WHEN count(*) = 1 AND max(old) >= $1 THEN 1 ELSE 0 END) FROM h`),
		// Moves the head from the group's base $1 to its last version $2,
		// for a group that reads no commits of other instances (alone, or
		// counting as reading everything); divides by zero unless the head
		// was at $1. It sets neither theus.d nor plan_cache_mode: with
		// them an instance alone lost up to 12% of its commits/s at 8
		// callers (the server's CPU per commit, not the client's), and
		// its statements, which theus.d does not move, gain nothing by
		// generic plans.
		setBase: f(`WITH h AS (UPDATE {s}.theus_head SET version = $2 WHERE id = 1 AND version = $1 RETURNING 1)
			SELECT 1 / count(*) FROM h`),
		// The commits of other instances after the group's base, read in a
		// statement of their own, whose snapshot is taken after moveHead
		// waited for the head row: dividing by zero if one overlaps the
		// group's footprint, by the needles $2 (in its writes) and $3 (in
		// its KeySeqs).
		others: f(`SELECT version, process, at, writes, vals, key_seqs, ids,
				1 / (CASE WHEN EXISTS (SELECT 1 FROM unnest($2::bytea[]) n WHERE position(n IN writes) > 0)
					OR EXISTS (SELECT 1 FROM unnest($3::bytea[]) n WHERE position(n IN key_seqs) > 0) THEN 0 ELSE 1 END)
			FROM {s}.theus_log WHERE version > $1 AND version <= $1 + ` + shift + ` ORDER BY version`),
		// Notifies only when a Store other than this one ($3) listens
		// (listeners.go).
		notify:   f(`SELECT pg_notify($1, $2) FROM {s}.theus_listeners WHERE id <> $3 AND expires > clock_timestamp() LIMIT 1`),
		readBack: f(`SELECT min(version) FROM {s}.theus_log WHERE version > $1 AND grp = $2`),
	}
	q.at.insertLog = strings.Replace(q.insertLog, "SELECT v, $2, p, a, w, x, k, i FROM",
		// The message IDs of the ids column rewritten with the version
		// moved: each is a length byte L-1 and L-1 bytes, the version's 16
		// hex digits 21 bytes from its end (outbox.MessageID).
		`SELECT v + `+shift+`, $2, p, a, w, x, k, CASE WHEN `+shift+` = 0 OR length(i) = 0 THEN i ELSE
			(SELECT string_agg(substr(i, j * (get_byte(i, 0) + 1) + 1, get_byte(i, 0) - 20)
					|| convert_to(lpad(to_hex(v + `+shift+`), 16, '0'), 'UTF8')
					|| substr(i, (j + 1) * (get_byte(i, 0) + 1) - 4, 5), ''::bytea ORDER BY j)
				FROM generate_series(0, length(i) / (get_byte(i, 0) + 1) - 1) AS j) END FROM`, 1)
	q.at.updateFields = strings.Replace(q.updateFields, "version = u.version", "version = u.version + "+shift, 1)
	q.at.upsertEntries = strings.Replace(q.upsertEntries, "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[])",
		"SELECT p, k, x, v + "+shift+" FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) AS u(p, k, x, v)", 1)
	q.at.insertMessages = strings.Replace(q.insertMessages, "SELECT i, v, x,",
		"SELECT CASE WHEN "+shift+" = 0 THEN i ELSE left(i, -21) || lpad(to_hex(v + "+shift+"), 16, '0') || right(i, 5) END, v + "+shift+", x,", 1)
	// The sealed payload names the versions: with other instances'
	// commits before the group, the notice names its last version only.
	q.at.notify = strings.Replace(q.notify, "pg_notify($1, $2)", "pg_notify($1, CASE WHEN "+shift+" = 0 THEN $2 ELSE ($4::bigint + "+shift+")::text END)", 1)
	return q
}

// scratch is what a commit builds its statements' arguments in (cmu).
type scratch struct {
	buf []byte
	// needles holds the bytes of the needles of a group's footprint, at,
	// their ends, and writes and keys the needles (see needles).
	needles      []byte
	at           []int
	writes, keys [][]byte
}

// Commit implements engine.Store, for an engine alone on the store: it is
// CommitShared without rebase, and fails if another engine committed
// after recs[0].Version-1.
func (s *Store) Commit(ctx context.Context, recs []*engine.Record) error {
	return s.CommitShared(ctx, recs, nil, nil)
}

// CommitShared implements engine.SharedStore. Every group is one
// transaction, which locks the head row first: that serialises the groups
// of every instance. It writes the log rows, the state values the group
// left, the messages, the KeySeqs and the new head, notifies the other
// instances (NOTIFY, delivered at COMMIT), and commits. A group goes in
// one round trip (commitAt) unless the commits of other instances since
// its base overlap its footprint fp; then it takes the head row's lock,
// reads those commits and hands them to rebase before it writes (locked).
// Each log row carries a token of its group, by which a COMMIT whose
// outcome is unknown is resolved (resolve).
func (s *Store) CommitShared(ctx context.Context, recs []*engine.Record, fp *engine.Footprint, rebase func([]engine.Remote, bool) ([]*engine.Record, error)) error {
	if len(recs) == 0 {
		return nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.codec == nil {
		return errors.New("postgres: Commit before Recover: the store has no state codec (use it through engine.WithStore)")
	}
	select {
	case <-s.closed:
		return errors.New("postgres: commit: the store is closed")
	default:
	}
	if err := consecutive(recs, recs[0].Version); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	first, last := recs[0].Version, recs[len(recs)-1].Version
	recs, err := s.commit(ctx, recs, fp, rebase)
	if err != nil {
		if len(recs) > 0 {
			first, last = recs[0].Version, recs[len(recs)-1].Version
		}
		return s.errorf(fmt.Sprintf("commit versions %d-%d", first, last), err)
	}
	return nil
}

// consecutive checks that recs hold consecutive versions from first.
func consecutive(recs []*engine.Record, first uint64) error {
	for i, r := range recs {
		if want := first + uint64(i); r.Version != want {
			return fmt.Errorf("postgres: commit of version %d, want %d: versions must be consecutive", r.Version, want)
		}
	}
	return nil
}

// commit runs a group's transaction and returns the records it wrote (or
// tried to). s.cmu is held.
//
// A group is one round trip (commitAt): BEGIN, a move of the head row by
// the group's size, a read of the commits of other instances after the
// group's base that fails if one of them overlaps the group's footprint,
// the writes, numbered after those commits, and COMMIT, pipelined. While
// no other instance commits (alone), the group leaves out that read and
// fails instead if the head moved, and then goes again with it. When a
// commit overlaps, the group, and a few groups after it (calm), lock the
// head row first, read what the others committed and rebase on it
// (locked).
func (s *Store) commit(ctx context.Context, recs []*engine.Record, fp *engine.Footprint, rebase func([]engine.Remote, bool) ([]*engine.Record, error)) ([]*engine.Record, error) {
	if base := recs[0].Version - 1; s.calm.ok() && base > 0 && !s.lockOnly.Load() && !s.unapplied {
		if rebase == nil || fp != nil && fp.All {
			fp = nil
		}
		if fp == nil || s.calm.alone() {
			if done, recs, err := s.commitAt(ctx, recs, base, nil, rebase); done || fp == nil {
				if done {
					return recs, err
				}
				return s.locked(ctx, recs, rebase)
			}
		}
		if done, recs, err := s.commitAt(ctx, recs, base, fp, rebase); done {
			return recs, err
		}
	}
	return s.locked(ctx, recs, rebase)
}

// commitAt writes recs in one round trip, numbered after base and the
// commits of other instances after base, if those overlap nothing of fp,
// and then has rebase number recs after them as it wrote them; with fp
// nil, only if there are none. It returns done unset when nothing was
// written: a commit overlapped fp (or with fp nil, the head had moved),
// or the pooled connection was found broken before anything was sent
// (begin replaces it).
func (s *Store) commitAt(ctx context.Context, recs []*engine.Record, base uint64, fp *engine.Footprint, rebase func([]engine.Remote, bool) ([]*engine.Record, error)) (done bool, _ []*engine.Record, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return true, recs, err
	}
	c := &txConn{Conn: conn, open: true, held: true}
	defer s.release(c)
	if err := s.fault(BeforeWrite); err != nil {
		return true, recs, err
	}
	token := newToken()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// Locks the head row, first as in every group (no deadlock between
	// groups); waits for a group of another instance that holds it, then
	// sees the head it left.
	at := fp != nil // else the head must be at base: no others to read
	if at {
		b.Queue(s.q.moveHead, int64(base), int64(len(recs)))
		writes, keys := s.needles(fp)
		b.Queue(s.q.others, int64(base), writes, keys)
	} else {
		b.Queue(s.q.setBase, int64(base), int64(recs[len(recs)-1].Version))
	}
	if err := s.batch(b, recs, false, token, at); err != nil {
		return true, recs, err
	}
	if err := s.fault(BeforeCommit); err != nil {
		return true, recs, err
	}
	var others []engine.Remote
	var bad error // the others' rows, read but not decoded
	read := func(rows pgx.Rows) error {
		others, bad = s.scanRemotes(rows, base)
		var pe *pgconn.PgError
		if errors.As(bad, &pe) {
			return bad // the server's: the transaction is aborted
		}
		return nil
	}
	var r *reader
	if at {
		r = &reader{at: 2, read: read}
	}
	failed, first, err := s.send(ctx, c, b, recs, token, r)
	var pe *pgconn.PgError
	switch {
	case err == nil:
		s.trips.one.Add(1)
		s.calm.succeeded()
	case (failed == 1 || failed == 2) && errors.As(err, &pe) && pe.Code == "22012":
		if at {
			s.trips.moved.Add(1)
			s.calm.moved()
		} else {
			s.trips.notAlone.Add(1)
			s.calm.others()
		}
		return false, recs, nil
	case pgconn.SafeToRetry(err):
		return false, recs, nil
	default:
		return true, recs, err
	}
	switch {
	case first != 0: // resolved
	case bad == nil:
		first = base + 1 + uint64(len(others))
	default: // committed, but the others' rows could not be read
		if first, err = s.resolve(0, nil, base, recs[len(recs)-1].Version, token); err != nil {
			return true, recs, err
		}
	}
	if first == recs[0].Version {
		s.calm.none()
		return true, recs, nil
	}
	// Written after the others' commits: the engine applies them and
	// numbers recs as they were written.
	s.trips.renumbered.Add(1)
	s.calm.others()
	n := len(recs)
	if bad != nil || uint64(len(others)) != first-base-1 {
		others, err = s.readOthers(base, first-1)
	}
	if err == nil {
		err = s.fault(BeforeApply)
	}
	if err == nil {
		if recs, err = rebase(others, true); err == nil && len(recs) != n {
			err = fmt.Errorf("the engine kept %d of the %d commits written after versions %d-%d", len(recs), n, base+1, first-1)
		}
	}
	if err == nil {
		err = consecutive(recs, first)
	}
	if err != nil {
		// The group is in the database, numbered after commits the engine
		// does not hold: its next groups take the head row's lock, which
		// hands the engine those commits and its own before anything is
		// written, and fail with nothing written while it cannot apply
		// them.
		s.unapplied = true
		return true, recs, fmt.Errorf("versions %d-%d: %w: %w", first, first+uint64(n)-1, ErrCommittedUnapplied, err)
	}
	s.version = recs[n-1].Version
	return true, recs, nil
}

// needles returns what the others statement looks for in the log rows of
// other instances' commits to find one that overlaps fp: in their writes
// column, a path of fp.Paths (a write at or below it: its bytes are a
// prefix of the write's path; a write elsewhere that holds them too is
// taken for an overlap, which only costs the locked path) and a path
// and key of fp.Entries, encoded as the column encodes them; in their
// key_seqs column, a topic and key of fp.Keys.
func (s *Store) needles(fp *engine.Footprint) (writes, keys [][]byte) {
	sc := &s.scr
	sc.needles, sc.at = sc.needles[:0], sc.at[:0]
	for _, p := range fp.Paths {
		sc.needles = append(sc.needles, p...)
		sc.at = append(sc.at, len(sc.needles))
	}
	for _, e := range fp.Entries {
		sc.needles = appendStr(appendStr(sc.needles, e.Path), e.Key)
		sc.at = append(sc.at, len(sc.needles))
	}
	nwrites := len(sc.at)
	for _, k := range fp.Keys {
		sc.needles = appendStr(appendStr(sc.needles, k.Topic), k.Key)
		sc.at = append(sc.at, len(sc.needles))
	}
	sc.writes, sc.keys = sc.writes[:0], sc.keys[:0]
	start := 0
	for i, e := range sc.at {
		if i < nwrites {
			sc.writes = append(sc.writes, sc.needles[start:e:e])
		} else {
			sc.keys = append(sc.keys, sc.needles[start:e:e])
		}
		start = e
	}
	return sc.writes, sc.keys
}

// readOthers reads the commits after version after up to upTo, which a
// group that committed after them did not read in its transaction (its
// outcome was resolved), retrying until it has them or the store is
// closed.
func (s *Store) readOthers(after, upTo uint64) ([]engine.Remote, error) {
	var others []engine.Remote
	err := s.retry("postgres: read the commits of other instances before a group's", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		defer cancel()
		var err error
		if others, err = s.readRemotes(ctx, s.pool, after, upTo, 0); err == nil && uint64(len(others)) != upTo-after {
			err = fmt.Errorf("the log holds %d commits after version %d up to %d", len(others), after, upTo)
		}
		return err
	}, "versions", fmt.Sprintf("%d-%d", after+1, upTo))
	if err != nil {
		return nil, fmt.Errorf("the store was closed before it could read versions %d-%d, committed by other instances before the group: %w", after+1, upTo, err)
	}
	return others, nil
}

// retry calls try until it succeeds, logging each failure (msg, attrs)
// and waiting between tries (10 ms, doubling up to 5 s); once the store is
// closed, it returns try's last error.
func (s *Store) retry(msg string, try func() error, attrs ...any) error {
	backoff := 10 * time.Millisecond
	for {
		err := try()
		if err == nil {
			return nil
		}
		s.opts.logger.Warn(msg, append(attrs, "err", redact(err, s.secret...), "in", backoff)...)
		select {
		case <-s.closed:
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// locked runs a group's transaction under the head row's lock, taken
// first, and rebases the group on the commits of other instances it
// finds.
func (s *Store) locked(ctx context.Context, recs []*engine.Record, rebase func([]engine.Remote, bool) ([]*engine.Record, error)) ([]*engine.Record, error) {
	token := newToken()
	var first *pgx.Batch
	if s.version == 0 {
		// Likely the first commit to the schema, which writes the whole
		// state: encoded before the head row is locked, since a large
		// state takes a while (see idle_in_transaction_session_timeout).
		first = &pgx.Batch{}
		if err := s.batch(first, recs, true, token, false); err != nil {
			return recs, err
		}
	}
	base := recs[0].Version - 1
	conn, head, others, err := s.begin(ctx, base)
	if err != nil {
		return recs, err
	}
	c := &txConn{Conn: conn, open: true, held: true}
	defer s.release(c)
	s.calm.locked()
	if uint64(head) > base {
		s.calm.others()
	} else {
		s.calm.none()
	}
	switch h := uint64(head); {
	case h < base:
		return recs, fmt.Errorf("the store is at version %d, before the engine's %d: was the database restored from an older backup? Restart the engine", h, base)
	case h > base:
		if rebase == nil {
			return recs, fmt.Errorf("another engine committed versions %d-%d after version %d", base+1, h, base)
		}
		if len(others) == 0 || others[len(others)-1].Version != h {
			return recs, fmt.Errorf("the head is at version %d, the log after version %d ends at %d", h, base, base+uint64(len(others)))
		}
		if recs, err = rebase(others, false); err != nil {
			return recs, err
		}
		if len(recs) == 0 {
			s.version = h
			return nil, nil
		}
		if err := consecutive(recs, h+1); err != nil {
			return recs, err
		}
	}
	s.unapplied = false // the engine holds every commit up to the head
	if err := s.fault(BeforeWrite); err != nil {
		return recs, err
	}
	b := first // head 0: nothing to rebase on, recs are as they came
	if head != 0 || b == nil {
		b = &pgx.Batch{}
		if err = s.batch(b, recs, head == 0, token, false); err != nil {
			return recs, err
		}
	}
	b.Queue(s.q.setHead, int64(recs[len(recs)-1].Version))
	if err := s.fault(BeforeCommit); err != nil {
		return recs, err
	}
	_, _, err = s.send(ctx, c, b, recs, token, nil)
	return recs, err
}

// calm decides whether a group tries one round trip (commitAt), which
// fails when another instance's commit overlaps it: after a run of groups
// that took the head row's lock, a run that doubles (up to maxCalm) every
// time a try fails, and halves when one succeeds.
//
// It also decides whether the group is alone (no other instance
// committed before the last few groups), and leaves out the read of the
// others' commits.
type calm struct {
	run, need int
	quiet     int // groups in a row that met no commit of another instance
}

const (
	maxCalm = 64
	// minQuiet groups in a row that met no other instance's commit make
	// an instance alone.
	minQuiet = 8
)

func (c *calm) alone() bool { return c.quiet >= minQuiet }

// others records a group that met commits of other instances; none, one
// that met none.
func (c *calm) others() { c.quiet = 0 }
func (c *calm) none()   { c.quiet++ }

func (c *calm) ok() bool { return c.run >= c.need }

// locked records a group that took the head row's lock.
func (c *calm) locked() { c.run++ }

func (c *calm) moved() {
	c.run, c.need = 0, min(max(2*c.need, 1), maxCalm)
}

func (c *calm) succeeded() { c.need /= 2 }

// trips counts the groups committed in one round trip, those of them
// numbered after commits of other instances, and the groups that found
// such a commit overlapping theirs (tests).
type trips struct {
	one, renumbered, moved atomic.Uint64
	// notAlone counts the groups that, alone, found the head moved.
	notAlone atomic.Uint64
}

// txConn is a connection that may hold an open transaction.
type txConn struct {
	*pgxpool.Conn
	open bool // the transaction may be open
	held bool // the connection is to be released
}

// release rolls back what c may hold open and releases c.
func (s *Store) release(c *txConn) {
	if c.open {
		s.rollback(c.Conn)
	}
	if c.held {
		c.Release()
	}
}

// reader reads the rows of the statement at index at of a batch; it
// returns an error of the server only, which ends the batch.
type reader struct {
	at   int
	read func(pgx.Rows) error
}

// send runs b, the statements that write recs (the group of token) in
// the transaction open on c, and COMMIT, in one pipeline, one round trip:
// if a statement fails, the server skips the rest, COMMIT included; r,
// if not nil, reads the rows of one of them. It returns the index of the
// statement that failed, if one did, and the version of the group's
// first commit in the database when it resolved a COMMIT whose outcome
// was unknown (invariant 11), which it does before it returns.
func (s *Store) send(ctx context.Context, c *txConn, b *pgx.Batch, recs []*engine.Record, token int64, r *reader) (failed int, resolved uint64, err error) {
	b.Queue("COMMIT")
	pid := c.Conn.Conn().PgConn().PID()
	start, _ := s.pids.Load(pid)
	base, last := recs[0].Version-1, recs[len(recs)-1].Version
	failed, err = execBatch(ctx, c.Conn, b, r, func(i int, tag pgconn.CommandTag) {
		if q := b.QueuedQueries[i].SQL; q == s.q.notify || q == s.q.at.notify {
			s.unheard = tag.RowsAffected() == 0 // see batch
		}
	})
	if err == nil {
		c.open = false
		err = s.fault(AfterCommit)
	}
	if err != nil {
		if notCommitted(err) {
			return failed, 0, err
		}
		// The connection is in doubt: resolve ends its backend, and it
		// must not go back to the pool.
		// Released first: with a pool of one, resolve needs it.
		c.open, c.held = false, false
		c.Conn.Conn().Close(context.Background())
		c.Conn.Release()
		first, rerr := s.resolve(pid, start, base, last, token)
		if rerr != nil {
			return -1, 0, fmt.Errorf("%w (COMMIT failed: %v)", rerr, err)
		}
		if first == 0 {
			return -1, 0, fmt.Errorf("the connection failed (%w) and the store read back that the transaction did not commit", err)
		}
		s.opts.logger.Warn("postgres: COMMIT failed but the store read back that its transaction committed", "versions", fmt.Sprintf("%d-%d", first, first+uint64(len(recs))-1), "err", redact(err, s.secret...))
		resolved = first
	}
	s.version = last // or after, when commitAt's group was renumbered
	s.pending = engine.Evolution{}
	s.wake()
	return -1, resolved, nil
}

// begin starts a group's transaction, locks the head row, whose version
// it returns, and reads the commits after version after, in one round
// trip: under the lock, the log holds every commit up to the head and no
// other. A connection the pool held that turns out broken (the server
// restarted, or failed over) fails before anything is written: begin
// tries again, with backoff, as many times as the pool may hold broken
// connections (after a restart of the server, all of them).
func (s *Store) begin(ctx context.Context, after uint64) (*pgxpool.Conn, int64, []engine.Remote, error) {
	backoff := 5 * time.Millisecond
	attempts := int(s.pool.Config().MaxConns) + 2
	for attempt := 1; ; attempt++ {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return nil, 0, nil, err
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(s.q.lockHead)
		b.Queue(s.q.readLog, int64(after), int64(1<<63-1), 1<<30)
		br := conn.SendBatch(ctx, b)
		var head int64
		var others []engine.Remote
		if _, err = br.Exec(); err == nil {
			if err = br.QueryRow().Scan(&head); err == nil {
				var rows pgx.Rows
				if rows, err = br.Query(); err == nil {
					others, err = s.scanRemotes(rows, after)
				}
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			return conn, head, others, nil
		}
		s.rollback(conn)
		conn.Release()
		if attempt == attempts || !brokenConn(err) || !sleep(ctx, backoff) {
			return nil, 0, nil, err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// execBatch sends b in one round trip and runs its statements in order,
// stopping at the first that fails (the server skips the rest), whose
// index it returns (-1: none, or the failure came after them); r, if not
// nil, reads the rows of one of them; done, if not nil, is handed the
// index and tag of each other statement that succeeded.
func execBatch(ctx context.Context, conn *pgxpool.Conn, b *pgx.Batch, r *reader, done func(int, pgconn.CommandTag)) (int, error) {
	br := conn.SendBatch(ctx, b)
	failed := -1
	var err error
	for i := range b.Len() {
		if r != nil && i == r.at {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				err = r.read(rows)
				rows.Close()
				if err == nil {
					err = rows.Err()
				}
			}
		} else {
			var tag pgconn.CommandTag
			if tag, err = br.Exec(); err == nil && done != nil {
				done(i, tag)
			}
		}
		if err != nil {
			failed = i
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return failed, err
}

// rollback ends the transaction on conn, or the connection if it cannot.
func (s *Store) rollback(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn.Conn().IsClosed() {
		return
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		conn.Conn().Close(ctx)
	}
}

// brokenConn tells whether err says the connection is gone.
func brokenConn(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57")
	}
	return pgconn.Timeout(err) == false && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// notCommitted tells whether a failed COMMIT certainly left nothing: the
// server answered it with an error of the transaction (not one that ends
// the connection), or pgx never sent it.
func notCommitted(err error) bool {
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Severity == "ERROR" && !strings.HasPrefix(pe.Code, "08") && !strings.HasPrefix(pe.Code, "57")
}

// newToken returns a random nonzero group token.
func newToken() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:])>>1) | 1
}

// resolve finds out whether the group of token, numbered after version
// base (and ending at version last, unless commitAt numbered it after
// other instances' commits), whose COMMIT on the backend pid (started at
// start, when known) failed with an unknown outcome, committed, and
// returns the version of its first commit, 0 if it did not: it ends that
// backend if it still runs (its transaction then commits or aborts for
// good), waits for the head row that the transaction held, and looks for
// the group's token in the log. It retries with backoff until it knows,
// or the store is closed.
func (s *Store) resolve(pid uint32, start any, base, last uint64, token int64) (uint64, error) {
	var first uint64
	if err := s.retry("postgres: read back a commit whose COMMIT failed; retrying", func() (err error) {
		first, err = s.readBack(pid, start, base, token)
		return err
	}, "version", last); err != nil {
		return 0, ErrUnknownOutcome
	}
	return first, nil
}

func (s *Store) readBack(pid uint32, start any, base uint64, token int64) (first uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if start != nil {
		// Without the privilege (another role's backend), waiting for the
		// head row below still settles it, when the server drops the
		// backend.
		if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2`,
			int64(pid), start); err != nil {
			s.opts.logger.Warn("postgres: end the backend of a commit in doubt", "pid", pid, "err", redact(err, s.secret...))
		}
	}
	var v *int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.lockHead); err != nil {
			return err
		}
		return tx.QueryRow(ctx, s.q.readBack, int64(base), token).Scan(&v)
	})
	if err != nil || v == nil {
		return 0, err
	}
	return uint64(*v), nil
}

// batch queues on b the statements that write recs, the group of token,
// but the head; first is set when the store holds no commit yet: the
// group then writes the whole state, initial values included, and the
// state's fields; at, when the versions move by theus.d (commitAt).
func (s *Store) batch(b *pgx.Batch, recs []*engine.Record, first bool, token int64, at bool) error {
	infos := s.codec.Fields()
	last := recs[len(recs)-1]
	var err error
	if first {
		if err := s.batchFirst(b, last); err != nil {
			return err
		}
	} else {
		s.recordPending(b)
	}

	// The log: a row per commit, with the values it left.
	n := len(recs)
	versions, ats := make([]int64, n), make([]int64, n)
	procs := make([]string, n)
	writes, vals, keySeqs, ids := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
	// The state: the latest value of every field and entry the group
	// wrote, with the version that wrote it.
	type entry struct {
		i   int
		key string
	}
	fieldAt := map[int]uint64{}
	entryAt := map[entry]uint64{}
	var entryOrder []entry
	seqs := map[outbox.TopicKey]uint64{}
	var seqOrder []outbox.TopicKey
	for j, r := range recs {
		versions[j], ats[j], procs[j] = int64(r.Version), r.Time.UnixNano(), r.Process
		writes[j] = appendWrites([]byte{}, r.Writes) // nil would be NULL
		v := []byte{}
		seen := map[entry]bool{}
		for _, w := range r.Writes {
			i := s.codec.Field(w.Path)
			if i < 0 {
				return fmt.Errorf("version %d writes %s, which the state codec does not know", r.Version, w.Path)
			}
			k := entry{i, w.Key}
			if !infos[i].Collection {
				k.key = ""
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			if !infos[i].Collection {
				fieldAt[i] = r.Version
				v = append(v, valField)
				v = appendStr(v, infos[i].Path)
				s.scr.buf, err = s.codec.AppendField(s.scr.buf[:0], r.State, i)
				if err != nil {
					return err
				}
				v = appendBytes(v, s.scr.buf)
				continue
			}
			if _, ok := entryAt[k]; !ok {
				entryOrder = append(entryOrder, k)
			}
			entryAt[k] = r.Version
			var ok bool
			s.scr.buf, ok, err = s.codec.AppendEntry(s.scr.buf[:0], r.State, i, w.Key)
			if err != nil {
				return err
			}
			if ok {
				v = append(v, valEntry)
				v = appendStr(v, infos[i].Path)
				v = appendStr(v, w.Key)
				v = appendBytes(v, s.scr.buf)
			} else {
				v = append(v, valDeleted)
				v = appendStr(v, infos[i].Path)
				v = appendStr(v, w.Key)
			}
		}
		vals[j] = v
		ks := []byte{}
		last := map[outbox.TopicKey]uint64{}
		var order []outbox.TopicKey
		for i := range r.Messages {
			m := &r.Messages[i]
			tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
			if _, ok := last[tk]; !ok {
				order = append(order, tk)
			}
			last[tk] = m.KeySeq
			if _, ok := seqs[tk]; !ok {
				seqOrder = append(seqOrder, tk)
			}
			seqs[tk] = m.KeySeq
		}
		for _, tk := range order {
			ks = appendStr(ks, tk.Topic)
			ks = appendStr(ks, tk.Key)
			ks = binary.AppendUvarint(ks, last[tk])
		}
		keySeqs[j] = ks
		ids[j] = appendIDs([]byte{}, r.Messages)
	}
	insertLog, updateFields, upsertEntries := s.q.insertLog, s.q.updateFields, s.q.upsertEntries
	if at {
		insertLog, updateFields, upsertEntries = s.q.at.insertLog, s.q.at.updateFields, s.q.at.upsertEntries
	}
	b.Queue(insertLog, versions, token, procs, ats, writes, vals, keySeqs, ids)

	if len(fieldAt) > 0 {
		var paths []string
		var values [][]byte
		var vs []int64
		for i := range infos {
			v, ok := fieldAt[i]
			if !ok {
				continue
			}
			data, err := s.codec.AppendField(nil, last.State, i)
			if err != nil {
				return err
			}
			paths, values, vs = append(paths, infos[i].Path), append(values, data), append(vs, int64(v))
		}
		b.Queue(updateFields, paths, values, vs)
	}
	if len(entryOrder) > 0 {
		var pp, kk, dp, dk []string
		var values [][]byte
		var vs []int64
		for _, k := range entryOrder {
			data, ok, err := s.codec.AppendEntry(nil, last.State, k.i, k.key)
			if err != nil {
				return err
			}
			if !ok {
				dp, dk = append(dp, infos[k.i].Path), append(dk, k.key)
				continue
			}
			pp, kk, values, vs = append(pp, infos[k.i].Path), append(kk, k.key), append(values, data), append(vs, int64(entryAt[k]))
		}
		if len(pp) > 0 {
			b.Queue(upsertEntries, pp, kk, values, vs)
		}
		if len(dp) > 0 {
			b.Queue(s.q.deleteEntries, dp, dk)
		}
	}
	if len(seqOrder) > 0 {
		topics, keys := make([]string, len(seqOrder)), make([]string, len(seqOrder))
		seq := make([]int64, len(seqOrder))
		for i, tk := range seqOrder {
			topics[i], keys[i], seq[i] = tk.Topic, tk.Key, int64(seqs[tk])
		}
		b.Queue(s.q.upsertKeySeqs, topics, keys, seq)
	}
	if err := s.queueMessages(b, recs, at); err != nil {
		return err
	}
	// The payload names the last version only while the last group's
	// notification found nobody to notify (unheard): a Store that
	// registers since reads the log for this group.
	notice := strconv.FormatInt(versions[n-1], 10)
	if !s.unheard {
		notice = s.notice(versions, procs, ats, writes, vals, keySeqs, ids)
	}
	if at {
		b.Queue(s.q.at.notify, s.channel, notice, s.listener, versions[n-1])
	} else {
		b.Queue(s.q.notify, s.channel, notice, s.listener)
	}
	return nil
}

// batchFirst queues, for the first group to an empty store, the fields of
// the state and every value of the state after the group (the initial
// values no commit wrote included), and the encoding of values.
func (s *Store) batchFirst(b *pgx.Batch, last *engine.Record) error {
	infos := s.codec.Fields()
	paths, types := make([]string, len(infos)), make([]string, len(infos))
	colls := make([]bool, len(infos))
	values := make([][]byte, len(infos))
	vs := make([]int64, len(infos))
	var ep, ek []string
	var ev [][]byte
	var evs []int64
	for i, f := range infos {
		paths[i], types[i], colls[i] = f.Path, f.Type, f.Collection
		if !f.Collection {
			data, err := s.codec.AppendField(nil, last.State, i)
			if err != nil {
				return err
			}
			values[i] = data
			continue
		}
		err := s.codec.EncodeEntries(last.State, i, func(key string, data []byte) error {
			ep, ek, ev, evs = append(ep, f.Path), append(ek, key), append(ev, append([]byte(nil), data...)), append(evs, 0)
			return nil
		})
		if err != nil {
			return err
		}
	}
	b.Queue(s.q.insertFields, paths, types, colls, values, vs)
	if len(ep) > 0 {
		b.Queue(s.q.insertEntries, ep, ek, ev, evs)
	}
	b.Queue(`INSERT INTO `+s.schema+`.theus_meta (name, value) VALUES ('format', $1)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, s.codec.Format())
	return nil
}

// queueMessages queues the insert of the messages of recs, whose
// versions move by theus.d when at is set.
func (s *Store) queueMessages(b *pgx.Batch, recs []*engine.Record, at bool) error {
	var ids, topics, keys, headers []string
	var versions, seqs, created []int64
	var idxs []int32
	var payloads [][]byte
	for _, r := range recs {
		for i := range r.Messages {
			m := &r.Messages[i]
			h := ""
			if len(m.Headers) > 0 {
				data, err := json.Marshal(m.Headers)
				if err != nil {
					return err
				}
				h = string(data)
			}
			p := m.Payload
			if p == nil {
				p = []byte{}
			}
			ids, topics, keys, headers = append(ids, m.ID), append(topics, m.Topic), append(keys, m.Key), append(headers, h)
			versions, seqs, created = append(versions, int64(m.Version)), append(seqs, int64(m.KeySeq)), append(created, m.CreatedAt.UnixNano())
			idxs, payloads = append(idxs, int32(i)), append(payloads, p)
		}
	}
	if len(ids) > 0 {
		q := s.q.insertMessages
		if at {
			q = s.q.at.insertMessages
		}
		b.Queue(q, ids, versions, idxs, topics, keys, seqs, payloads, headers, created, s.parts)
	}
	return nil
}

func (s *Store) fault(step Step) error {
	if s.opts.fault == nil {
		return nil
	}
	if err := s.opts.fault(step); err != nil {
		return fmt.Errorf("injected fault %s: %w", step, err)
	}
	return nil
}

// readRemotes reads the commits after version after, up to version upTo,
// at most limit of them (0: all), as the engine receives other engines'
// commits.
func (s *Store) readRemotes(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, after, upTo uint64, limit int) ([]engine.Remote, error) {
	if limit <= 0 {
		limit = int(min(upTo-after, 1<<30))
	}
	rows, err := q.Query(ctx, s.q.readLog, int64(after), int64(min(upTo, 1<<63-1)), limit)
	if err != nil {
		return nil, err
	}
	return s.scanRemotes(rows, after)
}

// scanRemotes reads rows of the log, the commits after version after in
// version order, and closes rows.
func (s *Store) scanRemotes(rows pgx.Rows, after uint64) ([]engine.Remote, error) {
	defer rows.Close()
	var out []engine.Remote
	check := len(rows.FieldDescriptions()) > 7 // the others statement's
	for rows.Next() {
		var version, at, ok int64
		var r engine.Remote
		var writes, vals, keySeqs, ids []byte
		dest := []any{&version, &r.Process, &at, &writes, &vals, &keySeqs, &ids, &ok}
		if !check {
			dest = dest[:7]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if uint64(version) != after+uint64(len(out))+1 {
			return nil, fmt.Errorf("the log holds version %d after version %d: the commits between were pruned (WithHistoryRetention); restart the engine to load the state", version, after+uint64(len(out)))
		}
		r, err := s.remote(uint64(version), r.Process, at, writes, vals, keySeqs, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
