package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// entryKey names a collection entry by its field's index in the codec.
type entryKey struct {
	i   int
	key string
}

// scratch is what Commit reuses from one group to the next (cmu).
type scratch struct {
	use    []uint8 // per codec field: usedColl, usedField
	pathAt []int   // per codec field: its index in the change set's paths
	seen   map[entryKey]struct{}
	keys   []entryKey
	cs     changeSet
	args   []any
	val    []byte // a value's encoding, before it is copied into cs
	// commits is the log row's commits column (history.go).
	commits []byte
}

const (
	usedColl  = 1 // an entry of the collection was written
	usedField = 2 // the plain field was written
)

// Commit implements engine.Store: every record of the group is written in
// one transaction, which is committed (and synced) before Commit returns.
// On error nothing of the group is in the database.
//
// The transaction only appends: the group's messages, and one row of
// theus_log holding the state values the group changed (see changeSet),
// encoded from the state of its last record, so a field or an entry
// written by several commits of the group is stored once. A checkpoint
// later writes a snapshot of the whole state, after which the log before
// it is deleted. The first commit to an empty store writes the snapshot
// itself.
func (s *Store) Commit(ctx context.Context, recs []*engine.Record) error {
	if len(recs) == 0 {
		return nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.codec == nil {
		return errors.New("sqlite: Commit before Recover: the store has no state codec (use it through engine.WithStore)")
	}
	if s.broken != nil {
		return fmt.Errorf("sqlite: %w", refusal(s.broken))
	}
	for i, r := range recs {
		if want := s.version + 1 + uint64(i); r.Version != want {
			return fmt.Errorf("sqlite: commit of version %d, want %d: versions must be consecutive", r.Version, want)
		}
	}
	last := recs[len(recs)-1]
	var err error
	if s.empty {
		err = s.commitFirst(ctx, recs, last)
	} else {
		err = s.commitLog(ctx, recs, last)
	}
	clear(s.scr.args)
	s.scr.args = s.scr.args[:0]
	if err != nil {
		// The group may be in the file all the same (see settle): the
		// relay reads the file.
		s.tail.reset()
		err = s.settle(ctx, err, func(version, _ uint64) bool { return version == s.version })
		return fmt.Errorf("sqlite: commit versions %d-%d: %w", recs[0].Version, last.Version, err)
	}
	s.version, s.empty, s.last = last.Version, false, last.State
	wake := false
	for _, r := range recs {
		for i := range r.Messages {
			m := &r.Messages[i]
			s.seqs[outbox.TopicKey{Topic: m.Topic, Key: m.Key}] = m.KeySeq
			s.lastID, wake = m.ID, true
			s.unfolded++
		}
	}
	if wake {
		s.tail.add(recs)
		s.wake()
	}
	if s.checkpointDue() {
		s.ckpt.trigger()
	}
	return nil
}

// settle returns the error to report for a write transaction (a commit
// group's, a checkpoint's) that failed with err and was rolled back, and
// decides whether the store may go on writing. unchanged tells, from the
// last version the file holds and its checkpoint, read again, whether the
// file is as before the transaction. s.cmu is held.
//
// A statement that failed leaves nothing behind: the transaction was
// never committed. A COMMIT that failed because the file system is full
// (SQLITE_FULL) could not write the transaction's commit record to the
// write-ahead log, and SQLite ignores log frames without one, now and when
// it recovers the log after a restart: the transaction is not in the
// file, which unchanged confirms, and the store goes on. Any other failure
// of COMMIT, such as an I/O error while syncing, may leave the transaction
// in the log, invisible now but found by the next recovery, and leaves
// what the file system holds in doubt: the store then refuses every write
// until the process restarts.
func (s *Store) settle(ctx context.Context, err error, unchanged func(version, checkpoint uint64) bool) error {
	var ce *commitError
	if !errors.As(err, &ce) {
		if isFull(err) {
			return s.full(err)
		}
		return err
	}
	if isFull(ce.err) {
		version, checkpoint, rerr := s.stored(ctx)
		if rerr == nil && unchanged(version, checkpoint) {
			return s.full(ce.err)
		}
	}
	s.broken = ce.err
	return refusal(s.broken)
}

// full is the error of a transaction that did not fit on the file system
// and left nothing behind.
func (s *Store) full(err error) error {
	return fmt.Errorf("%w: nothing was written; free space on the file system that holds %s, and commits resume without a restart", err, s.path)
}

// refusal is the error of every write after a COMMIT failed with cause
// in a way settle could not rule out.
func refusal(cause error) error {
	return fmt.Errorf("COMMIT failed (%w) and its transaction may or may not be on disk, so the store refuses to write: restart the process; recovery reads what the disk holds", cause)
}

// isFull tells whether err is SQLite's SQLITE_FULL.
func isFull(err error) bool {
	var c interface{ Code() int }
	return errors.As(err, &c) && c.Code()&0xff == sqlite3.SQLITE_FULL
}

// stored reads, on the write connection, the last version the file holds
// and the version of its checkpoint (0 for an empty store).
func (s *Store) stored(ctx context.Context) (version, checkpoint uint64, err error) {
	var cp sql.NullString
	var logged sql.NullInt64
	err = s.w.QueryRowContext(ctx, `SELECT
		(SELECT value FROM theus_meta WHERE name = 'checkpoint'),
		(SELECT max(version) FROM theus_log)`).Scan(&cp, &logged)
	if err != nil {
		return 0, 0, err
	}
	if cp.Valid {
		if checkpoint, err = strconv.ParseUint(cp.String, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("stored checkpoint version %q: %w", cp.String, err)
		}
	}
	return max(checkpoint, uint64(logged.Int64)), checkpoint, nil
}

// commitLog writes a group to the log.
func (s *Store) commitLog(ctx context.Context, recs []*engine.Record, last *engine.Record) error {
	if err := s.encodeChanges(recs, last); err != nil {
		return err
	}
	// The relay's acks made since the last write go with the group (see
	// Ack).
	s.acks.flushing.Lock()
	defer s.acks.flushing.Unlock()
	acks := s.takeAcks()
	err := s.writeTx(ctx, BeforeWrite, BeforeSync, AfterSync, func(c *writeConn) error {
		if err := s.recordPending(c); err != nil {
			return err
		}
		if err := s.insertMessages(c, recs); err != nil {
			return err
		}
		if err := s.insertLog(c, recs, last); err != nil {
			return err
		}
		return acks.write(c)
	})
	if err == nil {
		s.logBytes.Add(int64(len(s.scr.cs.b)))
		s.written(acks)
		s.pending = engine.Evolution{}
	}
	return err
}

// insertLog writes the log row of the group recs, whose changes are in
// s.scr.cs: what recovery replays after the checkpoint, and the history
// (history.go).
func (s *Store) insertLog(c *writeConn, recs []*engine.Record, last *engine.Record) error {
	s.scr.commits = appendCommits(s.scr.commits[:0], recs)
	_, err := c.exec(`INSERT INTO theus_log (version, first, data, commits, at) VALUES (?, ?, ?, ?, ?)`,
		int64(last.Version), int64(recs[0].Version), s.scr.cs.b, s.scr.commits, last.Time.UnixNano())
	return err
}

// encodeChanges encodes into s.scr.cs what recs wrote, from the final
// state.
func (s *Store) encodeChanges(recs []*engine.Record, last *engine.Record) error {
	infos := s.codec.Fields()
	sc := &s.scr
	if len(sc.use) != len(infos) {
		sc.use, sc.pathAt = make([]uint8, len(infos)), make([]int, len(infos))
		sc.seen = make(map[entryKey]struct{})
	}
	defer func() {
		clear(sc.use)
		clear(sc.seen)
		clear(sc.keys)
		sc.keys = sc.keys[:0]
	}()
	for _, r := range recs {
		for _, w := range r.Writes {
			i := s.codec.Field(w.Path)
			if i < 0 {
				return fmt.Errorf("version %d writes %s, which the state codec does not know", r.Version, w.Path)
			}
			if !infos[i].Collection {
				sc.use[i] |= usedField
				continue
			}
			sc.use[i] |= usedColl
			k := entryKey{i, w.Key}
			if _, ok := sc.seen[k]; !ok {
				sc.seen[k] = struct{}{}
				sc.keys = append(sc.keys, k)
			}
		}
	}
	n := 0
	for i, u := range sc.use {
		if u != 0 {
			sc.pathAt[i] = n
			n++
		}
	}
	sc.cs.reset(n)
	for i, u := range sc.use {
		if u != 0 {
			sc.cs.addPath(infos[i].Path)
		}
	}
	for i, u := range sc.use {
		if u&usedField == 0 {
			continue
		}
		var err error
		if sc.val, err = s.codec.AppendField(sc.val[:0], last.State, i); err != nil {
			return err
		}
		sc.cs.add(sc.pathAt[i], setField, "", sc.val)
	}
	for _, k := range sc.keys {
		var ok bool
		var err error
		sc.val, ok, err = s.codec.AppendEntry(sc.val[:0], last.State, k.i, k.key)
		switch {
		case err != nil:
			return err
		case ok:
			sc.cs.add(sc.pathAt[k.i], putEntry, k.key, sc.val)
		default:
			sc.cs.add(sc.pathAt[k.i], deleteEntry, k.key, nil)
		}
	}
	return nil
}

// commitFirst writes the first group to an empty store: its messages,
// the paths and types of the state's fields, and a snapshot of the state
// after it, including the initial values no commit wrote, as the
// checkpoint at the group's last version.
func (s *Store) commitFirst(ctx context.Context, recs []*engine.Record, last *engine.Record) error {
	var snap [][]byte
	w := snapshotWriter{paths: codecPaths(s.codec), flush: func(data []byte) error {
		snap = append(snap, bytes.Clone(data))
		return nil
	}}
	if err := encodeState(s.codec, last.State, &w); err != nil {
		return err
	}
	// Its log row is not replayed (the snapshot holds the group), but
	// it is the group's history.
	if err := s.encodeChanges(recs, last); err != nil {
		return err
	}
	err := s.writeTx(ctx, BeforeWrite, BeforeSync, AfterSync, func(c *writeConn) error {
		if err := recordFields(c.exec, s.codec.Fields()); err != nil {
			return err
		}
		if err := s.insertLog(c, recs, last); err != nil {
			return err
		}
		for _, data := range snap {
			if _, err := c.exec(insertSnapshot, int64(last.Version), data); err != nil {
				return err
			}
		}
		if err := s.insertMessages(c, recs); err != nil {
			return err
		}
		_, err := c.exec(setCheckpoint, strconv.FormatUint(last.Version, 10))
		return err
	})
	if err == nil {
		s.checkpoint.Store(last.Version)
		s.logBytes.Store(0)
		s.snapBytes.Store(w.size)
	}
	return err
}

// Statements shared by commits and checkpoints.
const (
	insertSnapshot = `INSERT INTO theus_snapshot (version, data) VALUES (?, ?)`
	setCheckpoint  = `INSERT INTO theus_meta (name, value) VALUES ('checkpoint', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`
)

// pendingFields reports whether the contract's fields differ from those
// recorded, until the next commit records them. s.cmu is held.
func (s *Store) pendingFields() bool {
	return len(s.pending.Record) > 0 || len(s.pending.Removed) > 0
}

// recordPending records, in the transaction of c, the fields of the
// contract that recovery found new or compatibly changed, and forgets
// those it no longer declares (see Store.pending). s.cmu is held.
func (s *Store) recordPending(c *writeConn) error {
	for _, f := range s.pending.Record {
		coll := int64(0)
		if f.Collection {
			coll = 1
		}
		_, err := c.exec(`INSERT INTO theus_fields (path, type, collection) VALUES (?, ?, ?)
			ON CONFLICT (path) DO UPDATE SET type = excluded.type, collection = excluded.collection`, f.Path, f.Type, coll)
		if err != nil {
			return fmt.Errorf("record field %s: %w", f.Path, err)
		}
	}
	for _, path := range s.pending.Removed {
		if _, err := c.exec(`DELETE FROM theus_fields WHERE path = ?`, path); err != nil {
			return fmt.Errorf("forget field %s: %w", path, err)
		}
	}
	return nil
}

// recordFields records, with exec, the path, type and kind of the fields
// not recorded yet.
func recordFields(exec func(q string, args ...any) (driver.Result, error), fields []engine.FieldInfo) error {
	for _, f := range fields {
		coll := int64(0)
		if f.Collection {
			coll = 1
		}
		_, err := exec(`INSERT INTO theus_fields (path, type, collection) VALUES (?, ?, ?)
			ON CONFLICT (path) DO NOTHING`, f.Path, f.Type, coll)
		if err != nil {
			return fmt.Errorf("record field %s: %w", f.Path, err)
		}
	}
	return nil
}

// insertMessages appends the messages of recs to the outbox, in batches.
func (s *Store) insertMessages(c *writeConn, recs []*engine.Record) error {
	args := s.scr.args[:0]
	for _, r := range recs {
		for i := range r.Messages {
			m := &r.Messages[i]
			var headers any
			if len(m.Headers) > 0 {
				b, err := json.Marshal(m.Headers)
				if err != nil {
					return err
				}
				headers = string(b)
			}
			payload := m.Payload
			if payload == nil {
				payload = []byte{}
			}
			args = append(args, m.ID, int64(m.Version), int64(i), m.Topic, m.Key, int64(m.KeySeq), payload, headers, m.CreatedAt.UnixNano())
		}
	}
	s.scr.args = args
	return insertMessages.exec(c, args)
}

func (s *Store) fault(step Step) error {
	if s.opts.fault == nil || step == noStep {
		return nil
	}
	if err := s.opts.fault(step); err != nil {
		return fmt.Errorf("injected fault %s: %w", step, err)
	}
	return nil
}
